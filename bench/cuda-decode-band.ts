/**
 * The band kernel (w4a8-decode-band.cu: a block's warps own consecutive tiles over 1/KS of K, its rows of x copied once
 * into shared memory) against the decode kernel the chooser gives today, and cuBLAS FP16, at 9-32 rows on a 7B layer's
 * four GEMM shapes. Per shape and M: the band variants' y must be the decode kernel's bit for bit (integer scales; fresh
 * random inputs), then all are timed in interleaved rounds (CudaTimer.timeInterleaved, weight copies rotated past L2,
 * one launch a sample) against the byte floor at this card's copy rate. Random weights: speed only. Usage:
 *   node dist/bench/cuda-decode-band.js [--shapes 4096x12288,…] [--ms 16,32] [--band WK:KS[:MINB],…] [--rounds 4] [--out DIR]
 * --band: the variants, each WK (warps a block = tiles a block, 4, 8 or 16), KS (K splits, ≥ 1) and MINB (blocks a SM
 * the registers must allow; default 2 at WK ≤ 8, else 1); default every WK 4 / 8 / 16 with KS 1, 2, 3, 4, 6, 8.
 */
import { paddedRows } from '../src/backends/cuda/repack.js';
import { chooseW4A8Config, w4a8Linear, type DecodeConfig } from '../src/backends/cuda/w4a8.js';
import { BenchArgumentError, benchArgs, positiveInt, positiveInts, shapeList } from './args.js';
import {
  ACT_SCALES, BenchLog, CudaBench, DeviceInputs, Seeds, activations, copiesFor, copyBandwidth, fill, fp16Copies, fp16Gemm, quantCopies, w4a8Layer, type Launch,
} from './cuda-timing.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    shapes: { type: 'string', default: '4096x12288,4096x4096,4096x22016,11008x4096' },
    ms: { type: 'string', default: '16,32' },
    band: { type: 'string' },
    rounds: { type: 'string', default: '4' },
    out: { type: 'string', default: 'docs/bench' },
  },
});

interface BandVariant { readonly WK: number; readonly KS: number; readonly MINB: number }
const defaultMinb = (WK: number): number => (WK <= 8 ? 2 : 1);
const bandVariants = (text: string | undefined): BandVariant[] => {
  if (text === undefined) return [4, 8, 16].flatMap((WK) => [1, 2, 3, 4, 6, 8].map((KS) => ({ WK, KS, MINB: defaultMinb(WK) })));
  return text.split(',').map((v) => {
    const parts = v.split(':').map(Number);
    const [WK, KS, MINB = defaultMinb(WK!)] = parts;
    const ok = (parts.length === 2 || parts.length === 3) && [4, 8, 16].includes(WK!) && Number.isInteger(KS) && KS! >= 1 && Number.isInteger(MINB) && MINB >= 1 && MINB * WK! * 32 <= 2048;
    if (!ok) throw new BenchArgumentError(`--band takes WK:KS[:MINB] (WK 4, 8 or 16; KS ≥ 1; MINB ≥ 1 with MINB·WK·32 ≤ 2048), or a list of them; got '${v}'`);
    return { WK: WK!, KS: KS!, MINB };
  });
};
const SHAPES = shapeList('shapes', values.shapes!);
const MS = positiveInts('ms', values.ms!);
if (MS.some((M) => M > 32)) throw new BenchArgumentError(`--ms: the band kernel serves up to 32 rows; got ${values.ms}`);
const VARIANTS = bandVariants(values.band);
const rounds = positiveInt('rounds', values.rounds!);
const SAMPLES = 20;

