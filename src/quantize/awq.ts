/**
 * AWQ (Lin et al. 2023), activation-aware weight scaling, for one decoder layer of the
 * calibration stream, ending in the shared RTN group quantizer (so AWQ w/ IS is the same path).
 *
 * For each group of linears W_j reading one input X [T, K] (T sampled calibration tokens):
 *   x̄_k   = mean_t |X[t,k]|                                    (over every calibration token)
 *   s(ρ)  = x̄^ρ / sqrt(max x̄^ρ · min x̄^ρ),  x̄ clamped ≥ 1e-4,   ρ ∈ {0, 1/n, …, (n−1)/n}, n = 20
 *   L(ρ)  = Σ_j ‖ Q(W_j·diag(s)) applied to X·diag(s)⁻¹  −  X·W_jᵀ ‖²
 *           (Q = the layer's quantizer: RTN W4 with float or Integer Scale, and the A8 per-token
 *            activation quantization of the integer kernel — the real W4A8 output)
 *   s*    = s(argmin L), folded so that the float model is unchanged:
 *           W_j ← W_j·diag(s*), and the op producing X divides its output channels by s*:
 *             q/k/v   ← input_layernorm.weight / s*
 *             gate/up ← post_attention_layernorm.weight / s*
 *             down    ← up_proj rows / s*   (silu(gate) ⊙ up is linear in up)
 *             o       ← v_proj rows (and bias) / s*, only when v's outputs are o's inputs
 *                       one to one (no grouped-query sharing: v.n = o.k)
 * All four searches use the float layer as read (as AWQ does); ρ = 0 gives s = 1, plain RTN, so
 * the chosen scales never do worse than RTN on the sampled tokens. The loss is taken on the
 * outputs of the linears themselves (AWQ inspects the whole attention / MLP block for q/k/v and
 * gate/up; the linears' outputs are the part the scales act on).
 *
 * Clipping (optional, AWQ's auto_clip; not for q/k whose errors the softmax amplifies): per row
 * and group, the clip c = m·(1 − i/20), i = 0…9 (m = max |w| of the group), minimising
 *   e(c) = Σ_t (X_g[t]·(Q_c(w) − w))² = dᵀ (X_gᵀX_g) d,  d = Q_c(w) − w, Q_c = clamp to ±c then
 *          quantize with chooseGroupScale(scaler, c) — the shared group step (α for Integer Scale
 *          from the layer's RTN float scales before clipping);
 *   then w ← clamp(w, −c*, c*). X_g here is the scaled input X·diag(s*)⁻¹.
 */
import type { Backend } from '../model/backend.js';
import { InputError } from '../errors.js';
import type { LinearInput } from '../model/forward.js';
import { LINEAR_NAMES, type LinearSlot } from '../model/layout.js';
import { linearOnce } from '../model/prepare.js';
import { sharedFloat32 } from '../tensor/shared.js';
import { chooseAlpha } from '../quant/amplifier.js';
import type { FloatLayerWeights, LayerCalibration, LayerMethod } from './calibration.js';
import { chooseGroupScale, floatGroupScale, floatScaler, groupAbsMax, integerScaler, quantizeValue, type GroupScaler } from '../quant/group-quant.js';
import { quantizeLinearReport, resolveGroupSize } from '../quant/quantize-linear.js';
import type { FloatLinear, QuantSpec } from '../quant/types.js';
import { LINEARS_OF, inputWidth } from './layer-inputs.js';
import { linearReport, type ReportSink } from '../quant/methods/report.js';

export interface AwqSettings {
  /** grid points of the exponent ρ in [0, 1). */
  readonly grid: number;
  /** run the clipping search after scaling. */
  readonly clip: boolean;
  /** calibration tokens (spread evenly over the samples) the searches run on. */
  readonly searchTokens: number;
}

export const DEFAULT_AWQ: AwqSettings = { grid: 20, clip: false, searchTokens: 2048 };

const CLIP_GRID = 20;
const CLIP_MAX_SHRINK = 0.5;

/** Statistics of one linear input gathered from the calibration stream. */
export interface InputStats {
  readonly k: number;
  /** mean |x| per input channel over every calibration token. */
  readonly meanAbs: Float64Array;
  /** sampled rows [t, k] (shared memory, for the backend's matmuls). */
  readonly rows: Float32Array;
  readonly t: number;
}

