/**
 * Configuration sweep for the new kernels on the GPU: W8A8 decode and wgmma configurations
 * (IS and FS) and W4A16 decode configurations (at 17-64 rows: MT 8 in one launch against MT 4 in one launch per
 * 32 rows), against cuBLAS FP16 in the same run. Timing:
 * bench/cuda-timing.ts CudaTimer.time (events, spin-queued launches, 3 warm-ups + 2 x 20 samples,
 * median, weights rotated over > 2.5x L2, random device data). Usage:
 *   node dist/bench/cuda-w8-sweep.js [--ms 1,16,128,...] [--shapes KxN,...]
 */
import { paddedRows } from '../src/backends/cuda/repack.js';
import { w8a8Linear, type W8A8Config } from '../src/backends/cuda/w8a8.js';
import { W4A16_MAX_TOKENS, w4a16Linear, type W4A16Config } from '../src/backends/cuda/w4a16.js';
import { benchArgs, positiveInts, shapeList } from './args.js';
import {
  CudaBench, DEFAULT_SHAPES, DeviceInputs, Seeds, activations, copiesFor, fill, fp16Copies, fp16Gemm, quantCopies,
  w8a8Layer, type Launch,
} from './cuda-timing.js';

const { values } = benchArgs(import.meta.url, {
  options: { ms: { type: 'string', default: '1,16,128,512,1024,4096' }, shapes: { type: 'string', default: DEFAULT_SHAPES } },
});
const MS = positiveInts('ms', values.ms);
const SHAPES = shapeList('shapes', values.shapes);
const bench = new CudaBench('bench/cuda-w8-sweep');
const { ctx, cublas, timer } = bench;
const SAMPLES = 20;
const timeIt = (launch: Launch): number => timer.time(launch, SAMPLES).us;
const DEC8: W8A8Config[] = [
  { kind: 'decode', MT: 1, NTW: 1, WK: 8 }, { kind: 'decode', MT: 1, NTW: 1, WK: 16 }, { kind: 'decode', MT: 1, NTW: 2, WK: 4 },
  { kind: 'decode', MT: 1, NTW: 2, WK: 8 }, { kind: 'decode', MT: 2, NTW: 1, WK: 8 }, { kind: 'decode', MT: 2, NTW: 1, WK: 16 }, { kind: 'decode', MT: 2, NTW: 2, WK: 8 },
];
const WG8: W8A8Config[] = [{ kind: 'wgmma', WGS: 1, STAGES: 3 }, { kind: 'wgmma', WGS: 1, STAGES: 4 }, { kind: 'wgmma', WGS: 2, STAGES: 3 }, { kind: 'wgmma', WGS: 2, STAGES: 4 }, { kind: 'wgmma', WGS: 1, STAGES: 4, PIPE: true }];
const DEC16: W4A16Config[] = [
  { MT: 1, NTW: 1, WK: 8 }, { MT: 1, NTW: 1, WK: 16 }, { MT: 1, NTW: 2, WK: 8 }, { MT: 1, NTW: 4, WK: 4 }, { MT: 2, NTW: 1, WK: 8 }, { MT: 2, NTW: 2, WK: 8 }, { MT: 2, NTW: 1, WK: 16 },
];
/** The W4A16 configs timed at 17-64 rows: MT 8 (one launch up to 64 rows; spills) and MT 4 (one launch per 32 rows). */
const DEC16_WIDE: W4A16Config[] = [{ MT: 4, NTW: 1, WK: 8 }, { MT: 8, NTW: 1, WK: 8 }];
const name = (c: W8A8Config): string => (c.kind === 'decode' ? `dec MT${c.MT} NTW${c.NTW} WK${c.WK}` : `wgmma ${64 * c.WGS}x128 s${c.STAGES}${c.PIPE ? ' pipe' : ''}`);
console.log(`# ${ctx.info.name}, cuBLAS ${cublas.version()}, ${new Date().toISOString()}`);
const seeds = new Seeds(101);
for (const [K, N] of SHAPES) {
  const weights = new DeviceInputs(ctx, seeds);
  const nPad = paddedRows(N), groups = K / 128, l2 = ctx.info.l2Bytes;
  const w8 = quantCopies(weights, copiesFor(l2, nPad * K), 8, nPad, K, 128);
  const R4 = copiesFor(l2, (nPad * K) / 2);
  const w4 = weights.copies(R4, (nPad * K) / 2, fill.u32);
  const s16 = weights.copies(R4, nPad * groups * 2, fill.f16);
  const wh = fp16Copies(weights, l2, N, K);
  for (const M of MS) {
    const acts = new DeviceInputs(ctx, seeds);
    const act = activations(acts, 1, M, K, N);
    const [xq, a, x16, y] = [act.xq[0]!, act.a[0]!, act.x16[0]!, act.y];
    const ops = 2 * M * N * K;
    const fp16 = timeIt(fp16Gemm(cublas, wh, act, M, N, K));
    const parts = [`K=${K} N=${N} M=${String(M).padStart(4)} fp16 ${fp16.toFixed(1)} µs (${(ops / fp16 / 1e6).toFixed(0)} TFLOPS)`];
    const cfgs = M <= 16 ? DEC8.filter((c) => c.kind === 'decode' && M <= 8 * c.MT) : WG8;
    for (const cfg of cfgs) {
      const t: Record<string, number> = {};
      // is2: IS timed again after FS, to catch a bimodal first measurement
      for (const v of ['is', 'fs', 'is2'] as const) t[v] = timeIt((i) => w8a8Linear(ctx, w8a8Layer(w8, N, K, 128, v === 'fs' ? 'fs' : 'is', i), xq, a, y, M, cfg));
      parts.push(`W8 ${name(cfg)}: IS ${t.is!.toFixed(1)}/${t.is2!.toFixed(1)} (${(ops / t.is! / 1e6).toFixed(0)} TOPS, ${(fp16 / t.is!).toFixed(2)}x) FS ${t.fs!.toFixed(1)} FS/IS ${(t.fs! / t.is!).toFixed(3)}`);
    }
    const w4a16Part = (c: W4A16Config): string => {
      const t = timeIt((i) => w4a16Linear(ctx, { n: N, k: K, groupSize: 128, weights: w4[i % R4]!, scales: s16[i % R4]! }, x16, y, M, c));
      return `W4A16 MT${c.MT} NTW${c.NTW} WK${c.WK}${M > 8 * c.MT ? ` (${Math.ceil(M / (8 * c.MT))} launches)` : ''}: ${t.toFixed(1)} (${(fp16 / t).toFixed(2)}x)`;
    };
    if (M <= 16) parts.push(...DEC16.filter((c) => M <= 8 * c.MT).map(w4a16Part));
    else if (M <= W4A16_MAX_TOKENS) parts.push(...DEC16_WIDE.map(w4a16Part));
    console.log(parts.join(' | '));
    acts.free();
  }
  weights.free();
}
bench.close();
