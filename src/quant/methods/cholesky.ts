/**
 * Dense float64 linear algebra GPTQ needs, on symmetric [n, n] row-major matrices.
 *
 *   cholesky:  A = L·Lᵀ, L lower;  L[j,j] = sqrt(A[j,j] − Σ_{m<j} L[j,m]²),
 *              L[i,j] = (A[i,j] − Σ_{m<j} L[i,m]·L[j,m]) / L[j,j]   (i > j)
 *              (each Σ over a row pair as four partial sums, rowDot)
 *              A is "numerically not positive definite" when a pivot A[j,j] − Σ L[j,m]² is
 *              ≤ n·ε·max_i A[i,i] (ε = 2⁻⁵²): the factor would be dominated by rounding.
 *   invertLower: L⁻¹ by forward substitution (lower triangular).
 *   upperCholeskyOfInverse(H) = U, upper, with H⁻¹ = Uᵀ·U (what GPTQ's torch code gets as
 *              cholesky(cholesky_inverse(cholesky(H)), upper=True)), from one Cholesky of H in
 *              reversed order and one triangular inverse (see the function).
 * Each step is n³/6 multiply-adds; TriangularKernels lets a caller split them over threads, or block
 * them (cholesky-blocked.ts).
 */
import { sharedFloat64 } from '../../tensor/shared.js';

export type CholeskyResult =
  | { readonly ok: true; readonly l: Float64Array }
  /** the first column whose pivot was not positive (beyond rounding), and that pivot. */
  | { readonly ok: false; readonly column: number; readonly pivot: number };

/** Σ_{m<len} v[a+m]·v[b+m] as four partial sums (m mod 4) added pairwise: the rows of L are contiguous. */
export function rowDot(v: Float64Array, a: number, b: number, len: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let m = 0;
  for (; m + 4 <= len; m += 4) {
    s0 += v[a + m]! * v[b + m]!;
    s1 += v[a + m + 1]! * v[b + m + 1]!;
    s2 += v[a + m + 2]! * v[b + m + 2]!;
    s3 += v[a + m + 3]! * v[b + m + 3]!;
  }
  for (; m < len; m++) s0 += v[a + m]! * v[b + m]!;
  return (s0 + s1) + (s2 + s3);
}

/** L[i, j] for i in [i0, i1) once L[j, j] = ljj is known: column j below the diagonal (each row independent). */
export function choleskyColumn(a: Float64Array, l: Float64Array, n: number, j: number, ljj: number, i0: number, i1: number): void {
  const rj = j * n;
  for (let i = i0; i < i1; i++) l[i * n + j] = (a[i * n + j]! - rowDot(l, i * n, rj, j)) / ljj;
}

/**
 * The two O(n³) steps, swappable: SERIAL_KERNELS here (float64, column by column), the CPU pool's
 * split of the same loops with the same bits, or the blocked factorization whose trailing updates
 * run through a float32 matmul (backends/cpu/triangular.ts, cholesky-blocked.ts).
 */
export interface TriangularKernels {
  /** Lower Cholesky factor of a symmetric [n, n] matrix (only its lower triangle is read). */
  cholesky(a: Float64Array, n: number): CholeskyResult;
  /** L⁻¹ of a lower-triangular [n, n] matrix. */
  invertLower(l: Float64Array, n: number): Float64Array;
}

/** Computes column j of L below the diagonal once L[j, j] = ljj is known (choleskyColumn over its rows, or a split of them). */
export type CholeskyColumn = (a: Float64Array, l: Float64Array, n: number, j: number, ljj: number) => void;

export const SERIAL_KERNELS: TriangularKernels = {
  cholesky: (a, n) => choleskyByColumns(a, n, (a2, l, n2, j, ljj) => choleskyColumn(a2, l, n2, j, ljj, j + 1, n2)),
  invertLower,
};

/** The pivot below which a symmetric matrix is "numerically not positive definite": n·ε·max_i |A[i,i]|. */
export function pivotTolerance(a: Float64Array, n: number): number {
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, Math.abs(a[i * n + i]!));
  return n * 2 ** -52 * maxDiag;
}

