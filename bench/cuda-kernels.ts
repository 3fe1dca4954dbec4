/**
 * Kernel benchmark on the GPU: cuBLAS FP16 vs W4A8 integer scale (with and without the per-group
 * shift) vs W4A8 float scale vs W8A8 integer / float scale vs W4A16 (M <= 64, fp16 activations),
 * same shapes, same run. Usage:
 *   node dist/bench/cuda-kernels.js [--out DIR] [--ms 1,2,4,...] [--shapes 4096x22016,...] [--quick]
 * Timing: CUDA events around every launch, launches queued behind a spin kernel so they run back
 * to back; warm-up first; median of the samples; weights (and activations) rotate among enough
 * copies that each pass reads more than 2.5x L2 from DRAM. Random device data, never zeros.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CudaContext } from '../src/backends/cuda/context.js';
import { CudaUnavailableError } from '../src/backends/cuda/libs.js';
import { Cublas } from '../src/backends/cuda/cublas.js';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import { paddedRows } from '../src/backends/cuda/repack.js';
import { chooseW4A8Config, w4a8Linear, type W4A8Layer } from '../src/backends/cuda/w4a8.js';
import { chooseW8A8Config, w8a8Linear, type W8A8Config, type W8A8Layer } from '../src/backends/cuda/w8a8.js';
import { chooseW4A16Config, w4a16Linear, type W4A16Layer } from '../src/backends/cuda/w4a16.js';
import { fillRandomF16, fillRandomF32, fillRandomI32, fillRandomI8, fillRandomU32, spin } from '../src/backends/cuda/util.js';
import { compileStats } from '../src/backends/cuda/kernel-cache.js';
import { renderBenchSvg } from './cuda-plot.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const outDir = opt('out') ?? 'docs/bench';
const quick = args.includes('--quick');
const MS = (opt('ms') ?? '1,2,4,8,16,32,64,128,256,512,1024,2048,4096').split(',').map(Number);
const SHAPES = (opt('shapes') ?? '4096x22016,4096x4096,11008x4096').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const G = 128;
const SAMPLES = quick ? 10 : 30;

const ctx = (() => {
  try {
    return new CudaContext(0);
  } catch (e) {
    if (!(e instanceof CudaUnavailableError)) throw e;
    console.error(`intscale bench kernels needs an NVIDIA GPU: ${e.message}`);
    process.exit(2);
  }
})();
const cublas = new Cublas(ctx.stream);
const l2 = ctx.info.l2Bytes;
console.log(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, L2 ${(l2 / 2 ** 20).toFixed(0)} MiB, driver ${ctx.info.driverVersion}, cuBLAS ${cublas.version()}`);

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const events = Array.from({ length: SAMPLES + 1 }, () => ctx.createEvent());

/** Median µs of `launch(i)` (i = rotation index), after warm-up. */
function timeIt(launch: (i: number) => void): { us: number; spread: number } {
  for (let i = 0; i < 3; i++) launch(i);
  ctx.synchronize();
  const samples: number[] = [];
  for (let rep = 0; rep < 2; rep++) {
    spin(ctx, 3000);
    for (let i = 0; i < SAMPLES; i++) {
      ctx.record(events[i]!);
      launch(rep * SAMPLES + i);
    }
    ctx.record(events[SAMPLES]!);
    ctx.synchronize();
    for (let i = 0; i < SAMPLES; i++) samples.push(ctx.elapsedMs(events[i]!, events[i + 1]!) * 1000);
  }
  const s = [...samples].sort((a, b) => a - b);
  return { us: median(samples), spread: (s[Math.floor(s.length * 0.9)]! - s[Math.floor(s.length * 0.1)]!) };
}

const copiesFor = (bytes: number): number => Math.max(2, Math.ceil((2.5 * l2) / bytes));

interface Row {
  K: number; N: number; M: number; variant: string; kernel: string; us: number; spread_us: number; tops: number; gbps: number;
  vs_fp16: number; is_over_fs?: number;
}
const rows: Row[] = [];
let seed = 1;

