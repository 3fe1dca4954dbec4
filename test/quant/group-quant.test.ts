import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chooseGroupScale,
  floatScaler,
  groupAbsMax,
  integerScaler,
  quantizeGroup,
  quantizeValue,
  quantizeWithScale,
} from '../../src/quant/group-quant.js';
import type { WeightBits } from '../../src/quant/types.js';
import { roundHalfEven } from '../../src/tensor/round.js';
import { freshSeed, makeRng, randomNormals } from '../helpers/random.js';

test('float scale is max|w|/qmax and quantization stays in the clamp range', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const bits of [4, 8] as WeightBits[]) {
    const qmax = bits === 4 ? 7 : 127;
    for (let trial = 0; trial < 50; trial++) {
      const values = randomNormals(rng, 64, 0.05);
      const { q, scale, intScale } = quantizeGroup(values, bits, floatScaler);
      assert.equal(intScale, undefined);
      assert.equal(scale, Math.fround(groupAbsMax(values) / qmax), `seed ${seed}`);
      let reachedMax = false;
      for (let i = 0; i < q.length; i++) {
        assert.ok(q[i]! >= -qmax && q[i]! <= qmax, `seed ${seed}: q=${q[i]}`);
        if (Math.abs(q[i]!) === qmax) reachedMax = true;
        assert.ok(Math.abs(values[i]! - q[i]! * scale) <= scale / 2 + 1e-12, `seed ${seed}: rounding error too big`);
      }
      assert.ok(reachedMax, `seed ${seed}: the largest magnitude should map to ±qmax`);
    }
  }
});

test('integer scale: S ≥ 1 for nonzero groups, used scale = S/α, q within the clamp', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const bits of [4, 8] as WeightBits[]) {
    for (const b of [0, 4, 10, 13]) {
      for (let trial = 0; trial < 30; trial++) {
        // scales spanning tiny (S rounds to 0 → clamped to 1) to large
        const values = randomNormals(rng, 32, 10 ** rng.int(-5, 1));
        const { q, scale, intScale } = quantizeGroup(values, bits, integerScaler(b));
        const s = Math.fround(groupAbsMax(values) / (bits === 4 ? 7 : 127));
        assert.ok(Number.isInteger(intScale) && intScale! >= 1, `seed ${seed}: S=${intScale}`);
        assert.equal(intScale, Math.max(1, roundHalfEven(s * 2 ** b)), `seed ${seed}`);
        assert.ok(Math.abs(intScale! - s * 2 ** b) <= 0.5 || intScale === 1, `seed ${seed}: S=${intScale} vs s·α=${s * 2 ** b}`);
        assert.equal(scale, intScale! / 2 ** b, `seed ${seed}: the used scale must be S/α`);
        const lo = bits === 4 ? -8 : -128;
        const hi = bits === 4 ? 7 : 127;
        for (let i = 0; i < q.length; i++) {
          assert.ok(q[i]! >= lo && q[i]! <= hi, `seed ${seed}: q=${q[i]}`);
          assert.equal(q[i], quantizeValue(values[i]!, scale, bits));
        }
      }
    }
  }
});

test('an all-zero group gets scale 0 (and S = 0) and quantizes to zeros', () => {
  const zeros = new Float32Array(16);
  assert.deepEqual(chooseGroupScale(integerScaler(10), 0, 4), { scale: 0, intScale: 0 });
  assert.deepEqual(chooseGroupScale(floatScaler, 0, 8), { scale: 0 });
  assert.deepEqual([...quantizeWithScale(zeros, 0, 4)], new Array(16).fill(0));
});

test('rounding is half-to-even and the clamp is asymmetric', () => {
  assert.equal(quantizeValue(2.5, 1, 4), 2);
  assert.equal(quantizeValue(3.5, 1, 4), 4);
  assert.equal(quantizeValue(-2.5, 1, 4), -2);
  assert.equal(quantizeValue(-9.7, 1, 4), -8);
  assert.equal(quantizeValue(9.7, 1, 4), 7);
  assert.equal(quantizeValue(-200, 1, 8), -128);
  assert.equal(quantizeValue(200, 1, 8), 127);
});

test('quantizeWithScale writes a sub-range into an output at an offset (the GPTQ column path)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const values = randomNormals(rng, 40);
  const out = new Int8Array(50).fill(99);
  quantizeWithScale(values, 0.3, 4, out, 8, 24, 2);
  for (let i = 0; i < 50; i++) {
    const expected = i >= 2 && i < 18 ? quantizeValue(values[i + 6]!, 0.3, 4) : 99;
    assert.equal(out[i], expected, `seed ${seed} at ${i}`);
  }
});
