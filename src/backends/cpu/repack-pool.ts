/**
 * The CUDA kernels' int4 layout (cuda/repack.ts repackPackedW4) made over the CPU pool by rows, the same
 * bytes as on one thread: for every W4A8 / W4A16 upload (a model's load with --backend cuda, AWQ's grid
 * points). A layer whose packed weights are not in shared memory (or not 4-byte aligned) repacks on this thread.
 */
import { paddedRows, repackW4Args, type RepackW4 } from '../cuda/repack.js';
import { cpuPool } from './pool/index.js';
import { KERNEL_REPACK_W4 } from './pool/kernels.js';

/** Weights a thread's share of rows must hold before the pool splits a layer. */
const MIN_WEIGHTS_PER_THREAD = 1 << 20;

export const repackPackedW4OnPool: RepackW4 = (packed, n, k) => {
  // an unaligned source is copied into an unshared array by repackW4Args: it then repacks on this thread
  const out = new Uint32Array(new SharedArrayBuffer((paddedRows(n) * k) / 2));
  cpuPool().runWhereShared(KERNEL_REPACK_W4, repackW4Args(packed, n, k, out), n, { workPerRow: k, minWorkPerThread: MIN_WEIGHTS_PER_THREAD });
  return new Uint8Array(out.buffer);
};