/** Gathers mean |x| and up to `searchTokens` evenly spread rows of every linear input of the layer. */
export function gatherInputStats(calib: LayerCalibration, searchTokens: number): Record<LinearInput, InputStats> {
  const perSample = Math.max(1, Math.min(calib.seqLen, Math.ceil(searchTokens / calib.samples)));
  const t = perSample * calib.samples;
  const make = (input: LinearInput) => {
    const k = inputWidth(calib.config, input);
    return { k, sum: new Float64Array(k), tokens: 0, rows: sharedFloat32(t * k), filled: 0 };
  };
  const acc = { qkv: make('qkv'), o: make('o'), gateUp: make('gateUp'), down: make('down') };
  calib.observe(calib.layer, (input, x, m) => {
    const a = acc[input];
    const { k } = a;
    for (let r = 0; r < m; r++) for (let c = 0; c < k; c++) a.sum[c] += Math.abs(x[r * k + c]!);
    a.tokens += m;
    for (let r = 0; r < perSample; r++) {
      const row = Math.floor(((r + 0.5) * m) / perSample);
      a.rows.set(x.subarray(row * k, (row + 1) * k), a.filled * k);
      a.filled++;
    }
  });
  const finish = (a: ReturnType<typeof make>): InputStats => {
    const meanAbs = a.sum.map((v) => v / a.tokens);
    return { k: a.k, meanAbs, rows: a.rows, t: a.filled };
  };
  return { qkv: finish(acc.qkv), o: finish(acc.o), gateUp: finish(acc.gateUp), down: finish(acc.down) };
}

/** s(ρ) = x̄^ρ / sqrt(max·min) (x̄ clamped at 1e-4), as float32. */
export function awqScales(meanAbs: Float64Array, ratio: number): Float32Array {
  const s = new Float64Array(meanAbs.length);
  let max = 0;
  let min = Infinity;
  for (let i = 0; i < s.length; i++) {
    s[i] = Math.max(meanAbs[i]!, 1e-4) ** ratio;
    max = Math.max(max, s[i]!);
    min = Math.min(min, s[i]!);
  }
  const norm = Math.sqrt(max * min);
  return Float32Array.from(s, (v) => v / norm);
}

/** W·diag(s): every column k multiplied by s[k] (a fresh float layer in shared memory). */
export function scaleColumns(w: FloatLinear, s: Float32Array): FloatLinear {
  const out = sharedFloat32(w.n * w.k);
  for (let r = 0; r < w.n; r++) for (let c = 0; c < w.k; c++) out[r * w.k + c] = w.w[r * w.k + c]! * s[c]!;
  return { ...w, w: out };
}

/** diag(s)⁻¹·W: every output row n (and its bias) divided by s[n]. */
export function divideRows(w: FloatLinear, s: Float32Array): FloatLinear {
  const out = sharedFloat32(w.n * w.k);
  for (let r = 0; r < w.n; r++) for (let c = 0; c < w.k; c++) out[r * w.k + c] = w.w[r * w.k + c]! / s[r]!;
  return { ...w, w: out, ...(w.bias ? { bias: w.bias.map((b, r) => b / s[r]!) } : {}) };
}

/** X·diag(s)⁻¹ for rows [t, k]. */
function divideInputs(rows: Float32Array, t: number, k: number, s: Float32Array): Float32Array {
  const out = sharedFloat32(t * k);
  for (let r = 0; r < t; r++) for (let c = 0; c < k; c++) out[r * k + c] = rows[r * k + c]! / s[c]!;
  return out;
}

function squaredError(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  return sum;
}

export interface ScaleSearch {
  readonly scales: Float32Array;
  readonly ratio: number;
  /** the loss at the chosen ratio and at ρ = 0 (plain RTN). */
  readonly loss: number;
  readonly rtnLoss: number;
}

