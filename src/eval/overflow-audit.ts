/**
 * The overflow audit behind `intscale inspect --overflow`, UI-free, typed results:
 *
 *   1. per layer (Figure 8 analogue): α, whether the safe policy lowered it, the proven
 *      worst-case bound 127·|qmin|·G·Σ_g S[n,g] vs 2^31, and the largest int32 values actually
 *      seen on calibration text (traceCalibration runs the model through a tracing backend);
 *   2. histogram of the bit widths ceil(log2(S+1)) of the amplified integer scales (Figure 4a);
 *   3. weight MSE of float scale vs integer scale at fixed α = 2^b (Figure 4c), over all
 *      linear layers, accumulated layer by layer as the float model streams in (MseSweep).
 */
import { forwardHidden, type Model } from '../model/forward.js';
import { createModel, releaseModel } from '../model/prepare.js';
import { createKvCache } from '../model/kv-cache.js';
import { layerPrefix } from '../model/layout.js';
import { linearEntries } from '../model/layer-linears.js';
import { LM_HEAD, type ModelWeights } from '../model/weights.js';
import { INT32_LIMIT, proveNoOverflow, type OverflowProof } from '../quant/overflow.js';
import type { LinearReport } from '../quantize/quantize-model.js';
import { dequantize, meanSquaredError, quantizeLinear } from '../quant/quantize-linear.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from '../quant/types.js';
import { linearNames, tracingBackend, type AccumulatorStats } from './tracing-backend.js';

// ---------------------------------------------------------------- 1. calibration trace

export interface CalibrationOptions {
  readonly seqLen: number;
  /** at most this many non-overlapping windows of seqLen tokens. */
  readonly windows: number;
  readonly onWindow?: (done: number, total: number) => void;
}

export interface CalibrationTrace {
  readonly stats: ReadonlyMap<QuantizedLinear, AccumulatorStats>;
  /** windows run to the end. */
  readonly windows: number;
  readonly seqLen: number;
  /** tokens run through the model to the end (windows · seqLen). */
  readonly tokens: number;
  /**
   * set when a linear of the backend threw (the integer kernel refuses an int32 overflow): the
   * run stopped there; the failing layer's stats include the window that overflowed, later
   * layers' do not.
   */
  readonly stopped: { readonly layer: string; readonly window: number; readonly message: string } | null;
}

/** Runs windows of `tokens` through the model on a tracing wrapper of its backend. */
export function traceCalibration(model: Model, tokens: ArrayLike<number>, o: CalibrationOptions): CalibrationTrace {
  if (!Number.isInteger(o.seqLen) || o.seqLen < 1) throw new RangeError(`seq-len must be a positive integer, got ${o.seqLen}`);
  const windows = Math.min(o.windows, Math.floor(tokens.length / o.seqLen));
  if (windows < 1) throw new RangeError(`the calibration text has ${tokens.length} tokens, fewer than one window of ${o.seqLen}; lower --seq-len`);
  const tracer = tracingBackend(model.backend, linearNames(model.weights));
  const traced: Model = createModel(model.config, model.weights, tracer);
  const cache = createKvCache(model.config, o.seqLen, model.backend);
  try {
    for (let w = 0; w < windows; w++) {
      cache.length = 0;
      try {
        forwardHidden(traced, Array.prototype.slice.call(tokens, w * o.seqLen, (w + 1) * o.seqLen) as number[], cache);
      } catch (error) {
        const f = tracer.failure;
        if (f === null || !(error instanceof RangeError)) throw error;
        const stopped = { layer: f.name, window: w, message: error.message };
        return { stats: tracer.stats, windows: w, seqLen: o.seqLen, tokens: w * o.seqLen, stopped };
      }
      o.onWindow?.(w + 1, windows);
    }
  } finally {
    cache.release();
    releaseModel(traced);
  }
  return { stats: tracer.stats, windows, seqLen: o.seqLen, tokens: windows * o.seqLen, stopped: null };
}

// ---------------------------------------------------------------- per-layer rows

/** The largest int32 values seen on one layer. */
export interface SeenMax {
  readonly maxGroupAcc: number;
  /** integer scale only. */
  readonly maxTotal: number | null;
  readonly maxRunning: number | null;
  readonly tokens: number;
}

export interface LayerOverflowRow {
  readonly name: string;
  readonly layer: QuantizedLinear;
  /** log2 α (integer scale), else null. */
  readonly alphaLog2: number | null;
  /** the safe policy lowered α; null when unknown (a loaded checkpoint does not record it). */
  readonly alphaLowered: boolean | null;
  /** the proof for A8 layers (int32 accumulation); null for weight-only (A16) layers. */
  readonly proof: OverflowProof | null;
  /** proof.maxBound / 2^31. */
  readonly boundRatio: number | null;
  /** null when the layer was not traced (A16, or no calibration). */
  readonly seen: SeenMax | null;
}

/**
 * One row per decoder linear (layer order, then q k v o gate up down, of each expert in turn for
 * mixtral: the overflow proof per expert), then the lm_head when it is quantized; float layers
 * (the router, a float lm_head) are skipped.
 * `reports` (from quantizing now) supply the "α lowered" flag, looked up by module name.
 */
