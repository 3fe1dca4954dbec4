/**
 * sampleToken against its definition (sampleTokenBySort: the comparison sort of the whole vocabulary) on fresh
 * random logits: peaked (an LLM's shape), flat, and with many ties; temperatures and top-p from a tiny nucleus to
 * the whole vocabulary; the same generator state for both, so every draw must be the same token. And the radix
 * order against a comparison sort, ties included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { orderByProbability, sampleToken, sampleTokenBySort, seededRandom } from '../../src/model/sampling.js';
import { freshSeed } from '../helpers/random.js';

function logitsOf(kind: 'peaked' | 'flat' | 'ties', n: number, random: () => number): Float32Array {
  const normal = (): number => Math.sqrt(-2 * Math.log(Math.max(1e-12, random()))) * Math.cos(2 * Math.PI * random());
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = kind === 'peaked' ? 3 * normal() + (random() < 0.002 ? 14 * random() : 0) : kind === 'flat' ? 8 * random() - 4 : Math.round(4 * normal()) / 2;
  }
  return out;
}

test('sampleToken draws the token the comparison sort of the vocabulary draws (peaked, flat and tied logits; T 0.3-2; top-p 1e-6 to 1)', () => {
  const seed = freshSeed();
  const random = seededRandom(seed);
  let draws = 0;
  for (const n of [8, 1000, 32000]) {
    for (const kind of ['peaked', 'flat', 'ties'] as const) {
      const logits = logitsOf(kind, n, random);
      for (const [temperature, topP] of [[0.3, 0.5], [0.7, 0.9], [1, 0.95], [1, 1], [2, 0.99], [1, 1e-6]] as const) {
        const [a, b] = [seededRandom(seed + n), seededRandom(seed + n)];
        for (let k = 0; k < 6; k++, draws++) {
          assert.equal(sampleToken(logits, { temperature, topP }, a), sampleTokenBySort(logits, { temperature, topP }, b), `seed ${seed}: ${kind} n=${n} T=${temperature} top-p ${topP}, draw ${k}`);
        }
      }
    }
  }
  assert.equal(draws, 3 * 3 * 6 * 6);
});

test('sampleToken with a NaN logit keeps the comparison sort\'s token; temperature 0 is the argmax', () => {
  const logits = logitsOf('peaked', 500, seededRandom(4));
  logits[17] = NaN;
  const [a, b] = [seededRandom(9), seededRandom(9)];
  for (let k = 0; k < 5; k++) assert.equal(sampleToken(logits, { temperature: 1, topP: 0.9 }, a), sampleTokenBySort(logits, { temperature: 1, topP: 0.9 }, b));
  const clean = logitsOf('flat', 300, seededRandom(5));
  let best = 0;
  for (let i = 1; i < clean.length; i++) if (clean[i]! > clean[best]!) best = i;
  assert.equal(sampleToken(clean, { temperature: 0, topP: 0.9 }, () => assert.fail('greedy draws no random number')), best);
});

test('orderByProbability is the comparison sort\'s order: p descending, ties by index ascending', () => {
  const random = seededRandom(freshSeed());
  for (const n of [1, 7, 4096]) {
    // values from a small set (many ties), tiny and zero ones among them
    const probs = Float64Array.from({ length: n }, () => [0, 1, 0.5, 2 ** -40, 0.25 + random() * 1e-9, random()][Math.floor(random() * 6)]!);
    const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
    assert.deepEqual([...orderByProbability(probs)], want, `n=${n}`);
  }
});
