/**
 * Tile/config sweep for the W4A8 kernels (integer scale, shift-free, and float scale), to pick
 * chooseW4A8Config's defaults. Timing: bench/cuda-timing.ts CudaTimer.time (events, spin-queued
 * launches, 3 warm-ups + 2 x 20 samples, median; weights rotated over > 2.5x L2). Usage:
 *   node dist/bench/cuda-sweep.js [--out DIR] [--shapes KxN,...] [--ms 1,8,...] [--decode default,WK:STAGES:MINB[:PREW],...] [--configs JSON] [--rounds R] [--w8]
 * Without --decode: the grid of decode tiles (NTW x WK) at M <= 16 and the GEMM tiles above, on the
 * three default shapes at their default Ms. With --decode: only those variants of the decode kernel
 * at M <= 8 (bench/decode-variants.ts; `default` = the chooser's config), integer scale, timed in R
 * interleaved rounds (CudaTimer.timeInterleaved), each against the byte floor at this card's copy rate
 * (--w8: the W8A8 decode kernel instead, as the lm_head runs);
 * with --configs (a JSON array of W4A8 configs, e.g. '[{"kind":"wgmma-tma","STAGES":4,"KS":2}]'): those against the
 * chooser's own at each shape and M, integer scale, each checked bit for bit against it first (fragment-order kernels
 * get the same rows in fragment order), timed in R interleaved rounds;
 * and, per shape, the read floor: the same weight bytes read by a plain streaming kernel (16-64 KB a block).
 */
import { paddedRows, toFragmentOrder } from '../src/backends/cuda/repack.js';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import { activationOrder, chooseW4A8Config, w4a8Linear, type W4A8Config } from '../src/backends/cuda/w4a8.js';
import { hasTensorMaps } from '../src/backends/cuda/tensor-map.js';
import { chooseW8A8Config, w8a8Linear } from '../src/backends/cuda/w8a8.js';
import { BenchArgumentError, benchArgs, positiveInt, positiveInts, shapeList } from './args.js';
import { decodeVariants, withDecodeVariant, type DecodeVariant } from './decode-variants.js';
import { ACT_SCALES, BenchLog, CudaBench, DeviceInputs, Seeds, copiesFor, copyBandwidth, fill, quantCopies, readFloor, w4a8Layer, w8a8Layer, type Launch, type QuantCopies } from './cuda-timing.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    out: { type: 'string', default: 'docs/bench' },
    shapes: { type: 'string' },
    ms: { type: 'string' },
    decode: { type: 'string' },
    configs: { type: 'string' },
    rounds: { type: 'string', default: '4' },
    w8: { type: 'boolean', default: false },
  },
});
const outDir = values.out!;
const SAMPLES = 20;

const decodeCfgs = (M: number): W4A8Config[] => {
  const MT = Math.ceil(M / 8);
  const out: W4A8Config[] = [];
  for (const NTW of [1, 2, 4]) for (const WK of [4, 8, 16]) if (WK * NTW * MT <= 96) out.push({ kind: 'decode', MT, NTW, WK });
  return out;
};
const mmaCfgs: W4A8Config[] = [
  { kind: 'mma', BM: 32, BN: 64, WM: 2, WN: 2, STAGES: 4 },
  { kind: 'mma', BM: 32, BN: 128, WM: 2, WN: 4, STAGES: 4 },
  { kind: 'mma', BM: 64, BN: 64, WM: 2, WN: 2, STAGES: 4 },
  { kind: 'mma', BM: 64, BN: 128, WM: 2, WN: 4, STAGES: 3 },
  { kind: 'mma', BM: 128, BN: 128, WM: 2, WN: 4, STAGES: 4 },
];
const DEFAULT_CASES: [K: number, N: number, Ms: number[]][] = [
  [4096, 22016, [1, 16, 32, 64, 4096]],
  [4096, 4096, [1, 16, 32, 64]],
  [11008, 4096, [1, 16, 32, 64]],
];
const msFlag = values.ms === undefined ? null : positiveInts('ms', values.ms);
const CASES: [K: number, N: number, Ms: number[]][] = values.shapes === undefined
  ? DEFAULT_CASES.map(([K, N, Ms]) => [K, N, msFlag ?? Ms])
  : shapeList('shapes', values.shapes).map(([K, N]) => [K, N, msFlag ?? [1, 16, 32, 64]]);
