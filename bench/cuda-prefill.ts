/**
 * Prefill-kernel comparison on the GPU: cuBLAS FP16 vs the mma.sync GEMM vs the wgmma (sm_90a)
 * GEMM, integer scale (with and without the per-group shift) and float scale, same run. Same
 * timing method as cuda-kernels.ts (events, spin-queued launches, median, inputs rotated > 2.5x
 * L2, random data). Usage:
 *   node dist/bench/cuda-prefill.js [--out DIR] [--ms 128,...,4096] [--shapes KxN,...] [--stages 4,5,6]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CudaContext } from '../src/backends/cuda/context.js';
import { Cublas } from '../src/backends/cuda/cublas.js';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import { paddedRows } from '../src/backends/cuda/repack.js';
import { w4a8Linear, type W4A8Config, type W4A8Layer } from '../src/backends/cuda/w4a8.js';
import { fillRandomF16, fillRandomF32, fillRandomI32, fillRandomI8, fillRandomU32, spin } from '../src/backends/cuda/util.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const outDir = opt('out') ?? 'docs/bench';
const MS = (opt('ms') ?? '128,256,512,1024,2048,4096').split(',').map(Number);
const SHAPES = (opt('shapes') ?? '4096x22016,4096x4096,11008x4096').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const WG = (opt('wgmma') ?? '2:4,1:3,1:4').split(',').map((s) => s.split(':').map(Number) as [1 | 2, number]);
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
const cfgs: [string, W4A8Config][] = [
  ['mma128x128s4', { kind: 'mma', BM: 128, BN: 128, WM: 2, WN: 4, STAGES: 4 }],
  ...WG.map(([w, s]): [string, W4A8Config] => [`wgmma ${64 * w}x128 s${s}`, { kind: 'wgmma', WGS: w, STAGES: s }]),
];
const lines: string[] = [`# ${ctx.info.name}, cuBLAS ${cublas.version()}, ${new Date().toISOString()}`];
console.log(lines[0]);
let seed = 11;
for (const [K, N] of SHAPES) {
  const nPad = paddedRows(N);
  const groups = K / 128;
  const R = Math.max(2, Math.ceil((2.5 * ctx.info.l2Bytes) / ((nPad * K) / 2)));
  const R16 = Math.max(2, Math.ceil((2.5 * ctx.info.l2Bytes) / (N * K * 2)));
  const wq: DeviceBuffer[] = [], si: DeviceBuffer[] = [], sf: DeviceBuffer[] = [], w16: DeviceBuffer[] = [];
  for (let r = 0; r < R; r++) {
    wq.push(ctx.alloc((nPad * K) / 2)); fillRandomU32(ctx, wq[r]!, seed++);
    si.push(ctx.alloc(nPad * groups * 4)); fillRandomI32(ctx, si[r]!, seed++, 1, 8);
    sf.push(ctx.alloc(nPad * groups * 4)); fillRandomF32(ctx, sf[r]!, seed++, 0.0005, 0.005);
  }
  for (let r = 0; r < R16; r++) { w16.push(ctx.alloc(N * K * 2)); fillRandomF16(ctx, w16[r]!, seed++); }
  for (const M of MS) {
    const xq = ctx.alloc(M * K); fillRandomI8(ctx, xq, seed++);
    const x16 = ctx.alloc(M * K * 2); fillRandomF16(ctx, x16, seed++);
    const a = ctx.alloc(M * 4); fillRandomF32(ctx, a, seed++, 0.01, 0.02);
    const y = ctx.alloc(M * N * 4);
    const y16 = ctx.alloc(M * N * 2);
    const ops = 2 * M * N * K;
    const fp16 = timeIt((i) => cublas.gemmF16(y16.address, x16.address, w16[i % R16]!.address, M, N, K));
    let line = `K=${K} N=${N} M=${String(M).padStart(4)} fp16 ${fp16.toFixed(1).padStart(7)} µs (${(ops / fp16 / 1e6).toFixed(0)} TFLOPS)`;
    for (const [name, cfg] of cfgs) {
      const t: Record<string, number> = {};
      for (const v of ['is', 'is-shift', 'fs'] as const) {
        const layer = (i: number): W4A8Layer => ({ n: N, k: K, groupSize: 128, scale: v === 'fs' ? 'float' : 'int', post: v === 'fs' ? 1 : v === 'is' ? 2 ** -14 : 2 ** -10, isShift: v === 'is-shift', weights: wq[i % R]!, scales: v === 'fs' ? sf[i % R]! : si[i % R]! });
        t[v] = timeIt((i) => w4a8Linear(ctx, layer(i), xq, a, y, M, cfg));
      }
      line += ` | ${name}: IS ${t.is!.toFixed(1)} (${(ops / t.is! / 1e6).toFixed(0)} TOPS, ${(fp16 / t.is!).toFixed(2)}x) IS-sh ${t['is-shift']!.toFixed(1)} FS ${t.fs!.toFixed(1)} (${(fp16 / t.fs!).toFixed(2)}x) FS/IS ${(t.fs! / t.is!).toFixed(3)}`;
    }
    lines.push(line);
    console.log(line);
    for (const b of [xq, x16, a, y, y16]) b.free();
  }
  for (const b of [...wq, ...si, ...sf, ...w16]) b.free();
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'cuda-prefill.log'), lines.join('\n') + '\n');
cublas.destroy();
ctx.release();
