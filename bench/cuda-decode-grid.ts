/**
 * The decode kernels' persistent grid against one block per unit (decode-grid.ts): W4A8 IS on the decode
 * engine's stacked shapes (q/k/v 4096x12288, gate/up 4096x22016, o 4096x4096, down 11008x4096) and the
 * W8A8 IS lm_head (4096x32000), at M = 1, 8, 16, each configuration beside the chooser's default.
 * Timing: bench/cuda-timing.ts CudaTimer.time (events, spin-queued launches, 3 warm-ups + 2 x 20
 * samples, median; weights rotated over > 2.5x L2, random device data: speed only). TB/s counts the
 * weight and scale bytes a launch reads. Usage:
 *   node dist/bench/cuda-decode-grid.js [--ms 1,8,16] [--shapes KxN,...] [--w8 KxN,...] [--out DIR]
 */
import { paddedRows } from '../src/backends/cuda/repack.js';
import { chooseW4A8Config, w4a8Linear, type DecodeConfig } from '../src/backends/cuda/w4a8.js';
import { chooseW8A8Config, w8a8Linear, type W8DecodeConfig } from '../src/backends/cuda/w8a8.js';
import { ACT_SCALES, BenchLog, CudaBench, DeviceInputs, Seeds, benchOptions, copiesFor, fill, quantCopies, w4a8Layer, w8a8Layer } from './cuda-timing.js';

const o = benchOptions();
const MS = o.numbers('ms', '1,8,16');
const W4_SHAPES = o.shapes('shapes', '4096x12288,4096x22016,4096x4096,11008x4096');
const W8_SHAPES = o.shapes('w8', '4096x32000');
const outDir = o.value('out') ?? 'docs/bench';
const bench = new CudaBench('bench/cuda-decode-grid');
const { ctx, timer } = bench;
const SAMPLES = 20;
const log = new BenchLog();
log.line(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, ${new Date().toISOString()}; random weights (speed only); median of 2 x ${SAMPLES} samples`);

/** Each candidate: the default's MT, with and without the persistent grid, WK 8 and 16 where K allows. */
function candidates(base: { MT: number; NTW: number; WK: number }, K: number): { MT: number; NTW: number; WK: number; blocksPerSm?: number }[] {
  const out: { MT: number; NTW: number; WK: number; blocksPerSm?: number }[] = [];
  for (const NTW of [1, 2]) {
    for (const WK of [8, 16]) {
      if (NTW * base.MT * WK > 32 || K / 128 < WK) continue;
      out.push({ MT: base.MT, NTW, WK });
      for (const blocksPerSm of [1, 2, 3, 4]) out.push({ MT: base.MT, NTW, WK, blocksPerSm });
    }
  }
  return out;
}
const label = (c: { MT: number; NTW: number; WK: number; blocksPerSm?: number }): string =>
  `MT${c.MT} NTW${c.NTW} WK${String(c.WK).padEnd(2)} ${c.blocksPerSm ? `persistent ${c.blocksPerSm}/SM` : 'one block a unit'}`.padEnd(42);

const seeds = new Seeds(404);
for (const [bits, shapes] of [[4, W4_SHAPES], [8, W8_SHAPES]] as const) {
  for (const [K, N] of shapes) {
    const weights = new DeviceInputs(ctx, seeds);
    const nPad = paddedRows(N);
    const bytes = (nPad * K * bits) / 8 + nPad * (K / 128) * 4;
    const w = quantCopies(weights, copiesFor(ctx.info.l2Bytes, bytes), bits, nPad, K, 128);
    for (const M of MS) {
      const acts = new DeviceInputs(ctx, seeds);
      const xq = acts.random(M * K, fill.i8);
      const a = acts.random(M * 4, ACT_SCALES);
      const y = acts.output(M * N * 4);
      const chosen = bits === 4 ? chooseW4A8Config(M, N, K) : chooseW8A8Config(M, N, K);
      if (chosen.kind !== 'decode') continue;
      for (const c of candidates(chosen, K)) {
        const t = bits === 4
          ? timer.time((i) => w4a8Linear(ctx, w4a8Layer(w, N, K, 128, 'is', i), xq, a, y, M, { kind: 'decode', ...c } as DecodeConfig), SAMPLES).us
          : timer.time((i) => w8a8Linear(ctx, w8a8Layer(w, N, K, 128, 'is', i), xq, a, y, M, { kind: 'decode', ...c } as W8DecodeConfig), SAMPLES).us;
        const isDefault = c.NTW === chosen.NTW && c.WK === chosen.WK && c.blocksPerSm === (chosen as { blocksPerSm?: number }).blocksPerSm;
        log.line(`W${bits}A8 K=${K} N=${N} M=${String(M).padStart(2)} ${label(c)} ${t.toFixed(2).padStart(7)} µs ${(bytes / t / 1e6).toFixed(2)} TB/s${isDefault ? '  (default)' : ''}`);
      }
      acts.free();
    }
    weights.free();
  }
}
log.write(outDir, 'cuda-decode-grid.log');
bench.close();