const variants = values.decode === undefined ? null : decodeVariants('decode', values.decode);
if (variants !== null && CASES.some(([, , Ms]) => Ms.some((M) => M > 8))) throw new BenchArgumentError('--decode varies the decode kernel at M <= 8: give --ms within 1..8');
if (variants?.some((v) => v.tmaBT !== undefined)) throw new BenchArgumentError('--decode tma32 / tma64 are for cuda-engine-step; here time the TMA kernel with --configs');
if (values.w8 && variants === null) throw new BenchArgumentError('--w8 sweeps the W8A8 decode kernel: give --decode with it');
const rounds = positiveInt('rounds', values.rounds!);
const configs = values.configs === undefined ? null : parseConfigs(values.configs);
if (configs !== null && (variants !== null || values.w8)) throw new BenchArgumentError('--configs times W4A8 configs against the chooser\'s: not with --decode or --w8');

/** --configs: a JSON array of W4A8 configs (objects with a known kind); a malformed one is a BenchArgumentError. */
function parseConfigs(text: string): W4A8Config[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new BenchArgumentError(`--configs takes a JSON array of W4A8 configs: ${(e as Error).message}`);
  }
  const kinds = ['decode', 'mma', 'wgmma-rs', 'wgmma-tma'];
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((c) => typeof c === 'object' && c !== null && kinds.includes((c as { kind?: string }).kind ?? ''))) {
    throw new BenchArgumentError(`--configs takes a non-empty JSON array of W4A8 configs, each with a kind (${kinds.join(', ')}); got ${text}`);
  }
  return parsed as W4A8Config[];
}
const bench = new CudaBench('bench/cuda-sweep');
const { ctx, timer } = bench;
const bytesPerUs = copyBandwidth(ctx) / 1e6;

