/**
 * Kernel benchmark on the GPU: cuBLAS FP16 and cuBLAS INT8 (int8 in, int32 out: the dense int8 GEMM
 * with no scales at all) vs W4A8 integer scale (with and without the per-group
 * shift) vs W4A8 float scale, each W4A8 IS / FS also with f16 output (cuBLAS writes f16; the other
 * rows write f32), vs W8A8 integer / float scale vs W4A16 (M <= 64, fp16 activations), same shapes,
 * same run. Where M picks the decode kernel, W4A8 IS also runs launched to overlap the launch before
 * it (programmatic dependent launch; row w4a8-is-overlap): only back to back (--back-to-back L) is
 * there a launch before it to overlap. Usage:
 *   node dist/bench/cuda-kernels.js [--out DIR] [--ms 1,2,4,...] [--shapes 4096x22016,...] [--quick] [--back-to-back L]
 * Timing (bench/cuda-timing.ts): CUDA events around every launch, launches queued behind a spin
 * kernel so they run back to back; warm-up first. All variants of one (shape, M) are timed
 * interleaved: ROUNDS rounds, each timing every variant once (order rotated per round), so no
 * variant is always the one timed right after cuBLAS; per variant the median (and p10 / p90) of
 * its samples over all rounds. Weights (and activations) rotate among enough copies that each
 * pass reads more than 2.5x L2 from DRAM. Random device data, never zeros.
 * Floors: a row's byte floor is its bytes over this card's copy bandwidth, measured at the start
 * (copyBandwidth: read + write of 1 GiB; header line, JSON floorBandwidthTBs and byte_floor_us, printed
 * for W4A8 IS). The read floor of each shape (a "# K=… read floor" line, JSON read_floor_us on the W4A8 and W4A16
 * rows): its int4 weights read by a plain streaming kernel and nothing else (cuda-timing.ts readFloor), what a kernel
 * streaming them can reach at that size, which the copy rate of a 1 GiB copy overstates for 8-50 MB layers.
 * An empty kernel timed the same way gives the launch floor
 * (event to event, back to back; header line and JSON launchFloorUs): no launch measures less, and
 * a kernel that is all latency pays both. --back-to-back L (L > 1) times L consecutive launches per
 * event pair instead (each launch's share of a stream, as consecutive layers run; files *-b2b.*).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { paddedRows } from '../src/backends/cuda/repack.js';
import { chooseW4A8Config, w4a8Linear, type W4A8Config } from '../src/backends/cuda/w4a8.js';
import { chooseW8A8Config, w8a8Linear, type W8A8Config } from '../src/backends/cuda/w8a8.js';
import { chooseW4A16Config, w4a16Linear, type W4A16Layer } from '../src/backends/cuda/w4a16.js';
import { compileStats } from '../src/backends/cuda/kernel-cache.js';
import { benchArgs, positiveInt, positiveInts, shapeList } from './args.js';
import { launchEmpty } from './cuda-util.js';
import { renderBenchSvg } from './cuda-plot.js';
import {
  CudaBench, DEFAULT_SHAPES, DeviceInputs, copyBandwidth, Seeds, activations, copiesFor, fill, fp16Copies, fp16Gemm, quantCopies,
  readFloor, w4a8Layer, w8a8Layer, type Launch,
} from './cuda-timing.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    out: { type: 'string', default: 'docs/bench' },
    quick: { type: 'boolean', default: false },
    ms: { type: 'string', default: '1,2,4,8,16,32,64,128,256,512,1024,2048,4096' },
    shapes: { type: 'string', default: DEFAULT_SHAPES },
    'back-to-back': { type: 'string', default: '1' },
  },
});
const outDir = values.out;
const quick = values.quick;
const MS = positiveInts('ms', values.ms);
const SHAPES = shapeList('shapes', values.shapes);
const G = 128;
/** Samples per variant, taken in ROUNDS interleaved rounds of SAMPLES / ROUNDS. */
const SAMPLES = quick ? 20 : 60;
const ROUNDS = quick ? 4 : 6;
/** Launches per event pair (1: per-launch timing). */
const L = positiveInt('back-to-back', values['back-to-back']);

