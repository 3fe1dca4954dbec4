/**
 * Where a decode step's GPU time goes: each op of one LLaMA-2-7B decode step (m = 1) timed inside a
 * CUDA graph, as pass replay runs it, and multiplied by how often the step runs it.
 *
 *   node dist/bench/cuda-step-ops.js [--context 128] [--launches 64] [--reps 7]
 *
 * Method: for each op, `launches` launches are captured into one graph; the instances rotate
 * (distinct weight copies totalling more than 2.5× L2 for the GEMMs, 32 distinct KV caches for
 * attention, as the 32 layers have), so weights come from DRAM as in the real step. One warm-up
 * launch of the graph, then `reps` launches each timed with CUDA events; per op: median / launches
 * (µs, including the gap between graph nodes). Inputs are random (never zeros). The sum over the
 * step is a prediction of the replayed step's GPU time, to compare with bench/cuda-e2e.
 */
import { CudaContext } from '../src/backends/cuda/context.js';
import { Cublas } from '../src/backends/cuda/cublas.js';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import { cudaGraphRuntime } from '../src/backends/cuda/graphs.js';
import { benchArgs, positiveInt } from './args.js';
import { fillRandomF32 } from './cuda-util.js';
import { activationOrder, chooseW4A8Config, freeW4A8, quantizeActivationsCuda, uploadW4A8, w4a8Linear, type W4A8Layer } from '../src/backends/cuda/w4a8.js';
import { hasTensorMaps } from '../src/backends/cuda/tensor-map.js';
import { addCuda, attentionCuda, attentionSplits, kvWriteCuda, rmsnormCuda, ropeCuda, siluMulCuda } from '../src/backends/cuda/model-ops.js';
import { median, benchOutput } from './stats.js';
import { needsGpu } from './cuda-timing.js';
import { randomW4A8 } from './synthetic.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    json: { type: 'boolean', default: false },
    context: { type: 'string', default: '128' },
    launches: { type: 'string', default: '64' },
    reps: { type: 'string', default: '7' },
  },
});
const L = positiveInt('context', values.context!);
const R = positiveInt('launches', values.launches!);
const reps = positiveInt('reps', values.reps!);
const [D, F, H, HD, V, LAYERS] = [4096, 11008, 32, 128, 32000, 32];

const ctx = needsGpu('the CUDA step-ops bench', () => new CudaContext(0));
const blas = new Cublas(ctx.stream);
const graphs = cudaGraphRuntime(ctx);
if (!graphs) throw new Error('this driver has no CUDA graph calls');
const out = benchOutput(values.json === true);
out.say(`# ${ctx.info.name}, driver ${ctx.info.driverVersion}, L2 ${(ctx.info.l2Bytes / 2 ** 20).toFixed(0)} MiB`);
out.say(`# LLaMA-2-7B decode step, m = 1, context ${L}; ${R} launches per graph, median of ${reps} graph launches\n`);

const owned: DeviceBuffer[] = [];
const random = (floats: number, seed: number, lo = -1, hi = 1): DeviceBuffer => {
  const b = ctx.alloc(floats * 4);
  fillRandomF32(ctx, b, seed, lo, hi);
  owned.push(b);
  return b;
};
const scratch = (bytes: number): DeviceBuffer => {
  const b = ctx.alloc(bytes);
  owned.push(b);
  return b;
};

/** Enough copies of an n·k W4A8 layer that together they exceed 2.5× L2. */
function layerCopies(n: number, k: number): W4A8Layer[] {
  const copies = Math.max(2, Math.ceil((2.5 * ctx.info.l2Bytes) / (n * k * 0.5)));
  return Array.from({ length: copies }, (_, i) => uploadW4A8(ctx, randomW4A8(n, k, 7 * i + n)));
}

const x = random(D, 1);
const xF = random(F, 2);
const normWeight = random(D, 3);
const invFreq = random(HD / 2, 4, 0, 1);
const position = scratch(4);
ctx.copyToDevice(position, Int32Array.of(L - 1));
const y = scratch(V * 4);
const q = random(D, 5);
const [k, v] = [random(D, 6), random(D, 7)];
const caches = Array.from({ length: LAYERS }, (_, i) => [random(L * D, 100 + i), random(L * D, 200 + i)] as const);
const lmHead = random(V * D, 8, -0.05, 0.05);
const part = scratch(attentionSplits(L, 1, H, HD).partBytes);
const decode = (n: number, kk: number) => chooseW4A8Config(1, n, kk, ctx.arch === 'sm_90a', hasTensorMaps(ctx), ctx.info.multiprocessors);
const xq = scratch(F);
const a = scratch(4);
const square = layerCopies(D, D);
const wide = layerCopies(F, D);
const tall = layerCopies(D, F);

