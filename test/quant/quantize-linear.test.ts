import assert from 'node:assert/strict';
import { weightAt } from '../../src/quant/int4-pack.js';
import { test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { asymmetricFakeQuant } from '../../src/quant/asymmetric.js';
import { groupAbsMax } from '../../src/quant/group-quant.js';
import { dequantize, dequantizeRow, meanSquaredError, quantizeLinear, quantizeLinearReport, weightMse } from '../../src/quant/quantize-linear.js';
import { EMBEDDING_SPEC } from '../../src/quantize/recipe.js';
import type { FloatLinear, QuantSpec } from '../../src/quant/types.js';
import { roundHalfEven } from '../../src/tensor/round.js';
import { freshSeed, makeRng, randomNormals } from '../helpers/random.js';

function randomLayer(seed: number, n: number, k: number, std = 0.02): FloatLinear {
  const rng = makeRng(seed);
  const w = randomNormals(rng, n * k, std);
  for (let row = 0; row < n; row++) w[row * k + rng.int(0, k - 1)]! *= 8; // an outlier per row
  return { kind: 'float', n, k, w };
}

const W4A8_IS: QuantSpec = { wBits: 4, aBits: 8, groupSize: 64, scale: 'int', alpha: { kind: 'fixed', log2: 10 } };

test('integer-scale layer: S ≥ 1, scales = S/α, q within the clamp and equal to RTN with S/α', () => {
  const seed = freshSeed();
  const w = randomLayer(seed, 9, 192);
  const layer = quantizeLinear(w, W4A8_IS);
  assert.equal(layer.alphaLog2, 10);
  assert.equal(layer.groupSize, 64);
  const S = layer.intScales!;
  assert.equal(S.length, 9 * 3);
  for (let i = 0; i < S.length; i++) {
    assert.ok(S[i]! >= 1, `seed ${seed}`);
    assert.equal(layer.scales[i], S[i]! / 1024);
    const s = Math.fround(groupAbsMax(w.w, i * 64, i * 64 + 64) / 7);
    assert.equal(S[i], Math.max(1, roundHalfEven(s * 1024)), `seed ${seed}`);
    for (let k = i * 64; k < i * 64 + 64; k++) {
      const q = weightAt(layer, 0, k);
      assert.ok(q >= -8 && q <= 7);
      assert.equal(q, Math.max(-8, Math.min(7, roundHalfEven(w.w[k]! / layer.scales[i]!))) | 0, `seed ${seed}`);
    }
  }
});

test('per-channel (groupSize 0) means one group of K', () => {
  const seed = freshSeed();
  const layer = quantizeLinear(randomLayer(seed, 4, 96), { ...W4A8_IS, groupSize: 0 });
  assert.equal(layer.groupSize, 96);
  assert.equal(layer.scales.length, 4);
});

test('K not a multiple of G is an InputError naming K and G', () => {
  const w = randomLayer(freshSeed(), 2, 96);
  assert.throws(
    () => quantizeLinear(w, { ...W4A8_IS, groupSize: 64 }, 'layers.3.mlp.up_proj'),
    (e: unknown) => e instanceof InputError && /K = 96/.test(e.message) && /G = 64/.test(e.message) && e.tensor === 'layers.3.mlp.up_proj',
  );
});

test('weight MSE: integer scale at 2^10 is close to float scale; 8-bit far below 4-bit', () => {
  const seed = freshSeed();
  const w = randomLayer(seed, 32, 256);
  const floatMse = weightMse(w, quantizeLinear(w, { ...W4A8_IS, scale: 'float' }));
  const intMse = weightMse(w, quantizeLinear(w, W4A8_IS));
  const int8Mse = weightMse(w, quantizeLinear(w, { ...W4A8_IS, wBits: 8, scale: 'float' }));
  let variance = 0;
  for (const v of w.w) variance += v * v;
  variance /= w.w.length;
  assert.ok(floatMse < variance * 0.05, `seed ${seed}: 4-bit MSE ${floatMse} vs variance ${variance}`);
  assert.ok(Math.abs(intMse - floatMse) < floatMse * 0.05, `seed ${seed}: int ${intMse} vs float ${floatMse}`);
  assert.ok(int8Mse < floatMse / 100, `seed ${seed}`);
  // heuristic α on these weights (s ≈ 0.02·4/7) is small and loses accuracy against 2^10
  const { alpha } = quantizeLinearReport(w, { ...W4A8_IS, alpha: { kind: 'heuristic' } });
  assert.ok(alpha && alpha.alphaLog2 >= 4 && alpha.alphaLog2 <= 9, `seed ${seed}: heuristic b = ${alpha?.alphaLog2}`);
});

test('dequantize is q·scale per group', () => {
  const seed = freshSeed();
  const layer = quantizeLinear(randomLayer(seed, 3, 64), { ...W4A8_IS, groupSize: 32 });
  const d = dequantize(layer);
  for (let i = 0; i < d.length; i++) assert.equal(d[i], Math.fround(weightAt(layer, Math.floor(i / layer.k), i % layer.k) * layer.scales[Math.floor(i / 32)]!));
});

test('asymmetric baseline: beats symmetric on shifted weights, values lie on the grid', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const n = 8;
  const k = 128;
  const w: FloatLinear = { kind: 'float', n, k, w: randomNormals(rng, n * k, 0.1).map((v) => v + 1) };
  const asym = asymmetricFakeQuant(w, 4, 32);
  const sym = weightMse(w, quantizeLinear(w, { ...W4A8_IS, scale: 'float', groupSize: 32 }));
  assert.ok(asym.mse < sym, `seed ${seed}: asymmetric ${asym.mse} vs symmetric ${sym}`);
  assert.equal(asym.mse, meanSquaredError(w.w, asym.dequantized));
  // 4-bit: at most 16 distinct values per group
  for (let g = 0; g < (n * k) / 32; g++) {
    assert.ok(new Set(asym.dequantized.subarray(g * 32, g * 32 + 32)).size <= 16);
  }
  assert.throws(() => asymmetricFakeQuant(w, 4, 48), InputError);
});

test('dequantizeRow gives the rows of dequantize (W4 g32 IS, W8 per-channel FS: the 8-bit embedding), fresh random weights', () => {
  const rng = makeRng(freshSeed());
  for (const spec of [
    { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'fixed', log2: 10 } },
    EMBEDDING_SPEC,
  ] as QuantSpec[]) {
    const [n, k] = [7, 96];
    const w: FloatLinear = { kind: 'float', n, k, w: Float32Array.from(randomNormals(rng, n * k)) };
    const layer = quantizeLinear(w, spec);
    const all = dequantize(layer);
    for (const row of [0, 3, n - 1]) {
      assert.deepEqual(dequantizeRow(layer, row, new Float32Array(k)), all.subarray(row * k, (row + 1) * k), `row ${row} W${spec.wBits}`);
    }
    if (spec === EMBEDDING_SPEC) {
      // int8 per row: every value within half a step (max|row| / 254) of the float one
      for (let row = 0; row < n; row++) {
        const orig = w.w.subarray(row * k, (row + 1) * k);
        const step = orig.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127;
        orig.forEach((v, i) => assert.ok(Math.abs(all[row * k + i]! - v) <= step / 2 * (1 + 1e-6), `row ${row} col ${i}`));
      }
    }
  }
});
