import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { matmulF32 } from '../../../src/backends/cpu/matmul.js';
import { CpuPool } from '../../../src/backends/cpu/pool/index.js';
import { seededRandom } from '../../../src/tensor/random.js';
import { sharedFloat32, withArenaAllocation } from '../../../src/tensor/shared.js';

/** seeded, so failures reproduce. */
const rng = seededRandom;

/** Random values in [-1, 1) in the shared arena, where both kernels (JS and WASM) can read them. */
function randomShared(length: number, next: () => number): Float32Array {
  const a = withArenaAllocation(() => sharedFloat32(length));
  for (let i = 0; i < length; i++) a[i] = next() * 2 - 1;
  return a;
}

/**
 * Checks out against a float64 reference: |out − ref| ≤ 1e-5 · Σ_k |x·w| (+ |bias|) per element,
 * the natural scale of a dot product's rounding error.
 */
function assertMatchesReference(
  x: Float32Array, m: number, k: number, w: Float32Array, n: number, out: Float32Array, bias?: Float32Array,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let ref = bias === undefined ? 0 : bias[j]!;
      let scale = Math.abs(ref);
      for (let t = 0; t < k; t++) {
        const p = x[i * k + t]! * w[j * k + t]!;
        ref += p;
        scale += Math.abs(p);
      }
      const got = out[i * n + j]!;
      const err = Math.abs(got - ref);
      assert.ok(err <= 1e-5 * scale + 1e-30, `out[${i}, ${j}] = ${got}, reference ${ref} (error ${err}, scale ${scale}) for M=${m} K=${k} N=${n}`);
    }
  }
}

describe('matmulF32', () => {
  const pool = new CpuPool({ threads: 3 });
  pool.waitUntilReady();
  after(() => pool.close());

  const shapes: [number, number, number][] = [
    [1, 1, 1], [2, 0, 3], [1, 7, 3], [2, 17, 5], [3, 63, 13], [5, 130, 66], [7, 33, 9], [1, 257, 131], [4, 64, 4],
  ];
  for (const [m, k, n] of shapes) {
    for (const withBias of [false, true]) {
      it(`matches a float64 reference for M=${m} K=${k} N=${n}${withBias ? ' with bias' : ''}, JS and WASM kernels, one thread and the pool`, () => {
        const next = rng(m * 1_000_003 + k * 1009 + n * 7 + (withBias ? 1 : 0));
        const x = randomShared(m * k, next);
        const w = randomShared(n * k, next);
        const bias = withBias ? randomShared(n, next) : undefined;
        for (const kernel of ['js', 'wasm'] as const) {
          for (const p of [null, pool]) {
            const out = sharedFloat32(m * n).fill(Number.NaN);
            matmulF32(x, m, k, w, n, out, bias, { pool: p, kernel });
            assertMatchesReference(x, m, k, w, n, out, bias);
          }
        }
      });
    }
  }

  for (const kernel of ['js', 'wasm'] as const) {
    it(`splits a large product across threads with the same result as one thread (${kernel})`, () => {
      const [m, k, n] = [3, 301, 523];
      const next = rng(42);
      const x = randomShared(m * k, next);
      const w = randomShared(n * k, next);
      const bias = randomShared(n, next);
      const single = sharedFloat32(m * n).fill(Number.NaN);
      const multi = sharedFloat32(m * n).fill(Number.NaN);
      matmulF32(x, m, k, w, n, single, bias, { pool: null, kernel });
      matmulF32(x, m, k, w, n, multi, bias, { pool, kernel });
      assert.deepEqual(multi, single);
      assertMatchesReference(x, m, k, w, n, multi, bias);
    });
  }

  it('uses the default pool and kernel for large products, W in the arena or not', () => {
    const [m, k, n] = [2, 700, 401];
    const next = rng(7);
    const x = randomShared(m * k, next);
    const inArena = randomShared(n * k, next);
    const own = sharedFloat32(n * k);
    own.set(inArena);
    for (const w of [inArena, own]) {
      const out = sharedFloat32(m * n).fill(Number.NaN);
      matmulF32(x, m, k, w, n, out);
      assertMatchesReference(x, m, k, w, n, out);
    }
  });

  it('falls back to the calling thread for arrays not in shared memory', () => {
    const [m, k, n] = [2, 400, 300];
    const next = rng(9);
    const x = Float32Array.from(randomShared(m * k, next));
    const w = Float32Array.from(randomShared(n * k, next));
    const out = new Float32Array(m * n).fill(Number.NaN);
    matmulF32(x, m, k, w, n, out, undefined, { pool });
    assertMatchesReference(x, m, k, w, n, out);
  });

  it('leaves outputs beyond M·N untouched', () => {
    const [m, k, n] = [2, 9, 6];
    const next = rng(11);
    const out = sharedFloat32(m * n + 5).fill(-3);
    matmulF32(randomShared(m * k, next), m, k, randomShared(n * k, next), n, out);
    assert.deepEqual(Array.from(out.subarray(m * n)), [-3, -3, -3, -3, -3]);
  });

  it('rejects inconsistent shapes', () => {
    const a = sharedFloat32(12);
    assert.throws(() => matmulF32(a, 2, 7, a, 1, a), RangeError);
    assert.throws(() => matmulF32(a, 1, 4, a, 4, sharedFloat32(3)), RangeError);
    assert.throws(() => matmulF32(a, 1, 4, a, 2, a, sharedFloat32(1)), RangeError);
    assert.throws(() => matmulF32(a, 1.5, 4, a, 2, a), RangeError);
  });
});
