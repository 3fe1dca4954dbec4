/**
 * GPU correctness of the W8A8 (decode + wgmma) and W4A16 (decode) kernels against the CPU
 * reference on fresh random inputs, ragged M and N, every output poisoned (NaN) before the run:
 *   W8A8 integer scale: bit-exact (referenceIntLinear);
 *   W8A8 float scale: within 1e-6 of the sum of |chunk terms| (chunk-split FMA order);
 *   W4A16 (the decode kernel, and w4a16Gemm above its rows: weights expanded to fp16, checked bit for
 *   bit, then cuBLAS): within 2e-3 of Σ|x·q·s| of referenceWeightOnlyLinear on the fp16-rounded x (fp16 scale
 *   and product rounding, 2^-11 each), and within 1e-4 of the same magnitude of an exact
 *   float64 emulation of the kernel's fp16 arithmetic (s16 = fp16(s), w = fp16(q·s16));
 *   f16 outputs: bit for bit the f32 output (or the IS reference) rounded to nearest even.
 * Skips with the reason when no CUDA driver or GPU is present (CI).
 */
import { weightAt } from '../../../src/quant/int4-pack.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { freeW8A8, uploadW8A8, w8a8Linear, type W8A8Config } from '../../../src/backends/cuda/w8a8.js';
import { freeW4A16, uploadW4A16, W4A16_MAX_TOKENS, w4a16Expand, w4a16ExpandedBytes, w4a16Gemm, w4a16Linear, type W4A16Config } from '../../../src/backends/cuda/w4a16.js';
import { Cublas } from '../../../src/backends/cuda/cublas.js';
import { f32ToF16, f32ToF16Bits, halfBitsToNumber } from '../../../src/io/dtype.js';
import { referenceIntLinear, referenceWeightOnlyLinear } from '../../../src/backends/cpu/int-linear-reference.js';
import { quantizeActivations } from '../../../src/quant/activation-quant.js';
import type { QuantizedLinear } from '../../../src/quant/types.js';
import { randomActivations, randomW4Layer, randomW8Layer, withFloatScales } from './helpers.js';
import { assertBitExact, assertCloseFS, roundedToF16, runPoisoned } from './gpu-checks.js';
import type { OutputFormat } from '../../../src/backends/cuda/output.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

function runW8(w: QuantizedLinear, xq: Int8Array, a: Float32Array, M: number, config?: W8A8Config, out: OutputFormat = 'f32'): Float32Array {
  const ctx = ctxOf();
  const layer = uploadW8A8(ctx, w);
  const dxq = ctx.upload(xq), da = ctx.upload(a);
  try {
    return runPoisoned(ctx, M * w.n, (dy) => w8a8Linear(ctx, layer, dxq, da, dy, M, config, out), out);
  } finally {
    freeW8A8(layer);
    dxq.free(); da.free();
  }
}