/** The grid search of ρ for linears reading one input (see the header). */
export function searchScales(stats: InputStats, linears: readonly { w: FloatLinear; spec: QuantSpec; name: string }[],
  grid: number, backend: Backend): ScaleSearch {
  const { rows, t, k } = stats;
  const refs = linears.map(({ w }) => linearOnce(backend, w, rows, t));
  let best: ScaleSearch | null = null;
  let rtnLoss = NaN;
  for (let g = 0; g < grid; g++) {
    const ratio = g / grid;
    const s = awqScales(stats.meanAbs, ratio);
    const x = divideInputs(rows, t, k, s);
    let loss = 0;
    linears.forEach(({ w, spec, name }, j) => {
      const q = quantizeLinearReport(scaleColumns(w, s), spec, name).layer;
      loss += squaredError(linearOnce(backend, q, x, t), refs[j]!);
    });
    if (g === 0) rtnLoss = loss;
    if (best === null || loss < best.loss) best = { scales: s, ratio, loss, rtnLoss };
  }
  return { ...best!, rtnLoss };
}

/** Clipping search on one (already scaled) linear whose inputs are rows [t, k]; returns the clipped layer. */
export function clipLinear(w: FloatLinear, rows: Float32Array, t: number, spec: QuantSpec, name: string): FloatLinear {
  const { n, k } = w;
  const G = resolveGroupSize(k, spec.groupSize, name);
  const groupCount = k / G;
  let scaler: GroupScaler = floatScaler;
  if (spec.scale === 'int') {
    const floatScales = new Float32Array(n * groupCount);
    for (let i = 0; i < floatScales.length; i++) floatScales[i] = floatGroupScale(groupAbsMax(w.w, i * G, i * G + G), spec.wBits);
    scaler = integerScaler(chooseAlpha({ scales: floatScales, n, groupCount, groupSize: G, wBits: spec.wBits }, spec.alpha, name).alphaLog2);
  }
  const out = sharedFloat32(n * k);
  out.set(w.w);
  const gram = new Float64Array(G * G);
  const d = new Float64Array(G);
  const steps = Math.round(CLIP_GRID * CLIP_MAX_SHRINK);
  for (let g = 0; g < groupCount; g++) {
    // C = X_gᵀ X_g over the sampled tokens
    gram.fill(0);
    for (let r = 0; r < t; r++) {
      const xr = r * k + g * G;
      for (let i = 0; i < G; i++) {
        const xi = rows[xr + i]!;
        if (xi === 0) continue;
        for (let j = i; j < G; j++) gram[i * G + j] += xi * rows[xr + j]!;
      }
    }
    for (let i = 0; i < G; i++) for (let j = 0; j < i; j++) gram[i * G + j] = gram[j * G + i]!;
    for (let row = 0; row < n; row++) {
      const base = row * k + g * G;
      const m = groupAbsMax(w.w, base, base + G);
      if (m === 0) continue;
      let bestErr = Infinity;
      let bestClip = m;
      for (let i = 0; i < steps; i++) {
        const c = m * (1 - i / CLIP_GRID);
        const s = chooseGroupScale(scaler, c, spec.wBits).scale;
        for (let j = 0; j < G; j++) {
          const v = w.w[base + j]!;
          d[j] = Math.fround(quantizeValue(Math.min(c, Math.max(-c, v)), s, spec.wBits) * s) - v;
        }
        let err = 0;
        for (let i2 = 0; i2 < G; i2++) {
          let acc = 0;
          for (let j = 0; j < G; j++) acc += gram[i2 * G + j]! * d[j]!;
          err += d[i2]! * acc;
        }
        if (err < bestErr) {
          bestErr = err;
          bestClip = c;
        }
      }
      for (let j = 0; j < G; j++) out[base + j] = Math.min(bestClip, Math.max(-bestClip, w.w[base + j]!));
    }
  }
  return { ...w, w: out };
}

/** Per-input AWQ scales (o: null when not foldable, see the header). */
export interface AwqScales {
  readonly qkv: Float32Array;
  readonly o: Float32Array | null;
  readonly gateUp: Float32Array;
  readonly down: Float32Array;
}

