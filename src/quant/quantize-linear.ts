/**
 * Round-to-nearest (RTN) quantization of one linear layer, W row-major [N, K] → QuantizedLinear.
 *
 * Per group g of G consecutive input channels (G = K for groupSize 0, per-channel):
 *   float scale:   s[n,g] = fround(max|W| / qmax),            q = clamp(rhe(W / s), qmin, qmax)
 *   integer scale: α = 2^b from the layer's float scales (amplifier.ts),
 *                  S[n,g] = max(1, rhe(s·α)), scales = S/α,    q = clamp(rhe(W / (S/α)), qmin, qmax)
 * Every group goes through group-quant.ts (chooseGroupScale + quantizeValue), the same plug-in point
 * GPTQ/AWQ use, in two row passes (rtn-rows.ts) a caller may split over threads; the codes are packed
 * (int4-pack.ts) as they come. Arrays are allocated in shared memory for the CPU worker pool.
 *
 * dequantize(layer) gives the fake-quant weights W'[n,k] = fround(q[n,k] · scales[n,g]).
 */
import { packedBytes, unpackRow } from './int4-pack.js';
import { InputError } from '../errors.js';
import { releaseArenaBlock, sharedFloat32, sharedFloat64, sharedInt32, sharedUint8 } from '../tensor/shared.js';
import { type AlphaChoice, chooseAlpha } from './amplifier.js';
import { chooseGroupScale } from './group-quant.js';
import { rtnCodeRows, rtnScaleRows, type RtnRowArgs } from './rtn-rows.js';
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

/** The error for a layer whose integer scale S (of output row `row`) does not fit int32. */
export function integerScaleOverflow(name: string, S: number, row: number): InputError {
  return new InputError(`${name}: integer scale ${S} of row ${row} does not fit int32; lower α`, { tensor: name });
}

/**
 * Runs an RTN pass over rows [0, n) of a layer (rtn-rows.ts); RTN_ON_THIS_THREAD is the reference. A caller
 * may split the rows over threads (the CPU pool, backends/cpu/rtn-pool.ts): each row's arithmetic is the same.
 */
export type RtnRows = (pass: 'scales' | 'codes', args: RtnRowArgs, rows: number) => void;

export const RTN_ON_THIS_THREAD: RtnRows = (pass, args, rows) => (pass === 'scales' ? rtnScaleRows(args, 0, rows) : rtnCodeRows(args, 0, rows));

/** RTN-quantizes a float linear layer; the α decision is returned alongside. `rows` runs its two passes. */
export function quantizeLinearReport(w: FloatLinear, spec: QuantSpec, name = 'layer', rows: RtnRows = RTN_ON_THIS_THREAD): QuantizeReport {
  const { n, k } = w;
  if (w.w.length !== n * k) throw new InputError(`${name}: ${w.w.length} weights for shape [${n}, ${k}]`, { tensor: name });
  if (k === 0 || n === 0) throw new InputError(`${name}: empty layer [${n}, ${k}]`, { tensor: name });
  const G = resolveGroupSize(k, spec.groupSize, name);
  if (spec.wBits === 4 && k % 2 !== 0) throw new InputError(`${name}: K = ${k} is odd; 4-bit packing needs an even K`, { tensor: name });
  const groupCount = k / G;
  const args: RtnRowArgs = {
    w: w.w, k, groupSize: G, bits: spec.wBits,
    absMax: sharedFloat64(n * groupCount), floatScales: sharedFloat32(n * groupCount), scales: sharedFloat32(n * groupCount),
    intScales: sharedInt32(spec.scale === 'int' ? n * groupCount : 0), alphaLog2: -1,
    packed: sharedUint8(packedBytes(n, k, spec.wBits)), overflow: sharedInt32(1),
  };

  let alpha: AlphaChoice | undefined;
  try {
    // Pass 1: float scales (the amplifier needs the whole layer's scales before choosing α).
    rows('scales', args, n);
    if (spec.scale === 'int') alpha = chooseAlpha({ scales: args.floatScales, n, groupCount, groupSize: G, wBits: spec.wBits }, spec.alpha, name);

    // Pass 2: each group through the plug-in point, its codes packed as they come.
    rows('codes', { ...args, alphaLog2: alpha?.alphaLog2 ?? -1 }, n);
    if (args.overflow[0] !== 0) {
      const i = args.overflow[0]! - 1;
      const S = chooseGroupScale({ kind: 'int', alphaLog2: alpha!.alphaLog2 }, args.absMax[i]!, spec.wBits).intScale!;
      throw integerScaleOverflow(name, S, Math.floor(i / groupCount));
    }
  } finally {
    // the passes' own arrays go back when they came from the arena (a caller quantizing in its scope)
    for (const a of [args.absMax, args.floatScales, args.overflow]) releaseArenaBlock(a);
  }

  const layer: QuantizedLinear = {
    kind: 'quantized',
    n,
    k,
    groupSize: G,
    wBits: spec.wBits,
    aBits: spec.aBits,
    packed: args.packed,
    scale: spec.scale,
    scales: args.scales,
    ...(spec.scale === 'int' ? { intScales: args.intScales, alphaLog2: alpha!.alphaLog2 } : {}),
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
