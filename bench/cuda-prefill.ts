/**
 * Prefill-kernel comparison on the GPU: cuBLAS FP16 vs the mma.sync GEMM vs the wgmma (sm_90a)
 * GEMM, integer scale (with and without the per-group shift) and float scale, same run. Timing
 * (bench/cuda-timing.ts CudaTimer.time, as cuda-kernels.ts but one variant after the other): events,
 * spin-queued launches, 3 warm-ups + 2 x 20 samples per variant (scripts/gpu/cuda-ncu.sh counts on
 * that), median, inputs rotated > 2.5x L2, random data. Usage:
 *   node dist/bench/cuda-prefill.js [--out DIR] [--ms 128,...,4096] [--shapes KxN,...]
 *     [--rs WGS:STAGES,...] [--tma STAGES[p],...] [--no-mma] [--f16]   (--rs: the register-A wgmma kernel
 *     w4a8_wgmma_rs, --tma: the same MMA fed by TMA, w4a8_wgmma_tma, one block per tile, or per SM
 *     looping over the tiles with a trailing p; '' for none; --f16: also IS and FS with f16 output,
 *     as cuBLAS writes)
 */
import { paddedRows } from '../src/backends/cuda/repack.js';
import { w4a8Linear, type W4A8Config } from '../src/backends/cuda/w4a8.js';
import type { OutputFormat } from '../src/backends/cuda/output.js';
import { benchArgs, positiveInts, shapeList } from './args.js';
import {
  BenchLog, CudaBench, DEFAULT_SHAPES, DeviceInputs, Seeds, activations, copiesFor, fp16Copies, fp16Gemm, quantCopies,
  w4a8Layer,
} from './cuda-timing.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    out: { type: 'string', default: 'docs/bench' },
    ms: { type: 'string', default: '128,256,512,1024,2048,4096' },
    shapes: { type: 'string', default: DEFAULT_SHAPES },
    rs: { type: 'string', default: '2:4' },
    tma: { type: 'string', default: '4p' },
    'no-mma': { type: 'boolean', default: false },
    f16: { type: 'boolean', default: false },
  },
});
const outDir = values.out;
const MS = positiveInts('ms', values.ms);
const SHAPES = shapeList('shapes', values.shapes);
const pairs = (v: string): [1 | 2, number][] => v.split(',').filter(Boolean).map((s) => s.split(':').map(Number) as [1 | 2, number]);
const RS = pairs(values.rs);
const TMA = values.tma.split(',').filter(Boolean);
const OUTS: OutputFormat[] = values.f16 ? ['f32', 'f16'] : ['f32'];
const bench = new CudaBench('bench/cuda-prefill');
const { ctx, cublas, timer } = bench;
const SAMPLES = 20;
const cfgs: [string, W4A8Config][] = [
  ...(values['no-mma'] ? [] : [['mma128x128s4', { kind: 'mma', BM: 128, BN: 128, WM: 2, WN: 4, STAGES: 4 }] as [string, W4A8Config]]),
  ...RS.map(([w, s]): [string, W4A8Config] => [`wgmma-rs ${64 * w}x128 s${s}`, { kind: 'wgmma-rs', WGS: w, STAGES: s, MINB: w === 1 ? 2 : 1 }]),
  ...TMA.map((s): [string, W4A8Config] => [`wgmma-tma 128x128 s${s}`, { kind: 'wgmma-tma', STAGES: parseInt(s, 10), blocks: s.endsWith('p') ? 'sms' : 'tiles' }]),
];
const log = new BenchLog();
log.line(`# ${ctx.info.name}, cuBLAS ${cublas.version()}, ${new Date().toISOString()}`);
const seeds = new Seeds(11);
for (const [K, N] of SHAPES) {
  const weights = new DeviceInputs(ctx, seeds);
  const nPad = paddedRows(N);
  const w4 = quantCopies(weights, copiesFor(ctx.info.l2Bytes, (nPad * K) / 2), 4, nPad, K, 128);
  const w16 = fp16Copies(weights, ctx.info.l2Bytes, N, K);
  for (const M of MS) {
    const acts = new DeviceInputs(ctx, seeds);
    const act = activations(acts, 1, M, K, N);
    const [xq, a] = [act.xq[0]!, act.a[0]!];
    const ops = 2 * M * N * K;
    const fp16 = timer.time(fp16Gemm(cublas, w16, act, M, N, K), SAMPLES).us;
    let line = `K=${K} N=${N} M=${String(M).padStart(4)} fp16 ${fp16.toFixed(1).padStart(7)} µs (${(ops / fp16 / 1e6).toFixed(0)} TFLOPS)`;
    for (const [name, cfg] of cfgs) {
      for (const out of OUTS) {
        const y = out === 'f16' ? act.y16 : act.y;
        const t: Record<string, number> = {};
        for (const v of ['is', 'is-shift', 'fs'] as const) t[v] = timer.time((i) => w4a8Linear(ctx, w4a8Layer(w4, N, K, 128, v, i), xq, a, y, M, cfg, out), SAMPLES).us;
        line += ` | ${name} ${out}: IS ${t.is!.toFixed(1)} (${(ops / t.is! / 1e6).toFixed(0)} TOPS, ${(fp16 / t.is!).toFixed(2)}x) IS-sh ${t['is-shift']!.toFixed(1)} FS ${t.fs!.toFixed(1)} (${(fp16 / t.fs!).toFixed(2)}x) FS/IS ${(t.fs! / t.is!).toFixed(3)}`;
      }
    }
    log.line(line);
    acts.free();
  }
  weights.free();
}
log.write(outDir, 'cuda-prefill.log');
bench.close();
