/**
 * A Backend wrapper that records, per quantized A8 linear layer, the largest int32 values the
 * integer path actually produces on real inputs (the paper's Figure 8).
 *
 * Every op is forwarded unchanged to the wrapped backend and its result returned as is. For a
 * quantized layer with 8-bit activations the wrapper additionally quantizes the activations
 * (quantizeActivations, as the kernels do) and computes the per-group accumulators with the
 * reference groupAccumulators, then records:
 *   maxGroupAcc   = max |acc[m,n,g]|                                    (every A8 layer)
 *   maxTotal      = max |Σ_g acc[m,n,g] · S[n,g]|                        (integer scale only)
 *   maxRunning    = max |Σ_{g' ≤ g} acc[m,n,g'] · S[n,g']| over g        (integer scale only:
 *                   the int32 register in group order; ≥ maxTotal)
 * Sums are taken in float64, exact below 2^53 (far above any int32 question).
 * Layers are named by identity of their LinearWeight object (see linearNames); unnamed ones
 * are recorded as "unnamed#i" in order of first sight.
 */
import type { Backend } from '../model/backend.js';
import { groupAccumulators } from '../backends/cpu/int-linear-reference.js';
import { quantizeActivations } from '../quant/activation-quant.js';
import type { LinearWeight, QuantizedLinear } from '../quant/types.js';
import { layerPrefix } from '../model/layout.js';
import { linearEntries } from '../model/layer-linears.js';
import type { ModelWeights } from '../model/weights.js';

/** What was seen on one layer's integer path. */
export interface AccumulatorStats {
  readonly name: string;
  readonly layer: QuantizedLinear;
  /** max |acc[m,n,g]| over all calls. */
  maxGroupAcc: number;
  /** max |Σ_g acc·S| (integer scale); null for float-scale layers. */
  maxTotal: number | null;
  /** max |running Σ acc·S| in group order (integer scale); null for float-scale layers. */
  maxRunning: number | null;
  /** token rows seen (sum of m over calls). */
  tokens: number;
  calls: number;
}

/** A linear of the wrapped backend threw (e.g. the integer kernel refusing an int32 overflow). */
export interface LinearFailure {
  readonly name: string;
  readonly error: unknown;
}

export interface TracingBackend extends Backend {
  /** stats per traced layer, in order of first call. */
  readonly stats: ReadonlyMap<QuantizedLinear, AccumulatorStats>;
  /** the first linear that threw, with its name; null while none has. The error is rethrown. */
  readonly failure: LinearFailure | null;
  /** forget everything recorded. */
  reset(): void;
}

/** Module names of a model's decoder linears, keyed by the weight object (identity). */
export function linearNames(weights: ModelWeights): Map<LinearWeight, string> {
  const names = new Map<LinearWeight, string>();
  weights.layers.forEach((layer, i) => {
    for (const { module, weight } of linearEntries(layer)) names.set(weight, layerPrefix(i) + module);
  });
  names.set(weights.lmHead, 'lm_head');
  return names;
}

/** Records the accumulator maxima of one call into stats. */
export function recordAccumulators(stats: AccumulatorStats, x: Float32Array, m: number): void {
  const w = stats.layer;
  const act = quantizeActivations(x, m, w.k);
  const acc = groupAccumulators(act, w);
  const groupCount = w.k / w.groupSize;
  const S = w.scale === 'int' ? w.intScales! : null;
  let maxAcc = stats.maxGroupAcc;
  let maxTotal = stats.maxTotal ?? 0;
  let maxRunning = stats.maxRunning ?? 0;
  for (let row = 0; row < m; row++) {
    for (let n = 0; n < w.n; n++) {
      const base = (row * w.n + n) * groupCount;
      let total = 0;
      for (let g = 0; g < groupCount; g++) {
        const a = acc[base + g]!;
        if (Math.abs(a) > maxAcc) maxAcc = Math.abs(a);
        if (S) {
          total += a * S[n * groupCount + g]!;
          if (Math.abs(total) > maxRunning) maxRunning = Math.abs(total);
        }
      }
      if (Math.abs(total) > maxTotal) maxTotal = Math.abs(total);
    }
  }
  stats.maxGroupAcc = maxAcc;
  if (S) {
    stats.maxTotal = maxTotal;
    stats.maxRunning = maxRunning;
  }
  stats.tokens += m;
  stats.calls++;
}

/** Wraps `inner`; `names` maps weight objects to module names (linearNames(model.weights)). */
export function tracingBackend(inner: Backend, names: ReadonlyMap<LinearWeight, string> = new Map()): TracingBackend {
  const stats = new Map<QuantizedLinear, AccumulatorStats>();
  let failure: LinearFailure | null = null;
  const traced: TracingBackend = {
    name: `tracing(${inner.name})`,
    stats,
    get failure() {
      return failure;
    },
    reset: () => {
      stats.clear();
      failure = null;
    },
    prepareLinear(w) {
      const prepared = inner.prepareLinear(w);
      return {
        weight: w,
        get copiedBytes() {
          return prepared.copiedBytes;
        },
        run(x, m) {
          // record before running, so a layer whose kernel throws on overflow is still seen.
          if (w.kind === 'quantized' && w.aBits === 8) {
            let s = stats.get(w);
            if (s === undefined) {
              s = { name: names.get(w) ?? `unnamed#${stats.size}`, layer: w, maxGroupAcc: 0, maxTotal: null, maxRunning: null, tokens: 0, calls: 0 };
              stats.set(w, s);
            }
            recordAccumulators(s, x, m);
          }
          try {
            return prepared.run(x, m);
          } catch (error) {
            failure ??= { name: names.get(w) ?? stats.get(w as QuantizedLinear)?.name ?? 'unnamed', error };
            throw error;
          }
        },
        release: () => prepared.release(),
      };
    },
    startPass: () => inner.startPass(),
    upload: (x) => inner.upload(x),
    download: (x, first, rows, dim) => inner.download(x, first, rows, dim),
    rows: (x, first, rows, dim) => inner.rows(x, first, rows, dim),
    layerCache: (capacity, kvDim) => inner.layerCache(capacity, kvDim),
    releaseLayerCache: (cache) => inner.releaseLayerCache(cache),
    rmsnorm: (x, m, weight, eps) => inner.rmsnorm(x, m, weight, eps),
    rope: (x, m, heads, headDim, startPos, invFreq) => inner.rope(x, m, heads, headDim, startPos, invFreq),
    attention: (q, k, v, m, startPos, cache, shape) => inner.attention(q, k, v, m, startPos, cache, shape),
    ...(inner.gatherRows && inner.addScaledRows ? {
      gatherRows: inner.gatherRows.bind(inner),
      addScaledRows: inner.addScaledRows.bind(inner),
    } : {}),
    siluMul: (gate, up) => inner.siluMul(gate, up),
    addInPlace: (a, b) => inner.addInPlace(a, b),
  };
  return traced;
}
