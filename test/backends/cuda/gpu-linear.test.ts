/**
 * GPU correctness of the W4A8 kernels and the activation quantizer against the CPU reference:
 * integer scale bit-exact, float scale within a tight tolerance, on fresh random inputs, ragged
 * M and N, every output poisoned (NaN bytes) before the run and checked written; f16 outputs bit for
 * bit the f32 result rounded to nearest even; the decode GEMM with the next RMSNorm in its last block
 * byte for byte the accumulating GEMM then rmsnorm_to; the decode GEMM quantizing its own rows bit for bit
 * quantize_rows then the GEMM.
 * Skips with the reason when no CUDA driver or GPU is present (CI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { activationOrder, chooseW4A8Config, type DecodeConfig, freeW4A8, quantizeActivationsCuda, uploadW4A8, w4a8DecodeNorm, w4a8DecodeRows, w4a8Linear, type W4A8Config } from '../../../src/backends/cuda/w4a8.js';
import { FORM_BYTES, quantizeRowsCuda, rmsnormToCuda, type RowForm, type RowOutput } from '../../../src/backends/cuda/engine-ops.js';
import type { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import { toFragmentOrder } from '../../../src/backends/cuda/repack.js';
import { referenceIntLinear } from '../../../src/backends/cpu/int-linear-reference.js';
import { quantizeActivations } from '../../../src/quant/activation-quant.js';
import type { QuantizedLinear } from '../../../src/quant/types.js';
import { randomActivations, randomW4Layer, withFloatScales } from './helpers.js';
import { delayedCopy } from '../../../bench/cuda-util.js';
import { assertBitExact, assertCloseFS, roundedToF16, runPoisoned } from './gpu-checks.js';
import type { OutputFormat } from '../../../src/backends/cuda/output.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;
/** Cases whose kernel this device can run (the wgmma kernel needs sm_90a). */
const runnable = <T extends unknown[]>(cases: T[]): T[] =>
  cases.filter((c) => !(c[4] as W4A8Config | undefined)?.kind.startsWith('wgmma') || ctxOf().arch.startsWith('sm_90'));

/** Runs the layer on the GPU for M tokens of x into a poisoned output (f32, or f16 widened). */
function runGpu(w: QuantizedLinear, xq: Int8Array, a: Float32Array, M: number, config?: W4A8Config, out: OutputFormat = 'f32'): Float32Array {
  const ctx = ctxOf();
  const layer = uploadW4A8(ctx, w);
  const order = activationOrder(config ?? chooseW4A8Config(M, w.n, w.k, ctx.arch === 'sm_90a'));
  const ordered = order === 'fragment' ? toFragmentOrder(xq, M, w.k) : xq;
  // the TMA kernel maps every row the buffer holds: give it 100 rows of random bytes past M
  // (they must not change rows < M)
  const spare = config?.kind === 'wgmma-tma' ? 100 * w.k : 0;
  const padded = new Int8Array(ordered.length + spare);
  padded.set(ordered);
  for (let i = ordered.length; i < padded.length; i++) padded[i] = ((i * 2654435761) >>> 24) - 128;
  const dxq = ctx.upload(padded);
  const da = ctx.upload(a);
  try {
    return runPoisoned(ctx, M * w.n, (dy) => w4a8Linear(ctx, layer, dxq, da, dy, M, config, out), out);
  } finally {
    freeW4A8(layer);
    dxq.free();
    da.free();
  }
}