/** Folds scales into a float layer (see the header); the result computes the same function in float. */
export function foldAwqScales(layer: FloatLayerWeights, s: AwqScales): FloatLayerWeights {
  const divide = (norm: Float32Array, by: Float32Array) => norm.map((v, i) => v / by[i]!);
  if (s.o !== null && layer.v.n !== layer.o.k) throw new InputError(`AWQ: o_proj scales need v_proj outputs = o_proj inputs (${layer.v.n} ≠ ${layer.o.k})`);
  const v = scaleColumns(layer.v, s.qkv);
  return {
    ...layer,
    inputNorm: divide(layer.inputNorm, s.qkv),
    q: scaleColumns(layer.q, s.qkv),
    k: scaleColumns(layer.k, s.qkv),
    v: s.o ? divideRows(v, s.o) : v,
    o: s.o ? scaleColumns(layer.o, s.o) : layer.o,
    postAttentionNorm: divide(layer.postAttentionNorm, s.gateUp),
    gate: scaleColumns(layer.gate, s.gateUp),
    up: divideRows(scaleColumns(layer.up, s.gateUp), s.down),
    down: scaleColumns(layer.down, s.down),
  };
}

export interface AwqFold {
  /** the layer with the scales folded in (and clipped when asked): equal to the input in float, unclipped. */
  readonly layer: FloatLayerWeights;
  /** the scales per input (null: not scaled, o_proj under grouped-query attention). */
  readonly scales: Record<LinearInput, ScaleSearch | null>;
}

/** Searches and folds the AWQ scales of one layer (and clips, with settings.clip). */
export function awqFoldLayer(calib: LayerCalibration, specOf: (slot: LinearSlot) => QuantSpec, settings: AwqSettings): AwqFold {
  if (!Number.isInteger(settings.grid) || settings.grid < 1) throw new InputError(`AWQ grid must be a positive integer, got ${settings.grid}`);
  const stats = gatherInputStats(calib, settings.searchTokens);
  const original = calib.layer;
  const linearsOf = (input: LinearInput) =>
    LINEARS_OF[input].map((slot) => ({ w: original[slot], spec: specOf(slot), name: calib.prefix + LINEAR_NAMES[slot] }));
  const search = (input: LinearInput) => searchScales(stats[input], linearsOf(input), settings.grid, calib.backend);
  const scales: Record<LinearInput, ScaleSearch | null> = {
    qkv: search('qkv'),
    o: original.v.n === original.o.k ? search('o') : null,
    gateUp: search('gateUp'),
    down: search('down'),
  };
  const l: { -readonly [K in keyof FloatLayerWeights]: FloatLayerWeights[K] } = { ...foldAwqScales(original, {
    qkv: scales.qkv!.scales, o: scales.o?.scales ?? null, gateUp: scales.gateUp!.scales, down: scales.down!.scales,
  }) };

  if (settings.clip) {
    for (const slot of ['v', 'o', 'gate', 'up', 'down'] as const) {
      const input: LinearInput = slot === 'v' ? 'qkv' : slot === 'gate' || slot === 'up' ? 'gateUp' : slot;
      const st = stats[input];
      const s = scales[input]?.scales;
      const rows = s ? divideInputs(st.rows, st.t, st.k, s) : st.rows;
      l[slot] = clipLinear(l[slot], rows, st.t, specOf(slot), calib.prefix + LINEAR_NAMES[slot]);
    }
  }
  return { layer: l, scales };
}

/** AWQ as a calibration-stream method: fold (and clip), then RTN every linear through the shared quantizer. */
export function awqLayerMethod(specOf: (slot: LinearSlot) => QuantSpec, settings: AwqSettings, report: ReportSink): LayerMethod {
  return (calib) => {
    const { layer } = awqFoldLayer(calib, specOf, settings);
    const quantize = (slot: LinearSlot) => {
      const name = calib.prefix + LINEAR_NAMES[slot];
      const spec = specOf(slot);
      const { layer: q, alpha } = quantizeLinearReport(layer[slot], spec, name);
      report(linearReport(name, spec, q, alpha));
      return q;
    };
    return {
      inputNorm: layer.inputNorm, postAttentionNorm: layer.postAttentionNorm,
      q: quantize('q'), k: quantize('k'), v: quantize('v'), o: quantize('o'),
      gate: quantize('gate'), up: quantize('up'), down: quantize('down'),
    };
  };
}