const bench = new CudaBench('bench/cuda-decode-band');
const { ctx, timer, cublas } = bench;
const bytesPerUs = copyBandwidth(ctx) / 1e6;
const log = new BenchLog();
log.line(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, driver ${ctx.info.driverVersion}; RANDOM W4A8 IS weights (speed only), g128; byte floor at the copy rate measured here, ${(bytesPerUs / 1e6).toFixed(2)} TB/s; medians of ${rounds} interleaved rounds × ${SAMPLES} launches, weight copies rotated past L2`);
const seeds = new Seeds(11);
const sms = ctx.info.multiprocessors;
for (const [K, N] of SHAPES) {
  const weights = new DeviceInputs(ctx, seeds);
  const nPad = paddedRows(N), weightBytes = (nPad * K) / 2 + nPad * (K / 128) * 4;
  const wq = quantCopies(weights, copiesFor(ctx.info.l2Bytes, weightBytes), 4, nPad, K, 128);
  const w16 = fp16Copies(weights, ctx.info.l2Bytes, N, K);
  for (const M of MS) {
    const acts = new DeviceInputs(ctx, seeds);
    const act = activations(acts, 1, M, K, N);
    const xq = acts.random(M * K, fill.i8), a = acts.random(M * 4, ACT_SCALES);
    const [y0, y1] = [acts.output(M * N * 4), acts.output(M * N * 4)];
    const decode = chooseW4A8Config(M, N, K, true, true, sms);
    if (decode.kind !== 'decode') throw new Error(`the chooser gives ${decode.kind} at M=${M}: no decode kernel to compare with`);
    const MT = Math.ceil(M / 8);
    const band = (v: BandVariant): DecodeConfig => ({ kind: 'decode', MT, NTW: 1, WK: v.WK, MINB: v.MINB, band: v.KS, overlap: false });
    const gemm = (cfg: DecodeConfig, y = act.y): Launch => (i) => w4a8Linear(ctx, w4a8Layer(wq, N, K, 128, 'is', i), xq, a, y, M, cfg);
    // the same bits first (copy 0 of the weights, the same rows)
    gemm(decode, y0)(0);
    ctx.synchronize();
    const want = Buffer.from(y0.download(new Uint8Array(M * N * 4)));
    const runs = VARIANTS.filter((v) => {
      const label = `band WK${v.WK} KS${v.KS} MINB${v.MINB}`;
      try {
        y1.fill(0xff);
        gemm(band(v), y1)(0);
        ctx.synchronize();
      } catch (e) {
        log.line(`K=${K} N=${N} M=${M} ${label}: left out, ${(e as Error).message.split('\n')[0]}`);
        return false;
      }
      if (!Buffer.from(y1.download(new Uint8Array(M * N * 4))).equals(want)) throw new Error(`K=${K} N=${N} M=${M}: ${label}'s y differs from the decode kernel's`);
      return true;
    });
    log.line(`K=${K} N=${N} M=${M}: ${runs.length} band variants' y bit-identical to the decode kernel's (${JSON.stringify(decode)})`);
    const launches: [string, Launch][] = [
      [`decode MT${decode.MT} NTW${decode.NTW} WK${decode.WK}`, gemm(decode)],
      ['cuBLAS FP16', fp16Gemm(cublas, w16, act, M, N, K)],
      ...runs.map((v): [string, Launch] => [`band WK${v.WK} KS${v.KS} MINB${v.MINB} (${(nPad / 16 / v.WK) * v.KS} blocks)`, gemm(band(v))]),
    ];
    const t = timer.timeInterleaved(launches.map(([, l]) => l), rounds, SAMPLES);
    const bytes = weightBytes + M * K;
    const best = launches.map((_, j) => j).slice(2).sort((p, q) => t[p]!.us - t[q]!.us)[0];
    launches.forEach(([name], j) => {
      const tj = t[j]!;
      const over = j === 1 ? '' : `, ${(t[1]!.us / tj.us).toFixed(2)}× cuBLAS, ${(t[0]!.us / tj.us).toFixed(3)}× decode, ${(bytes / tj.us / 1e6).toFixed(2)} TB/s`;
      log.line(`K=${K} N=${N} M=${String(M).padStart(2)} ${name.padEnd(36)} ${tj.us.toFixed(2).padStart(7)} µs (p10 ${tj.p10.toFixed(2)}, p90 ${tj.p90.toFixed(2)})${over}${j === best ? '  ← best band' : ''}`);
    });
    log.line(`K=${K} N=${N} M=${M} byte floor ${(bytes / bytesPerUs).toFixed(2)} µs`);
    acts.free();
  }
  weights.free();
}
log.write(values.out!, 'cuda-decode-band.log');
bench.close();
