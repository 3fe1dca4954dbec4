/** W·diag(s) split over the CPU pool gives the one-thread bits, shared or not. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scaleColumnsOnPool } from '../../../src/backends/cpu/column-scale-pool.js';
import { scaleColumnsRows } from '../../../src/quant/column-scale.js';
import { sharedFloat32 } from '../../../src/tensor/shared.js';
import { freshSeed, makeRng } from '../../helpers/random.js';

test('scaleColumnsOnPool equals scaleColumnsRows on one thread (a layer large enough to split, ragged rows; and unshared arrays)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [n, k] = [1029, 1024];
  const w = sharedFloat32(n * k);
  const s = sharedFloat32(k);
  for (let i = 0; i < w.length; i++) w[i] = rng.normal();
  for (let i = 0; i < k; i++) s[i] = 0.1 + rng.uniform();
  assert.ok(w.buffer instanceof SharedArrayBuffer && s.buffer instanceof SharedArrayBuffer, 'shared: the pool splits the rows');
  const want = new Float32Array(n * k);
  scaleColumnsRows({ w, s, out: want, k }, 0, n);
  const got = sharedFloat32(n * k);
  scaleColumnsOnPool({ w, s, out: got, k }, n);
  assert.deepEqual(got, Float32Array.from(want), `seed ${seed}`);
  const plain = new Float32Array(n * k);
  scaleColumnsOnPool({ w: Float32Array.from(w), s: Float32Array.from(s), out: plain, k }, n);
  assert.deepEqual(plain, want);
});
