import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_GPTQ, gptqQuantizeLinear, lazyUpdateF64, SERIAL_GPTQ } from '../../src/quant/methods/gptq.js';
import { cpuPool } from '../../src/backends/cpu/pool/index.js';
import type { FloatLinear, QuantSpec } from '../../src/quant/types.js';
import { HessianAccumulator, JS_HESSIAN_PRODUCT } from '../../src/quant/methods/hessian.js';
import { gptqKernelsCpu, hessianProductMatmul, lazyUpdateMatmul } from '../../src/quantize/gptq-products.js';
import { freshSeed, makeRng, randomNormals } from '../helpers/random.js';

test('the lazy block update on the CPU matmul equals the float64 reference within float32 rounding, block after block (ragged sizes)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [n, k, B] = [37, 203, 48];
  const u = Float64Array.from(randomNormals(rng, k * k, 0.3));
  const start = Float64Array.from(randomNormals(rng, n * k));
  const [a, b] = [start.slice(), start.slice()];
  const fast = lazyUpdateMatmul();
  for (let i1 = 0; i1 + 1 < k; i1 += B) {
    const i2 = Math.min(i1 + B, k);
    const err = Float64Array.from(randomNormals(rng, n * (i2 - i1)));
    lazyUpdateF64(a, n, k, err, u, i1, i2);
    fast(b, n, k, err, u, i1, i2);
    for (let i = 0; i < n * k; i++) {
      assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5 * (1 + Math.abs(a[i]!)), `seed ${seed}, block at ${i1}: W[${i}] = ${b[i]} vs ${a[i]}`);
    }
  }
  assert.ok(a.some((v, i) => v !== start[i]), 'the update changed W');
});

test('the Hessian on the CPU matmul equals the float64 one within float32 rounding (ragged k and batches, one row, row blocks)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [k, batches] of [[37, [5, 1, 130]], [203, [64, 3]], [9, [1]]] as const) {
    const exact = new HessianAccumulator(k);
    const fast = new HessianAccumulator(k, hessianProductMatmul());
    let bound = 0;
    for (const m of batches) {
      const x = Float32Array.from(randomNormals(rng, m * k));
      exact.add(x, m);
      fast.add(x, m);
      for (const v of x) bound = Math.max(bound, v * v);
    }
    const [a, b] = [exact.hessian(), fast.hessian()];
    const tokens = batches.reduce((s, m) => s + m, 0);
    assert.equal(fast.tokens, tokens);
    for (let i = 0; i < k * k; i++) {
      // each entry is (2/T)·Σ_t x_ti·x_tj: float32 sums of at most T terms of size ≤ bound
      assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-6 * 2 * bound + 1e-6 * Math.abs(a[i]!), `seed ${seed}, k ${k}: H[${i}] = ${b[i]} vs ${a[i]}`);
      assert.equal(b[i], b[(i % k) * k + Math.floor(i / k)], 'symmetric');
    }
  }
});

test('the matmul Hessian product reuses its scratch when a larger layer comes and goes (blocks of rows past 16 MB)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const product = hessianProductMatmul();
  for (const k of [64, 4100, 64]) {
    const m = 2;
    const x = Float32Array.from(randomNormals(rng, m * k));
    const fast = new Float64Array(k * k), exact = new Float64Array(k * k);
    product(x, m, k, fast);
    JS_HESSIAN_PRODUCT(x, m, k, exact);
    for (let i = 0; i < k; i++) {
      for (let j = i; j < k; j += 97) assert.ok(Math.abs(fast[i * k + j]! - exact[i * k + j]!) <= 1e-5 * (1 + Math.abs(exact[i * k + j]!)), `seed ${seed}, k ${k}: (${i}, ${j})`);
      for (let j = 0; j < i; j += 97) assert.equal(fast[i * k + j], 0, 'nothing below the diagonal');
    }
  }
});

test("GPTQ's block rows split over the CPU pool give the serial loop's layer bit for bit (ragged rows and columns, act-order, IS)", (t) => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [n, k] = [133, 174];
  t.diagnostic(`pool threads: ${cpuPool().threads}`);
  const w: FloatLinear = { kind: 'float', n, k, w: randomNormals(rng, n * k, 0.05) };
  const acc = new HessianAccumulator(k);
  acc.add(Float32Array.from(randomNormals(rng, 300 * k)), 300);
  const h = acc.hessian();
  const spec: QuantSpec = { wBits: 4, aBits: 8, groupSize: 29, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };
  const pooled = { ...SERIAL_GPTQ, blockRows: gptqKernelsCpu().blockRows };
  for (const actOrder of [false, true]) {
    const settings = { ...DEFAULT_GPTQ, actOrder, blockSize: 48 };
    assert.deepEqual(gptqQuantizeLinear(w, h, spec, settings, 'x', pooled).layer, gptqQuantizeLinear(w, h, spec, settings, 'x').layer, `seed ${seed}`);
  }
});
