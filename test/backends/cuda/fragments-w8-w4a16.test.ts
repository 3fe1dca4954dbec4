/**
 * CPU checks (no GPU) of the new kernels' operand mappings and host-side packing:
 *  - w8a8_decode: emulate, lane by lane, the mma.m16n8k32 s8 fragments it builds from natural
 *    16-byte row loads and compare the group sums with groupAccumulators;
 *  - w4a16_decode: emulate the int4 -> fp16 pair extraction (u = w ^ 0x88888888, 0x6400 magic)
 *    and the activation byte_perm against the mma.m16n8k16 fragment layout, exact arithmetic;
 *  - repackW8A8's overflow refusal, and the binary16 conversion.
 */
import { unpackWeights, weightAt } from '../../../src/quant/int4-pack.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repackW4 } from '../../../src/backends/cuda/repack.js';
import { repackW8A8 } from '../../../src/backends/cuda/w8a8.js';
import { f32ToF16Bits, halfBitsToNumber } from '../../../src/io/dtype.js';
import { groupAccumulators } from '../../../src/backends/cpu/int-linear-reference.js';
import { quantizeActivations } from '../../../src/quant/activation-quant.js';
import { randomActivations, randomW4Layer, randomW8Layer, rng } from './helpers.js';

const sbyte = (v: number, j: number): number => ((v >>> (8 * j)) << 24) >> 24;

test('w8a8_decode fragment mapping reproduces the group sums', () => {
  const [M, N, K, G] = [5, 20, 256, 128];
  const w = randomW8Layer(N, K, G, 3);
  const act = quantizeActivations(randomActivations(M, K, 4), M, K);
  const want = groupAccumulators(act, w);
  const wrows = repackW8A8(w).weights;
  const word = (src: Int8Array, base: number, wi: number): number => {
    let v = 0;
    for (let j = 0; j < 4; j++) v |= (src[base + wi * 4 + j]! & 0xff) << (8 * j);
    return v | 0;
  };
  const groups = K / G;
  const got = new Int32Array(M * N * groups);
  for (let t = 0; t < Math.ceil(N / 16); t++) {
    for (let blk = 0; blk < K / 64; blk++) {
      for (let ks = 0; ks < 2; ks++) {
        const A = Array.from({ length: 16 }, () => new Array<number>(32).fill(0));
        const B = Array.from({ length: 32 }, () => new Array<number>(8).fill(0));
        for (let lane = 0; lane < 32; lane++) {
          const gid = lane >> 2, tig = lane & 3;
          const r0 = (t * 16 + gid) * K + blk * 64 + tig * 16, r8 = r0 + 8 * K;
          const a = [word(wrows, r0, 2 * ks), word(wrows, r8, 2 * ks), word(wrows, r0, 2 * ks + 1), word(wrows, r8, 2 * ks + 1)];
          for (let j = 0; j < 4; j++) {
            A[gid]![tig * 4 + j] = sbyte(a[0]!, j);
            A[gid + 8]![tig * 4 + j] = sbyte(a[1]!, j);
            A[gid]![16 + tig * 4 + j] = sbyte(a[2]!, j);
            A[gid + 8]![16 + tig * 4 + j] = sbyte(a[3]!, j);
          }
          if (gid < M) {
            const xb = gid * K + blk * 64 + tig * 16;
            for (let j = 0; j < 4; j++) {
              B[tig * 4 + j]![gid] = act.xq[xb + ks * 8 + j]!;
              B[16 + tig * 4 + j]![gid] = act.xq[xb + ks * 8 + 4 + j]!;
            }
          }
        }
        for (let r = 0; r < 16; r++) {
          const n = t * 16 + r;
          if (n >= N) continue;
          for (let m = 0; m < M; m++) {
            let s = 0;
            for (let p = 0; p < 32; p++) s += A[r]![p]! * B[p]![m]!;
            got[(m * N + n) * groups + Math.floor((blk * 64) / G)] += s;
          }
        }
      }
    }
  }
  assert.deepEqual(got, want);
});

