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
 * Mixture of experts (mixtral, as AutoAWQ does it): one gate/up scale shared by every expert (they
 * and the router read the same normed state: the router's columns are scaled too, it stays float),
 * searched on the block's input statistics with each expert's loss taken on the rows routed to it;
 * each expert's down scale folds into its own up rows. An expert routed fewer than minExpertTokens
 * tokens is left out of the searches and quantized with plain RTN (expert-fallback.ts).
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
import type { Backend, ScaleSearchProblem, ScaleSearchSession } from '../model/backend.js';
import { InputError } from '../errors.js';
import { linearModule, type LinearSlot } from '../model/layout.js';
import { linearAt, mapLinears, type MlpLinears } from '../model/layer-linears.js';
import { linearOnce } from '../model/prepare.js';
import { releaseArenaBlock, sharedFloat32, toSharedFloat32, withArenaAllocation } from '../tensor/shared.js';
import { scaleColumnsOnPool } from '../backends/cpu/column-scale-pool.js';
import { chooseAlpha } from '../quant/amplifier.js';
import type { FloatLayerWeights, LayerCalibration, LayerMethod } from './calibration.js';
import { chooseGroupScale, floatGroupScale, floatScaler, groupAbsMax, integerScaler, quantizeValue, type GroupScaler } from '../quant/group-quant.js';
import { quantizeLinearReport, resolveGroupSize } from '../quant/quantize-linear.js';
import { rtnRowsOnPool } from '../backends/cpu/rtn-pool.js';
import type { FloatLinear, LinearWeight, QuantSpec } from '../quant/types.js';
import { INPUT_OF, LINEARS_OF, groupKey, groupsOf, inputWidth } from './layer-inputs.js';
import { DEFAULT_MIN_EXPERT_TOKENS, expertFallback, quantizeFallback } from './expert-fallback.js';
import { linearReport, type ReportSink } from '../quant/methods/report.js';

export interface AwqSettings {
  /** grid points of the exponent ρ in [0, 1). */
  readonly grid: number;
  /** run the clipping search after scaling. */
  readonly clip: boolean;
  /** calibration tokens (spread evenly over the samples) the searches run on. */
  readonly searchTokens: number;
  /** an expert (mixtral) routed fewer calibration tokens than this is left out of the searches and quantized with RTN. */
  readonly minExpertTokens: number;
}

export const DEFAULT_AWQ: AwqSettings = { grid: 20, clip: false, searchTokens: 2048, minExpertTokens: DEFAULT_MIN_EXPERT_TOKENS };

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
  /** calibration tokens seen (for an expert: routed to it). */
  readonly tokens: number;
}

/**
 * Gathers mean |x| and up to `searchTokens` evenly spread rows of every linear input of the layer,
 * keyed by groupKey (an expert's inputs apart; a mixture of experts' block input under 'gateUp').
 * On a stream off the CPU the sums stay on the device where the backend can add them there
 * (Backend.addAbsColumns, the same float64 sums in the same order) and only the sampled rows come back.
 */
