/**
 * GPTQ's triangular steps split over the CPU pool (backends/cpu/triangular.ts) give the serial
 * loops' bits: a Cholesky factor, a triangular inverse, and the factor of H⁻¹, on fresh random
 * SPD matrices of ragged sizes (large enough that the pool splits the work over its threads); the
 * blocked kernels within float32 rounding of them, their panel steps split over the pool bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cholesky, invertLower, upperCholeskyOfInverse } from '../../../src/quant/methods/cholesky.js';
import { blockedTriangularKernels, poolTriangularKernels } from '../../../src/backends/cpu/triangular.js';
import { cpuPool } from '../../../src/backends/cpu/pool/index.js';
import { arenaFloat32, sharedFloat64 } from '../../../src/tensor/shared.js';
import { blockedCholesky, blockedInvertLower, type BlockProducts } from '../../../src/quant/methods/cholesky-blocked.js';
import { matmulF32 } from '../../../src/backends/cpu/matmul.js';

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

test('the blocked kernels on the matmul: Cholesky, L⁻¹ and the factor of H⁻¹ within float32 rounding of the serial ones (dampened SPD, ragged)', () => {
  const blocked = blockedTriangularKernels();
  for (const n of [5, 300, 517]) {
    const seed = (Date.now() + 3 * n) >>> 0;
    const h = randomSpd(n, seed);
    let mean = 0;
    for (let i = 0; i < n; i++) mean += h[i * n + i]! / n;
    for (let i = 0; i < n; i++) h[i * n + i] += 0.01 * mean; // GPTQ's dampening
    const close = (a: Float64Array, b: Float64Array, tol: number, what: string) => {
      let err = 0, scale = 0;
      for (let i = 0; i < a.length; i++) {
        err = Math.max(err, Math.abs(a[i]! - b[i]!));
        scale = Math.max(scale, Math.abs(b[i]!));
      }
      assert.ok(err <= tol * scale, `n ${n} seed ${seed}: ${what} off by ${err / scale} of its largest entry`);
    };
    const serial = cholesky(h, n), fast = cholesky(h, n, blocked);
    assert.ok(serial.ok && fast.ok, `n ${n}`);
    close(fast.l, serial.l, 1e-5, 'Cholesky');
    close(blocked.invertLower(serial.l, n), invertLower(serial.l, n), 1e-5, 'L⁻¹');
    const a = upperCholeskyOfInverse(h, n), b = upperCholeskyOfInverse(h, n, blocked);
    assert.ok(a.ok && b.ok);
    close(b.u, a.u, 1e-4, 'factor of H⁻¹');
  }
});

test('the blocked kernels\' float64 panel steps split over the pool give their one-thread bits (ragged sizes and blocks)', () => {
  // the same float32 products on one thread, the panel steps unsplit (no BlockProducts.split)
  const scratch = new Map<string, Float32Array>();
  const oneThread: BlockProducts = {
    matmul: (x, m, k, w, n, out) => matmulF32(x, m, k, w, n, out, undefined, { pool: null }),
    scratch: (slot, floats) => {
      const have = scratch.get(slot);
      const block = have === undefined || have.length < floats ? arenaFloat32(floats) : have;
      scratch.set(slot, block);
      return block;
    },
  };
  for (const [n, nb] of [[300, 128], [517, 64], [130, 200]] as const) {
    const seed = (Date.now() + 5 * n) >>> 0;
    const h = randomSpd(n, seed);
    for (let i = 0; i < n; i++) h[i * n + i] += n; // well conditioned
    const split = blockedTriangularKernels(nb);
    const want = blockedCholesky(h, n, nb, oneThread), got = split.cholesky(h, n);
    assert.ok(want.ok && got.ok, `n ${n}`);
    assert.deepEqual(got.l, want.l, `n ${n} nb ${nb} seed ${seed}: Cholesky`);
    assert.deepEqual(split.invertLower(want.l, n), blockedInvertLower(want.l, n, nb, oneThread), `n ${n} nb ${nb} seed ${seed}: L⁻¹`);
  }
});
