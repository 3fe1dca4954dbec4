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

export interface StepArena {
  alloc(bytes: number): DeviceBuffer;
  reset(): void;
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

  return { alloc, reset, dispose: freeAll };
}