const W8_SHAPES: [M: number, N: number, K: number, G: number, config?: W8A8Config][] = [
  [1, 200, 1024, 128],
  [3, 1000, 512, 128],
  [8, 64, 2048, 256],
  [11, 333, 1024, 128],
  [16, 257, 768, 128],
  [29, 250, 1024, 128],
  [3, 17000, 256, 128],
  [5, 520, 1024, 128, { kind: 'decode', MT: 1, NTW: 2, WK: 4 }],
  [7, 500, 2048, 128, { kind: 'decode', MT: 1, NTW: 4, WK: 16 }],
  [13, 300, 1280, 128, { kind: 'decode', MT: 2, NTW: 2, WK: 8 }],
  [50, 130, 512, 128, { kind: 'decode', MT: 8, NTW: 1, WK: 8 }],
  // the decode kernel through shared-memory slots (STAGES): one chunk a warp, uneven ranges refilling slots,
  // G = 256 with two tiles a block, two token halves with fewer chunks than slots, ragged N at K = 4096
  [1, 500, 2048, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 16, STAGES: 2, MINB: 3 }],
  [5, 520, 2816, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 8, STAGES: 2 }],
  [8, 333, 4096, 256, { kind: 'decode', MT: 1, NTW: 2, WK: 8, STAGES: 3 }],
  [13, 300, 1280, 128, { kind: 'decode', MT: 2, NTW: 1, WK: 4, STAGES: 4 }],
  [1, 4100, 4096, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 8, STAGES: 4, MINB: 4 }],
  // activations in registers beside the slots (XREG): 17-32 rows, ragged N, slots refilled; 5 rows, two tiles a block at G = 256
  [29, 700, 4096, 128, { kind: 'decode', MT: 4, NTW: 1, WK: 4, STAGES: 3, MINB: 2, XREG: 1 }],
  [5, 520, 2816, 256, { kind: 'decode', MT: 1, NTW: 2, WK: 8, STAGES: 2, PREW: 2, XREG: 1 }],
  [1, 130, 128, 128, { kind: 'wgmma', WGS: 1, STAGES: 3 }],
  [37, 129, 512, 256],
  [64, 127, 384, 128, { kind: 'wgmma', WGS: 2, STAGES: 3 }],
  [129, 200, 1024, 128, { kind: 'wgmma', WGS: 2, STAGES: 4 }],
  [300, 333, 1280, 128, { kind: 'wgmma', WGS: 1, STAGES: 4 }],
  [257, 260, 2048, 256],
  [520, 1000, 512, 128],
  [200, 300, 1024, 128, { kind: 'wgmma', WGS: 1, STAGES: 5 }],
  // two-accumulator variant: 1, 2, 8 and 9 chunks (both tails), G = 256
  [1, 130, 128, 128, { kind: 'wgmma', WGS: 1, STAGES: 4, PIPE: true }],
  [70, 200, 256, 128, { kind: 'wgmma', WGS: 1, STAGES: 4, PIPE: true }],
  [129, 200, 1024, 128, { kind: 'wgmma', WGS: 1, STAGES: 4, PIPE: true }],
  [300, 333, 1152, 128, { kind: 'wgmma', WGS: 1, STAGES: 4, PIPE: true }],
  [257, 260, 2048, 256, { kind: 'wgmma', WGS: 2, STAGES: 4, PIPE: true }],
];
const runnable = <T extends unknown[]>(cases: T[]): T[] =>
  cases.filter((c) => (c[4] as W8A8Config | undefined)?.kind !== 'wgmma' || ctxOf().arch.startsWith('sm_90'));

test('W8A8 integer scale is bit-exact against the CPU reference', { skip }, () => {
  let seed = 5001;
  for (const [M, N, K, G, config] of runnable(W8_SHAPES)) {
    // Σ_g S ≤ 1000·128/G keeps 127·128·G·Σ S < 2^31 (the plain IS epilogue's requirement)
    const w = randomW8Layer(N, K, G, seed++, 1, Math.max(1, Math.floor((1000 * 128) / G / (K / G))));
    const act = quantizeActivations(randomActivations(M, K, seed++), M, K);
    const want = referenceIntLinear(act, w);
    const got = runW8(w, act.xq, act.scales, M, config ?? undefined);
    assertBitExact(got, want, `W8A8 IS M=${M} N=${N} K=${K} G=${G} ${config ? JSON.stringify(config) : ''}`);
  }
});

test('W8A8 float scale matches the CPU reference within 1e-6 of the chunk-term magnitude', { skip }, () => {
  let seed = 6001;
  for (const [M, N, K, G, config] of runnable(W8_SHAPES)) {
    const w = withFloatScales(randomW8Layer(N, K, G, seed++), seed++);
    const act = quantizeActivations(randomActivations(M, K, seed++), M, K);
    const want = referenceIntLinear(act, w);
    const got = runW8(w, act.xq, act.scales, M, config ?? undefined);
    assertCloseFS(got, want, w, act, `W8A8 FS M=${M} N=${N} K=${K} G=${G}`);
  }
});

test('W8A8 f16 output is the f32 output rounded to nearest even (IS: the CPU reference rounded; FS: the f32 kernel rounded)', { skip }, () => {
  let seed = 6501;
  const cases: [M: number, N: number, K: number, G: number, config?: W8A8Config][] = [
    [3, 333, 1024, 128],
    [13, 300, 1280, 128, { kind: 'decode', MT: 2, NTW: 2, WK: 8 }],
    [129, 200, 1024, 128, { kind: 'wgmma', WGS: 2, STAGES: 4 }],
    [300, 333, 1152, 128, { kind: 'wgmma', WGS: 1, STAGES: 4, PIPE: true }],
  ];
  for (const [M, N, K, G, config] of runnable(cases)) {
    const what = `W8A8 f16 M=${M} N=${N} K=${K} G=${G} ${config ? JSON.stringify(config) : ''}`;
    const w = randomW8Layer(N, K, G, seed++, 1, Math.max(1, Math.floor((1000 * 128) / G / (K / G))));
    const act = quantizeActivations(randomActivations(M, K, seed++), M, K);
    assertBitExact(runW8(w, act.xq, act.scales, M, config, 'f16'), roundedToF16(referenceIntLinear(act, w)), `IS ${what}`);
    const fs = withFloatScales(w, seed++);
    assertBitExact(runW8(fs, act.xq, act.scales, M, config, 'f16'), roundedToF16(runW8(fs, act.xq, act.scales, M, config)), `FS ${what}`);
  }
});