const log = new BenchLog();
log.line(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, driver ${ctx.info.driverVersion}; RANDOM weights (speed only); byte floor at the copy rate measured here, ${(bytesPerUs / 1e6).toFixed(2)} TB/s`);
const seeds = new Seeds(5);
for (const [K, N, Ms] of CASES) {
  const weights = new DeviceInputs(ctx, seeds);
  const nPad = paddedRows(N);
  // the weights under test: int8 with --w8, else int4 (copies rotated past L2)
  const bits = values.w8 ? 8 : 4, weightBytes = (nPad * K * bits) / 8;
  const wq = quantCopies(weights, copiesFor(ctx.info.l2Bytes, weightBytes), bits, nPad, K, 128);
  for (const M of Ms) {
    const acts = new DeviceInputs(ctx, seeds);
    const xq = acts.random(M * K, fill.i8);
    const a = acts.random(M * 4, ACT_SCALES);
    const y = acts.output(M * N * 4);
    const bytes = weightBytes + nPad * (K / 128) * 4 + M * K; // what a launch reads: weights, scales, activations
    if (variants !== null && M === Ms[0]) {
      // the read floor of these weight bytes (cuda-timing.ts readFloor)
      const floors = readFloor(ctx, timer, wq.weights, weightBytes, SAMPLES).map((f) => `${f.kb} KB a block ${f.us.toFixed(2)} µs (${f.tbs.toFixed(2)} TB/s)`);
      log.line(`K=${K} N=${N} read floor of the ${(weightBytes / 1e6).toFixed(1)} MB of W${bits} weights: ${floors.join('; ')}`);
    }
    if (configs !== null) {
      timeConfigs(K, N, M, xq, a, y, wq, bytes);
      acts.free();
      continue;
    }
    if (variants !== null) {
      const wgmma = ctx.arch === 'sm_90a';
      const launch = (v: DecodeVariant): Launch => values.w8
        ? (i) => w8a8Linear(ctx, w8a8Layer(wq, N, K, 128, 'is', i), xq, a, y, M, withDecodeVariant(chooseW8A8Config(M, N, K, wgmma), v))
        : (i) => w4a8Linear(ctx, w4a8Layer(wq, N, K, 128, 'is', i), xq, a, y, M, withDecodeVariant(chooseW4A8Config(M, N, K, wgmma, false, ctx.info.multiprocessors), v));
      const runs = variants.filter((v) => {
        try {
          launch(v)(0);
          return true;
        } catch (e) {
          log.line(`K=${K} N=${N} M=${String(M).padStart(2)} ${v.label.padEnd(30)} FAILED ${(e as Error).message.split('\n')[0]}`);
          return false;
        }
      });
      const t = timer.timeInterleaved(runs.map(launch), rounds, SAMPLES);
      runs.forEach((v, j) => log.line(`K=${K} N=${N} M=${String(M).padStart(2)} ${v.label.padEnd(30)} IS ${t[j]!.us.toFixed(2).padStart(7)} µs (p10 ${t[j]!.p10.toFixed(2)}, p90 ${t[j]!.p90.toFixed(2)}) ${(bytes / t[j]!.us / 1e6).toFixed(2)} TB/s, floor ${(bytes / bytesPerUs).toFixed(2)} µs, ${(t[0]!.us / t[j]!.us).toFixed(3)}x the first`));
      acts.free();
      continue;
    }
    const cfgs = M === 4096 ? mmaCfgs.slice(3) : M <= 16 ? decodeCfgs(M) : [...decodeCfgs(M).filter((c) => c.kind === 'decode' && c.NTW === 1 && c.WK === 8), ...mmaCfgs.slice(0, 4)];
    for (const cfg of cfgs) {
      const t: Record<string, number> = {};
      try {
        for (const v of ['is', 'fs'] as const) t[v] = timer.time((i) => w4a8Linear(ctx, w4a8Layer(wq, N, K, 128, v, i), xq, a, y, M, cfg), SAMPLES).us;
      } catch (e) {
        log.line(`K=${K} N=${N} M=${M} ${JSON.stringify(cfg)} FAILED ${(e as Error).message.split('\n')[0]}`);
        continue;
      }
      log.line(`K=${K} N=${N} M=${String(M).padStart(4)} ${JSON.stringify(cfg).padEnd(72)} IS ${t.is!.toFixed(1).padStart(7)} µs FS ${t.fs!.toFixed(1).padStart(7)} µs FS/IS ${(t.fs! / t.is!).toFixed(3)} GB/s(IS) ${(((nPad * K) / 2 + M * K) / t.is! / 1e3).toFixed(0)}`);
    }
    acts.free();
  }
  weights.free();
}
log.write(outDir, configs !== null ? 'cuda-sweep-configs.log' : variants === null ? 'cuda-sweep.log' : values.w8 ? 'cuda-sweep-decode-w8.log' : 'cuda-sweep-decode.log');
bench.close();

/**
 * --configs at one shape and M: the chooser's config, then each given one, checked bit for bit against it, then timed
 * (`bytes`: what a launch reads, for the TB/s and the floor).
 */
function timeConfigs(K: number, N: number, M: number, xq: DeviceBuffer, a: DeviceBuffer, y: DeviceBuffer, wq: QuantCopies, bytes: number): void {
  const chosen = chooseW4A8Config(M, N, K, ctx.arch === 'sm_90a', hasTensorMaps(ctx), ctx.info.multiprocessors);
  const natural = xq.download(new Int8Array(M * K));
  // the TMA kernel maps whole rows of its buffer: the fragment-order copy gets 128 rows more than M (never read into y)
  const rows = new Int8Array((M + 128) * K);
  rows.set(toFragmentOrder(natural, M, K));
  const fragment = ctx.upload(rows);
  ctx.landUploads();
  const check = ctx.alloc(M * N * 4);
  try {
    const run = (cfg: W4A8Config, out: DeviceBuffer): Launch => (i) =>
      w4a8Linear(ctx, w4a8Layer(wq, N, K, 128, 'is', i), activationOrder(cfg) === 'fragment' ? fragment : xq, a, out, M, cfg);
    const all = [chosen, ...configs!];
    run(chosen, y)(0);
    ctx.synchronize();
    const want = Buffer.from(y.download(new Uint8Array(M * N * 4)));
    const runs = all.filter((cfg, j) => {
      if (j === 0) return true;
      try {
        check.fill(0xff);
        run(cfg, check)(0);
        ctx.synchronize();
      } catch (e) {
        log.line(`K=${K} N=${N} M=${M} ${JSON.stringify(cfg)} FAILED ${(e as Error).message.split('\n')[0]}`);
        return false;
      }
      if (!Buffer.from(check.download(new Uint8Array(M * N * 4))).equals(want)) throw new Error(`K=${K} N=${N} M=${M}: ${JSON.stringify(cfg)}'s y differs from the chooser's config's`);
      return true;
    });
    const t = timer.timeInterleaved(runs.map((cfg) => run(cfg, y)), rounds, SAMPLES);
    runs.forEach((cfg, j) => log.line(`K=${K} N=${N} M=${String(M).padStart(3)} ${(j === 0 ? 'chooser ' : '') + JSON.stringify(cfg)} IS ${t[j]!.us.toFixed(2)} µs (p10 ${t[j]!.p10.toFixed(2)}, p90 ${t[j]!.p90.toFixed(2)}) ${(bytes / t[j]!.us / 1e6).toFixed(2)} TB/s, floor ${(bytes / bytesPerUs).toFixed(2)} µs, ${(t[0]!.us / t[j]!.us).toFixed(3)}x the chooser's; bit-identical`));
  } finally {
    fragment.free();
    check.free();
  }
}
