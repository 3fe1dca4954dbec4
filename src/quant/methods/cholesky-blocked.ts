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
 * Work: n³/6 multiply-adds each in the product (plus the tile of each diagonal block), n²·nb/2 in float64.
 */
import { sharedFloat64 } from '../../tensor/shared.js';
import { pivotTolerance, rowDot, type CholeskyResult } from './cholesky.js';

/** The float32 product the blocked steps hand their bulk to. */
export interface BlockProducts {
  /** out[m, n] = x[m, k] · w[n, k]ᵀ (float32, row-major, contiguous). */
  matmul(x: Float32Array, m: number, k: number, w: Float32Array, n: number, out: Float32Array): void;
  /** Scratch of at least `floats` float32s where `matmul` runs fastest (reused between calls: `slot` names it). */
  scratch(slot: 'panel' | 'right' | 'out', floats: number): Float32Array;
}

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
    for (let j = k0; j < k1; j++) {
      const rj = j * n;
      const pivot = l[rj + j]! - rowDot(l, rj + k0, rj + k0, j - k0);
      if (!(pivot > tolerance)) return { ok: false, column: j, pivot };
      const ljj = Math.sqrt(pivot);
      l[rj + j] = ljj;
      for (let i = j + 1; i < n; i++) l[i * n + j] = (l[i * n + j]! - rowDot(l, i * n + k0, rj + k0, j - k0)) / ljj;
    }
    if (k1 === n) break;
    const depth = k1 - k0, p = panelOf(l, n, k1, k0, k1, products);
    for (let r0 = k1; r0 < n; r0 += UPDATE_ROWS) {
      const r1 = Math.min(n, r0 + UPDATE_ROWS), rows = r1 - r0, cols = r1 - k1;
      const out = products.scratch('out', rows * cols);
      products.matmul(p.subarray((r0 - k1) * depth, (r1 - k1) * depth), rows, depth, p.subarray(0, cols * depth), cols, out);
      for (let i = 0; i < rows; i++) {
        const li = (r0 + i) * n + k1, oi = i * cols;
        for (let j = 0, end = r0 + i - k1; j <= end; j++) l[li + j] -= out[oi + j]!;
      }
    }
  }
  return { ok: true, l };
}

/** L⁻¹ of a lower-triangular [n, n] matrix with nonzero diagonal, blocks of nb rows. */
export function blockedInvertLower(l: Float64Array, n: number, nb: number, products: BlockProducts): Float64Array {
  const x = sharedFloat64(n * n); // rows < k0: X; rows ≥ k0: B, the accumulated −Σ L·X of the blocks before
  for (let k0 = 0; k0 < n; k0 += nb) {
    const k1 = Math.min(n, k0 + nb);
    for (let i = k0; i < k1; i++) {
      const ri = i * n, d = l[ri + i]!;
      for (let s = k0; s < i; s++) {
        const lis = l[ri + s]!;
        if (lis === 0) continue;
        const rs = s * n;
        for (let c = 0; c <= s; c++) x[ri + c] -= lis * x[rs + c]!;
      }
      for (let c = 0; c < i; c++) x[ri + c] /= d;
      x[ri + i] = 1 / d;
    }
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
      for (let i = 0; i < rows; i++) {
        const xi = (r0 + i) * n, oi = i * k1;
        for (let c = 0; c < k1; c++) x[xi + c] -= out[oi + c]!;
      }
    }
  }
  return x;
}
