/**
 * Next-token choice from logits: greedy (temperature 0) or temperature + nucleus (top-p) sampling
 * with a seeded generator, so a run with the same seed repeats exactly.
 *
 * Nucleus sampling, exactly: p_i = e^((logit_i − max) / T) in float64, S = Σ p_i in index order; the tokens
 * in order of p descending (ties: the lower index first) are kept while the mass kept so far (added in
 * that order) is below topP·S; then r = random()·mass, and the first kept token at which r minus the kept
 * probabilities so far reaches 0 is drawn. Only the kept prefix of that order matters, so sampleToken first
 * sorts the tokens whose p is at least 2^-6 of the largest, 1 (every token below comes after all of them in
 * the order; where they are at most an eighth of the vocabulary) and takes the whole order, by a stable radix
 * sort of p's bits, only where the prefix does not end among them: the same token as a comparison sort of the
 * vocabulary, sooner (bench/sampling.ts).
 */
import { seededRandom } from '../tensor/random.js';

export { seededRandom };

export interface SamplingOptions {
  /** 0 = greedy. */
  readonly temperature: number;
  /** nucleus: sample among the most likely tokens whose probabilities sum to at least topP. */
  readonly topP: number;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * The first try's candidates: tokens with p of at least this (e^-4.2). The largest p is 1 wherever no p is NaN: the
 * largest logit's own e^0.
 */
const CANDIDATE_THRESHOLD = 2 ** -6;

/** The order of the nucleus as a comparator: p descending, ties by index ascending. */
const byProbability = (probs: Float64Array) => (a: number, b: number): number => probs[b]! - probs[a]! || a - b;

export function sampleToken(logits: Float32Array, options: SamplingOptions, random: () => number): number {
  if (options.temperature <= 0) return argmax(logits);
  const n = logits.length;
  const { probs, sum } = probabilities(logits, options.temperature);
  const target = options.topP * sum;
  if (!Number.isNaN(sum)) {
    const first: number[] = [];
    for (let i = 0; i < n; i++) if (probs[i]! >= CANDIDATE_THRESHOLD) first.push(i);
    // a flat distribution's candidates are most of the vocabulary: the radix sort below is sooner than sorting them
    if (first.length <= n / 8) {
      first.sort(byProbability(probs));
      const { kept, mass } = nucleus(first, probs, target);
      // the prefix ends among the candidates, or nothing is below them: the whole order's prefix
      if (mass >= target || first.length === n) return draw(first, kept, mass, probs, random);
    }
  }
  // a NaN p leaves the order to the comparison sort, as it always has
  const order = Number.isNaN(sum) ? Array.from({ length: n }, (_, i) => i).sort(byProbability(probs)) : orderByProbability(probs);
  const { kept, mass } = nucleus(order, probs, target);
  return draw(order, kept, mass, probs, random);
}

/**
 * The definition sampleToken keeps, by a comparison sort of the whole vocabulary (what it was until 2026-12-07): the
 * reference its tests and bench/sampling.ts compare against.
 */
export function sampleTokenBySort(logits: Float32Array, options: SamplingOptions, random: () => number): number {
  if (options.temperature <= 0) return argmax(logits);
  const { probs, sum } = probabilities(logits, options.temperature);
  const order = Array.from({ length: logits.length }, (_, i) => i).sort(byProbability(probs));
  const { kept, mass } = nucleus(order, probs, options.topP * sum);
  return draw(order, kept, mass, probs, random);
}

/** p_i = e^((logit_i − max) / T) in float64, and S = Σ p_i added in index order. */
function probabilities(logits: Float32Array, temperature: number): { probs: Float64Array; sum: number } {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]!);
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    probs[i] = Math.exp((logits[i]! - max) / temperature);
    sum += probs[i]!;
  }
  return { probs, sum };
}

/** The kept prefix of `order`: its length and mass (added in order) once the mass reaches target (or the order ends). */
function nucleus(order: ArrayLike<number>, probs: Float64Array, target: number): { kept: number; mass: number } {
  let kept = 0;
  let mass = 0;
  while (kept < order.length && mass < target) mass += probs[order[kept++]!]!;
  return { kept, mass };
}

/** r = random()·mass, then the first of the kept tokens (in order) at which r minus their probabilities reaches 0. */
function draw(order: ArrayLike<number>, kept: number, mass: number, probs: Float64Array, random: () => number): number {
  let r = random() * mass;
  for (let i = 0; i < kept; i++) {
    r -= probs[order[i]!]!;
    if (r <= 0) return order[i]!;
  }
  return order[kept - 1]!;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Every index of probs (non-negative, no NaN) in order of p descending, ties by index ascending: an LSD radix sort
 * of the float64 bits (for non-negative floats their order as integers), 16 bits a pass, each pass stable.
 */
export function orderByProbability(probs: Float64Array): Uint32Array {
  const n = probs.length;
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!LITTLE_ENDIAN) return order.sort(byProbability(probs));
  const words = new Uint32Array(probs.buffer, probs.byteOffset, 2 * n); // [low, high] of each value
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
