/**
 * GPTQ's two O(n³) triangular steps (quant/methods/cholesky.ts TriangularKernels) on the CPU:
 *  - blockedTriangularKernels (what GPTQ runs): blocked, the trailing updates in float32 on the matmul;
 *  - poolTriangularKernels: the serial loops split over the pool with their bits: Cholesky's column j
 *    below the diagonal by rows (each L[i, j] is one rowDot), L⁻¹ by blocks of columns (a column of
 *    the inverse depends only on itself). The column loop stays on the calling thread: each column
 *    needs the ones before it.
 */
import { choleskyByColumns, type TriangularKernels } from '../../quant/methods/cholesky.js';
import { blockedCholesky, blockedInvertLower, type BlockProducts, type PanelStep } from '../../quant/methods/cholesky-blocked.js';
import { arenaFloat32, arenaScratchFloat32, sharedFloat64 } from '../../tensor/shared.js';
import { matmulF32, wasmKernelWhereAvailable } from './matmul.js';
import { cpuPool } from './pool/index.js';
import { KERNEL_CHOLESKY_COLUMN, KERNEL_CHOLESKY_PANEL, KERNEL_INVERSE_BLOCK, KERNEL_INVERT_LOWER, KERNEL_SUBTRACT_ROWS } from './pool/kernels.js';
import type { CholeskyColumnArgs, InvertLowerArgs } from './triangular-kernel.js';

/** Columns of L⁻¹ per pool row: wide enough for contiguous inner loops, narrow enough to balance the threads. */
const INVERSE_BLOCK = 16;
/** Multiply-adds below which a piece of work is not worth a thread. */
const MIN_WORK_PER_THREAD = 1 << 15;

export function poolTriangularKernels(): TriangularKernels {
  return {
    cholesky: (a, n) => choleskyByColumns(a, n, (a2, l, n2, j, ljj) => {
      cpuPool().run(KERNEL_CHOLESKY_COLUMN, { a: a2, l, n: n2, j, ljj } satisfies CholeskyColumnArgs, n2 - j - 1, { workPerRow: j + 1, minWorkPerThread: MIN_WORK_PER_THREAD });
    }),
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

const PANEL_KERNELS: Record<PanelStep, string> = { 'cholesky-panel': KERNEL_CHOLESKY_PANEL, 'inverse-block': KERNEL_INVERSE_BLOCK, 'subtract-rows': KERNEL_SUBTRACT_ROWS };

/** Columns (rows) per block of the blocked factorization: the float64 part grows with it, the product's efficiency too. */
const FACTOR_BLOCK = 128;

/**
 * The blocked Cholesky and triangular inverse (quant/methods/cholesky-blocked.ts) with their trailing
 * updates on matmulF32 (WASM SIMD on the pool; scratch in the arena, kept between calls and grown
 * when a larger matrix comes) and their float64 steps (panels, the products' subtraction) split over the pool (the same bits). Not the serial bits: float32 products, as GPTQ's PyTorch code.
 */
export function blockedTriangularKernels(nb = FACTOR_BLOCK): TriangularKernels {
  const scratch = new Map<string, Float32Array>();
  const wasm = wasmKernelWhereAvailable();
  const products: BlockProducts = {
    matmul: (x, m, k, w, n, out) => matmulF32(x, m, k, w, n, out, undefined, wasm),
    scratch(slot, floats) {
      const have = scratch.get(slot);
      const block = have === undefined ? arenaFloat32(floats) : arenaScratchFloat32(have, floats);
      scratch.set(slot, block);
      return block;
    },
    // the panel steps over the pool: the inverse's columns cost unevenly (the first ones most), so many chunks
    split: (step, args, count, workPerItem) => cpuPool().run(PANEL_KERNELS[step], args, count,
      { workPerRow: workPerItem, minWorkPerThread: MIN_WORK_PER_THREAD, chunksPerThread: step === 'inverse-block' ? 16 : 4 }),
  };
  return { cholesky: (a, n) => blockedCholesky(a, n, nb, products), invertLower: (l, n) => blockedInvertLower(l, n, nb, products) };
}