/** Lower Cholesky factor of a symmetric [n, n] matrix (only its lower triangle is read). */
export function cholesky(a: Float64Array, n: number, kernels: TriangularKernels = SERIAL_KERNELS): CholeskyResult {
  return kernels.cholesky(a, n);
}

/** The column-by-column Cholesky (header), each column below the diagonal by `column`. */
export function choleskyByColumns(a: Float64Array, n: number, column: CholeskyColumn): CholeskyResult {
  const tolerance = pivotTolerance(a, n);
  const l = sharedFloat64(n * n);
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    const pivot = a[rj + j]! - rowDot(l, rj, rj, j);
    if (!(pivot > tolerance)) return { ok: false, column: j, pivot };
    const ljj = Math.sqrt(pivot);
    l[rj + j] = ljj;
    column(a, l, n, j, ljj);
  }
  return { ok: true, l };
}

/**
 * L⁻¹ of a lower-triangular [n, n] matrix with nonzero diagonal, row by row (contiguous reads):
 * X[i, c] = −Σ_{c ≤ m < i} L[i,m]·X[m,c] / L[i,i] for c < i, X[i,i] = 1 / L[i,i]; the sum over m
 * runs in increasing m, the order a column-by-column forward substitution uses.
 */
export function invertLower(l: Float64Array, n: number): Float64Array {
  const inv = sharedFloat64(n * n);
  invertLowerColumns(l, inv, n, 0, n);
  return inv;
}

/**
 * Columns [c0, c1) of L⁻¹ into inv (zeros there before): a column of the inverse depends only on
 * itself (forward substitution), and each X[i, c] sums over m in increasing order, as invertLower
 * does for all columns at once, so any split of the columns gives the same bits.
 */
export function invertLowerColumns(l: Float64Array, inv: Float64Array, n: number, c0: number, c1: number): void {
  for (let i = c0; i < n; i++) {
    const ri = i * n;
    for (let m = c0; m < i; m++) {
      const lim = l[ri + m]!;
      if (lim === 0) continue;
      const rm = m * n, end = Math.min(c1, m + 1);
      for (let c = c0; c < end; c++) inv[ri + c] -= lim * inv[rm + c]!;
    }
    const d = l[ri + i]!;
    for (let c = c0, end = Math.min(c1, i); c < end; c++) inv[ri + c] /= d;
    if (i < c1) inv[ri + i] = 1 / d;
  }
}

export type InverseFactorResult =
  | { readonly ok: true; readonly u: Float64Array }
  | { readonly ok: false; readonly column: number; readonly pivot: number };

/**
 * U upper with H⁻¹ = Uᵀ·U (row-major [n, n]), or the column of H whose pivot failed. With J the
 * reversal of order: Cholesky of J·H·J = M·Mᵀ (M lower) gives H = R·Rᵀ with R = J·M·J upper, so
 * H⁻¹ = R⁻ᵀ·R⁻¹ and U = R⁻¹ = J·M⁻¹·J (upper, positive diagonal: the factor is unique). Two n³/6
 * steps instead of the four of cholesky(cholesky_inverse(cholesky(H))), and H⁻¹ is never formed.
 */
export function upperCholeskyOfInverse(h: Float64Array, n: number, kernels: TriangularKernels = SERIAL_KERNELS): InverseFactorResult {
  const reversed = sharedFloat64(n * n);
  for (let i = 0; i < n; i++) {
    const from = (n - 1 - i) * n + (n - 1), to = i * n;
    for (let j = 0; j <= i; j++) reversed[to + j] = h[from - j]!;
  }
  const f = cholesky(reversed, n, kernels);
  if (!f.ok) return { ok: false, column: n - 1 - f.column, pivot: f.pivot };
  const minv = kernels.invertLower(f.l, n);
  const u = sharedFloat64(n * n); // shared: GPTQ's row kernels read it from the CPU pool's workers
  for (let i = 0; i < n; i++) {
    const row = (n - 1 - i) * n + (n - 1), from = i * n;
    for (let j = 0; j <= i; j++) u[row - j] = minv[from + j]!;
  }
  return { ok: true, u };
}
