/** copyRowsOnPool gives src's rows on any thread count, shared or not. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyRowsOnPool } from '../../../src/backends/cpu/copy-pool.js';
import { CpuPool } from '../../../src/backends/cpu/pool/index.js';
import { sharedFloat32 } from '../../../src/tensor/shared.js';
import { freshSeed, makeRng } from '../../helpers/random.js';

const pool = new CpuPool({ threads: 3 });
after(() => pool.close());

test('copyRowsOnPool copies rows split over the pool (ragged rows, fresh shared output), and unshared arrays on this thread', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [rows, n] = [301, 1023];
  const src = sharedFloat32(rows * n + 7);
  for (let i = 0; i < src.length; i++) src[i] = rng.normal();
  const want = Float32Array.from(src.subarray(0, rows * n));
  const dst = sharedFloat32(rows * n);
  copyRowsOnPool(src, dst, rows, n, pool);
  assert.deepEqual(dst, Float32Array.from(want) as unknown as Float32Array, `seed ${seed}`);
  const plain = new Float32Array(rows * n);
  copyRowsOnPool(Float32Array.from(src), plain, rows, n, pool);
  assert.deepEqual(plain, want);
  const one = sharedFloat32(rows * n);
  copyRowsOnPool(src, one, rows, n, null);
  assert.deepEqual(Float32Array.from(one), want);
});