const bench = new CudaBench('intscale bench kernels', L);
const { ctx, cublas, timer } = bench;
const l2 = ctx.info.l2Bytes;
console.log(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, L2 ${(l2 / 2 ** 20).toFixed(0)} MiB, driver ${ctx.info.driverVersion}, cuBLAS ${cublas.version()}`);
/** DRAM bandwidth used for the byte floors, bytes per µs: this card's device copy, measured here. */
const BYTES_PER_US = copyBandwidth(ctx) / 1e6;
const launchFloor = timer.time(() => launchEmpty(ctx), SAMPLES);
if (L > 1) console.log(`# back-to-back timing: ${L} consecutive launches per event pair, time per launch`);
console.log(`# launch floor (empty kernel, same timing): ${launchFloor.us.toFixed(2)} µs (p10 ${launchFloor.p10.toFixed(2)}, p90 ${launchFloor.p90.toFixed(2)}); byte floor = bytes / ${(BYTES_PER_US / 1e6).toFixed(2)} TB/s (device copy measured here, read + write)`);

interface Row {
  K: number; N: number; M: number; variant: string; kernel: string; us: number; spread_us: number; p10_us: number; p90_us: number;
  tops: number; gbps: number; vs_fp16: number; byte_floor_us: number; is_over_fs?: number;
  /** W4A8 and W4A16 rows: the read floor of the shape's int4 weights alone (readFloor, fastest block size). */
  read_floor_us?: number;
}
/** One variant timed for a (shape, M): its row's name, kernel label, bytes moved, launch. */
interface Variant { variant: string; kernel: string; bytes: number; launch: Launch }
const rows: Row[] = [];

/** The kernel column of a W4A8 row. */
function w4a8Label(cfg: W4A8Config): string {
  switch (cfg.kind) {
    case 'decode': return `decode MT${cfg.MT} NTW${cfg.NTW} WK${cfg.WK}`;
    case 'wgmma-rs': return `wgmma-rs ${64 * cfg.WGS}x128 s${cfg.STAGES}`;
    case 'wgmma-tma': return `wgmma-tma 128x128 s${cfg.STAGES}${cfg.blocks === 'sms' ? ' persistent' : ''}${(cfg.KS ?? 1) > 1 ? ` split-K ${cfg.KS}` : ''}`;
    case 'mma': return `mma ${cfg.BM}x${cfg.BN} ${cfg.WM * cfg.WN}w s${cfg.STAGES}`;
  }
}
const seeds = new Seeds(1);

for (const [K, N] of SHAPES) {
  const weights = new DeviceInputs(ctx, seeds);
  const nPad = paddedRows(N);
  const groups = K / G;
  const w4Bytes = (nPad * K) / 2 + nPad * groups * 4;
  const w4 = quantCopies(weights, copiesFor(l2, w4Bytes), 4, nPad, K, G);
  // the read floor of the int4 weights (scales excluded): the fastest plain streaming read of those bytes
  const floors4 = readFloor(ctx, timer, w4.weights, (nPad * K) / 2, SAMPLES);
  const readFloor4 = floors4.length === 0 ? null : floors4.reduce((a, b) => (b.us < a.us ? b : a));
  if (readFloor4) console.log(`# K=${K} N=${N}: read floor of the ${(readFloor4.bytes / 1e6).toFixed(1)} MB of int4 weights ${readFloor4.us.toFixed(2)} µs (${readFloor4.tbs.toFixed(2)} TB/s, ${readFloor4.kb} KB a block)`);
  const w8Bytes = nPad * K + nPad * groups * 4;
  const w8 = quantCopies(weights, copiesFor(l2, w8Bytes), 8, nPad, K, G);
  const s16 = weights.copies(w4.count, nPad * groups * 2, fill.f16); // fp16 scales for W4A16 (same int4 weights as W4A8)
  const layer16 = (i: number): W4A16Layer => ({ n: N, k: K, groupSize: G, weights: w4.weights[i % w4.count]!, scales: s16[i % w4.count]! });
  const w16Bytes = N * K * 2;
  const w16 = fp16Copies(weights, l2, N, K);
  const w8dense = weights.copies(copiesFor(l2, N * K), N * K, fill.i8); // plain int8 [N, K] for cuBLAS
  for (const M of MS) {
    const acts = new DeviceInputs(ctx, seeds);
    const RA = Math.min(8, copiesFor(l2, M * K * 2 + M * N * 4));
    const act = activations(acts, RA, M, K, N);
    const { xq, a, x16, y } = act;
    const ops = 2 * M * N * K;
    const cfg = chooseW4A8Config(M, N, K, ctx.arch === 'sm_90a', ctx.arch === 'sm_90a', ctx.info.multiprocessors);
    const kernel = w4a8Label(cfg);
    // W8A8 (8-bit weights, int8 activations)
    const cfg8: W8A8Config = chooseW8A8Config(M, N, K, ctx.arch === 'sm_90a');
    const kernel8 = cfg8.kind === 'decode' ? `decode MT${cfg8.MT} NTW${cfg8.NTW} WK${cfg8.WK}` : `wgmma ${64 * cfg8.WGS}x128 s${cfg8.STAGES}`;
    const variants: Variant[] = [
      { variant: 'fp16-cublas', kernel: 'cublasGemmEx', bytes: w16Bytes + M * K * 2 + M * N * 2, launch: fp16Gemm(cublas, w16, act, M, N, K) },
      {
        variant: 'int8-cublas', kernel: 'cublasGemmEx int8', bytes: N * K + M * K + M * N * 4,
        launch: (i) => cublas.gemmI8(y.address, xq[i % RA]!.address, w8dense[i % w8dense.length]!.address, M, N, K),
      },
      ...(['is', 'is-shift', 'fs'] as const).map((v): Variant => ({
        variant: `w4a8-${v}`, kernel, bytes: w4Bytes + M * K + M * 4 + M * N * 4,
        launch: (i) => w4a8Linear(ctx, w4a8Layer(w4, N, K, G, v, i), xq[i % RA]!, a[i % RA]!, y, M, cfg),
      })),
      ...(['is', 'fs'] as const).map((v): Variant => ({
        variant: `w4a8-${v}-f16`, kernel, bytes: w4Bytes + M * K + M * 4 + M * N * 2,
        launch: (i) => w4a8Linear(ctx, w4a8Layer(w4, N, K, G, v, i), xq[i % RA]!, a[i % RA]!, act.y16, M, cfg, 'f16'),
      })),
      // the decode kernel launched to overlap the launch before it (programmatic dependent launch);
      // with an event between every two launches (L = 1) there is nothing to overlap
      ...(cfg.kind === 'decode' ? [{
        variant: 'w4a8-is-overlap', kernel: `${kernel} overlap`, bytes: w4Bytes + M * K + M * 4 + M * N * 4,
        launch: (i: number) => w4a8Linear(ctx, w4a8Layer(w4, N, K, G, 'is', i), xq[i % RA]!, a[i % RA]!, y, M, { ...cfg, overlap: true }),
      }] : []),
      ...(['is', 'fs'] as const).map((v): Variant => ({
        variant: `w8a8-${v}`, kernel: kernel8, bytes: w8Bytes + M * K + M * 4 + M * N * 4,
        launch: (i) => w8a8Linear(ctx, w8a8Layer(w8, N, K, G, v, i), xq[i % RA]!, a[i % RA]!, y, M, cfg8),
      })),
    ];
    // W4A16 (int4 weights, fp16 activations), decode shapes only
    if (M <= 64) {
      const c16 = chooseW4A16Config(M, N, K);
      variants.push({
        variant: 'w4a16', kernel: `decode MT${c16.MT} NTW${c16.NTW} WK${c16.WK}`, bytes: (nPad * K) / 2 + nPad * groups * 2 + M * K * 2 + M * N * 4,
        launch: (i) => w4a16Linear(ctx, layer16(i), x16[i % RA]!, y, M, c16),
      });
    }
    const times = timer.timeInterleaved(variants.map((v) => v.launch), ROUNDS, SAMPLES / ROUNDS);
    const fp16 = times[0]!;
    const byVariant = new Map<string, Row>();
    variants.forEach(({ variant, kernel: k, bytes }, j) => {
      const t = times[j]!;
      const row: Row = {
        K, N, M, variant, kernel: k, us: t.us, spread_us: t.spread, p10_us: t.p10, p90_us: t.p90,
        tops: ops / t.us / 1e6, gbps: bytes / t.us / 1e3, vs_fp16: fp16.us / t.us, byte_floor_us: bytes / BYTES_PER_US,
        ...(variant.startsWith('w4a') && readFloor4 ? { read_floor_us: readFloor4.us } : {}),
      };
      rows.push(row);
      byVariant.set(variant, row);
    });
    const us = (variant: string): number => byVariant.get(variant)!.us;
    const res = { int8: us('int8-cublas'), is: us('w4a8-is'), 'is-shift': us('w4a8-is-shift'), fs: us('w4a8-fs'), 'is-f16': us('w4a8-is-f16'), 'fs-f16': us('w4a8-fs-f16'), 'w8-is': us('w8a8-is'), 'w8-fs': us('w8a8-fs'), w4a16: byVariant.get('w4a16')?.us };
    byVariant.get('w4a8-is')!.is_over_fs = res.fs / res.is;
    byVariant.get('w4a8-is-shift')!.is_over_fs = res.fs / res['is-shift'];
    byVariant.get('w4a8-is-f16')!.is_over_fs = res['fs-f16'] / res['is-f16'];
    byVariant.get('w8a8-is')!.is_over_fs = res['w8-fs'] / res['w8-is'];
    const f = (v: number, d = 1): string => v.toFixed(d).padStart(8);
    const overlap = byVariant.get('w4a8-is-overlap');
    const overlapText = overlap ? ` | IS overlap ${f(overlap.us)} µs ${f(overlap.vs_fp16, 2)}x` : '';
    const w4a16Text = res.w4a16 !== undefined ? (fp16.us / res.w4a16).toFixed(2).padStart(8) : '       -';
    console.log(
      `K=${K} N=${N} M=${String(M).padStart(4)} | fp16 ${f(fp16.us)} µs | IS ${f(res.is)} µs ${f(fp16.us / res.is, 2)}x (bytes ${byVariant.get('w4a8-is')!.byte_floor_us.toFixed(1)}${readFloor4 ? `, read ${readFloor4.us.toFixed(1)}` : ''}) | IS-shift ${f(res['is-shift'])} | FS ${f(res.fs)} µs ${f(fp16.us / res.fs, 2)}x | IS/FS ${f(res.fs / res.is, 3)} | f16 out: IS ${f(res['is-f16'])} µs ${f(fp16.us / res['is-f16'], 2)}x FS ${f(res['fs-f16'])} IS/FS ${f(res['fs-f16'] / res['is-f16'], 3)}${overlapText} | ${(ops / res.is / 1e6).toFixed(0)} TOPS ${((w4Bytes + M * K) / res.is / 1e3).toFixed(0)} GB/s | ${kernel}` +
        ` || INT8 cuBLAS ${f(res.int8)} µs ${f(fp16.us / res.int8, 2)}x ${(ops / res.int8 / 1e6).toFixed(0).padStart(5)} TOPS, W4A8 IS ${f(res.int8 / res.is, 2)}x it, W8A8 IS ${f(res.int8 / res['w8-is'], 2)}x it` +
        ` || W8A8 IS ${f(res['w8-is'])} µs ${f(fp16.us / res['w8-is'], 2)}x ${(ops / res['w8-is'] / 1e6).toFixed(0).padStart(5)} TOPS | W8A8 FS ${f(res['w8-fs'])} µs ${f(fp16.us / res['w8-fs'], 2)}x | W8 FS/IS ${f(res['w8-fs'] / res['w8-is'], 3)} | ${kernel8} || W4A16 ${res.w4a16 !== undefined ? f(res.w4a16) : '       -'} µs ${w4a16Text}x`,
    );
    acts.free();
  }
  weights.free();
}

const date = new Date().toISOString();
const report = {
  gpu: ctx.info.name, sms: ctx.info.multiprocessors, l2Bytes: l2, driver: ctx.info.driverVersion, cublas: cublas.version(), date,
  launchFloorUs: launchFloor.us, launchFloorP10Us: launchFloor.p10, floorBandwidthTBs: BYTES_PER_US / 1e6,
  groupSize: G, samplesPerVariant: SAMPLES, rounds: ROUNDS, samplesPerRound: SAMPLES / ROUNDS, launchesPerSample: L, compile: compileStats,
  method: `CUDA events around ${L > 1 ? `every ${L} consecutive launches (time per launch)` : 'each launch'}, launches queued behind a spin kernel; per (shape, M) all variants interleaved: ${ROUNDS} rounds of ${SAMPLES / ROUNDS} samples per variant, order rotated each round; median (p10/p90) over all rounds; inputs rotated over > 2.5x L2; random device data`,
  rows,
};
mkdirSync(outDir, { recursive: true });
const stem = `cuda-kernels-${ctx.info.name.replace(/\W+/g, '-')}-${date.slice(0, 10)}${L > 1 ? '-b2b' : ''}`;
writeFileSync(join(outDir, `${stem}.json`), JSON.stringify(report, null, 1));
writeFileSync(join(outDir, `${stem}.svg`), renderBenchSvg(report));
console.log(`wrote ${join(outDir, stem)}.{json,svg}`);
bench.close();
