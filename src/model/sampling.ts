/**
 * Next-token choice from logits: greedy (temperature 0) or temperature + nucleus (top-p) sampling
 * with a seeded generator, so a run with the same seed repeats exactly.
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

export function sampleToken(logits: Float32Array, options: SamplingOptions, random: () => number): number {
  if (options.temperature <= 0) return argmax(logits);
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]);
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    probs[i] = Math.exp((logits[i] - max) / options.temperature);
    sum += probs[i];
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  let kept = 0;
  let mass = 0;
  while (kept < n && mass < options.topP * sum) mass += probs[order[kept++]];
  let r = random() * mass;
  for (let i = 0; i < kept; i++) {
    r -= probs[order[i]];
    if (r <= 0) return order[i];
  }
  return order[kept - 1];
}
