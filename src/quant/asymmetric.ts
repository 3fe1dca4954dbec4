/**
 * Asymmetric (zero-point) group quantization — a comparison baseline only, never run by a kernel.
 *
 * Per group of G consecutive input channels of row n (W row-major [N, K]):
 *   lo = min(0, min w), hi = max(0, max w), levels = 2^bits - 1
 *   scale = (hi - lo) / levels, zero = clamp(roundHalfEven(-lo / scale), 0, levels)
 *   q = clamp(roundHalfEven(w / scale) + zero, 0, levels),  w' = fround((q - zero) · scale)
 * An all-zero group dequantizes to zeros.
 */
import { InputError } from '../errors.js';
import { roundHalfEven } from '../tensor/round.js';
import type { FloatLinear, WeightBits } from './types.js';
import { meanSquaredError } from './quantize-linear.js';

export interface AsymmetricResult {
  /** the fake-quantized weights w', row-major [N, K]. */
  readonly dequantized: Float32Array;
  /** mean squared error between w and w'. */
  readonly mse: number;
}

export function asymmetricFakeQuant(w: FloatLinear, bits: WeightBits, groupSize: number): AsymmetricResult {
  const G = groupSize === 0 ? w.k : groupSize;
  if (G <= 0 || w.k % G !== 0) {
    throw new InputError(`K = ${w.k} is not a multiple of the group size G = ${G}`);
  }
  const levels = 2 ** bits - 1;
  const out = new Float32Array(w.n * w.k);
  for (let start = 0; start < w.w.length; start += G) {
    let lo = 0;
    let hi = 0;
    for (let i = start; i < start + G; i++) {
      const v = w.w[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const scale = (hi - lo) / levels;
    if (scale === 0) continue;
    const zero = Math.min(levels, Math.max(0, roundHalfEven(-lo / scale)));
    for (let i = start; i < start + G; i++) {
      const q = Math.min(levels, Math.max(0, roundHalfEven(w.w[i]! / scale) + zero));
      out[i] = (q - zero) * scale;
    }
  }
  return { dequantized: out, mse: meanSquaredError(w.w, out) };
}
