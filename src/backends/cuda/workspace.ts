/**
 * Per-context scratch memory for split-K launches: int32 arrival counters, zero between launches
 * (every kernel that counts resets its counters before it ends), and a separate buffer of partial
 * totals. The two never share memory, so partials of one launch cannot land on the counters of the
 * next. Each grows on demand, to at least twice its size; the buffer it replaces is kept, not freed,
 * for as long as the context: a CUDA graph captured before the growth (the decode engine's steps)
 * still names it, and a launch queued before it may still read it. The replaced buffers together are
 * smaller than the current one, so a context keeps less than twice its current workspace. New
 * counters are zero-filled and the whole context synchronized before use (cuMemsetD8 runs on the
 * legacy stream, which does not order with the context's non-blocking stream).
 */
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import type { KernelArg } from './program.js';

interface Workspace { counters?: DeviceBuffer; partials?: DeviceBuffer; replaced: DeviceBuffer[] }
const spaces = new WeakMap<CudaContext, Workspace>();

/** `bytes` or more of device memory in slot `key` of ctx's workspace; zero-filled when (re)allocated if `zero`. */
function grown(ctx: CudaContext, space: Workspace, key: 'counters' | 'partials', bytes: number, zero: boolean): DeviceBuffer {
  let buf = space[key];
  if (!buf || buf.bytes < bytes) {
    if (buf) space.replaced.push(buf);
    buf = ctx.alloc(Math.max(bytes, 2 * (buf?.bytes ?? 0)));
    if (zero) {
      buf.fill(0);
      ctx.landUploads();
    }
    space[key] = buf;
  }
  return buf;
}

/** `counters` zeroed int32 counters and `partialBytes` of scratch, as kernel arguments [partials, counters]. */
export function splitKWorkspace(ctx: CudaContext, counters: number, partialBytes: number): [partials: KernelArg, counters: KernelArg] {
  if (!Number.isInteger(counters) || counters < 1 || !Number.isInteger(partialBytes) || partialBytes < 1) {
    throw new RangeError(`split-K workspace needs positive integer sizes, got ${counters} counters and ${partialBytes} B`);
  }
  let space = spaces.get(ctx);
  if (!space) spaces.set(ctx, (space = { replaced: [] }));
  return [grown(ctx, space, 'partials', partialBytes, false), grown(ctx, space, 'counters', counters * 4, true)];
}