for (const [K, N] of SHAPES) {
  const nPad = paddedRows(N);
  const groups = K / G;
  const w4Bytes = (nPad * K) / 2 + nPad * groups * 4;
  const R4 = copiesFor(w4Bytes);
  const w16Bytes = N * K * 2;
  const R16 = copiesFor(w16Bytes);
  const wq: DeviceBuffer[] = [];
  const sInt: DeviceBuffer[] = [];
  const sFlt: DeviceBuffer[] = [];
  for (let r = 0; r < R4; r++) {
    wq.push(ctx.alloc((nPad * K) / 2));
    fillRandomU32(ctx, wq[r]!, seed++);
    sInt.push(ctx.alloc(nPad * groups * 4));
    fillRandomI32(ctx, sInt[r]!, seed++, 1, 8); // small S: Σ_g S fits the shift-free bound
    sFlt.push(ctx.alloc(nPad * groups * 4));
    fillRandomF32(ctx, sFlt[r]!, seed++, 0.0005, 0.005);
  }
  const w8Bytes = nPad * K + nPad * groups * 4;
  const R8 = copiesFor(w8Bytes);
  const wq8: DeviceBuffer[] = [], s8Int: DeviceBuffer[] = [], s8Flt: DeviceBuffer[] = [];
  for (let r = 0; r < R8; r++) {
    wq8.push(ctx.alloc(nPad * K)); fillRandomU32(ctx, wq8[r]!, seed++);
    s8Int.push(ctx.alloc(nPad * groups * 4)); fillRandomI32(ctx, s8Int[r]!, seed++, 1, 8);
    s8Flt.push(ctx.alloc(nPad * groups * 4)); fillRandomF32(ctx, s8Flt[r]!, seed++, 0.0005, 0.005);
  }
  const s16: DeviceBuffer[] = []; // fp16 scales for W4A16 (same int4 weights as W4A8)
  for (let r = 0; r < R4; r++) { s16.push(ctx.alloc(nPad * groups * 2)); fillRandomF16(ctx, s16[r]!, seed++); }
  const layers8 = (r: number, v: 'is' | 'fs'): W8A8Layer => ({
    n: N, k: K, groupSize: G, scale: v === 'fs' ? 'float' : 'int', post: v === 'fs' ? 1 : 2 ** -10,
    weights: wq8[r % R8]!, scales: v === 'fs' ? s8Flt[r % R8]! : s8Int[r % R8]!,
  });
  const layer16 = (r: number): W4A16Layer => ({ n: N, k: K, groupSize: G, weights: wq[r % R4]!, scales: s16[r % R4]! });
  const w16: DeviceBuffer[] = [];
  for (let r = 0; r < R16; r++) {
    w16.push(ctx.alloc(w16Bytes));
    fillRandomF16(ctx, w16[r]!, seed++);
  }
  const layers = (r: number, v: 'is' | 'is-shift' | 'fs'): W4A8Layer => ({
    n: N, k: K, groupSize: G, scale: v === 'fs' ? 'float' : 'int', post: v === 'is' ? 2 ** -14 : v === 'is-shift' ? 2 ** -10 : 1,
    isShift: v === 'is-shift', weights: wq[r % R4]!, scales: v === 'fs' ? sFlt[r % R4]! : sInt[r % R4]!,
  });
  for (const M of MS) {
    const actBytes = M * K;
    const RA = Math.min(8, copiesFor(actBytes * 2 + M * N * 4));
    const xq: DeviceBuffer[] = [], a: DeviceBuffer[] = [], x16: DeviceBuffer[] = [];
    for (let r = 0; r < RA; r++) {
      xq.push(ctx.alloc(actBytes)); fillRandomI8(ctx, xq[r]!, seed++);
      a.push(ctx.alloc(M * 4)); fillRandomF32(ctx, a[r]!, seed++, 0.01, 0.02);
      x16.push(ctx.alloc(M * K * 2)); fillRandomF16(ctx, x16[r]!, seed++);
    }
    const y = ctx.alloc(M * N * 4);
    const y16 = ctx.alloc(M * N * 2);
    const ops = 2 * M * N * K;
    const fp16 = timeIt((i) => cublas.gemmF16(y16.address, x16[i % RA]!.address, w16[i % R16]!.address, M, N, K));
    const fp16Bytes = w16Bytes + M * K * 2 + M * N * 2;
    rows.push({ K, N, M, variant: 'fp16-cublas', kernel: 'cublasGemmEx', us: fp16.us, spread_us: fp16.spread, tops: ops / fp16.us / 1e6, gbps: fp16Bytes / fp16.us / 1e3, vs_fp16: 1 });
    const cfg = chooseW4A8Config(M, N, K, ctx.arch === 'sm_90a');
    const kernel = cfg.kind === 'decode' ? `decode MT${cfg.MT} NTW${cfg.NTW} WK${cfg.WK}` : cfg.kind === 'wgmma' ? `wgmma ${64 * cfg.WGS}x128 s${cfg.STAGES}` : `mma ${cfg.BM}x${cfg.BN} ${cfg.WM * cfg.WN}w s${cfg.STAGES}`;
    const res: Record<string, number> = {};
    for (const v of ['is', 'is-shift', 'fs'] as const) {
      const t = timeIt((i) => w4a8Linear(ctx, layers(i, v), xq[i % RA]!, a[i % RA]!, y, M, cfg));
      res[v] = t.us;
      const bytes = w4Bytes + M * K + M * 4 + M * N * 4;
      rows.push({ K, N, M, variant: `w4a8-${v}`, kernel, us: t.us, spread_us: t.spread, tops: ops / t.us / 1e6, gbps: bytes / t.us / 1e3, vs_fp16: fp16.us / t.us });
    }
    rows[rows.length - 3]!.is_over_fs = res.fs! / res.is!;
    rows[rows.length - 2]!.is_over_fs = res.fs! / res['is-shift']!;
    // W8A8 (8-bit weights, int8 activations)
    const cfg8: W8A8Config = chooseW8A8Config(M, N, K, ctx.arch === 'sm_90a');
    const kernel8 = cfg8.kind === 'decode' ? `decode MT${cfg8.MT} NTW${cfg8.NTW} WK${cfg8.WK}` : `wgmma ${64 * cfg8.WGS}x128 s${cfg8.STAGES}`;
    for (const v of ['is', 'fs'] as const) {
      const t = timeIt((i) => w8a8Linear(ctx, layers8(i, v), xq[i % RA]!, a[i % RA]!, y, M, cfg8));
      res[`w8-${v}`] = t.us;
      const bytes = w8Bytes + M * K + M * 4 + M * N * 4;
      rows.push({ K, N, M, variant: `w8a8-${v}`, kernel: kernel8, us: t.us, spread_us: t.spread, tops: ops / t.us / 1e6, gbps: bytes / t.us / 1e3, vs_fp16: fp16.us / t.us });
    }
    rows[rows.length - 2]!.is_over_fs = res['w8-fs']! / res['w8-is']!;
    // W4A16 (int4 weights, fp16 activations), decode shapes only
    let w4a16Text = '       -';
    if (M <= 64) {
      const c16 = chooseW4A16Config(M, N, K);
      const t = timeIt((i) => w4a16Linear(ctx, layer16(i), x16[i % RA]!, y, M, c16));
      res.w4a16 = t.us;
      const bytes = (nPad * K) / 2 + nPad * groups * 2 + M * K * 2 + M * N * 4;
      rows.push({ K, N, M, variant: 'w4a16', kernel: `decode MT${c16.MT} NTW${c16.NTW} WK${c16.WK}`, us: t.us, spread_us: t.spread, tops: ops / t.us / 1e6, gbps: bytes / t.us / 1e3, vs_fp16: fp16.us / t.us });
      w4a16Text = (fp16.us / t.us).toFixed(2).padStart(8);
    }
    const f = (v: number, d = 1): string => v.toFixed(d).padStart(8);
    console.log(
      `K=${K} N=${N} M=${String(M).padStart(4)} | fp16 ${f(fp16.us)} µs | IS ${f(res.is!)} µs ${f(fp16.us / res.is!, 2)}x | IS-shift ${f(res['is-shift']!)} | FS ${f(res.fs!)} µs ${f(fp16.us / res.fs!, 2)}x | IS/FS ${f(res.fs! / res.is!, 3)} | ${(ops / res.is! / 1e6).toFixed(0)} TOPS ${((w4Bytes + M * K) / res.is! / 1e3).toFixed(0)} GB/s | ${kernel}` +
        ` || W8A8 IS ${f(res['w8-is']!)} µs ${f(fp16.us / res['w8-is']!, 2)}x ${(ops / res['w8-is']! / 1e6).toFixed(0).padStart(5)} TOPS | W8A8 FS ${f(res['w8-fs']!)} µs ${f(fp16.us / res['w8-fs']!, 2)}x | W8 FS/IS ${f(res['w8-fs']! / res['w8-is']!, 3)} | ${kernel8} || W4A16 ${res.w4a16 !== undefined ? f(res.w4a16) : '       -'} µs ${w4a16Text}x`,
    );
    for (const b of [...xq, ...a, ...x16, y, y16]) b.free();
  }
  for (const b of [...wq, ...sInt, ...sFlt, ...w16, ...wq8, ...s8Int, ...s8Flt, ...s16]) b.free();
}

const date = new Date().toISOString();
const report = {
  gpu: ctx.info.name, sms: ctx.info.multiprocessors, l2Bytes: l2, driver: ctx.info.driverVersion, cublas: cublas.version(), date,
  groupSize: G, samplesPerVariant: 2 * SAMPLES, compile: compileStats,
  method: 'CUDA events around each launch, launches queued behind a spin kernel, median; inputs rotated over > 2.5x L2; random device data',
  rows,
};
mkdirSync(outDir, { recursive: true });
const stem = `cuda-kernels-${ctx.info.name.replace(/\W+/g, '-')}-${date.slice(0, 10)}`;
writeFileSync(join(outDir, `${stem}.json`), JSON.stringify(report, null, 1));
writeFileSync(join(outDir, `${stem}.svg`), renderBenchSvg(report));
console.log(`wrote ${join(outDir, stem)}.{json,svg}`);
for (const e of events) ctx.destroyEvent(e);
cublas.destroy();
ctx.release();