const SHAPES: [M: number, N: number, K: number, G: number, config?: W4A8Config][] = [
  [1, 200, 1024, 128],
  [3, 1000, 512, 128],
  [8, 64, 2048, 256],
  [11, 333, 1024, 128],
  [16, 257, 768, 128],
  [5, 520, 1024, 128, { kind: 'decode', MT: 1, NTW: 2, WK: 4 }],
  [13, 300, 1280, 128, { kind: 'decode', MT: 2, NTW: 2, WK: 8 }],
  [17, 300, 1024, 128],
  [29, 250, 1024, 128],
  [50, 130, 512, 128],
  [3, 20000, 256, 128],
  [12, 17000, 256, 128],
  [60, 16500, 256, 128],
  [27, 16400, 512, 128],
  [7, 500, 2048, 128, { kind: 'decode', MT: 1, NTW: 4, WK: 16 }],
  [24, 200, 1024, 256, { kind: 'decode', MT: 4, NTW: 2, WK: 4 }],
  // the decode kernel through shared-memory slots (STAGES): one chunk a warp; uneven ranges refilling slots;
  // G = 256 with two tiles a block; fewer chunks than slots and two token halves; warps with no chunk (G = 512);
  // K = 11008 (5-6 chunks a warp through 4 slots), ragged N
  [1, 500, 2048, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 16, STAGES: 2, MINB: 3 }],
  [5, 520, 2816, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 8, STAGES: 2 }],
  [8, 333, 4096, 256, { kind: 'decode', MT: 1, NTW: 2, WK: 8, STAGES: 3, MINB: 2 }],
  [13, 300, 1280, 128, { kind: 'decode', MT: 2, NTW: 2, WK: 4, STAGES: 4 }],
  [3, 200, 1024, 512, { kind: 'decode', MT: 1, NTW: 1, WK: 16, STAGES: 1 }],
  [1, 4100, 11008, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 16, STAGES: 4, MINB: 3 }],
  // chunks loaded before the wait (PREW): both register buffers (one chunk a warp; 5-6 a warp at K = 11008), all
  // slots (fewer chunks than slots at K = 1280), two of four
  [1, 500, 2048, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 16, PREW: 2 }],
  [1, 4100, 11008, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 16, PREW: 2 }],
  [13, 300, 1280, 128, { kind: 'decode', MT: 2, NTW: 2, WK: 4, STAGES: 4, PREW: 4 }],
  [1, 4100, 11008, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 16, STAGES: 4, MINB: 3, PREW: 2 }],
  [5, 520, 2816, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 8, STAGES: 2, PREW: 2 }],
  // activations in registers beside the slots (XREG): 17-32 rows at K = 11008 (10-11 chunks a warp through 6 slots), ragged
  // N; all four slots before the wait; one chunk a warp and warps with none (G = 512); 5 rows at G = 256, two tiles a block
  [29, 4100, 11008, 128, { kind: 'decode', MT: 4, NTW: 1, WK: 8, STAGES: 6, MINB: 2, XREG: 1 }],
  [32, 333, 4096, 128, { kind: 'decode', MT: 4, NTW: 1, WK: 8, STAGES: 4, MINB: 2, PREW: 4, XREG: 1 }],
  [20, 200, 1024, 512, { kind: 'decode', MT: 4, NTW: 1, WK: 16, STAGES: 2, XREG: 1 }],
  [5, 520, 2816, 256, { kind: 'decode', MT: 1, NTW: 2, WK: 4, STAGES: 3, PREW: 2, XREG: 1 }],
  [37, 129, 512, 256],
  [64, 200, 1024, 128],
  [100, 333, 1024, 128],
  [130, 260, 1024, 128],
  [40, 300, 1024, 128, { kind: 'mma', BM: 128, BN: 128, WM: 2, WN: 4, STAGES: 3 }],
  [70, 300, 1024, 128, { kind: 'mma', BM: 32, BN: 128, WM: 2, WN: 4, STAGES: 4 }],
  [300, 400, 2048, 128],
  [300, 400, 2048, 128, { kind: 'mma', BM: 128, BN: 128, WM: 2, WN: 4, STAGES: 4 }],
  // register-A wgmma kernel (weights from registers, fragment-order activations)
  [1, 130, 128, 128, { kind: 'wgmma-rs', WGS: 2, STAGES: 4, MINB: 1 }],
  [129, 260, 1024, 128, { kind: 'wgmma-rs', WGS: 2, STAGES: 6, MINB: 1 }],
  [70, 200, 2048, 128, { kind: 'wgmma-rs', WGS: 1, STAGES: 5, MINB: 2 }],
  [129, 200, 1024, 128, { kind: 'wgmma-rs', WGS: 2, STAGES: 4, MINB: 1 }],
  [300, 333, 1280, 128, { kind: 'wgmma-rs', WGS: 1, STAGES: 4, MINB: 2 }],
  [257, 260, 2048, 256, { kind: 'wgmma-rs', WGS: 2, STAGES: 3, MINB: 1 }],
  [520, 1000, 512, 128, { kind: 'wgmma-rs', WGS: 1, STAGES: 3, MINB: 3 }],
  [64, 127, 384, 128, { kind: 'wgmma-rs', WGS: 2, STAGES: 5, MINB: 1 }],
  [200, 300, 1024, 512, { kind: 'wgmma-rs', WGS: 1, STAGES: 4, MINB: 2 }],
  // the same MMA fed by TMA (producer warp): ragged M and N, 1 chunk, more chunks than stages, G = 256/512
  [1, 130, 128, 128, { kind: 'wgmma-tma', STAGES: 4 }],
  [129, 260, 1024, 128, { kind: 'wgmma-tma', STAGES: 6 }],
  [70, 200, 2048, 128, { kind: 'wgmma-tma', STAGES: 3 }],
  [300, 333, 1280, 128, { kind: 'wgmma-tma', STAGES: 4 }],
  [257, 260, 2048, 256, { kind: 'wgmma-tma', STAGES: 4 }],
  [520, 1000, 512, 128, { kind: 'wgmma-tma', STAGES: 5 }],
  [64, 127, 384, 128, { kind: 'wgmma-tma', STAGES: 2 }],
  [200, 300, 1024, 512, { kind: 'wgmma-tma', STAGES: 4 }],
  [130, 16500, 256, 128, { kind: 'wgmma-tma', STAGES: 4 }],
  // fewer blocks than tiles: each block loops over several tiles (ragged ones included), the stage
  // ring running on across them (chunk counts that are not multiples of STAGES)
  [300, 333, 1280, 128, { kind: 'wgmma-tma', STAGES: 4, blocks: 3 }],
  [257, 260, 2048, 256, { kind: 'wgmma-tma', STAGES: 3, blocks: 2 }],
  [520, 1000, 384, 128, { kind: 'wgmma-tma', STAGES: 4, blocks: 7 }],
  [130, 16500, 256, 128, { kind: 'wgmma-tma', STAGES: 4, blocks: 'sms' }],
  // split-K: even and uneven chunk ranges, one chunk per split, G = 256 groups across splits, fewer
  // blocks than work items, the workspace reused (counters reset) and grown from case to case
  [129, 260, 1024, 128, { kind: 'wgmma-tma', STAGES: 4, KS: 2 }],
  [70, 200, 1280, 128, { kind: 'wgmma-tma', STAGES: 3, KS: 3 }],
  [64, 127, 384, 128, { kind: 'wgmma-tma', STAGES: 2, KS: 3 }],
  [300, 333, 1280, 256, { kind: 'wgmma-tma', STAGES: 4, KS: 4, blocks: 5 }],
  [130, 16500, 256, 128, { kind: 'wgmma-tma', STAGES: 4, KS: 2, blocks: 'sms' }],
  // 32- and 64-token tiles (m64n32 / m64n64): one ragged token tile, two with split-K, several per block
  [20, 300, 1024, 128, { kind: 'wgmma-tma', STAGES: 4, BT: 32 }],
  [45, 260, 1280, 128, { kind: 'wgmma-tma', STAGES: 4, BT: 32, KS: 3 }],
  [64, 333, 1024, 256, { kind: 'wgmma-tma', STAGES: 6, BT: 64, KS: 2, blocks: 'sms' }],
  [100, 200, 768, 128, { kind: 'wgmma-tma', STAGES: 3, BT: 64, blocks: 2 }],
];

