import assert from 'node:assert/strict';
import { test } from 'node:test';
import { interleavedColumn, stackLinears } from '../../src/quant/concat.js';
import { quantizeLinear } from '../../src/quant/quantize-linear.js';
import type { FloatLinear, LinearWeight, QuantSpec } from '../../src/quant/types.js';
import { linearOnce } from '../../src/model/prepare.js';
import { cpuBackend } from '../../src/backends/cpu/cpu-backend.js';
import { freshSeed, makeRng, randomNormals, type Rng } from '../helpers/random.js';

const K = 256;
const floatLayer = (rng: Rng, n: number, bias: boolean): FloatLinear => ({
  kind: 'float', n, k: K, w: randomNormals(rng, n * K, 0.05), ...(bias ? { bias: randomNormals(rng, n, 1) } : {}),
});
const W4A8_IS: QuantSpec = { wBits: 4, aBits: 8, groupSize: 64, scale: 'int', alpha: { kind: 'fixed', log2: 10 } };

/** Each part's y = x·Wᵀ (+ bias) on the CPU backend, and the stacked layer's, column block by column block (or interleaved in blocks of B rows). */
function assertStackedEqualsParts(parts: LinearWeight[], seed: number, B = 0): void {
  const stacked = stackLinears(parts, B > 0 ? { interleave: B } : {});
  assert.ok(stacked.ok, `seed ${seed}: ${stacked.ok ? '' : stacked.reason}`);
  const m = 5;
  const x = randomNormals(makeRng(seed + 1), m * K, 1);
  const N = parts.reduce((s, p) => s + p.n, 0);
  assert.equal(stacked.weight.n, N);
  const y = linearOnce(cpuBackend, stacked.weight, x, m);
  let at = 0;
  for (const [i, p] of parts.entries()) {
    const yp = linearOnce(cpuBackend, p, x, m);
    if (B > 0) {
      for (let r = 0; r < m; r++) {
        const got = Float32Array.from({ length: p.n }, (_, c) => y[r * N + interleavedColumn(c, i, parts.length, B)]!);
        assert.deepEqual(got, yp.subarray(r * p.n, (r + 1) * p.n), `seed ${seed}: part ${i}, row ${r} (interleaved by ${B})`);
      }
      continue;
    }
    for (let r = 0; r < m; r++) {
      assert.deepEqual(y.subarray(r * N + at, r * N + at + p.n), yp.subarray(r * p.n, (r + 1) * p.n), `seed ${seed}: part ${i}, row ${r}`);
    }
    at += p.n;
  }
}

test('stacked q/k/v-like layers give each part\'s output bit for bit: W4A8 integer scale, W8A8, float; biases on some parts only', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const shapes: [number, boolean][] = [[96, true], [32, false], [32, true]];
  const floats = shapes.map(([n, bias]) => floatLayer(rng, n, bias));
  assertStackedEqualsParts(floats, seed);
  assertStackedEqualsParts(floats.map((f) => quantizeLinear(f, W4A8_IS)), seed);
  assertStackedEqualsParts(floats.map((f) => quantizeLinear(f, { ...W4A8_IS, wBits: 8 })), seed);
  assertStackedEqualsParts(floats.map((f) => quantizeLinear(f, { ...W4A8_IS, scale: 'float' })), seed);
});

test('gate/up-like layers interleaved in blocks of 8 rows give each part\'s output bit for bit at its interleaved column: W4A8 IS and FS, W8A8, float; a bias on one part', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const floats = [floatLayer(rng, 48, true), floatLayer(rng, 48, false)];
  assertStackedEqualsParts(floats, seed, 8);
  assertStackedEqualsParts(floats.map((f) => quantizeLinear(f, W4A8_IS)), seed, 8);
  assertStackedEqualsParts(floats.map((f) => quantizeLinear(f, { ...W4A8_IS, wBits: 8 })), seed, 8);
  assertStackedEqualsParts(floats.map((f) => quantizeLinear(f, { ...W4A8_IS, scale: 'float' })), seed, 8);
  const s = stackLinears([floats[0]!, floatLayer(rng, 40, false)], { interleave: 8 });
  assert.equal(s.ok, false);
  assert.match(s.ok ? '' : s.reason, /equal N divisible by 8 \(48 vs 40\)/);
  assert.throws(() => stackLinears(floats, { interleave: 0.5 }), /positive integer/);
});

test('layers that cannot be one GEMM are refused with the reason: another amplifier, group size, K or precision', () => {
  const rng = makeRng(freshSeed());
  const a = floatLayer(rng, 32, false);
  const b = floatLayer(rng, 32, false);
  const reasonOf = (ws: LinearWeight[]) => {
    const s = stackLinears(ws);
    assert.equal(s.ok, false);
    return s.ok ? '' : s.reason;
  };
  assert.match(reasonOf([quantizeLinear(a, W4A8_IS), quantizeLinear(b, { ...W4A8_IS, alpha: { kind: 'fixed', log2: 8 } })]), /α 2\^10 vs .*α 2\^8/);
  assert.match(reasonOf([quantizeLinear(a, W4A8_IS), quantizeLinear(b, { ...W4A8_IS, groupSize: 128 })]), /G 64, .* vs .*G 128/);
  assert.match(reasonOf([a, { ...b, k: 128, w: b.w.subarray(0, 32 * 128) }]), /K 256 vs float, K 128/);
  assert.match(reasonOf([a, quantizeLinear(b, W4A8_IS)]), /float, K 256 vs W4A8/);
  assert.match(reasonOf([]), /no layers/);
});
