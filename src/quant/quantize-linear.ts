/**
 * Round-to-nearest (RTN) quantization of one linear layer, W row-major [N, K] → QuantizedLinear.
 *
 * Per group g of G consecutive input channels (G = K for groupSize 0, per-channel):
 *   float scale:   s[n,g] = fround(max|W| / qmax),            q = clamp(rhe(W / s), qmin, qmax)
 *   integer scale: α = 2^b from the layer's float scales (amplifier.ts),
 *                  S[n,g] = max(1, rhe(s·α)), scales = S/α,    q = clamp(rhe(W / (S/α)), qmin, qmax)
 * Every group goes through group-quant.ts (chooseGroupScale + quantizeWithScale), the same
 * plug-in point GPTQ/AWQ use. Arrays are allocated in shared memory for the CPU worker pool.
 *
 * dequantize(layer) gives the fake-quant weights W'[n,k] = fround(q[n,k] · scales[n,g]).
 */
import { packWeights, unpackRow } from './int4-pack.js';
import { InputError } from '../errors.js';
import { sharedFloat32, sharedInt32, sharedInt8 } from '../tensor/shared.js';
import { type AlphaChoice, chooseAlpha } from './amplifier.js';
import { chooseGroupScale, floatGroupScale, groupAbsMax, type GroupScaler, quantizeWithScale } from './group-quant.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from './types.js';

export interface QuantizeReport {
  readonly layer: QuantizedLinear;
  /** how α was chosen (integer scale only). */
  readonly alpha?: AlphaChoice;
}

/** The group size a spec means for K input channels, checked: G = K for 0, and G must divide K. */
export function resolveGroupSize(k: number, groupSize: number, name = 'layer'): number {
  if (!Number.isInteger(groupSize) || groupSize < 0) {
    throw new InputError(`${name}: group size must be a non-negative integer (0 = per-channel), got ${groupSize}`, { tensor: name });
  }
  const G = groupSize === 0 ? k : groupSize;
  if (k % G !== 0) {
    throw new InputError(`${name}: K = ${k} input channels is not a multiple of the group size G = ${G}`, { tensor: name });
  }
  return G;
}

/** RTN-quantizes a float linear layer; the α decision is returned alongside. */
export function quantizeLinearReport(w: FloatLinear, spec: QuantSpec, name = 'layer'): QuantizeReport {
  const { n, k } = w;
  if (w.w.length !== n * k) throw new InputError(`${name}: ${w.w.length} weights for shape [${n}, ${k}]`, { tensor: name });
  if (k === 0 || n === 0) throw new InputError(`${name}: empty layer [${n}, ${k}]`, { tensor: name });
  const G = resolveGroupSize(k, spec.groupSize, name);
  const groupCount = k / G;

  // Pass 1: float scales (the amplifier needs the whole layer's scales before choosing α).
  const absMax = new Float64Array(n * groupCount);
  const floatScales = new Float32Array(n * groupCount);
  for (let i = 0; i < absMax.length; i++) {
    absMax[i] = groupAbsMax(w.w, i * G, i * G + G);
    floatScales[i] = floatGroupScale(absMax[i]!, spec.wBits);
  }

  let alpha: AlphaChoice | undefined;
  let scaler: GroupScaler = { kind: 'float' };
  if (spec.scale === 'int') {
    alpha = chooseAlpha({ scales: floatScales, n, groupCount, groupSize: G, wBits: spec.wBits }, spec.alpha, name);
    scaler = { kind: 'int', alphaLog2: alpha.alphaLog2 };
  }

  // Pass 2: each group through the plug-in point.
  const q = sharedInt8(n * k);
  const scales = sharedFloat32(n * groupCount);
  const intScales = spec.scale === 'int' ? sharedInt32(n * groupCount) : undefined;
  for (let i = 0; i < absMax.length; i++) {
    const chosen = chooseGroupScale(scaler, absMax[i]!, spec.wBits);
    scales[i] = chosen.scale;
    if (intScales) {
      const S = chosen.intScale!;
      if (S > 2 ** 31 - 1) {
        throw new InputError(`${name}: integer scale ${S} of row ${Math.floor(i / groupCount)} does not fit int32; lower α`, { tensor: name });
      }
      intScales[i] = S;
    }
    quantizeWithScale(w.w, chosen.scale, spec.wBits, q, i * G, i * G + G, i * G);
  }

  const layer: QuantizedLinear = {
    kind: 'quantized',
    n,
    k,
    groupSize: G,
    wBits: spec.wBits,
    aBits: spec.aBits,
    packed: packWeights(q, n, k, spec.wBits),
    scale: spec.scale,
    scales,
    ...(intScales ? { intScales, alphaLog2: alpha!.alphaLog2 } : {}),
    ...(w.bias ? { bias: w.bias } : {}),
  };
  return alpha ? { layer, alpha } : { layer };
}

/** RTN-quantizes a float linear layer. */
export function quantizeLinear(w: FloatLinear, spec: QuantSpec, name?: string): QuantizedLinear {
  return quantizeLinearReport(w, spec, name).layer;
}

/** Fake-quant weights W'[n,k] = fround(q[n,k] · scales[n, k/G]), row-major [N, K]. */
export function dequantize(layer: QuantizedLinear): Float32Array {
  const { n, k } = layer;
  const out = new Float32Array(n * k);
  const scratch = new Int8Array(k);
  for (let row = 0; row < n; row++) dequantizeRow(layer, row, out.subarray(row * k, (row + 1) * k), scratch);
  return out;
}

/** Row `row` of a quantized layer in float (q · its group's scale), written into out[0, k); `scratch` holds k int8 codes. */
export function dequantizeRow(layer: QuantizedLinear, row: number, out: Float32Array, scratch = new Int8Array(layer.k)): Float32Array {
  const { k, groupSize: G } = layer;
  const groupCount = k / G;
  const q = unpackRow(layer, row, scratch);
  for (let col = 0; col < k; col++) out[col] = q[col]! * layer.scales[row * groupCount + Math.floor(col / G)]!;
  return out;
}

/** Mean of (a - b)² in float64. */
export function meanSquaredError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new InputError(`MSE of arrays of different lengths ${a.length} and ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  return a.length === 0 ? 0 : sum / a.length;
}

/** Weight MSE of a quantized layer against its float original. */
export function weightMse(original: FloatLinear, layer: QuantizedLinear): number {
  return meanSquaredError(original.w, dequantize(layer));
}
