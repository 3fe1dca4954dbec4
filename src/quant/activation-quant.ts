/**
 * Per-token dynamic int8 activation quantization (symmetric).
 *
 *   a[m]    = fround(max_k |x[m,k]| / 127)
 *   xq[m,k] = clamp(roundHalfEven(x[m,k] / a[m]), -127, 127)     (x / a in float64)
 *
 * An all-zero row gets a = 0 and xq = 0. Layout: x row-major [M, K] float32,
 * xq row-major [M, K] int8, scales [M] float32.
 */
import { InputError } from '../errors.js';
import { roundHalfEven } from '../tensor/round.js';

export interface QuantizedActivations {
  readonly m: number;
  readonly k: number;
  /** row-major [M, K], values in [-127, 127]. */
  readonly xq: Int8Array;
  /** per-token scales a[m], [M]. */
  readonly scales: Float32Array;
}

/** A row's scale a = fround(max |x[start .. start+k)| / 127) (0 for an all-zero row). */
export function activationScale(x: Float32Array, start: number, k: number): number {
  let absMax = 0;
  for (let i = start; i < start + k; i++) {
    const v = Math.abs(x[i]!);
    if (v > absMax) absMax = v;
  }
  return Math.fround(absMax / 127);
}

/** One value's int8 code at scale a > 0: clamp(roundHalfEven(v / a), −127, 127). */
export function quantizeActivation(v: number, a: number): number {
  const q = roundHalfEven(v / a);
  return q > 127 ? 127 : q < -127 ? -127 : q;
}

/** Quantizes x [m, k]; writes into out when given (its arrays must have the right sizes). */
export function quantizeActivations(
  x: Float32Array,
  m: number,
  k: number,
  out?: QuantizedActivations,
): QuantizedActivations {
  if (x.length < m * k) throw new InputError(`activations hold ${x.length} values, need M·K = ${m}·${k}`);
  const xq = out?.xq ?? new Int8Array(m * k);
  const scales = out?.scales ?? new Float32Array(m);
  if (xq.length < m * k || scales.length < m) throw new InputError('activation output buffers are too small');
  for (let row = 0; row < m; row++) {
    const base = row * k;
    const a = activationScale(x, base, k);
    scales[row] = a;
    if (a === 0) {
      xq.fill(0, base, base + k);
      continue;
    }
    for (let i = 0; i < k; i++) xq[base + i] = quantizeActivation(x[base + i]!, a);
  }
  return { m, k, xq, scales };
}
