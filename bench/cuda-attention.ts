/**
 * The decode engine's attention (attentionToCuda: attention_split, attention_merge, quantize_rows) at B rows, each its
 * own sequence at position `--context` (as Table 7's batches, all sequences started together), over L layers' KV
 * caches (fp16, LLaMA-2-7B's 32 heads of 128; RANDOM keys, values and queries: speed only), two ways interleaved in
 * R rounds:
 *   loads 4   attention_split: a warp a position, lanes over pairs of halves (4-byte loads);
 *   loads 16  attention_split_v8: 16 lanes a position, 8 halves a lane (16-byte loads; the engine's wideAttention);
 * each at the engine's split of the positions (engineSplits) and at every count `--splits` adds (blocks of
 * ceil(capacity / S) positions).
 * First every way is compared with the first on every layer's output rows (f32, before quantization): they sum in
 * other orders, so they agree within rounding, not bit for bit (the bound is printed). Then each is timed over the L
 * layers (one sample: L attentions, each layer its own caches, so the KV comes from DRAM, not L2; the three launches
 * back to back on the stream, not in a graph), and the KV bytes a layer reads (B · (p + 1) · KVH · D · 2 · 2) over
 * its time give the rate. Usage:
 *   node dist/bench/cuda-attention.js [--rows 1,8,32,64] [--context 192] [--layers 32] [--kv-heads 32] [--splits 4,16]
 *     [--rounds 3] [--out DIR]
 */
import { attentionToCuda, ENGINE_MAX_SPLITS, engineSplits, rowScratchBytes, ROW_BYTES, type AttentionSplit, type EngineAttention, type RowOutput } from '../src/backends/cuda/engine-ops.js';
import { benchArgs, BenchArgumentError, positiveInt, positiveInts } from './args.js';
import { positionBound } from '../src/backends/cuda/decode-engine.js';
import { BenchLog, CudaBench, DeviceInputs, Seeds, copyBandwidth, fill, type Launch } from './cuda-timing.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    rows: { type: 'string', default: '1,8,32,64' },
    context: { type: 'string', default: '192' },
    layers: { type: 'string', default: '32' },
    'kv-heads': { type: 'string', default: '32' },
    splits: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string', default: 'docs/bench' },
  },
});
const rowCounts = positiveInts('rows', values.rows!);
const position = positiveInt('context', values.context!);
const layers = positiveInt('layers', values.layers!);
const KVH = positiveInt('kv-heads', values['kv-heads']!);
const rounds = positiveInt('rounds', values.rounds!);
const extraSplits = values.splits === undefined ? [] : positiveInts('splits', values.splits);
if (extraSplits.some((S) => S > ENGINE_MAX_SPLITS)) throw new BenchArgumentError(`--splits: the merge takes at most ${ENGINE_MAX_SPLITS}`);
const [H, D] = [32, 128];
if (H % KVH !== 0) throw new BenchArgumentError(`--kv-heads: ${KVH} does not divide the ${H} query heads`);
/** The positions the engine plans its splits for (a power of two, at least 256). */
const capacity = positionBound(position + 1);
const SAMPLES = 10;

