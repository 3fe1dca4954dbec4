/**
 * GPTQ's two O(n³) triangular steps (cholesky.ts) blocked, LAPACK's way, so that their bulk runs
 * through a fast float32 product (BlockProducts: the CPU backend's WASM matmul, backends/cpu/triangular.ts)
 * while the O(n²·nb) rest stays float64. GPTQ's PyTorch code factors in float32 throughout; here
 * the float32 part is the trailing updates, accumulated into float64.
 *
 * Cholesky (A = L·Lᵀ, right-looking), for each block of columns K = [k0, k1):
 *   1. columns k0..k1−1 of L, below the diagonal to the last row, by the column formula of cholesky.ts
 *      with the sums over m ∈ [k0, j) only (the earlier columns' terms are already subtracted);
 *      a pivot ≤ the tolerance of cholesky.ts fails the factorization at that column;
 *   2. trailing update of the rows and columns past k1: A[i, j] −= Σ_{m∈K} L[i,m]·L[j,m] (j ≤ i),
 *      with P = L[k1:, K] as float32: by blocks of rows [r0, r1), A[r0:r1, k1:r1] −= P[r0:r1]·P[k1:r1]ᵀ.
 * Inverse (X = L⁻¹, right-looking forward substitution of L·X = I), for each block of rows K:
 *   1. rows k0..k1−1 of X: X[i, c] = (δ_ic + B[i, c] − Σ_{s∈[k0,i)} L[i,s]·X[s,c]) / L[i,i], c ≤ i,
 *      where B[i, c] = −Σ_{s<k0} L[i,s]·X[s,c] was accumulated by the earlier blocks' updates;
 *   2. B[k1:, 0:k1] −= L[k1:, K] · X[K, 0:k1] (float32 product; X[K, 0:k1] transposed, k1 × nb).
 * Work: n³/6 multiply-adds each in the product (plus the tile of each diagonal block), n²·nb/2 in float64,
 * most of it in the two panel steps, which BlockProducts.split may run over threads (rows of the
 * Cholesky's panel, columns of the inverse's block: each item's arithmetic unchanged, the same bits).
 */
import { sharedFloat64 } from '../../tensor/shared.js';
import { pivotTolerance, rowDot, type CholeskyResult } from './cholesky.js';

/** The float32 product the blocked steps hand their bulk to, and who runs their float64 panel steps. */
export interface BlockProducts {
  /** out[m, n] = x[m, k] · w[n, k]ᵀ (float32, row-major, contiguous). */
  matmul(x: Float32Array, m: number, k: number, w: Float32Array, n: number, out: Float32Array): void;
  /** Scratch of at least `floats` float32s where `matmul` runs fastest (reused between calls: `slot` names it). */
  scratch(slot: 'panel' | 'right' | 'out', floats: number): Float32Array;
  /**
   * Runs a panel step over items [0, count) (choleskyPanelRows: rows; inverseBlockColumns: columns), in
   * pieces on several threads where it pays; each item's arithmetic is the same in any split. Absent:
   * the calling thread runs them all.
   */
  split?(step: PanelStep, args: PanelArgs | SubtractArgs, count: number, workPerItem: number): void;
}

/** A trailing update's float32 product subtracted from its float64 rows (subtractRows). */
export interface SubtractArgs {
  readonly [name: string]: Float64Array | Float32Array | number;
  readonly dst: Float64Array;
  readonly src: Float32Array;
  /** dst index of item 0's first value; items are dstStride apart in dst, srcStride in src. */
  readonly dstStart: number;
  readonly dstStride: number;
  readonly srcStride: number;
  readonly cols: number;
  /** ≥ 0: item i takes only its first min(cols, i + diagonal + 1) values (a lower-triangular block); −1: all. */
  readonly diagonal: number;
}

/** dst[dstStart + i·dstStride + j] −= src[i·srcStride + j] for items i ∈ [start, end) (the trailing updates' float64 side). */
export function subtractRows(a: SubtractArgs, start: number, end: number): void {
  const { dst, src, dstStart, dstStride, srcStride, cols, diagonal } = a;
  for (let i = start; i < end; i++) {
    const d = dstStart + i * dstStride, o = i * srcStride;
    const width = diagonal < 0 ? cols : Math.min(cols, i + diagonal + 1);
    for (let j = 0; j < width; j++) dst[d + j] -= src[o + j]!;
  }
}

/** The float64 steps that can be split (see BlockProducts.split). */
export type PanelStep = 'cholesky-panel' | 'inverse-block' | 'subtract-rows';

/** A panel step's matrices (shared memory when split over threads) and block. */
export interface PanelArgs {
  readonly [name: string]: Float64Array | number;
  /** the factor L [n, n] (being made, for the Cholesky). */
  readonly l: Float64Array;
  /** X = L⁻¹ being made (the inverse's step; the Cholesky's is unused: pass l). */
  readonly x: Float64Array;
  readonly n: number;
  readonly k0: number;
  readonly k1: number;
}

/**
 * Cholesky step 1 below a factored diagonal block: rows k1 + [start, end) of columns k0..k1−1,
 * L[i, j] = (L[i, j] − Σ_{m∈[k0,j)} L[i,m]·L[j,m]) / L[j, j] — a row needs only itself and the block.
 */
export function choleskyPanelRows(a: PanelArgs, start: number, end: number): void {
  const { l, n, k0, k1 } = a;
  for (let i = k1 + start; i < k1 + end; i++) {
    const ri = i * n;
    for (let j = k0; j < k1; j++) l[ri + j] = (l[ri + j]! - rowDot(l, ri + k0, j * n + k0, j - k0)) / l[j * n + j]!;
  }
}

