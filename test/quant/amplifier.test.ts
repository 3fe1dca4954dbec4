import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { amplifiedScales, chooseAlpha, heuristicAlphaLog2, isOverflowSafe, type LayerScales } from '../../src/quant/amplifier.js';
import { maxChannelBound, proveNoOverflow } from '../../src/quant/overflow.js';
import { quantizeLinear, quantizeLinearReport } from '../../src/quant/quantize-linear.js';
import type { FloatLinear } from '../../src/quant/types.js';
import { freshSeed, makeRng, randomNormals } from '../helpers/random.js';

test('heuristic: the smallest b ≥ 0 making every nonzero amplified scale ≥ 1', () => {
  assert.equal(heuristicAlphaLog2(new Float32Array([0.5, 0.001, 0, 3])), 10); // 0.001·2^10 = 1.024
  assert.equal(heuristicAlphaLog2(new Float32Array([2 ** -10, 0.2])), 10); // exactly 1 at b = 10
  assert.equal(heuristicAlphaLog2(new Float32Array([Math.fround(2 ** -10 * 0.999)])), 11);
  assert.equal(heuristicAlphaLog2(new Float32Array([1.5, 7])), 0);
  assert.equal(heuristicAlphaLog2(new Float32Array([0, 0])), 0);
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (let t = 0; t < 100; t++) {
    const scales = new Float32Array(20).map(() => Math.fround(10 ** (rng.uniform() * 6 - 5)));
    const b = heuristicAlphaLog2(scales);
    const min = Math.min(...scales);
    assert.ok(min * 2 ** b >= 1 && (b === 0 || min * 2 ** (b - 1) < 1), `seed ${seed}: b=${b} min=${min}`);
  }
});

/** A layer whose weights are large enough that α = 2^10 breaks the int32 bound (K = 256, G = 32). */
function largeLayer(seed: number): FloatLinear {
  const rng = makeRng(seed);
  const n = 6;
  const k = 256;
  return { kind: 'float', n, k, w: randomNormals(rng, n * k, 40) };
}

test('safe policy lowers α exactly as far as needed where fixed 2^10 would overflow', () => {
  const seed = freshSeed();
  const w = largeLayer(seed);
  const spec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'int' } as const;
  const fixed = quantizeLinear(w, { ...spec, alpha: { kind: 'fixed', log2: 10 } });
  const fixedProof = proveNoOverflow(fixed);
  assert.equal(fixedProof.safe, false, `seed ${seed}: fixed 2^10 should break the bound (${fixedProof.maxBound})`);

  const { layer, alpha } = quantizeLinearReport(w, { ...spec, alpha: { kind: 'safe', maxLog2: 10 } });
  assert.ok(alpha);
  assert.equal(alpha.lowered, true);
  assert.equal(alpha.requestedLog2, 10);
  assert.ok(alpha.alphaLog2 < 10);
  assert.equal(layer.alphaLog2, alpha.alphaLog2);
  const proof = proveNoOverflow(layer);
  assert.ok(proof.safe && proof.maxBound < 2 ** 31, `seed ${seed}: ${proof.maxBound}`);
  // the largest safe b: one more doubling breaks it.
  const floatScales = quantizeLinear(w, { ...spec, scale: 'float', alpha: { kind: 'heuristic' } }).scales;
  const shape: LayerScales = { scales: floatScales, n: w.n, groupCount: 8, groupSize: 32, wBits: 4 };
  assert.equal(isOverflowSafe(shape, alpha.alphaLog2), true);
  assert.equal(isOverflowSafe(shape, alpha.alphaLog2 + 1), false);
  // the bound on the stored integer scales is the bound the policy checked.
  const S = amplifiedScales(floatScales, alpha.alphaLog2);
  assert.deepEqual(maxChannelBound(S, w.n, 8, 32, 4).maxBound, proof.maxBound);
});

test('safe policy keeps α when the layer is small, and reports not lowered', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const w: FloatLinear = { kind: 'float', n: 8, k: 128, w: randomNormals(rng, 8 * 128, 0.02) };
  const { alpha } = quantizeLinearReport(w, { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 13 } });
  assert.deepEqual(alpha && [alpha.alphaLog2, alpha.lowered], [13, false]);
});

test('safe policy throws an InputError when even α = 1 overflows', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const w: FloatLinear = { kind: 'float', n: 2, k: 64, w: randomNormals(rng, 128, 1e6) };
  assert.throws(
    () => quantizeLinear(w, { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } }, 'blk.0.up'),
    (e: unknown) => e instanceof InputError && /blk\.0\.up cannot be made overflow-safe/.test(e.message) && /≥ 2\^31/.test(e.message),
  );
});

test('fixed policy uses the given b and rejects nonsense', () => {
  const layer: LayerScales = { scales: new Float32Array([0.01]), n: 1, groupCount: 1, groupSize: 32, wBits: 4 };
  assert.deepEqual(chooseAlpha(layer, { kind: 'fixed', log2: 13 }).alphaLog2, 13);
  assert.throws(() => chooseAlpha(layer, { kind: 'fixed', log2: 2.5 }), InputError);
  assert.throws(() => chooseAlpha(layer, { kind: 'safe', maxLog2: -1 }), InputError);
});