interface Op { readonly name: string; readonly perStep: number; readonly launch: (i: number) => void }
const ops: Op[] = [
  { name: 'rmsnorm 4096', perStep: 2 * LAYERS + 1, launch: () => rmsnormCuda(ctx, x, normWeight, y, 1, D, 1e-5) },
  { name: 'act_quant K=4096', perStep: 3 * LAYERS, launch: () => quantizeActivationsCuda(ctx, x, xq, a, 1, D, activationOrder(decode(D, D))) },
  { name: 'act_quant K=11008', perStep: LAYERS, launch: () => quantizeActivationsCuda(ctx, xF, xq, a, 1, F, activationOrder(decode(D, F))) },
  { name: 'W4A8 IS 4096x4096 (q k v o)', perStep: 4 * LAYERS, launch: (i) => w4a8Linear(ctx, square[i % square.length]!, xq, a, y, 1, decode(D, D)) },
  { name: 'W4A8 IS 11008x4096 (gate up)', perStep: 2 * LAYERS, launch: (i) => w4a8Linear(ctx, wide[i % wide.length]!, xq, a, y, 1, decode(F, D)) },
  { name: 'W4A8 IS 4096x11008 (down)', perStep: LAYERS, launch: (i) => w4a8Linear(ctx, tall[i % tall.length]!, xq, a, y, 1, decode(D, F)) },
  { name: 'rope 32 heads', perStep: 2 * LAYERS, launch: () => ropeCuda(ctx, q, invFreq, 1, H, HD, position) },
  { name: 'kv_write', perStep: LAYERS, launch: (i) => kvWriteCuda(ctx, k, v, caches[i % LAYERS]![0], caches[i % LAYERS]![1], position, L - 1, 1, D) },
  { name: `attention ctx ${L}`, perStep: LAYERS, launch: (i) => attentionCuda(ctx, q, caches[i % LAYERS]![0], caches[i % LAYERS]![1], y, { m: 1, startPos: L - 1, position, capacity: L, numHeads: H, numKvHeads: H, headDim: HD, window: 0 }, part) },
  { name: 'silu_mul 11008', perStep: LAYERS, launch: () => siluMulCuda(ctx, xF, xF, F) },
  { name: 'add 4096', perStep: 2 * LAYERS, launch: () => addCuda(ctx, y, x, D) },
  { name: 'lm_head fp32 cuBLAS 32000x4096', perStep: 1, launch: () => blas.gemmF32(y.address, x.address, lmHead.address, 1, V, D) },
];

const [start, end] = [ctx.queue.createEvent(), ctx.queue.createEvent()];
const rows = [];
let total = 0;
for (const op of ops) {
  op.launch(0); // compiles and loads the kernel outside the capture
  ctx.synchronize();
  const graph = graphs.capture(() => {
    for (let i = 0; i < R; i++) op.launch(i);
  });
  graphs.launch(graph);
  const us: number[] = [];
  for (let r = 0; r < reps; r++) {
    ctx.queue.record(start);
    graphs.launch(graph);
    ctx.queue.record(end);
    us.push((ctx.queue.elapsedMs(start, end) * 1000) / R);
  }
  graphs.destroy(graph);
  const per = median(us);
  total += per * op.perStep;
  rows.push({ op: op.name, 'µs per launch': per.toFixed(2), 'per step': op.perStep, 'µs per step': (per * op.perStep).toFixed(0) });
}
for (const row of rows) Object.assign(row, { share: `${((Number(row['µs per step']) / total) * 100).toFixed(0)}%` });
out.table(rows);
out.say(`predicted decode step: ${(total / 1000).toFixed(2)} ms (${(1e6 / total).toFixed(0)} tok/s)`);
ctx.queue.destroyEvent(start);
ctx.queue.destroyEvent(end);
for (const l of [...square, ...wide, ...tall]) freeW4A8(l);
for (const b of owned) b.free();
blas.destroy();
ctx.release();