test('W4A8 integer scale is bit-exact against the CPU reference (no-shift and shift epilogues)', { skip }, () => {
  let seed = 1;
  for (const [M, N, K, G, config] of runnable(SHAPES)) {
    for (const sumS of [1000, 16000]) {
      // Σ_g S ≤ 1000 keeps 16·bound < 2^31 (the shift-free epilogue); ≤ 16000 needs the per-group shift
      const w = randomW4Layer(N, K, G, seed++, 1, Math.floor((sumS * 128) / G / (K / G)));
      const upl = uploadW4A8(ctxOf(), w);
      const shift = upl.isShift;
      freeW4A8(upl);
      assert.equal(shift, sumS > 1000, 'the bound picks the epilogue variant');
      const act = quantizeActivations(randomActivations(M, K, seed++), M, K);
      const want = referenceIntLinear(act, w);
      const got = runGpu(w, act.xq, act.scales, M, config);
      assertBitExact(got, want, `IS M=${M} N=${N} K=${K} G=${G} shift=${shift} ${config ? JSON.stringify(config) : ''}`);
    }
  }
});

test('W4A8 float scale matches the CPU reference within 1e-6 of the term magnitude', { skip }, () => {
  let seed = 1000;
  for (const [M, N, K, G, config] of runnable(SHAPES)) {
    const w = withFloatScales(randomW4Layer(N, K, G, seed++), seed++);
    const act = quantizeActivations(randomActivations(M, K, seed++), M, K);
    const want = referenceIntLinear(act, w);
    const got = runGpu(w, act.xq, act.scales, M, config);
    for (let i = 0; i < got.length; i++) assert.ok(!Number.isNaN(got[i]), `FS output ${i} not written`);
    assertCloseFS(got, want, w, act, `FS M=${M} N=${N} K=${K} G=${G}`);
  }
});

