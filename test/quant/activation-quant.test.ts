import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quantizeActivations } from '../../src/quant/activation-quant.js';
import { roundHalfEven } from '../../src/tensor/round.js';
import { freshSeed, makeRng, randomNormals } from '../helpers/random.js';

test('per-token int8: scale is fround(max/127), values round half-even and stay in [-127, 127]', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const m = 7;
  const k = 45;
  const x = randomNormals(rng, m * k, 3);
  const { xq, scales } = quantizeActivations(x, m, k);
  for (let row = 0; row < m; row++) {
    let absMax = 0;
    for (let i = 0; i < k; i++) absMax = Math.max(absMax, Math.abs(x[row * k + i]!));
    assert.equal(scales[row], Math.fround(absMax / 127), `seed ${seed}`);
    let hitsMax = false;
    for (let i = 0; i < k; i++) {
      const v = xq[row * k + i]!;
      assert.ok(v >= -127 && v <= 127);
      assert.equal(v, Math.max(-127, Math.min(127, roundHalfEven(x[row * k + i]! / scales[row]!))) | 0, `seed ${seed}`);
      if (Math.abs(v) === 127) hitsMax = true;
    }
    assert.ok(hitsMax, `seed ${seed}: row ${row} should reach ±127`);
  }
});

test('an all-zero row gets scale 0 and zeros; ±max rows map to ±127', () => {
  const k = 8;
  const x = new Float32Array([
    0, 0, 0, 0, 0, 0, 0, 0,
    -5, 5, 2.5, -2.5, 0, 1, -1, 5,
    3.4028234663852886e38, -3.4028234663852886e38, 0, 1, 0, 0, 0, 0,
  ]);
  const { xq, scales } = quantizeActivations(x, 3, k);
  assert.equal(scales[0], 0);
  assert.deepEqual([...xq.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...xq.subarray(8, 16)], [-127, 127, 64, -64, 0, 25, -25, 127]);
  assert.equal(xq[16], 127);
  assert.equal(xq[17], -127);
  assert.ok(scales[2]! > 0 && Number.isFinite(scales[2]!));
});
