/**
 * The blocked Cholesky and triangular inverse (quant/methods/cholesky-blocked.ts) against the
 * column-by-column float64 ones, with a plain float32 product: small blocks (many block steps,
 * ragged last blocks), on dampened random SPD matrices as GPTQ factors them; and the pivot failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cholesky, invertLower, upperCholeskyOfInverse } from '../../../src/quant/methods/cholesky.js';
import { blockedCholesky, blockedInvertLower, type BlockProducts } from '../../../src/quant/methods/cholesky-blocked.js';
import { freshSeed, makeRng } from '../../helpers/random.js';

/** out = x·wᵀ with every product and sum rounded to float32, as a float32 matmul computes. */
const plainProducts: BlockProducts = {
  matmul(x, m, k, w, n, out) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s = Math.fround(s + Math.fround(x[i * k + p]! * w[j * k + p]!));
        out[i * n + j] = s;
      }
    }
  },
  scratch: (_slot, floats) => new Float32Array(floats),
};

/** XᵀX of n + 16 random rows, plus 1% of its mean diagonal (GPTQ's dampening). */
function dampenedSpd(n: number, rng: () => number): Float64Array {
  const t = n + 16, x = Float64Array.from({ length: t * n }, () => rng() * 2 - 1), h = new Float64Array(n * n);
  for (let r = 0; r < t; r++) for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) h[i * n + j] += x[r * n + i]! * x[r * n + j]!;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += h[i * n + i]! / n;
  for (let i = 0; i < n; i++) {
    h[i * n + i] += 0.01 * mean;
    for (let j = 0; j < i; j++) h[j * n + i] = h[i * n + j]!;
  }
  return h;
}

/** max |a − b| / max |b| over the lower triangle (and a's upper triangle must be zero). */
function relativeLowerError(a: Float64Array, b: Float64Array, n: number): number {
  let err = 0, scale = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      err = Math.max(err, Math.abs(a[i * n + j]! - b[i * n + j]!));
      scale = Math.max(scale, Math.abs(b[i * n + j]!));
    }
    for (let j = i + 1; j < n; j++) assert.equal(a[i * n + j], 0, `upper triangle (${i}, ${j}) is zero`);
  }
  return err / scale;
}

test('the blocked Cholesky and L⁻¹ equal the float64 column loops within float32 rounding (blocks of 1, 3, 8, 64; ragged)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed).uniform;
  for (const [n, nb] of [[1, 3], [10, 3], [37, 8], [70, 64], [45, 1]] as const) {
    const h = dampenedSpd(n, rng);
    const exact = cholesky(h, n), blocked = blockedCholesky(h, n, nb, plainProducts);
    assert.ok(exact.ok && blocked.ok, `seed ${seed} n ${n}`);
    assert.ok(relativeLowerError(blocked.l, exact.l, n) < 1e-5, `seed ${seed} n ${n} nb ${nb}: L off by ${relativeLowerError(blocked.l, exact.l, n)}`);
    const inv = blockedInvertLower(exact.l, n, nb, plainProducts);
    const e = relativeLowerError(inv, invertLower(exact.l, n), n);
    assert.ok(e < 1e-5, `seed ${seed} n ${n} nb ${nb}: L⁻¹ off by ${e}`);
    const [u, ub] = [upperCholeskyOfInverse(h, n), upperCholeskyOfInverse(h, n, { cholesky: (a, m) => blockedCholesky(a, m, nb, plainProducts), invertLower: (l, m) => blockedInvertLower(l, m, nb, plainProducts) })];
    assert.ok(u.ok && ub.ok);
    let err = 0, scale = 0;
    for (let i = 0; i < n * n; i++) {
      err = Math.max(err, Math.abs(u.u[i]! - ub.u[i]!));
      scale = Math.max(scale, Math.abs(u.u[i]!));
    }
    assert.ok(err / scale < 1e-4, `seed ${seed} n ${n} nb ${nb}: factor of H⁻¹ off by ${err / scale}`);
  }
});

test('the blocked Cholesky fails at the column whose pivot is not positive, as the column loop does', () => {
  // rank 5 in 12 dimensions, and half of H[5, 5] taken away: column 5's pivot is −H[5, 5]/2, clearly negative
  // (a pivot of exactly zero would be rounding noise, failing at a column that depends on the order of the sums).
  // The five rows lean on their own coordinate (+2 there), so the leading 5×5 block is well conditioned and
  // the float32 updates' error stays at rounding size (purely random rows made it up to 5% of the largest
  // diagonal entry for 76 seeds in 3000, a condition number, not a fault: 2 here gave at most 1.6e-8)
  const seed = freshSeed();
  const rng = makeRng(seed).uniform;
  const n = 12, x = Array.from({ length: 5 * n }, () => rng() - 0.5), h = new Float64Array(n * n);
  for (let r = 0; r < 5; r++) x[r * n + r]! += 2;
  for (let r = 0; r < 5; r++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) h[i * n + j] += x[r * n + i]! * x[r * n + j]!;
  h[5 * n + 5] /= 2;
  const exact = cholesky(h, n), blocked = blockedCholesky(h, n, 4, plainProducts);
  assert.ok(!exact.ok && !blocked.ok, `seed ${seed}`);
  assert.equal(exact.column, 5, `seed ${seed}`);
  assert.equal(blocked.column, 5, `seed ${seed}`);
  // the pivot is a difference of sums of terms up to the largest diagonal entry, the updates float32
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, h[i * n + i]!);
  assert.ok(blocked.pivot < 0 && Math.abs(blocked.pivot - exact.pivot) <= 1e-5 * maxDiag, `seed ${seed}: pivot ${blocked.pivot} vs ${exact.pivot}`);
});
