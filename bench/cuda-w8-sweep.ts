/**
 * Configuration sweep for the new kernels on the GPU: W8A8 decode and wgmma configurations
 * (IS and FS) and W4A16 decode configurations, against cuBLAS FP16 in the same run. Same timing
 * method as cuda-kernels.ts (events, spin-queued launches, median, weights rotated over > 2.5x L2,
 * random device data). Usage:
 *   node dist/bench/cuda-w8-sweep.js [--ms 1,16,128,...] [--shapes KxN,...]
 */
import { CudaContext } from '../src/backends/cuda/context.js';
import { Cublas } from '../src/backends/cuda/cublas.js';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import { paddedRows } from '../src/backends/cuda/repack.js';
import { w8a8Linear, type W8A8Config, type W8A8Layer } from '../src/backends/cuda/w8a8.js';
import { w4a16Linear, type W4A16Config } from '../src/backends/cuda/w4a16.js';
import { fillRandomF16, fillRandomF32, fillRandomI32, fillRandomI8, fillRandomU32, spin } from '../src/backends/cuda/util.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const MS = (opt('ms') ?? '1,16,128,512,1024,4096').split(',').map(Number);
const SHAPES = (opt('shapes') ?? '4096x22016,4096x4096,11008x4096').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const ctx = new CudaContext(0);
const cublas = new Cublas(ctx.stream);
const SAMPLES = 20;
const events = Array.from({ length: SAMPLES + 1 }, () => ctx.createEvent());
function timeIt(launch: (i: number) => void): number {
  for (let i = 0; i < 3; i++) launch(i);
  ctx.synchronize();
  const s: number[] = [];
  for (let rep = 0; rep < 2; rep++) {
    spin(ctx, 3000);
    for (let i = 0; i < SAMPLES; i++) {
      ctx.record(events[i]!);
      launch(rep * SAMPLES + i);
    }
    ctx.record(events[SAMPLES]!);
    ctx.synchronize();
    for (let i = 0; i < SAMPLES; i++) s.push(ctx.elapsedMs(events[i]!, events[i + 1]!) * 1000);
  }
  s.sort((a, b) => a - b);
  return (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
const DEC8: W8A8Config[] = [
  { kind: 'decode', MT: 1, NTW: 1, WK: 8 }, { kind: 'decode', MT: 1, NTW: 1, WK: 16 }, { kind: 'decode', MT: 1, NTW: 2, WK: 4 },
  { kind: 'decode', MT: 1, NTW: 2, WK: 8 }, { kind: 'decode', MT: 2, NTW: 1, WK: 8 }, { kind: 'decode', MT: 2, NTW: 1, WK: 16 }, { kind: 'decode', MT: 2, NTW: 2, WK: 8 },
];
const WG8: W8A8Config[] = [{ kind: 'wgmma', WGS: 1, STAGES: 3 }, { kind: 'wgmma', WGS: 1, STAGES: 4 }, { kind: 'wgmma', WGS: 2, STAGES: 3 }, { kind: 'wgmma', WGS: 2, STAGES: 4 }, { kind: 'wgmma', WGS: 1, STAGES: 4, PIPE: true }];
const DEC16: W4A16Config[] = [
  { MT: 1, NTW: 1, WK: 8 }, { MT: 1, NTW: 1, WK: 16 }, { MT: 1, NTW: 2, WK: 8 }, { MT: 1, NTW: 4, WK: 4 }, { MT: 2, NTW: 1, WK: 8 }, { MT: 2, NTW: 2, WK: 8 }, { MT: 2, NTW: 1, WK: 16 },
];
const name = (c: W8A8Config): string => (c.kind === 'decode' ? `dec MT${c.MT} NTW${c.NTW} WK${c.WK}` : `wgmma ${64 * c.WGS}x128 s${c.STAGES}${c.PIPE ? ' pipe' : ''}`);
console.log(`# ${ctx.info.name}, cuBLAS ${cublas.version()}, ${new Date().toISOString()}`);
let seed = 101;
for (const [K, N] of SHAPES) {
  const nPad = paddedRows(N), groups = K / 128;
  const R8 = Math.max(2, Math.ceil((2.5 * ctx.info.l2Bytes) / (nPad * K)));
  const R4 = Math.max(2, Math.ceil((2.5 * ctx.info.l2Bytes) / ((nPad * K) / 2)));
  const R16 = Math.max(2, Math.ceil((2.5 * ctx.info.l2Bytes) / (N * K * 2)));
  const w8: DeviceBuffer[] = [], si: DeviceBuffer[] = [], sf: DeviceBuffer[] = [], w4: DeviceBuffer[] = [], s16: DeviceBuffer[] = [], wh: DeviceBuffer[] = [];
  for (let r = 0; r < R8; r++) {
    w8.push(ctx.alloc(nPad * K)); fillRandomU32(ctx, w8[r]!, seed++);
    si.push(ctx.alloc(nPad * groups * 4)); fillRandomI32(ctx, si[r]!, seed++, 1, 8);
    sf.push(ctx.alloc(nPad * groups * 4)); fillRandomF32(ctx, sf[r]!, seed++, 0.0005, 0.005);
  }
  for (let r = 0; r < R4; r++) {
    w4.push(ctx.alloc((nPad * K) / 2)); fillRandomU32(ctx, w4[r]!, seed++);
    s16.push(ctx.alloc(nPad * groups * 2)); fillRandomF16(ctx, s16[r]!, seed++);
  }
  for (let r = 0; r < R16; r++) { wh.push(ctx.alloc(N * K * 2)); fillRandomF16(ctx, wh[r]!, seed++); }
  for (const M of MS) {
    const xq = ctx.alloc(M * K); fillRandomI8(ctx, xq, seed++);
    const x16 = ctx.alloc(M * K * 2); fillRandomF16(ctx, x16, seed++);
    const a = ctx.alloc(M * 4); fillRandomF32(ctx, a, seed++, 0.01, 0.02);
    const y = ctx.alloc(M * N * 4), y16 = ctx.alloc(M * N * 2);
    const ops = 2 * M * N * K;
    const fp16 = timeIt((i) => cublas.gemmF16(y16.address, x16.address, wh[i % R16]!.address, M, N, K));
    const parts = [`K=${K} N=${N} M=${String(M).padStart(4)} fp16 ${fp16.toFixed(1)} µs (${(ops / fp16 / 1e6).toFixed(0)} TFLOPS)`];
    const cfgs = M <= 16 ? DEC8.filter((c) => c.kind === 'decode' && M <= 8 * c.MT) : WG8;
    for (const cfg of cfgs) {
      const t: Record<string, number> = {};
      for (const v of ['is', 'fs', 'is2'] as const) {
        const layer = (i: number): W8A8Layer => ({ n: N, k: K, groupSize: 128, scale: v === 'fs' ? 'float' : 'int', post: v === 'fs' ? 1 : 2 ** -10, weights: w8[i % R8]!, scales: v === 'fs' ? sf[i % R8]! : si[i % R8]! });
        t[v] = timeIt((i) => w8a8Linear(ctx, layer(i), xq, a, y, M, cfg));
      }
      parts.push(`W8 ${name(cfg)}: IS ${t.is!.toFixed(1)}/${t.is2!.toFixed(1)} (${(ops / t.is! / 1e6).toFixed(0)} TOPS, ${(fp16 / t.is!).toFixed(2)}x) FS ${t.fs!.toFixed(1)} FS/IS ${(t.fs! / t.is!).toFixed(3)}`);
    }
    if (M <= 16) {
      for (const c of DEC16.filter((c) => M <= 8 * c.MT)) {
        const t = timeIt((i) => w4a16Linear(ctx, { n: N, k: K, groupSize: 128, weights: w4[i % R4]!, scales: s16[i % R4]! }, x16, y, M, c));
        parts.push(`W4A16 MT${c.MT} NTW${c.NTW} WK${c.WK}: ${t.toFixed(1)} (${(fp16 / t).toFixed(2)}x)`);
      }
    }
    console.log(parts.join(' | '));
    for (const b of [xq, x16, a, y, y16]) b.free();
  }
  for (const b of [...w8, ...si, ...sf, ...w4, ...s16, ...wh]) b.free();
}
for (const e of events) ctx.destroyEvent(e);
cublas.destroy();
ctx.release();
