/**
 * Dense float64 linear algebra GPTQ needs, on symmetric [n, n] row-major matrices.
 *
 *   cholesky:  A = L·Lᵀ, L lower;  L[j,j] = sqrt(A[j,j] − Σ_{m<j} L[j,m]²),
 *              L[i,j] = (A[i,j] − Σ_{m<j} L[i,m]·L[j,m]) / L[j,j]   (i > j)
 *              (each Σ over a row pair as four partial sums, rowDot)
 *              A is "numerically not positive definite" when a pivot A[j,j] − Σ L[j,m]² is
 *              ≤ n·ε·max_i A[i,i] (ε = 2⁻⁵²): the factor would be dominated by rounding.
 *   invertLower: L⁻¹ by forward substitution (lower triangular).
 *   upperCholeskyOfInverse(H) = U, upper, with H⁻¹ = Uᵀ·U:
 *              H = L·Lᵀ → H⁻¹ = L⁻ᵀ·L⁻¹ → H⁻¹ = C·Cᵀ (Cholesky again) → U = Cᵀ
 *              (torch: cholesky(cholesky_inverse(cholesky(H)), upper=True), as GPTQ does).
 * Each step is n³/6 multiply-adds.
 */

export type CholeskyResult =
  | { readonly ok: true; readonly l: Float64Array }
  /** the first column whose pivot was not positive (beyond rounding), and that pivot. */
  | { readonly ok: false; readonly column: number; readonly pivot: number };

/** Σ_{m<len} v[a+m]·v[b+m] as four partial sums (m mod 4) added pairwise: the rows of L are contiguous. */
function rowDot(v: Float64Array, a: number, b: number, len: number): number {
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

/** Lower Cholesky factor of a symmetric [n, n] matrix (only its lower triangle is read). */
export function cholesky(a: Float64Array, n: number): CholeskyResult {
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, Math.abs(a[i * n + i]!));
  const tolerance = n * 2 ** -52 * maxDiag;
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    const pivot = a[rj + j]! - rowDot(l, rj, rj, j);
    if (!(pivot > tolerance)) return { ok: false, column: j, pivot };
    const ljj = Math.sqrt(pivot);
    l[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) l[i * n + j] = (a[i * n + j]! - rowDot(l, i * n, rj, j)) / ljj;
  }
  return { ok: true, l };
}

/**
 * L⁻¹ of a lower-triangular [n, n] matrix with nonzero diagonal, row by row (contiguous reads):
 * X[i, c] = −Σ_{c ≤ m < i} L[i,m]·X[m,c] / L[i,i] for c < i, X[i,i] = 1 / L[i,i]; the sum over m
 * runs in increasing m, the order a column-by-column forward substitution uses.
 */
export function invertLower(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let m = 0; m < i; m++) {
      const lim = l[ri + m]!;
      if (lim === 0) continue;
      const rm = m * n;
      for (let c = 0; c <= m; c++) inv[ri + c] -= lim * inv[rm + c]!;
    }
    const d = l[ri + i]!;
    for (let c = 0; c < i; c++) inv[ri + c] /= d;
    inv[ri + i] = 1 / d;
  }
  return inv;
}

/** Lᵀ·L for a lower-triangular L (symmetric result, full matrix). */
function lowerTransposeTimesLower(l: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  // out[i,j] = Σ_{m ≥ max(i,j)} L[m,i]·L[m,j]; accumulate row by row of L (rank-1 updates)
  for (let m = 0; m < n; m++) {
    const rm = m * n;
    for (let i = 0; i <= m; i++) {
      const lmi = l[rm + i]!;
      if (lmi === 0) continue;
      const ri = i * n;
      for (let j = 0; j <= i; j++) out[ri + j] += lmi * l[rm + j]!;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j]!;
  return out;
}

export type InverseFactorResult =
  | { readonly ok: true; readonly u: Float64Array }
  | { readonly ok: false; readonly column: number; readonly pivot: number; readonly stage: 'H' | 'H⁻¹' };

/** U upper with H⁻¹ = Uᵀ·U (row-major [n, n]), or where H (or H⁻¹) failed to factor. */
export function upperCholeskyOfInverse(h: Float64Array, n: number): InverseFactorResult {
  const first = cholesky(h, n);
  if (!first.ok) return { ...first, stage: 'H' };
  const hinv = lowerTransposeTimesLower(invertLower(first.l, n), n);
  const second = cholesky(hinv, n);
  if (!second.ok) return { ...second, stage: 'H⁻¹' };
  const c = second.l;
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = c[i * n + j]!;
  return { ok: true, u };
}
