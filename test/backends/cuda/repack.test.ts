/**
 * CPU check of the kernels' weight layout and k permutation: emulate, lane by lane, the
 * fragments that w4a8_decode feeds to mma.m16n8k32 (PTX fragment layout for s8) and compare
 * the group sums with the reference's groupAccumulators. Runs everywhere (no GPU needed).
 */
import { packInt4, unpackWeights } from '../../../src/quant/int4-pack.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repackPackedW4, repackW4, repackScales, toFragmentOrder } from '../../../src/backends/cuda/repack.js';
import { groupAccumulators } from '../../../src/backends/cpu/int-linear-reference.js';
import { quantizeActivations } from '../../../src/quant/activation-quant.js';
import { randomActivations, randomW4Layer } from './helpers.js';
import { freshSeed, makeRng } from '../../helpers/random.js';
import { repackPackedW4OnPool } from '../../../src/backends/cpu/repack-pool.js';
import { sharedUint8 } from '../../../src/tensor/shared.js';

const lo16 = (w: number): number => (w << 4) & 0xf0f0f0f0;
const hi16 = (w: number): number => w & 0xf0f0f0f0;
const byte = (w: number, j: number): number => ((w >>> (8 * j)) << 24) >> 24; // signed byte j

/** B operand element (logical fragment position p of mma step ks in 64-k step s) for a token. */
type BOperand = (token: number, s: number, ks: number, p: number) => number;

/** The decode kernel's B: the lane's 16 natural-order bytes at k = s*64 + tig*16 (b0 = word 2ks, b1 = 2ks+1). */
const naturalB = (xq: Int8Array, K: number): BOperand => (token, s, ks, p) => {
  const tig = (p & 15) >> 2;
  return xq[token * K + s * 64 + tig * 16 + ks * 8 + (p >> 4) * 4 + (p & 3)]!;
};
/** The register-A wgmma kernel's B: fragment-order activations read in logical order from shared memory. */
const fragmentB = (xf: Int8Array, K: number): BOperand => (token, s, ks, p) => xf[token * K + s * 64 + ks * 32 + p]!;

/**
 * Emulates the W4 kernels' A fragments (mma.m16n8k32 / wgmma register A layout, both s8) built from
 * the repacked words with lo16/hi16, against the B operand `b`; returns acc[m][n][g] (divided by 16).
 */
function emulateFragments(wrep: Uint8Array, b: BOperand, M: number, N: number, K: number, G: number): Int32Array {
  const steps = K / 64;
  const groups = K / G;
  const acc = new Float64Array(M * N * groups);
  const dv = new DataView(wrep.buffer, wrep.byteOffset, wrep.byteLength);
  for (let t = 0; t < Math.ceil(N / 16); t++) {
    for (let s = 0; s < steps; s++) {
      for (let ks = 0; ks < 2; ks++) {
        const A: number[][] = Array.from({ length: 16 }, () => new Array<number>(32).fill(0));
        for (let lane = 0; lane < 32; lane++) {
          const gid = lane >> 2;
          const tig = lane & 3;
          const base = ((t * steps + s) * 32 + lane) * 16;
          const wr = dv.getUint32(base + ks * 8, true); // row gid
          const wr8 = dv.getUint32(base + ks * 8 + 4, true); // row gid + 8
          const a = [lo16(wr), lo16(wr8), hi16(wr), hi16(wr8)];
          for (let j = 0; j < 4; j++) {
            A[gid]![tig * 4 + j] = byte(a[0]!, j);
            A[gid + 8]![tig * 4 + j] = byte(a[1]!, j);
            A[gid]![16 + tig * 4 + j] = byte(a[2]!, j);
            A[gid + 8]![16 + tig * 4 + j] = byte(a[3]!, j);
          }
        }
        const g = Math.floor((s * 64) / G);
        for (let r = 0; r < 16; r++) {
          const n = t * 16 + r;
          if (n >= N) continue;
          for (let c = 0; c < M; c++) {
            let sum = 0;
            for (let p = 0; p < 32; p++) sum += A[r]![p]! * b(c, s, ks, p);
            acc[(c * N + n) * groups + g]! += sum;
          }
        }
      }
    }
  }
  const out = new Int32Array(acc.length);
  for (let i = 0; i < acc.length; i++) {
    assert.ok(Math.abs(acc[i]! % 16) === 0, 'operands are 16*q, sums must be multiples of 16');
    out[i] = acc[i]! / 16;
  }
  return out;
}

