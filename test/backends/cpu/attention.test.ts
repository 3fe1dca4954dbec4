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
import { plainAttentionRow } from '../../helpers/plain-attention.js';
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

test('the attention row kernel equals the header\'s arithmetic done one position at a time: the same float32 outputs (odd head dims, odd and even position counts, GQA, windows)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (let trial = 0; trial < 24; trial++) {
    const KVH = rng.int(1, 3), H = KVH * rng.int(1, 3), D = rng.int(1, 70), m = rng.int(1, 3), start = rng.int(0, 40);
    const window = rng.int(0, 1) === 0 ? 0 : rng.int(1, 12);
    const capacity = start + m;
    const random = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const keys = random(capacity * KVH * D), values = random(capacity * KVH * D), q = random(m * H * D);
    const out = new Float32Array(m * H * D);
    attentionRows({ q, keys, values, out, startPos: start, numHeads: H, numKvHeads: KVH, headDim: D, window }, 0, m * H);
    for (let r = 0; r < m; r++) for (let h = 0; h < H; h++) {
      const pos = start + r, first = window > 0 ? Math.max(0, pos - window + 1) : 0;
      const want = plainAttentionRow(q, (r * H + h) * D, keys, values, Math.floor(h / (H / KVH)) * D, KVH * D, first, pos, D);
      const got = out.subarray((r * H + h) * D, (r * H + h + 1) * D);
      assert.deepEqual(got, Float32Array.from(want), `seed ${seed}, trial ${trial}: H ${H}/${KVH}, D ${D}, row ${r}, head ${h}, positions ${first}..${pos}`);
    }
  }
});
