import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stackLinears } from '../../src/quant/concat.js';
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

/** Each part's y = x·Wᵀ (+ bias) on the CPU backend, and the stacked layer's, column block by column block. */
function assertStackedEqualsParts(parts: LinearWeight[], seed: number): void {
  const stacked = stackLinears(parts);
  assert.ok(stacked.ok, `seed ${seed}: ${stacked.ok ? '' : stacked.reason}`);
  const m = 5;
  const x = randomNormals(makeRng(seed + 1), m * K, 1);
  const N = parts.reduce((s, p) => s + p.n, 0);
  assert.equal(stacked.weight.n, N);
  const y = linearOnce(cpuBackend, stacked.weight, x, m);
  let at = 0;
  for (const [i, p] of parts.entries()) {
    const yp = linearOnce(cpuBackend, p, x, m);
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