export function overflowRows(
  weights: ModelWeights,
  reports: readonly LinearReport[] | null,
  stats: ReadonlyMap<QuantizedLinear, AccumulatorStats> | null,
): LayerOverflowRow[] {
  const byName = new Map((reports ?? []).map((r) => [r.name, r]));
  const rows: LayerOverflowRow[] = [];
  const named = weights.layers.flatMap((lw, i) => linearEntries(lw).map(({ module, weight }) => ({ name: layerPrefix(i) + module, weight })));
  named.push({ name: LM_HEAD, weight: weights.lmHead });
  for (const { name, weight: w } of named) {
    if (w.kind !== 'quantized') continue;
    const report = byName.get(name);
    const proof = w.aBits === 8 ? proveNoOverflow(w) : null;
    const s = stats?.get(w);
    rows.push({
      name,
      layer: w,
      alphaLog2: w.scale === 'int' ? w.alphaLog2 ?? null : null,
      alphaLowered: report === undefined ? null : report.alphaLowered,
      proof,
      boundRatio: proof === null ? null : proof.maxBound / INT32_LIMIT,
      seen: s === undefined ? null : { maxGroupAcc: s.maxGroupAcc, maxTotal: s.maxTotal, maxRunning: s.maxRunning, tokens: s.tokens },
    });
  }
  return rows;
}

/** The value the int32 register reaches: the integer-scale total when there is one, else a group's acc. */
export function largestInt32Seen(seen: SeenMax): number {
  return Math.max(seen.maxGroupAcc, seen.maxRunning ?? 0, seen.maxTotal ?? 0);
}

// ---------------------------------------------------------------- 2. scale bit widths

export interface BitWidthBin {
  /** ceil(log2(S + 1)): bits to hold S unsigned (0 for S = 0). */
  readonly bits: number;
  readonly groups: number;
}

/** Bits to hold a non-negative int32 S: ceil(log2(S + 1)). */
export function scaleBitWidth(S: number): number {
  return 32 - Math.clz32(S);
}

/** Histogram over every integer scale of the given layers (float-scale layers contribute none). */
export function scaleBitHistogram(layers: Iterable<QuantizedLinear>): BitWidthBin[] {
  const counts: number[] = [];
  for (const w of layers) {
    if (w.scale !== 'int' || !w.intScales) continue;
    for (const S of w.intScales) {
      const b = scaleBitWidth(S);
      counts[b] = (counts[b] ?? 0) + 1;
    }
  }
  const rows: BitWidthBin[] = [];
  const first = counts.findIndex((c) => c !== undefined);
  if (first < 0) return rows;
  for (let b = first; b < counts.length; b++) rows.push({ bits: b, groups: counts[b] ?? 0 });
  return rows;
}

// ---------------------------------------------------------------- 3. weight MSE vs α

/** The paper's Figure 4c range. */
export const MSE_ALPHA_LOG2S: readonly number[] = [7, 8, 9, 10, 11, 12, 13];

export interface MseRow {
  readonly alphaLog2: number;
  /** mean over all weights of (W − W_float-scale)²: the same in every row. */
  readonly floatMse: number;
  /** mean of (W − W_integer-scale@α)². */
  readonly intMse: number;
  /** mean of (W_integer-scale@α − W_float-scale)²: the paper's "integer vs float scale" MSE. */
  readonly intVsFloatMse: number;
}

export interface MseSweep {
  /** adds one float layer, quantized with `spec`'s bits and group size (scale and α are swept). */
  add(w: FloatLinear, spec: QuantSpec, name?: string): void;
  /** layers added so far. */
  readonly layers: number;
  /** weight-count-weighted means over all layers added (= pooled MSE over every weight). */
  rows(): MseRow[];
}

export function createMseSweep(alphaLog2s: readonly number[] = MSE_ALPHA_LOG2S): MseSweep {
  let weights = 0;
  let layers = 0;
  let floatSum = 0;
  const intSum = alphaLog2s.map(() => 0);
  const vsSum = alphaLog2s.map(() => 0);
  return {
    get layers() {
      return layers;
    },
    add(w, spec, name) {
      const count = w.n * w.k;
      const fs = dequantize(quantizeLinear(w, { ...spec, scale: 'float' }, name));
      floatSum += meanSquaredError(w.w, fs) * count;
      alphaLog2s.forEach((b, i) => {
        const is = dequantize(quantizeLinear(w, { ...spec, scale: 'int', alpha: { kind: 'fixed', log2: b } }, name));
        intSum[i]! += meanSquaredError(w.w, is) * count;
        vsSum[i]! += meanSquaredError(is, fs) * count;
      });
      weights += count;
      layers++;
    },
    rows() {
      const d = Math.max(1, weights);
      return alphaLog2s.map((b, i) => ({ alphaLog2: b, floatMse: floatSum / d, intMse: intSum[i]! / d, intVsFloatMse: vsSum[i]! / d }));
    },
  };
}
