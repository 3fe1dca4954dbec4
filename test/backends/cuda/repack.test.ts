/**
 * CPU check of the kernels' weight layout and k permutation: emulate, lane by lane, the
 * fragments that w4a8_decode feeds to mma.m16n8k32 (PTX fragment layout for s8) and compare
 * the group sums with the reference's groupAccumulators. Runs everywhere (no GPU needed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repackW4, intScaleBound, repackScales } from '../../../src/backends/cuda/repack.js';
import { groupAccumulators } from '../../../src/backends/cpu/int-linear-reference.js';
import { quantizeActivations } from '../../../src/quant/activation-quant.js';
import { randomActivations, randomW4Layer } from './helpers.js';

const lo16 = (w: number): number => (w << 4) & 0xf0f0f0f0;
const hi16 = (w: number): number => w & 0xf0f0f0f0;
const byte = (w: number, j: number): number => ((w >>> (8 * j)) << 24) >> 24; // signed byte j

/** Emulates w4a8_decode's fragments; returns acc[m][n][g] (already divided by 16). */
function emulateDecode(wrep: Uint8Array, xq: Int8Array, M: number, N: number, K: number, G: number): Int32Array {
  const steps = K / 64;
  const groups = K / G;
  const acc = new Float64Array(M * N * groups);
  const dv = new DataView(wrep.buffer, wrep.byteOffset, wrep.byteLength);
  for (let t = 0; t < Math.ceil(N / 16); t++) {
    for (let s = 0; s < steps; s++) {
      for (let ks = 0; ks < 2; ks++) {
        const A: number[][] = Array.from({ length: 16 }, () => new Array<number>(32).fill(0));
        const B: number[][] = Array.from({ length: 32 }, () => new Array<number>(8).fill(0));
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
          // activations: token gid (B column), 16 bytes at k = s*64 + tig*16; b0 = word 2ks, b1 = word 2ks+1
          const token = gid;
          for (let j = 0; j < 4; j++) {
            const kb = s * 64 + tig * 16 + ks * 8;
            B[tig * 4 + j]![gid] = token < M ? xq[token * K + kb + j]! : 0;
            B[16 + tig * 4 + j]![gid] = token < M ? xq[token * K + kb + 4 + j]! : 0;
          }
        }
        const g = Math.floor((s * 64) / G);
        for (let r = 0; r < 16; r++) {
          const n = t * 16 + r;
          if (n >= N) continue;
          for (let c = 0; c < 8 && c < M; c++) {
            let sum = 0;
            for (let p = 0; p < 32; p++) sum += A[r]![p]! * B[p]![c]!;
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
    const got = emulateDecode(repackW4(w.q, N, K), act.xq, M, N, K, G);
    assert.deepEqual(got, groupAccumulators(act, w), `M=${M} N=${N} K=${K} G=${G}`);
  }
});

test('scale repack puts the 16 rows of a tile together per group, float scales divided by 16', () => {
  const s = new Float32Array([1, 2, 3, 4, 5, 6]); // N = 3, 2 groups
  const r = repackScales(s, 3, 2, 16);
  assert.equal(r.length, 128 * 2);
  assert.deepEqual([r[0], r[1], r[2], r[16], r[17], r[18]], [1 / 16, 3 / 16, 5 / 16, 2 / 16, 4 / 16, 6 / 16]);
});

test('integer-scale bound is 127·8·G·max_n Σ_g S', () => {
  const S = new Int32Array([1, 2, 10, 20]);
  assert.equal(intScaleBound(S, 2, 2, 128), 127 * 8 * 128 * 30);
});