const W4A16_SHAPES: [M: number, N: number, K: number, G: number, config?: W4A16Config][] = [
  [1, 200, 1024, 128],
  [3, 1000, 512, 128],
  [8, 64, 2048, 256],
  [11, 333, 1024, 128],
  [16, 257, 768, 128],
  [3, 17000, 256, 128],
  [12, 16500, 256, 128],
  [29, 250, 1024, 128],
  [60, 130, 512, 128],
  [5, 520, 1024, 128, { MT: 1, NTW: 2, WK: 4 }],
  [7, 500, 2048, 128, { MT: 1, NTW: 4, WK: 16 }],
  [13, 300, 1280, 256, { MT: 2, NTW: 2, WK: 8 }],
  // more rows than the config's 8·MT: one launch per 8·MT rows (three, the last ragged; two)
  [45, 300, 1024, 128, { MT: 2, NTW: 1, WK: 8 }],
  [64, 520, 2048, 128, { MT: 4, NTW: 1, WK: 8 }],
];

test('W4A16 matches the CPU reference (fp16 tolerance) and an exact emulation of its fp16 arithmetic', { skip }, () => {
  const ctx = ctxOf();
  let seed = 7001;
  for (const [M, N, K, G, config] of W4A16_SHAPES) {
    const w = withFloatScales(randomW4Layer(N, K, G, seed++), seed++);
    const x = randomActivations(M, K, seed++);
    const xh = f32ToF16(x);
    const x16 = Float32Array.from(xh, (h) => halfBitsToNumber(h));
    const layer = uploadW4A16(ctx, w);
    const dx = ctx.upload(xh);
    let got: Float32Array;
    try {
      got = runPoisoned(ctx, M * N, (dy) => w4a16Linear(ctx, layer, dx, dy, M, config));
    } finally {
      freeW4A16(layer);
      dx.free();
    }
    checkW4A16(got, x16, w, M, `W4A16 M=${M} N=${N} K=${K} G=${G}`);
  }
});

test('W4A16 over one launch per 8·MT rows gives the bits of one launch of all the rows (64 rows: MT 4 twice, MT 8 once; 45 rows: MT 2 three times)', { skip }, () => {
  const ctx = ctxOf();
  let seed = 7301;
  for (const [M, N, K, rows] of [[64, 520, 2048, { MT: 4, NTW: 1, WK: 8 }], [45, 300, 1024, { MT: 2, NTW: 1, WK: 8 }]] as const) {
    const w = withFloatScales(randomW4Layer(N, K, 128, seed++), seed++);
    const layer = uploadW4A16(ctx, w);
    const dx = ctx.upload(f32ToF16(randomActivations(M, K, seed++)));
    try {
      const one = runPoisoned(ctx, M * N, (dy) => w4a16Linear(ctx, layer, dx, dy, M, { MT: 8, NTW: 1, WK: 8 }));
      const split = runPoisoned(ctx, M * N, (dy) => w4a16Linear(ctx, layer, dx, dy, M, rows));
      assertBitExact(split, one, `W4A16 M=${M} N=${N} K=${K} MT=${rows.MT} launches against one MT=8 launch`);
    } finally {
      freeW4A16(layer);
      dx.free();
    }
  }
});

/** fp16(q·fp16(s)) of every weight of w, [n, k] binary16 bits: what the kernels dequantize to. */
function expandedBits(w: QuantizedLinear): Uint16Array {
  const { n, k, groupSize: G } = w, groups = k / G;
  const out = new Uint16Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) out[r * k + c] = f32ToF16Bits(weightAt(w, r, c) * halfBitsToNumber(f32ToF16Bits(w.scales[r * groups + Math.floor(c / G)]!)));
  }
  return out;
}