test('repacked int4 fragments reproduce the reference group sums (CPU emulation of mma fragments)', () => {
  for (const [M, N, K, G] of [
    [1, 16, 128, 128],
    [5, 40, 256, 128],
    [8, 33, 512, 256],
  ] as const) {
    const w = randomW4Layer(N, K, G, 7 + N);
    const act = quantizeActivations(randomActivations(M, K, 3 + M), M, K);
    const got = emulateFragments(repackW4(unpackWeights(w), N, K), naturalB(act.xq, K), M, N, K, G);
    assert.deepEqual(got, groupAccumulators(act, w), `M=${M} N=${N} K=${K} G=${G}`);
  }
});

test('fragment-order activations against the same repacked weights reproduce the group sums (register-A wgmma)', () => {
  for (const [M, N, K, G] of [
    [3, 16, 128, 128],
    [11, 40, 384, 128],
    [9, 33, 512, 256],
  ] as const) {
    const w = randomW4Layer(N, K, G, 17 + N);
    const act = quantizeActivations(randomActivations(M, K, 5 + M), M, K);
    const xf = toFragmentOrder(act.xq, M, K);
    const got = emulateFragments(repackW4(unpackWeights(w), N, K), fragmentB(xf, K), M, N, K, G);
    assert.deepEqual(got, groupAccumulators(act, w), `M=${M} N=${N} K=${K} G=${G}`);
    // the permutation is a bijection inside each 64-k block: sorting each block gives back the natural bytes
    for (let i = 0; i < M * K; i += 64) {
      assert.deepEqual([...xf.subarray(i, i + 64)].sort(), [...act.xq.subarray(i, i + 64)].sort());
    }
  }
  assert.throws(() => toFragmentOrder(new Int8Array(96), 1, 96), /K % 64/);
});

test('scale repack puts the 16 rows of a tile together per group, float scales divided by 16', () => {
  const s = new Float32Array([1, 2, 3, 4, 5, 6]); // N = 3, 2 groups
  const r = repackScales(s, 3, 2, 16);
  assert.equal(r.length, 128 * 2);
  assert.deepEqual([r[0], r[1], r[2], r[16], r[17], r[18]], [1 / 16, 3 / 16, 5 / 16, 2 / 16, 4 / 16, 6 / 16]);
});

test('repackPackedW4 (from the packed format, words moved) gives repackW4\'s bytes, ragged N, at any byte offset', () => {
  const rng = makeRng(freshSeed());
  for (const [n, k] of [[1, 64], [17, 128], [130, 384], [300, 256]] as const) {
    const q = Int8Array.from({ length: n * k }, () => rng.int(-8, 7));
    const want = repackW4(q, n, k);
    const packed = packInt4(q, n, k);
    assert.deepEqual(repackPackedW4(packed, n, k), want, `[${n}, ${k}]`);
    const shifted = new Uint8Array(packed.length + 3);
    shifted.set(packed, 3);
    assert.deepEqual(repackPackedW4(shifted.subarray(3), n, k), want, `[${n}, ${k}] at byte offset 3`);
  }
});

test('repackPackedW4OnPool (rows split over the CPU pool) gives repackPackedW4\'s bytes for shared packed weights, ragged N', () => {
  const rng = makeRng(freshSeed());
  for (const [n, k] of [[1000, 4096], [4133, 1024]] as const) {
    const packed = sharedUint8((n * k) / 2);
    for (let i = 0; i < packed.length; i++) packed[i] = rng.int(0, 255);
    assert.deepEqual(repackPackedW4OnPool(packed, n, k), repackPackedW4(packed, n, k), `[${n}, ${k}]`);
  }
});
