/**
 * Group quantization: the single plug-in point every method (RTN, GPTQ, AWQ, ...) calls.
 *
 * Two steps, kept separate so GPTQ can fix a group's scale once and then quantize that group
 * column by column as its error feedback updates the remaining weights:
 *
 *   1. "scale for this group":  chooseGroupScale(scaler, absMax, bits)
 *        float scale:   s  = fround(absMax / qmax)                      (qmax 7 or 127)
 *        integer scale: S  = max(1, roundHalfEven(s · α)), α = 2^alphaLog2 (S = 0 for an all-zero group)
 *                       s' = S / α   — the scale actually used, so weights and scales agree
 *   2. "quantize with that scale": quantizeWithScale(values, scale, bits) / quantizeValue(w, scale, bits)
 *        q = clamp(roundHalfEven(w / s), qmin, qmax)                     (qmin -8 or -128)
 *
 * Integer Scale is a wrapper of the float scaler (step 1 only), never a fork of a method.
 * A zero scale (all-zero group) quantizes every value to 0.
 */
import { roundHalfEven } from '../tensor/round.js';
import { type WeightBits, weightQmax, weightQmin } from './types.js';

/** How a group's scale is chosen: plain float, or Integer Scale with a layer-wide α = 2^alphaLog2. */
export type GroupScaler =
  | { readonly kind: 'float' }
  | { readonly kind: 'int'; readonly alphaLog2: number };

/** The scale chosen for one group. */
export interface GroupScale {
  /** the scale weights are quantized with (float32 value): s, or S/α for Integer Scale. */
  readonly scale: number;
  /** the integer scale S (Integer Scale only; 0 for an all-zero group). */
  readonly intScale?: number;
}

export const floatScaler: GroupScaler = { kind: 'float' };

export function integerScaler(alphaLog2: number): GroupScaler {
  return { kind: 'int', alphaLog2 };
}

/** max |values[i]| for i in [start, end). */
export function groupAbsMax(values: ArrayLike<number>, start = 0, end = values.length): number {
  let m = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(values[i]!);
    if (a > m) m = a;
  }
  return m;
}

/** Float scale s = fround(absMax / qmax). */
export function floatGroupScale(absMax: number, bits: WeightBits): number {
  return Math.fround(absMax / weightQmax(bits));
}

/** Integer scale S = max(1, roundHalfEven(s · 2^alphaLog2)) for s > 0, 0 for s = 0. */
export function integerGroupScale(floatScale: number, alphaLog2: number): number {
  if (floatScale === 0) return 0;
  return Math.max(1, roundHalfEven(floatScale * 2 ** alphaLog2));
}

/** Step 1: the scale for a group whose largest magnitude is absMax. */
export function chooseGroupScale(scaler: GroupScaler, absMax: number, bits: WeightBits): GroupScale {
  const s = floatGroupScale(absMax, bits);
  switch (scaler.kind) {
    case 'float':
      return { scale: s };
    case 'int': {
      const intScale = integerGroupScale(s, scaler.alphaLog2);
      return { scale: Math.fround(intScale * 2 ** -scaler.alphaLog2), intScale };
    }
  }
}

/** Step 2 for one value: clamp(roundHalfEven(w / scale), qmin, qmax); 0 when scale is 0. */
export function quantizeValue(w: number, scale: number, bits: WeightBits): number {
  if (scale === 0) return 0;
  const q = roundHalfEven(w / scale);
  const lo = weightQmin(bits);
  const hi = weightQmax(bits);
  return (q < lo ? lo : q > hi ? hi : q) | 0; // | 0 turns -0 into 0
}

/**
 * Step 2 for a run of values: quantizes values[start..end) with one scale into out[outStart..].
 * Returns out (a fresh Int8Array of end - start values when out is not given).
 */
export function quantizeWithScale(
  values: ArrayLike<number>,
  scale: number,
  bits: WeightBits,
  out?: Int8Array,
  start = 0,
  end = values.length,
  outStart = 0,
): Int8Array {
  const dst = out ?? new Int8Array(end - start);
  for (let i = start; i < end; i++) dst[outStart + i - start] = quantizeValue(values[i]!, scale, bits);
  return dst;
}

/** Both steps on one group: its scale and its integers. */
export function quantizeGroup(
  values: ArrayLike<number>,
  bits: WeightBits,
  scaler: GroupScaler,
): GroupScale & { readonly q: Int8Array } {
  const chosen = chooseGroupScale(scaler, groupAbsMax(values), bits);
  return { ...chosen, q: quantizeWithScale(values, chosen.scale, bits) };
}
