/**
 * What the launch boundaries of a decode step cost a plain read of its weights: the bytes of a layer's GEMMs
 * (K·N/2 each, int4; scales left out) read by the streaming kernel of the read floor (cuda-util.ts readStream,
 * 32 KB a block), over L layers, three ways, interleaved in R rounds:
 *   per GEMM       one launch per GEMM, back to back (the engine's launch count for the weights);
 *   per GEMM, PDL  the same launches overlapping the launch before (programmatic dependent launch, loads issued
 *                  before the wait, as the decode kernels do);
 *   one launch     a single launch over all L layers' bytes (what a kernel that never drains between GEMMs,
 *                  e.g. one persistent kernel a step, could read at best).
 * The gap between the first two and the third is the most a step-wide kernel could win on the weight stream.
 * Timing: bench/cuda-timing.ts CudaTimer (events around each sample, launches queued behind a spin, stream
 * launches, not a graph); copies rotated past L2. Usage:
 *   node dist/bench/cuda-read-chain.js [--shapes KxN,...] [--layers 1,8] [--rounds R] [--out DIR]
 */
import { BenchArgumentError, benchArgs, positiveInt, positiveInts, shapeList } from './args.js';
import { BenchLog, CudaBench, copiesFor, copyBandwidth, fill, type Launch } from './cuda-timing.js';
import { readStream } from './cuda-util.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    shapes: { type: 'string', default: '4096x12288,4096x4096,4096x22016,11008x4096' },
    layers: { type: 'string', default: '1,8' },
    rounds: { type: 'string', default: '4' },
    out: { type: 'string', default: 'docs/bench' },
  },
});
const SAMPLES = 10;
/** The read kernel's block: 4 loads of 16 B a thread, 512 threads (32 KB a block). */
const UNIT = 4, THREADS = 512, RUN = UNIT * THREADS * 16;

const shapes = shapeList('shapes', values.shapes!);
const layerCounts = positiveInts('layers', values.layers!);
const rounds = positiveInt('rounds', values.rounds!);
// each GEMM's weight bytes, rounded down to whole 32 KB blocks (a 7B layer's four are whole already)
const gemmBytes = shapes.map(([K, N]) => Math.floor((K * N) / 2 / RUN) * RUN);
if (gemmBytes.some((b) => b === 0)) throw new BenchArgumentError(`--shapes: every GEMM must hold at least ${RUN} bytes of int4 weights`);
const layerBytes = gemmBytes.reduce((s, b) => s + b, 0);

const bench = new CudaBench('bench/cuda-read-chain');
const { ctx, timer } = bench;
const copyRate = copyBandwidth(ctx);
const log = new BenchLog();
log.line(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, driver ${ctx.info.driverVersion}; copy ${(copyRate / 1e12).toFixed(2)} TB/s measured here; RANDOM bytes (speed only)`);
log.line(`# a layer: ${shapes.map(([K, N], i) => `${K}x${N} (${(gemmBytes[i]! / 1e6).toFixed(1)} MB)`).join(', ')} = ${(layerBytes / 1e6).toFixed(1)} MB of int4 weights; read 32 KB a block; medians of ${rounds} interleaved rounds × ${SAMPLES} samples`);

for (const L of layerCounts) {
  const total = L * layerBytes;
  const copies = copiesFor(ctx.info.l2Bytes, total);
  const src = ctx.alloc(copies * total);
  const sink = ctx.alloc(4 * (total / RUN));
  fill.u32(ctx, src, 7 + L);
  /** The launches reading copy i's L layers GEMM by GEMM. */
  const perGemm = (overlap: boolean): Launch => (i) => {
    let at = (i % copies) * total;
    for (let l = 0; l < L; l++) {
      for (const b of gemmBytes) {
        readStream(ctx, src.view(at, b), b, UNIT, THREADS, sink, overlap);
        at += b;
      }
    }
  };
  const oneLaunch: Launch = (i) => readStream(ctx, src.view((i % copies) * total, total), total, UNIT, THREADS, sink);
  const labels = ['per GEMM', 'per GEMM, PDL', 'one launch'];
  const t = timer.timeInterleaved([perGemm(false), perGemm(true), oneLaunch], rounds, SAMPLES);
  t.forEach((r, j) => {
    const tbs = total / r.us / 1e6;
    log.line(`layers ${String(L).padStart(2)}: ${labels[j]!.padEnd(14)} ${(r.us / L).toFixed(2).padStart(7)} µs a layer (p10 ${(r.p10 / L).toFixed(2)}, p90 ${(r.p90 / L).toFixed(2)}), ${tbs.toFixed(2)} TB/s = ${((100 * tbs * 1e12) / copyRate).toFixed(0)}% of copy; ${(t[2]!.us / r.us).toFixed(3)}x one launch's time`);
  });
  src.free();
  sink.free();
}
log.write(values.out!, 'cuda-read-chain.log');
bench.close();
