import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lazyUpdateF64 } from '../../src/quant/methods/gptq.js';
import { lazyUpdateMatmul } from '../../src/quantize/gptq-products.js';
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
