/**
 * pickToken against its definition by a comparison sort of the vocabulary (pickTokenBySort) on fresh random logits:
 * peaked (an LLM's shape), flat, and with many ties; temperatures and top-p from a tiny nucleus to the whole
 * vocabulary; the same draws for both, so every pick must be the same token. The integer definition against the
 * real-valued distribution: each token's share of a fine sweep of draws is its probability within the nucleus (to the
 * stated 2^-35 and the sweep's step), and the nucleus is the real top-p one. sampleToken's use of its generator, the
 * rows without a finite logit, argmax's NaN rule, the radix order against a comparison sort, ties included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, MAX_SAMPLING_VOCAB, orderByWeight, pickToken, pickTokenBySort, sampleToken, samplingWeights, seededRandom } from '../../src/model/sampling.js';
import { LOGIT_SHAPES, randomLogits } from '../../bench/random-logits.js';
import { freshSeed } from '../helpers/random.js';

test('pickToken picks the token the comparison sort of the vocabulary picks (peaked, flat and tied logits; T 0.3-2; top-p 1e-6 to 1)', () => {
  const seed = freshSeed();
  const random = seededRandom(seed);
  let picks = 0;
  for (const n of [8, 1000, 32000]) {
    for (const kind of LOGIT_SHAPES) {
      const logits = randomLogits(kind, n, random);
      for (const [temperature, topP] of [[0.3, 0.5], [0.7, 0.9], [1, 0.95], [1, 1], [2, 0.99], [1, 1e-6]] as const) {
        for (let k = 0; k < 6; k++, picks++) {
          const pick = { temperature, topP, draw: k === 0 ? 0 : k === 1 ? 1 - 2 ** -53 : random() };
          assert.equal(pickToken(logits, pick), pickTokenBySort(logits, pick), `seed ${seed}: ${kind} n=${n} T=${temperature} top-p ${topP}, draw ${pick.draw}`);
        }
      }
    }
  }
  assert.equal(picks, 3 * 3 * 6 * 6);
});

test('the integer definition is the real-valued one: the nucleus is the top-p set, and a sweep of draws gives each kept token its share within 2^-35 and the step', () => {
  const seed = freshSeed();
  const random = seededRandom(seed);
  for (let trial = 0; trial < 20; trial++) {
    const n = 2 + Math.floor(random() * 12);
    const logits = randomLogits('peaked', n, random);
    const temperature = 0.3 + 1.5 * random(), topP = 0.2 + 0.8 * random();
    // real-valued: p_i = e^((l_i − max)/T), the order by p, the kept prefix while the kept mass is below topP·S
    let max = -Infinity;
    for (const l of logits) max = Math.max(max, l);
    const p = Array.from(logits, (l) => Math.exp((l - max) / temperature));
    const S = p.reduce((a, b) => a + b, 0);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
    const kept: number[] = [];
    let mass = 0;
    for (const i of order) {
      if (mass >= topP * S) break;
      kept.push(i);
      mass += p[i]!;
    }
    // a boundary within rounding of topP·S could go either way: skip such draws of the test's parameters
    const edge = Math.min(...order.map((_, k) => Math.abs(order.slice(0, k + 1).reduce((a, i) => a + p[i]!, 0) - topP * S)));
    if (edge < 1e-6 * S) continue;
    const steps = 1 << 14;
    const counts = new Map<number, number>();
    for (let s = 0; s < steps; s++) {
      const t = pickToken(logits, { temperature, topP, draw: (s + 0.5) / steps });
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort((a, b) => a - b), [...kept].sort((a, b) => a - b), `seed ${seed} trial ${trial}: the tokens drawn are the nucleus`);
    for (const i of kept) {
      const share = counts.get(i)! / steps, want = p[i]! / mass;
      assert.ok(Math.abs(share - want) <= 1 / steps + 2 ** -35 * n, `seed ${seed} trial ${trial}: token ${i} drawn ${share}, its probability in the nucleus ${want}`);
    }
  }
});

test('sampleToken takes one draw from its generator when sampling and none when greedy; draw 0 takes the most likely token', () => {
  const logits = randomLogits('flat', 300, seededRandom(5));
  assert.equal(sampleToken(logits, { temperature: 0, topP: 0.9 }, () => assert.fail('greedy draws no random number')), argmax(logits));
  let draws = 0;
  const token = sampleToken(logits, { temperature: 1, topP: 0.9 }, () => (draws++, 0.25));
  assert.deepEqual([draws, token], [1, pickToken(logits, { temperature: 1, topP: 0.9, draw: 0.25 })]);
  // draw 0 takes the most likely token (the first in the order)
  assert.equal(pickToken(logits, { temperature: 1, topP: 0.9, draw: 0 }), argmax(logits));
});

test('logits that are not all numbers: a NaN logit weighs 0 and is never drawn; a row without a finite largest logit picks argmax\'s token', () => {
  const logits = randomLogits('peaked', 500, seededRandom(4));
  logits[17] = NaN;
  const { weights, total } = samplingWeights(logits, 1);
  assert.equal(weights[17], 0);
  assert.ok(total > 0);
  for (let k = 0; k < 200; k++) assert.notEqual(pickToken(logits, { temperature: 1, topP: 1, draw: k / 200 }), 17);
  const inf = Float32Array.from([1, Infinity, 3, Infinity]);
  assert.equal(pickToken(inf, { temperature: 1, topP: 0.9, draw: 0.7 }), 1);
  assert.equal(pickToken(Float32Array.from([NaN, NaN]), { temperature: 1, topP: 0.9, draw: 0.7 }), 0);
  assert.equal(pickToken(Float32Array.from([-Infinity, -Infinity, -Infinity]), { temperature: 1, topP: 0.9, draw: 0.7 }), 0);
});

test('argmax: the first index of the largest logit; NaN is never the largest (the device\'s rule)', () => {
  assert.equal(argmax(Float32Array.from([NaN, 1, 2, 2])), 2);
  assert.equal(argmax(Float32Array.from([3, NaN, 3])), 0);
  assert.equal(argmax(Float32Array.from([NaN, NaN])), 0);
  assert.equal(argmax(Float32Array.from([-Infinity, 5, Infinity, Infinity])), 2);
});

test('orderByWeight is the comparison sort\'s order: weight descending, ties by index ascending; a vocabulary past 2^19 is refused', () => {
  const random = seededRandom(freshSeed());
  for (const n of [1, 7, 4096]) {
    // integer weights from a small set (many ties), zero ones among them
    const weights = Float64Array.from({ length: n }, () => [0, 1, 2 ** 34, 2 ** 33, 3 + Math.floor(random() * 4), Math.floor(random() * 2 ** 34)][Math.floor(random() * 6)]!);
    const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => weights[b]! - weights[a]! || a - b);
    assert.deepEqual([...orderByWeight(weights)], want, `n=${n}`);
  }
  assert.throws(() => samplingWeights(new Float32Array(MAX_SAMPLING_VOCAB), 1), /vocabularies below 524288 tokens/);
});
