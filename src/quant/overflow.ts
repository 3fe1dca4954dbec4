/**
 * The exact int32 overflow bound of the integer-scale epilogue, known at quantization time.
 *
 * With xq ∈ [-127, 127] and q ∈ [qmin, qmax], |acc[m,n,g]| = |Σ_{k∈g} xq·q| ≤ 127 · |qmin| · G,
 * so for every input
 *     |Σ_g acc[m,n,g] · S[n,g]| ≤ bound[n] = 127 · |qmin| · G · Σ_g S[n,g]      (S ≥ 0)
 * and the bound is reached when every q of the row is qmin and every xq is -127.
 * If bound[n] < 2^31 for every n the layer can never overflow int32.
 *
 * Numbers, not bigints: Σ_g S is a sum of int32 values, exact in float64 for < 2^22 groups; the
 * final product may round above 2^53, but rounding is monotone and 2^31 is representable, so
 * the comparison bound < 2^31 is still decided exactly.
 * For float-scale layers only the per-group accumulator is int32: bound = 127 · |qmin| · G.
 */
import { type QuantizedLinear, type WeightBits, weightQmin } from './types.js';

/** int32 holds |v| < 2^31 (we ask for strictly less, so -2^31 is never needed). */
export const INT32_LIMIT = 2 ** 31;

/** Largest |acc| of one group: 127 · |qmin| · G. */
export function groupAccumulatorBound(groupSize: number, wBits: WeightBits): number {
  return 127 * -weightQmin(wBits) * groupSize;
}

export interface BoundMax {
  /** the largest bound over all output channels. */
  readonly maxBound: number;
  /** the output channel reaching it (first such). */
  readonly worstChannel: number;
}

/** bound[n] = 127·|qmin|·G·Σ_g S[n,g] for each channel n; S is row-major [N, groupCount]. */
export function channelBounds(
  intScales: ArrayLike<number>,
  n: number,
  groupCount: number,
  groupSize: number,
  wBits: WeightBits,
): Float64Array {
  const perUnit = groupAccumulatorBound(groupSize, wBits);
  const out = new Float64Array(n);
  for (let row = 0; row < n; row++) {
    let sum = 0;
    for (let g = 0; g < groupCount; g++) sum += intScales[row * groupCount + g]!;
    out[row] = perUnit * sum;
  }
  return out;
}

/** The largest channel bound of a layer and where it is. */
export function maxChannelBound(
  intScales: ArrayLike<number>,
  n: number,
  groupCount: number,
  groupSize: number,
  wBits: WeightBits,
): BoundMax {
  const bounds = channelBounds(intScales, n, groupCount, groupSize, wBits);
  let maxBound = 0;
  let worstChannel = 0;
  for (let row = 0; row < n; row++) {
    if (bounds[row]! > maxBound) {
      maxBound = bounds[row]!;
      worstChannel = row;
    }
  }
  return { maxBound, worstChannel };
}

export interface OverflowProof extends BoundMax {
  /** 2^31: the layer is safe iff maxBound < limit. */
  readonly limit: number;
  readonly safe: boolean;
}

/** Proves (or refutes) that no input can overflow the layer's int32 accumulation. */
export function proveNoOverflow(layer: QuantizedLinear): OverflowProof {
  const groupCount = layer.k / layer.groupSize;
  let result: BoundMax;
  if (layer.scale === 'int') {
    if (!layer.intScales) throw new Error('integer-scale layer without intScales');
    result = maxChannelBound(layer.intScales, layer.n, groupCount, layer.groupSize, layer.wBits);
  } else {
    result = { maxBound: groupAccumulatorBound(layer.groupSize, layer.wBits), worstChannel: 0 };
  }
  return { ...result, limit: INT32_LIMIT, safe: result.maxBound < INT32_LIMIT };
}