const bench = new CudaBench('bench/cuda-attention');
const { ctx, timer } = bench;
const log = new BenchLog();
const copy = copyBandwidth(ctx);
log.line(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, driver ${ctx.info.driverVersion}; device copy ${(copy / 1e12).toFixed(2)} TB/s (read + write)`);
log.line(`# attention of B rows at position ${position} (capacity ${capacity}), ${H} heads / ${KVH} kv heads of ${D}, fp16 KV cache, ${layers} layers; RANDOM data (speed only); medians of ${rounds} interleaved rounds × ${SAMPLES} samples of ${layers} layers`);

const layerBytes = capacity * KVH * D * 2;  // one cache (K or V) of one layer of one sequence
for (const m of rowCounts) {
  const inputs = new DeviceInputs(ctx, new Seeds(1000 + m));
  // slot r: [layers][K, V][capacity][KVH][D] fp16; the slot table names each (slot, layer, K|V) cache
  const slots = Array.from({ length: m }, () => inputs.random(layers * 2 * layerBytes, fill.f16));
  const table = new BigUint64Array(m * layers * 2);
  slots.forEach((b, r) => { for (let i = 0; i < layers * 2; ++i) table[r * layers * 2 + i] = BigInt(b.address + i * layerBytes); });
  const kv = inputs.output(table.byteLength);
  kv.upload(new Uint8Array(table.buffer));
  const rowTable = new Int32Array((m * ROW_BYTES) / 4);
  for (let r = 0; r < m; ++r) rowTable.set([1, position, r, 0], 4 * r);
  const rows = inputs.output(rowTable.byteLength);
  rows.upload(new Uint8Array(rowTable.buffer));
  const q = inputs.random(m * H * D * 4, fill.f32(-1, 1));
  const engine = engineSplits(capacity, m, H, D);
  const splitCounts = [engine.splits, ...extraSplits.filter((S) => S !== engine.splits)];
  const part = inputs.output(Math.max(...splitCounts) * m * H * (D + 2) * 4);
  const sb = rowScratchBytes(m, H * D, H);
  const scratch = { values: inputs.output(sb.values), amax: inputs.output(sb.amax) };
  const out: RowOutput = { form: 'int8', values: inputs.output(m * H * D), scales: inputs.output(m * 4) };
  const attention = (layer: number): EngineAttention => ({ numHeads: H, numKvHeads: KVH, headDim: D, window: 0, kv, layer, numLayers: layers });
  const ways: AttentionSplit[] = splitCounts.flatMap((S) => ([4, 16] as const).map((loads) => ({ splits: S, chunk: Math.ceil(capacity / S), loads })));
  const name = (w: AttentionSplit): string => `loads ${String(w.loads).padStart(2)}, ${w.splits} splits of ${w.chunk}${w.splits === engine.splits ? ' (engine)' : ''}`;
  const run = (w: AttentionSplit, layer: number): void => attentionToCuda(ctx, q, H * D, rows, m, attention(layer), w, part, scratch, out);

  // every way on every layer against the first: the rows before quantization
  const rowsOf = (w: AttentionSplit, layer: number): Float32Array => {
    run(w, layer);
    ctx.synchronize();
    return scratch.values.download(new Float32Array(m * H * D));
  };
  let worst = 0, scale = 0;
  for (let layer = 0; layer < layers; ++layer) {
    const a = rowsOf(ways[0]!, layer);
    for (const w of ways.slice(1)) {
      const b = rowsOf(w, layer);
      for (let i = 0; i < a.length; ++i) {
        if (!Number.isFinite(a[i]!) || !Number.isFinite(b[i]!)) throw new Error(`rows=${m} layer ${layer} (${name(w)}): a non-finite output at ${i}`);
        worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
        scale = Math.max(scale, Math.abs(a[i]!));
      }
    }
  }
  if (!(worst <= 1e-5 * scale)) throw new Error(`rows=${m}: the ways differ by ${worst} (max |y| ${scale}), more than rounding`);
  log.line(`rows=${m}: ${ways.length} ways agree with the first on all ${layers} layers within ${worst.toExponential(2)} (max |y| ${scale.toFixed(3)})`);

  const times = timer.timeInterleaved(ways.map((w): Launch => () => { for (let layer = 0; layer < layers; ++layer) run(w, layer); }), rounds, SAMPLES);
  const kvBytes = m * (position + 1) * KVH * D * 2 * 2;
  ways.forEach((w, i) => {
    const t = times[i]!, us = t.us / layers;
    log.line(`rows=${m} ${name(w).padEnd(34)} ${us.toFixed(2).padStart(8)} µs a layer (p10 ${(t.p10 / layers).toFixed(2)}, p90 ${(t.p90 / layers).toFixed(2)}), KV ${(kvBytes / 1e6).toFixed(1)} MB at ${(kvBytes / us / 1e6).toFixed(2)} TB/s; ${(times[0]!.us / t.us).toFixed(3)}x the first`);
  });
  inputs.free();
}
log.write(values.out!, 'cuda-attention.log');
bench.close();