test('W4A8 split-K launches leave the workspace ready for the next: tile counts growing and shrinking, each bit-exact', { skip: skip || (ctxOf().arch.startsWith('sm_90') ? false : 'the TMA kernel needs sm_90a') }, () => {
  // 1, 9, 40, 9 and 1 tiles: the counters and partials of one launch must not leave anything the next one reads
  let seed = 7001;
  for (const [M, N, K, KS] of [[100, 128, 512, 2], [300, 384, 640, 2], [520, 1280, 768, 3], [300, 384, 640, 5], [100, 128, 512, 4]] as const) {
    const w = randomW4Layer(N, K, 128, seed++);
    const act = quantizeActivations(randomActivations(M, K, seed++), M, K);
    const got = runGpu(w, act.xq, act.scales, M, { kind: 'wgmma-tma', STAGES: 4, KS, blocks: 'sms' });
    assertBitExact(got, referenceIntLinear(act, w), `split-K sequence M=${M} N=${N} K=${K} KS=${KS}`);
  }
});

// f16 output: one case per kernel kind, odd N (unpaired stores), N * 2 % 16 == 0 (TMA store) and != 0 (direct)
const F16_SHAPES: [M: number, N: number, K: number, G: number, config?: W4A8Config][] = [
  [1, 200, 1024, 128],
  [13, 333, 1280, 128, { kind: 'decode', MT: 2, NTW: 2, WK: 8 }],
  [3, 333, 2048, 128, { kind: 'decode', MT: 1, NTW: 1, WK: 8, STAGES: 2 }],
  [100, 333, 1024, 128],
  [70, 300, 1024, 128, { kind: 'mma', BM: 32, BN: 128, WM: 2, WN: 4, STAGES: 4 }],
  [300, 333, 1280, 128, { kind: 'wgmma-rs', WGS: 1, STAGES: 4, MINB: 2 }],
  [520, 1000, 512, 128, { kind: 'wgmma-tma', STAGES: 4 }],
  [70, 200, 2048, 128, { kind: 'wgmma-tma', STAGES: 3 }],
  [200, 300, 1024, 256, { kind: 'wgmma-tma', STAGES: 4 }],
  [257, 127, 384, 128, { kind: 'wgmma-tma', STAGES: 2 }],
  [520, 1000, 640, 128, { kind: 'wgmma-tma', STAGES: 4, blocks: 5 }],
  [300, 300, 1024, 128, { kind: 'wgmma-tma', STAGES: 3, blocks: 4 }],
  [129, 264, 1280, 128, { kind: 'wgmma-tma', STAGES: 4, KS: 3 }],
  [70, 333, 1024, 256, { kind: 'wgmma-tma', STAGES: 4, KS: 2, blocks: 3 }],
  [29, 333, 1024, 128, { kind: 'wgmma-tma', STAGES: 4, BT: 32 }],
  [40, 200, 1280, 128, { kind: 'wgmma-tma', STAGES: 4, BT: 64, KS: 2 }],
];

