/**
 * GPTQ's Hessian of the layer-wise objective ‖X·Wᵀ − X·Ŵᵀ‖²: H = (2/T)·XᵀX, [K, K], accumulated
 * in float64 over the T calibration tokens (rows of X) as they stream by. (GPTQ keeps the same
 * running average; the 2/T factor does not change the solution, only the scale dampening is
 * relative to.) The upper triangle is accumulated and mirrored at the end; the product that adds a
 * batch of rows is swappable (HessianProduct): JS_HESSIAN_PRODUCT here (float64, rank-4 updates), or
 * the CPU backend's float32 matmul (quantize/gptq-products.ts), which GPTQ's PyTorch code matches.
 */
import { InputError } from '../../errors.js';

/** Adds the upper triangle (j ≥ i) of xᵀx for the m rows of x [m, k] into sum [k, k] (row-major). */
export type HessianProduct = (x: Float32Array, m: number, k: number, sum: Float64Array) => void;

export class HessianAccumulator {
  readonly k: number;
  /** tokens seen. */
  tokens = 0;
  private readonly sum: Float64Array;

  constructor(k: number, private readonly product: HessianProduct = JS_HESSIAN_PRODUCT) {
    this.k = k;
    this.sum = new Float64Array(k * k);
  }

  /** Adds the m rows of x [m, K]. */
  add(x: Float32Array, m: number): void {
    const { k, sum } = this;
    if (x.length < m * k) throw new RangeError(`Hessian of ${k} inputs: ${x.length} values for ${m} rows`);
    this.product(x, m, k, sum);
    this.tokens += m;
  }

  /** H = (2/T)·XᵀX, full symmetric [K, K]; `name` names the layer in the error when no token was seen. */
  hessian(name = 'layer'): Float64Array {
    const { k, sum, tokens } = this;
    if (tokens === 0) throw new InputError(`${name}: no calibration tokens reached this layer`, { tensor: name });
    const h = new Float64Array(k * k);
    const f = 2 / tokens;
    for (let i = 0; i < k; i++) {
      for (let j = i; j < k; j++) {
        const v = sum[i * k + j]! * f;
        h[i * k + j] = v;
        h[j * k + i] = v;
      }
    }
    return h;
  }
}

/** The float64 product in plain JS: rank-4 updates of the upper triangle (rows with x = 0 skipped in the tail). */
export const JS_HESSIAN_PRODUCT: HessianProduct = (x, m, k, sum) => {
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const a = r * k, b = a + k, c = b + k, d = c + k;
    for (let i = 0; i < k; i++) {
      const xa = x[a + i]!, xb = x[b + i]!, xc = x[c + i]!, xd = x[d + i]!;
      const ri = i * k;
      for (let j = i; j < k; j++) sum[ri + j] += xa * x[a + j]! + xb * x[b + j]! + xc * x[c + j]! + xd * x[d + j]!;
    }
  }
  for (; r < m; r++) {
    const a = r * k;
    for (let i = 0; i < k; i++) {
      const xa = x[a + i]!;
      if (xa === 0) continue;
      const ri = i * k;
      for (let j = i; j < k; j++) sum[ri + j] += xa * x[a + j]!;
    }
  }
};
