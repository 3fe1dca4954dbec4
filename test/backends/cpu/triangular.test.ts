/**
 * GPTQ's triangular steps split over the CPU pool (backends/cpu/triangular.ts) give the serial
 * loops' bits: a Cholesky factor, a triangular inverse, and the factor of H⁻¹, on fresh random
 * SPD matrices of ragged sizes (large enough that the pool splits the work over its threads).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cholesky, invertLower, upperCholeskyOfInverse } from '../../../src/quant/methods/cholesky.js';
import { poolTriangularKernels } from '../../../src/backends/cpu/triangular.js';
import { cpuPool } from '../../../src/backends/cpu/pool/index.js';
import { sharedFloat64 } from '../../../src/tensor/shared.js';

function randomSpd(n: number, seed: number): Float64Array {
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const t = n + 16, x = Float64Array.from({ length: t * n }, rnd), h = sharedFloat64(n * n);
  for (let r = 0; r < t; r++) for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) h[i * n + j] += x[r * n + i]! * x[r * n + j]!;
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) h[j * n + i] = h[i * n + j]!;
  return h;
}

test('pool triangular kernels: Cholesky, L⁻¹ and the factor of H⁻¹ equal the serial loops bit for bit (ragged sizes)', (t) => {
  t.diagnostic(`pool threads: ${cpuPool().threads}`);
  const pool = poolTriangularKernels();
  for (const n of [1, 7, 300, 517]) {
    const seed = (Date.now() + n) >>> 0;
    const h = randomSpd(n, seed);
    const serial = cholesky(h, n), pooled = cholesky(h, n, pool);
    assert.ok(serial.ok && pooled.ok, `n ${n}`);
    assert.deepEqual(pooled.l, serial.l, `n ${n} seed ${seed}: Cholesky`);
    assert.deepEqual(pool.invertLower(serial.l, n), invertLower(serial.l, n), `n ${n} seed ${seed}: L⁻¹`);
    const a = upperCholeskyOfInverse(h, n), b = upperCholeskyOfInverse(h, n, pool);
    assert.ok(a.ok && b.ok);
    assert.deepEqual(b.u, a.u, `n ${n} seed ${seed}: factor of H⁻¹`);
  }
});
