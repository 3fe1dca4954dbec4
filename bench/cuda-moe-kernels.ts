/**
 * The grouped expert GEMM against the dense decode kernel on the same weight bytes (issue 21's target:
 * within 1.3×). Mixtral-8x7B's expert shapes (gate/up stacked 28672·4096, down 4096·14336), 8 experts,
 * top 2; m tokens each routed to 2 distinct experts drawn at random (seeded), so A experts have rows and
 * the busiest has M of them. Per (shape, m), interleaved (bench/cuda-timing.ts):
 *   grouped  w4a8ExpertsLinear: one launch, blocks for the A experts with rows (engine-moe.ts's call)
 *   dense    w4a8Linear on one [A·N, K] layer at M rows (the engine's chooser): the same weight bytes
 *            as the A experts, read by the kernel a dense layer of that size gets
 * RANDOM weights and activations (speed only), W4A8 integer scale, g128; each launch reads its weights
 * from DRAM (rotated copies over 2.5× L2).
 *
 *   node dist/bench/cuda-moe-kernels.js [--tokens 1,8,16,32,64] [--rounds 5] [--samples 20] [--seed 7]
 */
import { paddedRows } from '../src/backends/cuda/repack.js';
import { freeW4A8ExpertTable, w4a8ExpertsLinear, w4a8ExpertTable, w4a8Linear } from '../src/backends/cuda/w4a8.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { seededRandom } from '../src/tensor/random.js';
import { benchArgs, nonNegativeInt, positiveInt, positiveInts } from './args.js';
import { ACT_SCALES, copiesFor, CudaBench, DeviceInputs, fill, quantCopies, Seeds, w4a8Layer } from './cuda-timing.js';
import { benchOutput, machineLine } from './stats.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    tokens: { type: 'string', default: '1,8,16,32,64' },
    rounds: { type: 'string', default: '5' },
    samples: { type: 'string', default: '20' },
    seed: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
  },
});
const tokens = positiveInts('tokens', values.tokens!);
const [rounds, samples] = [positiveInt('rounds', values.rounds!), positiveInt('samples', values.samples!)];
const E = 8, topK = 2, G = 128;
const SHAPES = [{ name: 'gate/up', n: 2 * 14336, k: 4096 }, { name: 'down', n: 4096, k: 14336 }];

const bench = new CudaBench('the grouped expert GEMM bench');
const { ctx, timer } = bench;
const out = benchOutput(values.json === true);
out.say(`# ${ctx.info.name}, driver ${ctx.info.driverVersion}; ${machineLine(cpuPool().threads)}`);
out.say(`# Mixtral-8x7B expert shapes, ${E} experts top ${topK}, W4A8 IS g${G}, RANDOM weights and routing (seed ${values.seed}); median µs of ${rounds} interleaved rounds × ${samples} launches\n`);

/** The routing of m tokens: each token's topK distinct experts at random; rows per expert. */
function route(m: number, rand: () => number): number[] {
  const counts = new Array<number>(E).fill(0);
  for (let t = 0; t < m; t++) {
    const picked = new Set<number>();
    while (picked.size < topK) picked.add(Math.floor(rand() * E));
    for (const e of picked) counts[e]! += 1;
  }
  return counts;
}

const rows: Record<string, string | number>[] = [];
const rand = seededRandom(nonNegativeInt('seed', values.seed!));
const seeds = new Seeds(1);
for (const m of tokens) {
  const counts = route(m, rand);
  const active = counts.map((c, e) => (c > 0 ? e : -1)).filter((e) => e >= 0);
  const offsets = Int32Array.from({ length: E + 1 }, (_, e) => counts.slice(0, e).reduce((s, c) => s + c, 0));
  const busiest = Math.max(...counts);
  const R = m * topK;
  const typical = Math.min(m, Math.ceil((1.5 * m * topK) / E)); // as engine-moe.ts
  for (const { name, n, k } of SHAPES) {
    const inputs = new DeviceInputs(ctx, seeds);
    const expertBytes = (paddedRows(n) * k) / 2;
    const copies = copiesFor(ctx.info.l2Bytes, active.length * expertBytes);
    const experts = quantCopies(inputs, copies * E, 4, paddedRows(n), k, G);
    const tables = Array.from({ length: copies }, (_, r) => w4a8ExpertTable(ctx, Array.from({ length: E }, (_, e) => w4a8Layer(experts, n, k, G, 'is-shift', r * E + e))));
    const denseN = active.length * n;
    const dense = quantCopies(inputs, copiesFor(ctx.info.l2Bytes, (paddedRows(denseN) * k) / 2), 4, paddedRows(denseN), k, G);
    const routeBuffers = { offsets: ctx.upload(offsets), active: ctx.upload(Int32Array.from({ length: E }, (_, i) => active[i] ?? -1)) };
    const xq = inputs.random(Math.max(R, busiest) * k, fill.i8), a = inputs.random(Math.max(R, busiest) * 4, ACT_SCALES);
    const y = inputs.output(R * n * 4), yDense = inputs.output(busiest * denseN * 4);
    const [grouped, flat] = timer.timeInterleaved([
      (i) => w4a8ExpertsLinear(ctx, tables[i % copies]!, routeBuffers, xq, a, y, R, m, typical),
      (i) => w4a8Linear(ctx, w4a8Layer(dense, denseN, k, G, 'is-shift', i), xq, a, yDense, busiest),
    ], rounds, samples);
    const bytes = active.length * expertBytes;
    rows.push({
      layer: name, tokens: m, 'experts with rows': active.length, 'busiest rows': busiest,
      'grouped µs': Number(grouped!.us.toFixed(1)), 'dense µs (same bytes)': Number(flat!.us.toFixed(1)),
      'grouped / dense': `${(grouped!.us / flat!.us).toFixed(2)}×`, 'grouped TB/s': Number((bytes / grouped!.us / 1e6).toFixed(2)),
    });
    out.say(`# ${name} m=${m}: grouped ${grouped!.us.toFixed(1)} µs, dense ${flat!.us.toFixed(1)} µs`);
    for (const t of tables) freeW4A8ExpertTable(t);
    routeBuffers.offsets.free();
    routeBuffers.active.free();
    inputs.free();
  }
}
out.table(rows);
bench.close();
process.exit(0);
