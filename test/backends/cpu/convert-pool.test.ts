/** float32 → binary16 over the CPU pool gives f32ToF16's bits for every element (normals, subnormals, zeros, overflow, NaN, ±∞). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f32ToF16 } from '../../../src/io/dtype.js';
import { f32ToF16OnPool } from '../../../src/backends/cpu/convert-pool.js';
import { sharedFloat32 } from '../../../src/tensor/shared.js';
import { freshSeed, makeRng } from '../../helpers/random.js';

test('f32ToF16OnPool equals f32ToF16 bit for bit on a long shared array with every kind of value, and on an unshared one', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const n = (3 << 20) + 7; // past the pool's split threshold, ragged
  const src = sharedFloat32(n);
  const specials = [0, -0, 1e-8, -3e-6, 6.1e-5, 65504, 65520, 1e6, -1e6, Infinity, -Infinity, NaN];
  for (let i = 0; i < n; i++) src[i] = i % 97 === 0 ? specials[(i / 97) % specials.length]! : rng.normal() * 10 ** rng.int(-6, 4);
  const want = f32ToF16(src);
  assert.deepEqual(f32ToF16OnPool(src), want, `seed ${seed}`);
  assert.deepEqual(f32ToF16OnPool(Float32Array.from(src.subarray(0, 1000))), want.subarray(0, 1000), 'unshared: this thread');
});