test('W4A8 f16 output is the f32 output rounded to nearest even (IS: the CPU reference rounded; FS: the f32 kernel rounded)', { skip }, () => {
  let seed = 5000;
  for (const [M, N, K, G, config] of runnable(F16_SHAPES)) {
    const what = `M=${M} N=${N} K=${K} G=${G} ${config ? JSON.stringify(config) : ''}`;
    // activation rows span 4 orders of magnitude, so the outputs cover many f16 exponents
    const w = randomW4Layer(N, K, G, seed++);
    const act = quantizeActivations(randomActivations(M, K, seed++), M, K);
    const want = roundedToF16(referenceIntLinear(act, w));
    assert.ok(want.filter(Number.isFinite).length > 0.99 * want.length, `${what}: outputs should mostly be finite in f16`);
    assertBitExact(runGpu(w, act.xq, act.scales, M, config, 'f16'), want, `IS f16 ${what}`);
    const fs = withFloatScales(w, seed++);
    const f32 = runGpu(fs, act.xq, act.scales, M, config);
    assertBitExact(runGpu(fs, act.xq, act.scales, M, config, 'f16'), roundedToF16(f32), `FS f16 ${what}`);
  }
});

test('activation quantization on the GPU is bit-exact with quantizeActivations (natural and fragment order)', { skip }, () => {
  const ctx = ctxOf();
  for (const [M, K, order] of [[1, 4096, 'natural'], [7, 1000, 'natural'], [33, 11008, 'natural'], [5, 4096, 'fragment'], [130, 1344, 'fragment']] as const) {
    const x = randomActivations(M, K, 77 + M);
    const natural = quantizeActivations(x, M, K);
    const want = order === 'fragment' ? { ...natural, xq: toFragmentOrder(natural.xq, M, K) } : natural;
    const dx = ctx.upload(x);
    const dxq = ctx.alloc(M * K);
    const da = ctx.alloc(M * 4);
    try {
      dxq.fill(0x80);
      da.fill(0xff);
      quantizeActivationsCuda(ctx, dx, dxq, da, M, K, order);
      ctx.synchronize();
      const xq = dxq.download(new Int8Array(M * K));
      const a = da.download(new Float32Array(M));
      assertBitExact(a, want.scales, `act scales M=${M} K=${K}`);
      assert.deepEqual(xq, want.xq, `act xq M=${M} K=${K} ${order}`);
    } finally {
      dx.free();
      dxq.free();
      da.free();
    }
  }
});