test('w4a16_decode pair extraction and activation permutation match the fragment layout', () => {
  const [M, N, K, G] = [3, 24, 128, 128];
  const w = randomW4Layer(N, K, G, 9);
  const r = rng(10);
  const x = Array.from({ length: M * K }, () => Math.floor(r() * 200) - 100); // small integers: exact sums
  const wrep = repackW4(unpackWeights(w), N, K);
  const dv = new DataView(wrep.buffer, wrep.byteOffset, wrep.byteLength);
  const pair = (u: number, p: number): [number, number] => {
    const sh = [0, 8, 4, 12][p]!;
    const v = (u >>> sh) & 0x000f000f;
    return [(v & 0xf) - 8, ((v >>> 16) & 0xf) - 8]; // (1024 + nibble) - 1032
  };
  const got = new Float64Array(M * N);
  const steps = K / 64;
  for (let t = 0; t < Math.ceil(N / 16); t++) {
    for (let s = 0; s < steps; s++) {
      for (let ks = 0; ks < 2; ks++) {
        for (let tt = 0; tt < 2; tt++) {
          const A = Array.from({ length: 16 }, () => new Array<number>(16).fill(0));
          const B = Array.from({ length: 16 }, () => new Array<number>(8).fill(0));
          for (let lane = 0; lane < 32; lane++) {
            const gid = lane >> 2, tig = lane & 3;
            const base = ((t * steps + s) * 32 + lane) * 16;
            const u0 = (dv.getUint32(base + (ks ? 8 : 0), true) ^ 0x88888888) >>> 0;
            const u8 = (dv.getUint32(base + (ks ? 12 : 4), true) ^ 0x88888888) >>> 0;
            const [a0, a1, a2, a3] = [pair(u0, 2 * tt), pair(u8, 2 * tt), pair(u0, 2 * tt + 1), pair(u8, 2 * tt + 1)];
            for (let e = 0; e < 2; e++) {
              A[gid]![2 * tig + e] = a0[e]!;
              A[gid + 8]![2 * tig + e] = a1[e]!;
              A[gid]![8 + 2 * tig + e] = a2[e]!;
              A[gid + 8]![8 + 2 * tig + e] = a3[e]!;
            }
            if (gid < M) {
              // natural halves of the 16-byte load of half ks: k = s*64 + tig*16 + ks*8 + (0..7)
              const h = (i: number): number => x[gid * K + s * 64 + tig * 16 + ks * 8 + i]!;
              // byte_perm(v.x, v.y, 0x5410) = (h0, h2), 0x7632 = (h1, h3); t = 1: (h4, h6), (h5, h7)
              const b0 = [h(4 * tt), h(4 * tt + 2)], b1 = [h(4 * tt + 1), h(4 * tt + 3)];
              for (let e = 0; e < 2; e++) {
                B[2 * tig + e]![gid] = b0[e]!;
                B[8 + 2 * tig + e]![gid] = b1[e]!;
              }
            }
          }
          for (let rr = 0; rr < 16; rr++) {
            const n = t * 16 + rr;
            if (n >= N) continue;
            for (let m = 0; m < M; m++) for (let p = 0; p < 16; p++) got[m * N + n] += A[rr]![p]! * B[p]![m]!;
          }
        }
      }
    }
  }
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let want = 0;
      for (let k = 0; k < K; k++) want += x[m * K + k]! * weightAt(w, n, k);
      assert.equal(got[m * N + n], want, `y[${m},${n}]`);
    }
  }
});

test('repackW8A8 refuses an integer-scale layer that could overflow int32', () => {
  const ok = randomW8Layer(8, 256, 128, 1, 1, 500); // 127·128·128·Σ S ≤ 2.08e9·(1000/1032) < 2^31
  assert.doesNotThrow(() => repackW8A8(ok));
  const bad = randomW8Layer(8, 256, 128, 1, 600, 700); // Σ S ≥ 1200: bound > 2^31
  assert.throws(() => repackW8A8(bad), /overflow/);
  assert.doesNotThrow(() => repackW8A8(bad, 'float'));
});

test('binary16 conversion rounds to nearest even and round-trips', () => {
  for (const v of [0, 1, -2, 0.5, 65504, 1e-3, 3.14159, -0.0001, 6e-8, 1e-9, 70000]) {
    const h = f32ToF16Bits(v);
    const back = halfBitsToNumber(h);
    if (Math.abs(v) > 65519) assert.equal(back, Math.sign(v) * Infinity);
    else assert.ok(Math.abs(back - v) <= Math.max(Math.abs(v) * 2 ** -11, 2 ** -25), `${v} -> ${back}`);
  }
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  for (let h = 0; h < 0x7c00; h += 37) assert.equal(f32ToF16Bits(halfBitsToNumber(h)), h);
});
