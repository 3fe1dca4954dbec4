/**
 * f32 matmul row kernel (plain JS): out[m, n] = Σ_k x[m, k] · w[n, k] (+ bias[n])
 * for output channels n ∈ [nStart, nEnd) and every token m.
 *
 * Layout: x [M, K], w [N, K] (Hugging Face linear weight, row-major), out [M, N], all row-major
 * Float32Array. Register blocking: 4 output channels × 2 tokens (8 accumulators, 6 loads per k),
 * with 4×1, 1×2 and 1×1 edges. Accumulation is in JS numbers (float64); the sum is rounded to
 * f32 once on store. Nothing is allocated.
 */
import type { KernelArgs } from './pool/types.js';

export interface MatmulF32Args extends KernelArgs {
  readonly x: Float32Array;
  readonly w: Float32Array;
  readonly out: Float32Array;
  readonly bias: Float32Array | undefined;
  readonly m: number;
  readonly k: number;
  readonly n: number;
}

/** Output channels per register block; chunks given to threads are multiples of this. */
export const MATMUL_F32_BLOCK_N = 4;

export function matmulF32Rows(args: MatmulF32Args, nStart: number, nEnd: number): void {
  const { x, w, out, bias, m, k, n } = args;
  let j = nStart;
  for (; j + 4 <= nEnd; j += 4) {
    const b0 = bias === undefined ? 0 : bias[j]!;
    const b1 = bias === undefined ? 0 : bias[j + 1]!;
    const b2 = bias === undefined ? 0 : bias[j + 2]!;
    const b3 = bias === undefined ? 0 : bias[j + 3]!;
    const w0 = j * k;
    const w1 = w0 + k;
    const w2 = w1 + k;
    const w3 = w2 + k;
    let i = 0;
    for (; i + 2 <= m; i += 2) {
      const xa = i * k;
      const xb = xa + k;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      for (let t = 0; t < k; t++) {
        const p = x[xa + t]!;
        const q = x[xb + t]!;
        const v0 = w[w0 + t]!;
        const v1 = w[w1 + t]!;
        const v2 = w[w2 + t]!;
        const v3 = w[w3 + t]!;
        a0 += p * v0; a1 += p * v1; a2 += p * v2; a3 += p * v3;
        c0 += q * v0; c1 += q * v1; c2 += q * v2; c3 += q * v3;
      }
      const oa = i * n + j;
      out[oa] = a0 + b0; out[oa + 1] = a1 + b1; out[oa + 2] = a2 + b2; out[oa + 3] = a3 + b3;
      const ob = oa + n;
      out[ob] = c0 + b0; out[ob + 1] = c1 + b1; out[ob + 2] = c2 + b2; out[ob + 3] = c3 + b3;
    }
    if (i < m) {
      const xa = i * k;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let t = 0; t < k; t++) {
        const p = x[xa + t]!;
        a0 += p * w[w0 + t]!; a1 += p * w[w1 + t]!; a2 += p * w[w2 + t]!; a3 += p * w[w3 + t]!;
      }
      const oa = i * n + j;
      out[oa] = a0 + b0; out[oa + 1] = a1 + b1; out[oa + 2] = a2 + b2; out[oa + 3] = a3 + b3;
    }
  }
  for (; j < nEnd; j++) {
    const b = bias === undefined ? 0 : bias[j]!;
    const wr = j * k;
    for (let i = 0; i < m; i++) {
      const xa = i * k;
      let a0 = 0, a1 = 0;
      let t = 0;
      for (; t + 2 <= k; t += 2) {
        a0 += x[xa + t]! * w[wr + t]!;
        a1 += x[xa + t + 1]! * w[wr + t + 1]!;
      }
      if (t < k) a0 += x[xa + t]! * w[wr + t]!;
      out[i * n + j] = a0 + a1 + b;
    }
  }
}
