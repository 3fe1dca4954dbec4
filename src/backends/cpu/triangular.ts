/**
 * GPTQ's two O(n³) triangular steps (quant/methods/cholesky.ts TriangularKernels) split over the CPU
 * pool, with the same bits as the serial loops: Cholesky's column j below the diagonal is split by
 * rows (each L[i, j] is one rowDot), and L⁻¹ by blocks of columns (a column of the inverse depends
 * only on itself). The column loop of the Cholesky stays on the calling thread: each column needs
 * the ones before it.
 */
import type { TriangularKernels } from '../../quant/methods/cholesky.js';
import { sharedFloat64 } from '../../tensor/shared.js';
import { cpuPool } from './pool/index.js';
import { KERNEL_CHOLESKY_COLUMN, KERNEL_INVERT_LOWER } from './pool/kernels.js';
import type { CholeskyColumnArgs, InvertLowerArgs } from './triangular-kernel.js';

/** Columns of L⁻¹ per pool row: wide enough for contiguous inner loops, narrow enough to balance the threads. */
const INVERSE_BLOCK = 16;
/** Multiply-adds below which a piece of work is not worth a thread. */
const MIN_WORK_PER_THREAD = 1 << 15;

export function poolTriangularKernels(): TriangularKernels {
  return {
    column(a, l, n, j, ljj) {
      cpuPool().run(KERNEL_CHOLESKY_COLUMN, { a, l, n, j, ljj } satisfies CholeskyColumnArgs, n - j - 1, { workPerRow: j + 1, minWorkPerThread: MIN_WORK_PER_THREAD });
    },
    invertLower(l, n) {
      const inv = sharedFloat64(n * n);
      const blocks = Math.ceil(n / INVERSE_BLOCK);
      // the first blocks cost most ((n − c)² / 2 each): many chunks, claimed in order, balance them
      cpuPool().run(KERNEL_INVERT_LOWER, { l, inv, n, block: INVERSE_BLOCK } satisfies InvertLowerArgs, blocks,
        { workPerRow: (n * n * INVERSE_BLOCK) / 6, minWorkPerThread: MIN_WORK_PER_THREAD, chunksPerThread: 16 });
      return inv;
    },
  };
}
