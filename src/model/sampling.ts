/**
 * Next-token choice from logits: greedy (temperature 0) or temperature + nucleus (top-p) sampling
 * with a seeded generator, so a run with the same seed repeats exactly. The definition is in integers, so that a GPU
 * (kernels/sampling.cu) draws the same token as the host from the same logits and the same uniform draw.
 *
 * Exactly: max = the largest logit (NaN ignored); each token's weight is its probability relative to the most likely
 * one, e^((logit_i − max) / T) in float64, in fixed point: w_i = ⌊e^((logit_i − max) / T) · 2^34 + ½⌋ (0 for NaN), an
 * integer, so W = Σ w_i and every partial sum below are exact in float64 (vocabularies below 2^19 tokens) whatever
 * order they are added in. (Each weight is within 2^-35 of its real value relative to the top token, so the total
 * variation from the real-valued distribution is at most V · 2^-34 / Σ p: under 2·10^-6 for 32000 tokens; tokens
 * below 2^-35 of the most likely are never drawn.) The order is w descending, ties by the lower index first; cum_k is
 * the weight of the order's first k + 1 tokens. select(target) = the first position k with cum_k ≥ target (none when
 * W < target). The nucleus is the order up to select(topP · W) (all of it where none), its mass that cum; the token
 * drawn with a uniform u in [0, 1) is the one at select(u · mass). A row without a finite largest weight (W = 0: every logit NaN or infinite) gives argmax's token.
 *
 * Only the nucleus's prefix of the order matters, so pickToken first sorts the tokens whose weight is at least 2^-6 of
 * the largest, 2^34 (every token below comes after all of them in the order; where they are at most an eighth of the
 * vocabulary) and takes the whole order, by a stable radix sort of the weights' bits, only where the prefix does not end
 * among them: the same token as a comparison sort of the vocabulary (pickTokenBySort), sooner (bench/sampling.ts).
 */
import { seededRandom } from '../tensor/random.js';

export { seededRandom };

export interface SamplingOptions {
  /** 0 = greedy. */
  readonly temperature: number;
  /** nucleus: sample among the most likely tokens whose probabilities sum to at least topP. */
  readonly topP: number;
}

/** How one token is picked: greedy (temperature 0; draw unused) or sampled with `draw`, uniform in [0, 1) from the run's generator. */
export interface TokenPick extends SamplingOptions {
  readonly draw: number;
}

/** The fixed point of the sampling weights: w = ⌊p · 2^WEIGHT_BITS + ½⌋ for p = e^((logit − max) / T) in (0, 1]. */
export const WEIGHT_BITS = 34;
const WEIGHT_SCALE = 2 ** WEIGHT_BITS;
/** Vocabularies below this keep every sum of weights exact in float64 (2^19 · 2^34 ≤ 2^53). */
export const MAX_SAMPLING_VOCAB = 2 ** 19;

/** The first index of the largest logit; NaN is never the largest; a row without a number above −∞ gives 0 (the device's rule too). */
export function argmax(logits: Float32Array): number {
  let best = -Infinity;
  let at = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i]! > best) {
      best = logits[i]!;
      at = i;
    }
  }
  return at;
}

/**
 * The first try's candidates: tokens with a weight of at least this, 2^-6 of the largest weight (the largest logit's
 * own e^0 · 2^34).
 */
const CANDIDATE_THRESHOLD = 2 ** (WEIGHT_BITS - 6);

/** The order of the nucleus as a comparator: weight descending, ties by index ascending. */
const byWeight = (weights: Float64Array) => (a: number, b: number): number => weights[b]! - weights[a]! || a - b;

/** A token from the logits with a draw from `random` (one draw where temperature > 0, none where greedy): pickToken. */
export function sampleToken(logits: Float32Array, options: SamplingOptions, random: () => number): number {
  return pickToken(logits, { ...options, draw: options.temperature > 0 ? random() : 0 });
}