/** y against the CPU reference on the fp16-rounded x (2e-3 of Σ|x·q·s|) and the exact fp16-weight emulation (1e-4). */
function checkW4A16(got: Float32Array, x16: Float32Array, w: QuantizedLinear, M: number, label: string): void {
  const { n: N, k: K } = w;
  const want = referenceWeightOnlyLinear(x16, M, w);
  const w16 = Float64Array.from(expandedBits(w), (h) => halfBitsToNumber(h));
  const groups = K / w.groupSize;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let mag = 0, emu = 0;
      for (let k = 0; k < K; k++) {
        mag += Math.abs(x16[m * K + k]! * weightAt(w, n, k) * w.scales[n * groups + Math.floor(k / w.groupSize)]!);
        emu += x16[m * K + k]! * w16[n * K + k]!;
      }
      const i = m * N + n, what = `${label}: y[${m},${n}] = ${got[i]}`;
      if (!(Math.abs(got[i]! - want[i]!) <= 2e-3 * mag + 1e-30)) assert.fail(`${what}, reference ${want[i]} (tol ${2e-3 * mag})`);
      if (!(Math.abs(got[i]! - emu) <= 1e-4 * mag + 1e-30)) assert.fail(`${what}, fp16 emulation ${emu} (tol ${1e-4 * mag})`);
    }
  }
}

test('w4a16Expand writes fp16(q·fp16(s)) of every weight bit for bit (ragged N, both group sizes)', { skip }, () => {
  const ctx = ctxOf();
  let seed = 7301;
  for (const [N, K, G] of [[300, 1280, 256], [17, 512, 128], [4099, 384, 128]] as const) {
    const w = withFloatScales(randomW4Layer(N, K, G, seed++), seed++);
    const layer = uploadW4A16(ctx, w);
    const w16 = ctx.alloc(w4a16ExpandedBytes(layer));
    try {
      w16.fill(0xff); // NaN: a weight left unwritten shows
      w4a16Expand(ctx, layer, w16);
      ctx.synchronize();
      const got = w16.download(new Uint16Array(N * K)), want = expandedBits(w);
      for (let i = 0; i < got.length; i++) {
        if (got[i] !== want[i]) assert.fail(`w4a16Expand N=${N} K=${K} G=${G}: weight [${Math.floor(i / K)}, ${i % K}] = 0x${got[i]!.toString(16)}, want 0x${want[i]!.toString(16)}`);
      }
    } finally {
      freeW4A16(layer);
      w16.free();
    }
  }
});

test('w4a16Gemm above the decode kernel\'s rows (fp16 weights + cuBLAS) matches the reference and the fp16 emulation', { skip }, () => {
  const ctx = ctxOf();
  const blas = new Cublas(ctx.stream);
  let seed = 7401;
  try {
    for (const [M, N, K, G] of [[W4A16_MAX_TOKENS + 1, 300, 1280, 256], [130, 250, 1024, 128], [W4A16_MAX_TOKENS, 96, 512, 128]] as const) {
      const w = withFloatScales(randomW4Layer(N, K, G, seed++), seed++);
      const xh = f32ToF16(randomActivations(M, K, seed++));
      const layer = uploadW4A16(ctx, w);
      const dx = ctx.upload(xh);
      const scratch = ctx.alloc(w4a16ExpandedBytes(layer));
      try {
        const got = runPoisoned(ctx, M * N, (dy) => w4a16Gemm(ctx, blas, layer, dx, dy, M, () => scratch));
        checkW4A16(got, Float32Array.from(xh, (h) => halfBitsToNumber(h)), w, M, `w4a16Gemm M=${M} N=${N} K=${K} G=${G}`);
      } finally {
        freeW4A16(layer);
        dx.free();
        scratch.free();
      }
    }
  } finally {
    blas.destroy();
  }
});

test('W4A16 f16 output is its f32 output rounded to nearest even', { skip }, () => {
  const ctx = ctxOf();
  let seed = 7501;
  for (const [M, N, K, G, config] of [[1, 333, 1024, 128], [13, 300, 1280, 256, { MT: 2, NTW: 2, WK: 8 }]] as const) {
    const w = withFloatScales(randomW4Layer(N, K, G, seed++), seed++);
    const layer = uploadW4A16(ctx, w);
    const dx = ctx.upload(f32ToF16(randomActivations(M, K, seed++)));
    try {
      const run = (out: OutputFormat): Float32Array => runPoisoned(ctx, M * N, (dy) => w4a16Linear(ctx, layer, dx, dy, M, config, out), out);
      assertBitExact(run('f16'), roundedToF16(run('f32')), `W4A16 f16 M=${M} N=${N} K=${K} G=${G}`);
    } finally {
      freeW4A16(layer);
      dx.free();
    }
  }
});