test('W4A8 decode launched to overlap the kernel before it reads what that kernel wrote (late writer; act_quant → decode → decode), bit-exact', { skip }, () => {
  // An overlapped decode loads its first weights, then waits (pdl_wait) before it reads xq and a.
  // Every round rewrites the same xq: (1) a writer that lets the decode launch at once but copies
  // the round's xq only 200 µs later (more than the host takes to issue the decode) — a decode that
  // read early computes on the previous round's xq; (2) the model's chain, act_quant then two
  // decodes. With pdl_wait removed from common.cuh this test fails (checked on the H100).
  const ctx = ctxOf();
  const [N, K, G] = [1000, 4096, 128];
  const w = randomW4Layer(N, K, G, 901);
  const layer = uploadW4A8(ctx, w);
  const Ms = [1, 16, 5, 8, 16, 1, 13, 2];
  const xs = Ms.map((M, r) => randomActivations(M, K, 500 + r));
  const acts = xs.map((x, r) => quantizeActivations(x, Ms[r]!, K));
  const dxs = xs.map((x) => ctx.upload(x));
  const sources = acts.map((q) => [ctx.upload(q.xq), ctx.upload(q.scales)] as const);
  const ys = Ms.map((M) => [ctx.alloc(M * N * 4), ctx.alloc(M * N * 4), ctx.alloc(M * N * 4)] as const);
  const dxq = ctx.alloc(16 * K);
  const da = ctx.alloc(16 * 4);
  try {
    for (const y of ys.flat()) y.fill(0xff);
    dxq.fill(0x35);
    ctx.landUploads(); // uploads and fills ran on the legacy stream
    Ms.forEach((M, r) => {
      const chosen = chooseW4A8Config(M, N, K);
      assert.equal(chosen.kind, 'decode');
      const config: W4A8Config = { ...(chosen as DecodeConfig), overlap: true };
      const [sxq, sa] = sources[r]!;
      ctx.memory.copyOnStream(da, sa, M * 4);
      delayedCopy(ctx, dxq, sxq, M * K, 200);
      w4a8Linear(ctx, layer, dxq, da, ys[r]![0], M, config);
      quantizeActivationsCuda(ctx, dxs[r]!, dxq, da, M, K);
      w4a8Linear(ctx, layer, dxq, da, ys[r]![1], M, config);
      w4a8Linear(ctx, layer, dxq, da, ys[r]![2], M, config);
    });
    ctx.synchronize();
    const chain = ['after the late writer', 'after act_quant', 'after that decode'];
    Ms.forEach((M, r) => {
      const want = referenceIntLinear(acts[r]!, w);
      ys[r]!.forEach((y, j) => assertBitExact(y.download(new Float32Array(M * N)), want, `round ${r} (M=${M}), decode ${chain[j]}`));
    });
  } finally {
    freeW4A8(layer);
    for (const b of [...dxs, ...sources.flat(), ...ys.flat(), dxq, da]) b.free();
  }
});

