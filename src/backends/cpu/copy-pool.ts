/**
 * dst[0, rows·n) = src[0, rows·n), split over the CPU pool by rows. A kernel's result is copied from its
 * arena scratch into a fresh output tensor, and the first touch of fresh memory is page faults (~0.4 GB/s
 * on one thread here against ~25 GB/s into touched memory: docs/cpu-notes.md), so a prefill's copies are
 * worth both threads; small ones (a decode row) stay on the calling thread.
 */
import type { CpuPool } from './pool/index.js';
import { KERNEL_COPY_ROWS } from './pool/kernels.js';
import { copyRowsRange, type CopyRowsArgs } from './copy-rows.js';

/** Below this many floats per thread the copy runs on the calling thread. */
const MIN_FLOATS_PER_THREAD = 1 << 16;

export function copyRowsOnPool(src: Float32Array, dst: Float32Array, rows: number, n: number, pool: CpuPool | null): void {
  const args: CopyRowsArgs = { src, dst, n };
  if (pool === null) copyRowsRange(args, 0, rows);
  else pool.runWhereShared(KERNEL_COPY_ROWS, args, rows, { workPerRow: n, minWorkPerThread: MIN_FLOATS_PER_THREAD });
}
