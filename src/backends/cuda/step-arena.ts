/**
 * Device memory for the intermediate tensors of one forward pass: views bump-allocated (256-byte
 * aligned) from chunks of device memory, all reclaimed at once by reset() when the next pass starts.
 * Kernels run in order on one stream, so a new pass may write memory the previous pass's queued
 * kernels still read. When a pass needed more than one chunk, reset() replaces them with one chunk
 * of their total size, so steady decoding settles on one allocation and repeats its addresses (the
 * TMA maps cached for them stay valid).
 */
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';

/** Where the arena stands: restore() returns to it (later views are dropped, earlier ones kept). */
export interface ArenaMark {
  readonly chunks: number;
  readonly used: number;
  readonly total: number;
}

export interface StepArena {
  alloc(bytes: number): DeviceBuffer;
  reset(): void;
  mark(): ArenaMark;
  /** Back to `m`, taken since the last reset with no chunk added after it. */
  restore(m: ArenaMark): void;
  dispose(): void;
}

const ALIGN = 256;

export function createStepArena(ctx: CudaContext, firstChunkBytes = 64 << 20): StepArena {
  let chunks: DeviceBuffer[] = [];
  let used = 0; // bytes used in the last chunk
  let total = 0; // bytes asked for since the last reset (aligned)

  const alloc = (bytes: number): DeviceBuffer => {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    total += size;
    let chunk = chunks[chunks.length - 1];
    if (!chunk || used + size > chunk.bytes) {
      chunk = ctx.alloc(Math.max(size, firstChunkBytes));
      chunks.push(chunk);
      used = 0;
    }
    const view = chunk.view(used, bytes);
    used += size;
    return view;
  };

  const freeAll = (): void => {
    ctx.synchronize();
    for (const c of chunks) c.free();
    chunks = [];
  };

  const reset = (): void => {
    if (chunks.length > 1) {
      freeAll();
      chunks = [ctx.alloc(Math.max(total, firstChunkBytes))];
    }
    used = 0;
    total = 0;
  };

  const restore = (m: ArenaMark): void => {
    if (m.chunks !== chunks.length) throw new Error(`step arena: cannot return to a mark taken with ${m.chunks} chunks (now ${chunks.length})`);
    used = m.used;
    total = m.total;
  };

  return { alloc, reset, mark: () => ({ chunks: chunks.length, used, total }), restore, dispose: freeAll };
}
