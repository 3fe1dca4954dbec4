/** rmsnorm and siluMul split over the CPU pool (a prefill's rows) give the one-thread bits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmsnorm, siluMul } from '../../../src/backends/cpu/ops.js';
import { rmsnormRows, siluMulRows } from '../../../src/backends/cpu/elementwise-rows.js';
import { cpuPool } from '../../../src/backends/cpu/pool/index.js';
import { sharedFloat32 } from '../../../src/tensor/shared.js';
import { freshSeed, makeRng } from '../../helpers/random.js';

function sharedNormals(rng: ReturnType<typeof makeRng>, n: number, scale: number): Float32Array {
  const a = sharedFloat32(n);
  for (let i = 0; i < n; i++) a[i] = scale * rng.normal();
  return a;
}

test('rmsnorm and siluMul of prefill-sized shared inputs (split over the pool) equal their row kernels on one thread', (t) => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  t.diagnostic(`pool threads ${cpuPool().threads}`);
  const [m, dim] = [97, 1536];
  const x = sharedNormals(rng, m * dim, 3);
  const weight = sharedNormals(rng, dim, 1);
  const want = new Float32Array(m * dim);
  rmsnormRows({ x, weight, y: want, eps: 1e-5 }, 0, m);
  assert.deepEqual(Float32Array.from(rmsnorm(x, m, weight, 1e-5)), want, `rmsnorm, seed ${seed}`);
  const n = 97 * 5000 + 13; // not a whole number of the kernel's rows
  const gate = sharedNormals(rng, n, 4);
  const up = sharedNormals(rng, n, 1);
  const expected = Float32Array.from(gate);
  siluMulRows({ gate: expected, up, n }, 0, 1);
  siluMul(gate, up);
  assert.deepEqual(Float32Array.from(gate), expected, `siluMul, seed ${seed}`);
});