test('W4A8 decode adding into the residual with the next RMSNorm in its last block (w4a8DecodeNorm) gives the residual and the normalized row of the accumulating GEMM then rmsnorm_to, bit for bit (WK 16 and 8, 1-20 rows, ragged N, int8 and f16 rows, both scales; chained, its output its next input)', { skip }, () => {
  const ctx = ctxOf();
  const eps = 1e-5;
  // [M, N, K, config, row form, scale]: square layers chain (round 2 reads round 1's int8 row as its input,
  // the fused launch writing over the buffer it reads, as the engine does); the ragged N runs round 1 only
  const cases: [number, number, number, DecodeConfig, RowForm, 'int' | 'float'][] = [
    [1, 4096, 4096, { kind: 'decode', MT: 1, NTW: 1, WK: 16 }, 'int8', 'int'],
    [5, 2048, 2048, { kind: 'decode', MT: 1, NTW: 1, WK: 16 }, 'int8', 'float'],
    [3, 1152, 1152, { kind: 'decode', MT: 1, NTW: 1, WK: 8 }, 'int8', 'int'],
    [12, 1280, 1280, { kind: 'decode', MT: 2, NTW: 2, WK: 8 }, 'int8', 'int'],
    [20, 1024, 1024, { kind: 'decode', MT: 4, NTW: 1, WK: 8 }, 'int8', 'float'],
    [2, 1000, 2048, { kind: 'decode', MT: 1, NTW: 2, WK: 16 }, 'f16', 'int'],
    [7, 4100, 1024, { kind: 'decode', MT: 1, NTW: 1, WK: 4 }, 'f16', 'float'],
    [1, 4096, 4096, { kind: 'decode', MT: 1, NTW: 1, WK: 16, STAGES: 2, MINB: 3 }, 'int8', 'int'],
    [6, 2048, 2048, { kind: 'decode', MT: 1, NTW: 1, WK: 8, STAGES: 4 }, 'int8', 'float'],
  ];
  for (const [M, N, K, base, form, scale] of cases) {
    const what = `M=${M} N=${N} K=${K} WK=${base.WK} ${form} ${scale} scales`;
    const w = scale === 'int' ? randomW4Layer(N, K, 128, 40 + M) : withFloatScales(randomW4Layer(N, K, 128, 40 + M), 7);
    const layer = uploadW4A8(ctx, w);
    const act = quantizeActivations(randomActivations(M, K, 60 + M), M, K);
    const h0 = randomActivations(M, N, 80 + M);
    const weight = Float32Array.from({ length: N }, (_, i) => 0.5 + ((i * 37) % 101) / 100);
    const config: DecodeConfig = { ...base, overlap: true, accumulate: true };
    const bytes = M * N * FORM_BYTES[form];
    const buffers: DeviceBuffer[] = [];
    const keep = <B extends DeviceBuffer>(b: B): B => (buffers.push(b), b);
    const rowOut = (): RowOutput => ({ form, values: keep(ctx.alloc(Math.max(bytes, M * K))), scales: keep(ctx.alloc(M * 4)) });
    try {
      const [xq, a, hRef, hFused, dw, arrivals] = [ctx.upload(act.xq), ctx.upload(act.scales), ctx.upload(h0), ctx.upload(h0), ctx.upload(weight), ctx.alloc(8)].map(keep);
      const [ref, fused] = [rowOut(), rowOut()];
      arrivals!.fill(0);
      for (const o of [ref, fused]) o.values.fill(0xa5);
      ctx.landUploads();
      const check = (round: number, fusedRow: RowOutput): void => {
        ctx.synchronize();
        assert.deepEqual(hFused!.download(new Uint8Array(M * N * 4)), hRef!.download(new Uint8Array(M * N * 4)), `${what}, round ${round}: residual`);
        assert.deepEqual(fusedRow.values.download(new Uint8Array(bytes)), ref.values.download(new Uint8Array(bytes)), `${what}, round ${round}: normalized row`);
        if (form === 'int8') assert.deepEqual(fusedRow.scales.download(new Float32Array(M)), ref.scales.download(new Float32Array(M)), `${what}, round ${round}: row scales`);
        assert.deepEqual([...arrivals!.download(new Uint32Array(2))], [0, 0], `${what}, round ${round}: the arrival counters are left at zero`);
      };
      w4a8Linear(ctx, layer, xq!, a!, hRef!, M, config);
      rmsnormToCuda(ctx, hRef!, dw!, ref, M, N, eps);
      w4a8DecodeNorm(ctx, layer, xq!, a!, hFused!, M, config, { weight: dw!, out: fused, eps }, arrivals!);
      check(1, fused);
      if (N !== K || form !== 'int8') continue;
      // round 2: each path's row in, the fused launch writing its row over its own input
      const refIn = { values: keep(ctx.alloc(M * K)), scales: keep(ctx.alloc(M * 4)) };
      ctx.memory.copyOnStream(refIn.values, ref.values, M * K);
      ctx.memory.copyOnStream(refIn.scales, ref.scales, M * 4);
      w4a8Linear(ctx, layer, refIn.values, refIn.scales, hRef!, M, config);
      rmsnormToCuda(ctx, hRef!, dw!, ref, M, N, eps);
      w4a8DecodeNorm(ctx, layer, fused.values, fused.scales, hFused!, M, config, { weight: dw!, out: fused, eps }, arrivals!);
      check(2, fused);
    } finally {
      freeW4A8(layer);
      for (const b of buffers) b.free();
    }
  }
});