export function gatherInputStats<T>(calib: LayerCalibration<T>, searchTokens: number): Map<string, InputStats> {
  const perSample = Math.max(1, Math.min(calib.seqLen, Math.ceil(searchTokens / calib.samples)));
  const t = perSample * calib.samples;
  const { backend } = calib;
  const acc = new Map<string, { k: number; sum: Float64Array; tokens: number; rows: Float32Array; filled: number }>();
  calib.observe(calib.layer, (input, x, m, expert) => {
    const key = groupKey(input, expert);
    let a = acc.get(key);
    if (a === undefined) {
      const k = inputWidth(calib.config, input);
      a = { k, sum: new Float64Array(k), tokens: 0, rows: sharedFloat32(t * k), filled: 0 };
      acc.set(key, a);
    }
    const { k } = a;
    if (backend.addAbsColumns) {
      backend.addAbsColumns(x, m, k, a.sum);
    } else {
      const h = backend.download(x, 0, m, k);
      for (let r = 0; r < m; r++) for (let c = 0; c < k; c++) a.sum[c] += Math.abs(h[r * k + c]!);
    }
    a.tokens += m;
    const picks = Math.min(perSample, m); // an expert's call may bring fewer rows than a window's share
    for (let r = 0; r < picks; r++) {
      const row = Math.floor(((r + 0.5) * m) / picks);
      a.rows.set(backend.download(x, row, 1, k), a.filled * k);
      a.filled++;
    }
  });
  return new Map([...acc].map(([key, a]) => [key, { k: a.k, meanAbs: a.sum.map((v) => v / a.tokens), rows: a.rows, t: a.filled, tokens: a.tokens }]));
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

/**
 * W·diag(s): every column k multiplied by s[k], into `into` when given (a search reuses one buffer:
 * a fresh one costs more in first-touch page faults than the multiplications), else a fresh shared array.
 */
export function scaleColumns(w: FloatLinear, s: Float32Array, into?: Float32Array): FloatLinear {
  const { n, k } = w;
  const out = into ?? sharedFloat32(n * k);
  // rows split over the CPU pool where the arrays are shared (the same bits as one thread)
  scaleColumnsOnPool({ w: w.w, s: toSharedFloat32(s), out, k }, n);
  return { ...w, w: out.subarray(0, n * k) };
}

/** diag(s)⁻¹·W: every output row n (and its bias) divided by s[n]. */
export function divideRows(w: FloatLinear, s: Float32Array): FloatLinear {
  const out = sharedFloat32(w.n * w.k);
  for (let r = 0; r < w.n; r++) for (let c = 0; c < w.k; c++) out[r * w.k + c] = w.w[r * w.k + c]! / s[r]!;
  return { ...w, w: out, ...(w.bias ? { bias: w.bias.map((b, r) => b / s[r]!) } : {}) };
}

/** X·diag(s)⁻¹ for rows [t, k], into `into` when given (see scaleColumns). */
function divideInputs(rows: Float32Array, t: number, k: number, s: Float32Array, into?: Float32Array): Float32Array {
  const out = into ?? sharedFloat32(t * k);
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

/** A linear in a scale search: its weights, spec and name, and the inputs its loss is taken on when not the searched input's own. */
export interface SearchedLinear {
  readonly w: FloatLinear;
  readonly spec: QuantSpec;
  readonly name: string;
  readonly rows?: InputStats;
}

/** The search of linears reading one input (or, for experts, each its rows) as a backend's problem. */
export function scaleSearchProblem(stats: InputStats, linears: readonly SearchedLinear[]): ScaleSearchProblem {
  const inputs = [...new Set(linears.map((l) => l.rows ?? stats))];
  return {
    k: stats.k,
    inputs: inputs.map(({ rows, t }) => ({ rows, t })),
    linears: linears.map(({ w, spec, name, rows }) => ({ w, spec, name, input: inputs.indexOf(rows ?? stats) })),
  };
}

/**
 * The loss of a grid point (see the header) computed here: each product on `backend` (host rows uploaded,
 * outputs read back; on a GPU each grid point starts a pass, reclaiming the last one's tensors), the
 * scaling, RTN and the squared error on the host. The reference a backend's scaleSearch matches.
 * A grid point's arrays (each linear's quantized form, its product) are made in the WASM arena and given
 * back once its error is summed, so the next point reuses their blocks: on the CPU they were fresh
 * shared buffers every point, freed only when V8 collected them (a 7B layer's search grew the resident
 * set by ~10 GB before it did). Arrays outside the arena (a GPU's downloads) are left to the GC.
 */
export function hostScaleSearch<T>(backend: Backend<T>, problem: ScaleSearchProblem): ScaleSearchSession {
  const { k, inputs, linears } = problem;
  const product = (w: LinearWeight, x: Float32Array, t: number): Float32Array => backend.download(linearOnce(backend, w, backend.upload(x), t), 0, t, w.n);
  backend.startPass();
  // copied: a backend's output may live in memory its next pass reclaims (each grid point starts one)
  const refs = linears.map(({ w, input }) => Float32Array.from(product(w, inputs[input]!.rows, inputs[input]!.t)));
  // reused by every grid point: one buffer for the scaled weights (each linear's are quantized before
  // the next is scaled, so the largest linear's size serves all: a mixture of experts searches 2 × experts
  // of them at once) and one an input for its scaled rows
  const weightRoom = sharedFloat32(Math.max(0, ...linears.map(({ w }) => w.n * w.k)));
  const inputRoom = inputs.map(({ t }) => sharedFloat32(t * k));
  return {
    loss: (s) => withArenaAllocation(() => {
      backend.startPass();
      const scaled = new Set<number>();
      let loss = 0;
      linears.forEach(({ w, spec, name, input }, j) => {
        const { rows, t } = inputs[input]!;
        if (!scaled.has(input)) {
          divideInputs(rows, t, k, s, inputRoom[input]);
          scaled.add(input);
        }
        const q = quantizeLinearReport(scaleColumns(w, s, weightRoom), spec, name, rtnRowsOnPool).layer;
        const y = product(q, inputRoom[input]!, t);
        loss += squaredError(y, refs[j]!);
        for (const a of [y, q.packed, q.scales, q.intScales]) if (a !== undefined) releaseArenaBlock(a);
      });
      return loss;
    }),
    release: () => {},
  };
}

/**
 * The grid search of ρ for linears reading one input (see the header): each grid point's loss on the
 * backend's own search where it has one (Backend.scaleSearch: a GPU keeps the layers and inputs there),
 * else by the host loop (hostScaleSearch).
 */
export function searchScales<T>(stats: InputStats, linears: readonly SearchedLinear[], grid: number, backend: Backend<T>): ScaleSearch {
  const problem = scaleSearchProblem(stats, linears);
  const session = backend.scaleSearch?.(problem) ?? hostScaleSearch(backend, problem);
  try {
    let best: ScaleSearch | null = null;
    let rtnLoss = NaN;
    for (let g = 0; g < grid; g++) {
      const ratio = g / grid;
      const s = awqScales(stats.meanAbs, ratio);
      const loss = session.loss(s);
      if (g === 0) rtnLoss = loss;
      if (best === null || loss < best.loss) best = { scales: s, ratio, loss, rtnLoss };
    }
    return { ...best!, rtnLoss };
  } finally {
    session.release();
  }
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
  /** a dense MLP's gate/up, or every expert's (and the router's) for a mixture of experts. */
  readonly gateUp: Float32Array;
  /** a dense MLP's down; for a mixture of experts, each expert's (null: not scaled). */
  readonly down: Float32Array | readonly (Float32Array | null)[];
}

/** gate/up scaled by the block's scales, down's scales folded into up rows (s.down null: down unscaled). */
function foldMlp(mlp: MlpLinears<FloatLinear>, gateUp: Float32Array, down: Float32Array | null): MlpLinears<FloatLinear> {
  const up = scaleColumns(mlp.up, gateUp);
  return { gate: scaleColumns(mlp.gate, gateUp), up: down ? divideRows(up, down) : up, down: down ? scaleColumns(mlp.down, down) : mlp.down };
}

/** Folds scales into a float layer (see the header); the result computes the same function in float. */
export function foldAwqScales(layer: FloatLayerWeights, s: AwqScales): FloatLayerWeights {
  const divide = (norm: Float32Array, by: Float32Array) => norm.map((v, i) => v / by[i]!);
  if (s.o !== null && layer.v.n !== layer.o.k) throw new InputError(`AWQ: o_proj scales need v_proj outputs = o_proj inputs (${layer.v.n} ≠ ${layer.o.k})`);
  const v = scaleColumns(layer.v, s.qkv);
  const attention = {
    inputNorm: divide(layer.inputNorm, s.qkv),
    q: scaleColumns(layer.q, s.qkv),
    k: scaleColumns(layer.k, s.qkv),
    v: s.o ? divideRows(v, s.o) : v,
    o: s.o ? scaleColumns(layer.o, s.o) : layer.o,
    postAttentionNorm: divide(layer.postAttentionNorm, s.gateUp),
  };
  const perExpert = s.down instanceof Float32Array ? null : s.down;
  if (layer.moe === undefined) {
    if (perExpert !== null) throw new InputError('AWQ: per-expert down scales given for a dense layer');
    return { ...attention, ...foldMlp(layer, s.gateUp, s.down as Float32Array) };
  }
  if (perExpert === null || perExpert.length !== layer.moe.experts.length) {
    throw new InputError(`AWQ: a mixture of ${layer.moe.experts.length} experts needs one down scale (or null) per expert`);
  }
  const router = scaleColumns(layer.moe.router, s.gateUp);
  return { ...attention, moe: { router, experts: layer.moe.experts.map((e, i) => foldMlp(e, s.gateUp, perExpert[i]!)) } };
}

export interface AwqFold {
  /** the layer with the scales folded in (and clipped when asked): equal to the input in float, unclipped. */
  readonly layer: FloatLayerWeights;
  /** the scales per input group (groupKey; null: not scaled, o_proj under grouped-query attention, an expert's down below minExpertTokens). */
  readonly scales: ReadonlyMap<string, ScaleSearch | null>;
  /** why an expert falls back to RTN, by expert (mixtral). */
  readonly fallbacks: ReadonlyMap<number, string>;
}

/** Searches and folds the AWQ scales of one layer (and clips, with settings.clip). */
export function awqFoldLayer<T>(calib: LayerCalibration<T>, specOf: (slot: LinearSlot) => QuantSpec, settings: AwqSettings): AwqFold {
  if (!Number.isInteger(settings.grid) || settings.grid < 1) throw new InputError(`AWQ grid must be a positive integer, got ${settings.grid}`);
  const stats = gatherInputStats(calib, settings.searchTokens);
  const original = calib.layer;
  const experts = original.moe?.experts.length ?? 0;
  const fallbacks = new Map<number, string>();
  for (let e = 0; e < experts; e++) {
    const reason = expertFallback(e, stats.get(groupKey('gateUp', e))?.tokens ?? 0, settings.minExpertTokens);
    if (reason !== null) fallbacks.set(e, reason);
  }
  const searched = (slot: LinearSlot, expert: number | null, rows?: InputStats): SearchedLinear =>
    ({ w: linearAt(original, slot, expert), spec: specOf(slot), name: calib.prefix + linearModule(slot, expert), ...(rows ? { rows } : {}) });
  const search = (key: string, linears: SearchedLinear[]) => searchScales(stats.get(key)!, linears, settings.grid, calib.backend);
  const scales = new Map<string, ScaleSearch | null>();
  scales.set('qkv', search('qkv', LINEARS_OF.qkv.map((s) => searched(s, null))));
  scales.set('o', original.v.n === original.o.k ? search('o', [searched('o', null)]) : null);
  if (experts === 0) {
    scales.set('gateUp', search('gateUp', LINEARS_OF.gateUp.map((s) => searched(s, null))));
    scales.set('down', search('down', [searched('down', null)]));
  } else {
    const used = groupsOf(calib.config, 'gateUp').filter((g) => !fallbacks.has(g.expert!));
    scales.set('gateUp', search('gateUp', used.flatMap((g) => LINEARS_OF.gateUp.map((s) => searched(s, g.expert, stats.get(g.key))))));
    for (const g of groupsOf(calib.config, 'down')) {
      scales.set(g.key, fallbacks.has(g.expert!) ? null : search(g.key, [searched('down', g.expert)]));
    }
  }
  const down = experts === 0 ? scales.get('down')!.scales : groupsOf(calib.config, 'down').map((g) => scales.get(g.key)?.scales ?? null);
  const folded = foldAwqScales(original, { qkv: scales.get('qkv')!.scales, o: scales.get('o')?.scales ?? null, gateUp: scales.get('gateUp')!.scales, down });
  if (!settings.clip) return { layer: folded, scales, fallbacks };

  const clip = (w: FloatLinear, slot: LinearSlot, expert: number | null): FloatLinear => {
    if (slot === 'q' || slot === 'k' || (expert !== null && fallbacks.has(expert))) return w;
    const key = groupKey(INPUT_OF[slot], expert);
    const st = stats.get(key)!;
    const s = scales.get(slot === 'gate' || slot === 'up' ? 'gateUp' : key)?.scales; // gate/up: one scale for every expert
    const rows = s ? divideInputs(st.rows, st.t, st.k, s) : st.rows;
    return clipLinear(w, rows, st.t, specOf(slot), calib.prefix + linearModule(slot, expert));
  };
  return { layer: { inputNorm: folded.inputNorm, postAttentionNorm: folded.postAttentionNorm, ...mapLinears(folded, clip, (r) => r) }, scales, fallbacks };
}

/** AWQ as a calibration-stream method: fold (and clip), then RTN every linear through the shared quantizer. */
export function awqLayerMethod<T = Float32Array>(specOf: (slot: LinearSlot) => QuantSpec, settings: AwqSettings, report: ReportSink): LayerMethod<T> {
  return (calib) => {
    const { layer, fallbacks } = awqFoldLayer(calib, specOf, settings);
    const quantize = (w: FloatLinear, slot: LinearSlot, expert: number | null) => {
      const name = calib.prefix + linearModule(slot, expert);
      const spec = specOf(slot);
      const reason = expert === null ? undefined : fallbacks.get(expert);
      if (reason !== undefined) return quantizeFallback(w, spec, name, reason, report);
      const { layer: q, alpha } = quantizeLinearReport(w, spec, name, rtnRowsOnPool);
      report(linearReport(name, spec, q, alpha));
      return q;
    };
    return { inputNorm: layer.inputNorm, postAttentionNorm: layer.postAttentionNorm, ...mapLinears(layer, quantize, (r) => r) };
  };
}
