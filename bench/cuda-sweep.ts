/**
 * Tile/config sweep for the W4A8 kernels (integer scale, shift-free, and float scale), to pick
 * chooseW4A8Config's defaults. Same timing method as cuda-kernels.ts. Usage:
 *   node dist/bench/cuda-sweep.js [--out DIR]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CudaContext } from '../src/backends/cuda/context.js';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import { paddedRows } from '../src/backends/cuda/repack.js';
import { w4a8Linear, type W4A8Config, type W4A8Layer } from '../src/backends/cuda/w4a8.js';
import { fillRandomF32, fillRandomI32, fillRandomI8, fillRandomU32, spin } from '../src/backends/cuda/util.js';

const args = process.argv.slice(2);
const outDir = args.includes('--out') ? args[args.indexOf('--out') + 1]! : 'docs/bench';
const ctx = new CudaContext(0);
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
const CASES: [K: number, N: number, Ms: number[]][] = [
  [4096, 22016, [1, 16, 32, 64, 4096]],
  [4096, 4096, [1, 16, 32, 64]],
  [11008, 4096, [1, 16, 32, 64]],
];
const lines: string[] = [];
let seed = 5;
for (const [K, N, Ms] of CASES) {
  const nPad = paddedRows(N);
  const groups = K / 128;
  const R = Math.max(2, Math.ceil((2.5 * ctx.info.l2Bytes) / ((nPad * K) / 2)));
  const wq: DeviceBuffer[] = [], si: DeviceBuffer[] = [], sf: DeviceBuffer[] = [];
  for (let r = 0; r < R; r++) {
    wq.push(ctx.alloc((nPad * K) / 2)); fillRandomU32(ctx, wq[r]!, seed++);
    si.push(ctx.alloc(nPad * groups * 4)); fillRandomI32(ctx, si[r]!, seed++, 1, 8);
    sf.push(ctx.alloc(nPad * groups * 4)); fillRandomF32(ctx, sf[r]!, seed++, 0.0005, 0.005);
  }
  for (const M of Ms) {
    const xq = ctx.alloc(M * K); fillRandomI8(ctx, xq, seed++);
    const a = ctx.alloc(M * 4); fillRandomF32(ctx, a, seed++, 0.01, 0.02);
    const y = ctx.alloc(M * N * 4);
    const cfgs = M === 4096 ? mmaCfgs.slice(3) : M <= 16 ? decodeCfgs(M) : [...decodeCfgs(M).filter((c) => c.kind === 'decode' && c.NTW === 1 && c.WK === 8), ...mmaCfgs.slice(0, 4)];
    for (const cfg of cfgs) {
      const t: Record<string, number> = {};
      try {
        for (const v of ['is', 'fs'] as const) {
          const layer = (i: number): W4A8Layer => ({ n: N, k: K, groupSize: 128, scale: v === 'fs' ? 'float' : 'int', post: v === 'fs' ? 1 : 2 ** -14, isShift: false, weights: wq[i % R]!, scales: v === 'fs' ? sf[i % R]! : si[i % R]! });
          t[v] = timeIt((i) => w4a8Linear(ctx, layer(i), xq, a, y, M, cfg));
        }
      } catch (e) {
        lines.push(`K=${K} N=${N} M=${M} ${JSON.stringify(cfg)} FAILED ${(e as Error).message.split('\n')[0]}`);
        console.log(lines[lines.length - 1]);
        continue;
      }
      const line = `K=${K} N=${N} M=${String(M).padStart(4)} ${JSON.stringify(cfg).padEnd(72)} IS ${t.is!.toFixed(1).padStart(7)} µs FS ${t.fs!.toFixed(1).padStart(7)} µs FS/IS ${(t.fs! / t.is!).toFixed(3)} GB/s(IS) ${(((nPad * K) / 2 + M * K) / t.is! / 1e3).toFixed(0)}`;
      lines.push(line);
      console.log(line);
    }
    xq.free(); a.free(); y.free();
  }
  for (const b of [...wq, ...si, ...sf]) b.free();
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'cuda-sweep.log'), lines.join('\n') + '\n');
ctx.release();