/**
 * Inverse step 1 for columns [start, end) of rows k0..k1−1 of X (see blockedInvertLower): a column
 * needs only its own entries of the block's earlier rows.
 */
export function inverseBlockColumns(a: PanelArgs, start: number, end: number): void {
  const { l, x, n, k0, k1 } = a;
  for (let i = k0; i < k1; i++) {
    const ri = i * n, d = l[ri + i]!;
    for (let s = k0; s < i; s++) {
      const lis = l[ri + s]!;
      if (lis === 0) continue;
      const rs = s * n, hi = Math.min(s + 1, end);
      for (let c = start; c < hi; c++) x[ri + c] -= lis * x[rs + c]!;
    }
    for (let c = start, hi = Math.min(i, end); c < hi; c++) x[ri + c] /= d;
    if (i >= start && i < end) x[ri + i] = 1 / d;
  }
}

const runSplit = (products: BlockProducts, step: PanelStep, args: PanelArgs | SubtractArgs, count: number, workPerItem: number): void => {
  if (count <= 0) return;
  if (products.split) products.split(step, args, count, workPerItem);
  else if (step === 'cholesky-panel') choleskyPanelRows(args as PanelArgs, 0, count);
  else if (step === 'inverse-block') inverseBlockColumns(args as PanelArgs, 0, count);
  else subtractRows(args as SubtractArgs, 0, count);
};

/** Rows of A's trailing update per product call (bounds the float32 output block). */
const UPDATE_ROWS = 512;

/** L[r0:, k0:k1] as float32 [n − r0, k1 − k0] in the 'panel' scratch. */
function panelOf(l: Float64Array, n: number, r0: number, k0: number, k1: number, products: BlockProducts): Float32Array {
  const nb = k1 - k0, p = products.scratch('panel', (n - r0) * nb);
  for (let i = r0; i < n; i++) {
    const from = i * n + k0, to = (i - r0) * nb;
    for (let m = 0; m < nb; m++) p[to + m] = l[from + m]!;
  }
  return p;
}

/** Lower Cholesky factor of a symmetric [n, n] matrix (only its lower triangle is read), blocks of nb columns. */
export function blockedCholesky(a: Float64Array, n: number, nb: number, products: BlockProducts): CholeskyResult {
  const tolerance = pivotTolerance(a, n);
  const l = sharedFloat64(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) l[i * n + j] = a[i * n + j]!;
  for (let k0 = 0; k0 < n; k0 += nb) {
    const k1 = Math.min(n, k0 + nb);
    // the diagonal block, column by column; then the rows below it, each on its own (the same arithmetic)
    for (let j = k0; j < k1; j++) {
      const rj = j * n;
      const pivot = l[rj + j]! - rowDot(l, rj + k0, rj + k0, j - k0);
      if (!(pivot > tolerance)) return { ok: false, column: j, pivot };
      const ljj = Math.sqrt(pivot);
      l[rj + j] = ljj;
      for (let i = j + 1; i < k1; i++) l[i * n + j] = (l[i * n + j]! - rowDot(l, i * n + k0, rj + k0, j - k0)) / ljj;
    }
    runSplit(products, 'cholesky-panel', { l, x: l, n, k0, k1 }, n - k1, ((k1 - k0) * (k1 - k0)) / 2);
    if (k1 === n) break;
    const depth = k1 - k0, p = panelOf(l, n, k1, k0, k1, products);
    for (let r0 = k1; r0 < n; r0 += UPDATE_ROWS) {
      const r1 = Math.min(n, r0 + UPDATE_ROWS), rows = r1 - r0, cols = r1 - k1;
      const out = products.scratch('out', rows * cols);
      products.matmul(p.subarray((r0 - k1) * depth, (r1 - k1) * depth), rows, depth, p.subarray(0, cols * depth), cols, out);
      // row r0 + i takes columns k1 … r0 + i
      runSplit(products, 'subtract-rows', { dst: l, src: out, dstStart: r0 * n + k1, dstStride: n, srcStride: cols, cols, diagonal: r0 - k1 }, rows, cols);
    }
  }
  return { ok: true, l };
}

/** L⁻¹ of a lower-triangular [n, n] matrix with nonzero diagonal, blocks of nb rows. */
export function blockedInvertLower(l: Float64Array, n: number, nb: number, products: BlockProducts): Float64Array {
  const x = sharedFloat64(n * n); // rows < k0: X; rows ≥ k0: B, the accumulated −Σ L·X of the blocks before
  for (let k0 = 0; k0 < n; k0 += nb) {
    const k1 = Math.min(n, k0 + nb);
    runSplit(products, 'inverse-block', { l, x, n, k0, k1 }, k1, ((k1 - k0) * (k1 - k0)) / 2);
    if (k1 === n) break;
    const depth = k1 - k0, p = panelOf(l, n, k1, k0, k1, products);
    // w[c, s] = X[k0 + s, c] for c < k1 (zero where c > k0 + s)
    const w = products.scratch('right', k1 * depth);
    w.fill(0, 0, k1 * depth);
    for (let s = 0; s < depth; s++) {
      const rs = (k0 + s) * n;
      for (let c = 0; c <= k0 + s; c++) w[c * depth + s] = x[rs + c]!;
    }
    for (let r0 = k1; r0 < n; r0 += UPDATE_ROWS) {
      const r1 = Math.min(n, r0 + UPDATE_ROWS), rows = r1 - r0;
      const out = products.scratch('out', rows * k1);
      products.matmul(p.subarray((r0 - k1) * depth, (r1 - k1) * depth), rows, depth, w.subarray(0, k1 * depth), k1, out);
      runSplit(products, 'subtract-rows', { dst: x, src: out, dstStart: r0 * n, dstStride: n, srcStride: k1, cols: k1, diagonal: -1 }, rows, k1);
    }
  }
  return x;
}