test('W4A8 decode quantizing its own input rows (w4a8DecodeRows) gives quantize_rows then the decode GEMM bit for bit (1-20 rows, P 1 / 32 / 300 partial maxima, ragged N, both scales, plain and accumulating, PREW 2)', { skip }, () => {
  const ctx = ctxOf();
  // [M, N, K, config, P, scale]
  const cases: [number, number, number, DecodeConfig, number, 'int' | 'float'][] = [
    [1, 4096, 4096, { kind: 'decode', MT: 1, NTW: 1, WK: 16 }, 32, 'int'],
    [1, 1000, 11008, { kind: 'decode', MT: 1, NTW: 1, WK: 16 }, 300, 'int'],
    [5, 333, 2048, { kind: 'decode', MT: 1, NTW: 1, WK: 16, PREW: 2 }, 1, 'float'],
    [8, 1024, 1280, { kind: 'decode', MT: 1, NTW: 2, WK: 8 }, 300, 'int'],
    [12, 1280, 1024, { kind: 'decode', MT: 2, NTW: 2, WK: 8 }, 32, 'float'],
    [20, 700, 1024, { kind: 'decode', MT: 4, NTW: 1, WK: 8, MINB: 2 }, 32, 'int'],
  ];
  for (const [M, N, K, base, P, scale] of cases) {
    const what = `M=${M} N=${N} K=${K} WK=${base.WK} P=${P} ${scale} scales`;
    const w = scale === 'int' ? randomW4Layer(N, K, 128, 90 + M) : withFloatScales(randomW4Layer(N, K, 128, 90 + M), 3);
    const layer = uploadW4A8(ctx, w);
    const x = randomActivations(M, K, 120 + M);
    // partial maxima as a producer leaves them: slice j of a row's values gives maxima[r·P + j] (slices of ceil(K/P))
    const maxima = new Float32Array(M * P);
    const slice = Math.ceil(K / P);
    for (let r = 0; r < M; r++) for (let k = 0; k < K; k++) maxima[r * P + Math.floor(k / slice)] = Math.max(maxima[r * P + Math.floor(k / slice)]!, Math.abs(x[r * K + k]!));
    const h0 = randomActivations(M, N, 150 + M);
    const buffers: DeviceBuffer[] = [];
    const keep = <B extends DeviceBuffer>(b: B): B => (buffers.push(b), b);
    try {
      const rows = { values: keep(ctx.upload(x)), amax: keep(ctx.upload(maxima)) };
      const quantized: RowOutput = { form: 'int8', values: keep(ctx.alloc(M * K)), scales: keep(ctx.alloc(M * 4)) };
      for (const accumulate of [false, true]) {
        const config: DecodeConfig = { ...base, overlap: true, accumulate };
        const [yRef, yOwn] = [keep(ctx.upload(h0)), keep(ctx.upload(h0))];
        ctx.landUploads();
        quantizeRowsCuda(ctx, rows, P, quantized, M, K);
        w4a8Linear(ctx, layer, quantized.values, quantized.scales, yRef, M, config);
        w4a8DecodeRows(ctx, layer, rows, P, yOwn, M, config);
        ctx.synchronize();
        const [ref, own] = [yRef.download(new Float32Array(M * N)), yOwn.download(new Float32Array(M * N))];
        assert.ok(ref.every(Number.isFinite), `${what}: the reference is finite`);
        assert.deepEqual(new Uint32Array(own.buffer), new Uint32Array(ref.buffer), `${what}, ${accumulate ? 'accumulating' : 'plain'}`);
      }
    } finally {
      freeW4A8(layer);
      for (const b of buffers) b.free();
    }
  }
});