/** The token the module's definition picks from the logits (the host reference of the device's pick). */
export function pickToken(logits: Float32Array, pick: TokenPick): number {
  if (pick.temperature <= 0) return argmax(logits);
  const n = logits.length;
  const { weights, total } = samplingWeights(logits, pick.temperature);
  if (total === 0) return argmax(logits);
  const target = pick.topP * total;
  const first: number[] = [];
  for (let i = 0; i < n; i++) if (weights[i]! >= CANDIDATE_THRESHOLD) first.push(i);
  // a flat distribution's candidates are most of the vocabulary: the radix sort below is sooner than sorting them
  if (first.length <= n / 8) {
    first.sort(byWeight(weights));
    const { kept, mass } = nucleus(first, weights, target);
    // the prefix ends among the candidates, or nothing is below them: the whole order's prefix
    if (mass >= target || first.length === n) return draw(first, kept, mass, weights, pick.draw);
  }
  const order = orderByWeight(weights);
  const { kept, mass } = nucleus(order, weights, target);
  return draw(order, kept, mass, weights, pick.draw);
}

/**
 * The definition pickToken keeps, by a comparison sort of the whole vocabulary: the reference its tests and
 * bench/sampling.ts compare against.
 */
export function pickTokenBySort(logits: Float32Array, pick: TokenPick): number {
  if (pick.temperature <= 0) return argmax(logits);
  const { weights, total } = samplingWeights(logits, pick.temperature);
  if (total === 0) return argmax(logits);
  const order = Array.from({ length: logits.length }, (_, i) => i).sort(byWeight(weights));
  const { kept, mass } = nucleus(order, weights, pick.topP * total);
  return draw(order, kept, mass, weights, pick.draw);
}

/** w_i = ⌊e^((logit_i − max) / T) · 2^34 + ½⌋ (0 where that is NaN), and W = Σ w_i (exact: integers below 2^53). */
export function samplingWeights(logits: Float32Array, temperature: number): { weights: Float64Array; total: number } {
  const n = logits.length;
  if (n >= MAX_SAMPLING_VOCAB) throw new RangeError(`sampling takes vocabularies below ${MAX_SAMPLING_VOCAB} tokens (its sums are exact integers in float64), got ${n}`);
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const weights = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const x = Math.exp((logits[i]! - max) / temperature) * WEIGHT_SCALE;
    weights[i] = x > 0 ? Math.floor(x + 0.5) : 0;
    total += weights[i]!;
  }
  return { weights, total };
}

/** The kept prefix of `order`: up to the first position whose running weight reaches target (all where none), and its weight. */
function nucleus(order: ArrayLike<number>, weights: Float64Array, target: number): { kept: number; mass: number } {
  let kept = 0;
  let mass = 0;
  while (kept < order.length && mass < target) mass += weights[order[kept++]!]!;
  return { kept: Math.max(kept, 1), mass: kept > 0 ? mass : weights[order[0]!]! };
}

/** The token at the first position (among the kept) whose running weight reaches draw · mass. */
function draw(order: ArrayLike<number>, kept: number, mass: number, weights: Float64Array, u: number): number {
  const target = u * mass;
  let cum = 0;
  for (let i = 0; i < kept; i++) {
    cum += weights[order[i]!]!;
    if (cum >= target) return order[i]!;
  }
  return order[kept - 1]!;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Every index of weights (non-negative, no NaN) in order of weight descending, ties by index ascending: an LSD radix
 * sort of the float64 bits (for non-negative floats their order as integers), 16 bits a pass, each pass stable.
 */
export function orderByWeight(weights: Float64Array): Uint32Array {
  const n = weights.length;
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!LITTLE_ENDIAN) return order.sort(byWeight(weights));
  const words = new Uint32Array(weights.buffer, weights.byteOffset, 2 * n); // [low, high] of each value
  let next = new Uint32Array(n);
  const counts = new Uint32Array(1 << 16);
  for (let pass = 0; pass < 4; pass++) {
    const word = pass >> 1, shift = (pass & 1) * 16;
    // descending: digit d sorts as 0xffff − d
    const digit = (i: number): number => 0xffff - ((words[2 * i + word]! >>> shift) & 0xffff);
    counts.fill(0);
    for (let k = 0; k < n; k++) counts[digit(order[k]!)]!++;
    let at = 0;
    for (let d = 0; d < counts.length; d++) {
      const c = counts[d]!;
      counts[d] = at;
      at += c;
    }
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      next[counts[digit(i)]!++] = i;
    }
    [order, next] = [next, order];
  }
  return order;
}
