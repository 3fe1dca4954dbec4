/**
 * CPU attention split over the worker pool by (token, head) rows gives the single-thread result bit
 * for bit (each row's float64 arithmetic is the same in any thread): grouped-query, a sliding
 * window, a cache already holding positions, ragged head sizes, fresh random inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionRows } from '../../../src/backends/cpu/attention-kernel.js';
import { attention } from '../../../src/backends/cpu/ops.js';
import { sharedFloat32 } from '../../../src/tensor/shared.js';
import { freshSeed, makeRng } from '../../helpers/random.js';

function shared(values: Float32Array): Float32Array {
  const s = sharedFloat32(values.length);
  s.set(values);
  return s;
}

for (const window of [null, 37]) {
  test(`attention on the pool equals one thread bit for bit (GQA 6/2 heads of 40, 3 new tokens after 300, window ${window})`, () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const [H, KVH, D, start, m, capacity] = [6, 2, 40, 300, 3, 320];
    const random = (n: number) => shared(Float32Array.from({ length: n }, () => rng.normal()));
    const keys = random(capacity * KVH * D);
    const values = random(capacity * KVH * D);
    const q = random(m * H * D);
    const k = random(m * KVH * D);
    const v = random(m * KVH * D);
    const cache = { keys, values, capacity };
    const got = attention(q, k, v, m, start, cache, { numHeads: H, numKvHeads: KVH, headDim: D, slidingWindow: window });
    const want = new Float32Array(m * H * D);
    attentionRows({ q, keys, values, out: want, startPos: start, numHeads: H, numKvHeads: KVH, headDim: D, window: window ?? 0 }, 0, m * H);
    assert.deepEqual(got, want, `seed ${seed}`);
    assert.ok(want.some((x) => x !== 0));
  });
}
