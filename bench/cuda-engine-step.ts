/**
 * Where a decode step of the CUDA engine goes, by layer count: the engine on synthetic LLaMA-2-7B-
 * shaped models of 1, 8 and 32 RANDOM W4A8 layers (speed only), `--batch` sequences of a 128-token
 * prompt (one batched prefill), then the host wall time per greedy decode step of all of them
 * (decodeGreedy: row upload, graph launch, the argmax on the device, B tokens back) over `--steps`
 * steps after two warm-up steps. The slope between layer counts is a layer's cost, the intercept
 * the fixed cost (embedding, final norm, lm_head, argmax, host).
 *
 *   node dist/bench/cuda-engine-step.js [--layers 1,8,32] [--batch 1] [--steps 40] [--no-graphs]
 *     [--prefetch off,0,16] [--rounds 5]
 *
 * --prefetch compares L2 prefetch settings (createCudaEngine's l2Prefetch: 'off' or MB beyond the next
 * GEMM): one engine each, timed in interleaved rounds, the median round reported.
 *
 * Per-kernel times: run it under Nsight Compute, e.g.
 *   ncu --clock-control none --launch-skip 28 --launch-count 30 --metrics gpu__time_duration.sum --csv \
 *     node dist/bench/cuda-engine-step.js --layers 1 --steps 3
 */
import { parseArgs } from 'node:util';
import { CudaContext } from '../src/backends/cuda/context.js';
import { createCudaEngine } from '../src/backends/cuda/decode-engine.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { machineLine } from './stats.js';
import { needsGpu } from './cuda-timing.js';
import { syntheticModel } from './synthetic.js';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '1,8,32' },
    steps: { type: 'string', default: '40' },
    batch: { type: 'string', default: '1' },
    'no-graphs': { type: 'boolean', default: false },
    prefetch: { type: 'string', default: 'off' },
    rounds: { type: 'string', default: '1' },
  },
});
const steps = Number(values.steps);
const batch = Number(values.batch);
const ctx = needsGpu('the CUDA engine step bench', () => new CudaContext(0));
console.log(`# ${ctx.info.name}, driver ${ctx.info.driverVersion}; ${machineLine(cpuPool().threads)}`);
console.log(`# synthetic LLaMA-2-7B shape, RANDOM W4A8 weights (speed only); ${batch} sequence(s), prompt 128 each, then ${steps} timed greedy decode steps after 2 warm-up; graphs ${values['no-graphs'] ? 'off' : 'on'}`);
/** L2 prefetch settings compared (l2-prefetch.ts): 'off', or MB of lookahead beyond the next GEMM. */
const prefetchSettings = values.prefetch!.split(',').map((v): number | false => (v === 'off' ? false : Math.round(Number(v) * 2 ** 20)));
const rounds = Number(values.rounds);
const label = (p: number | false) => (p === false ? 'prefetch off' : `prefetch +${(p / 2 ** 20).toFixed(0)} MB`);
const perLayers = new Map<number | false, [number, number][]>();
for (const layers of values.layers!.split(',').map(Number)) {
  const m = syntheticModel(layers);
  // every setting's engine made first, then timed in interleaved rounds (A B C A B C ...): drift hits all alike
  const runs = prefetchSettings.map((l2Prefetch) => {
    const engine = createCudaEngine(m.config, m.weights, { ctx, graphs: !values['no-graphs'], maxSequences: batch, l2Prefetch });
    const seqs = Array.from({ length: batch }, () => engine.open(128 + rounds * steps + 2));
    const prompt = (s: number) => Array.from({ length: 128 }, (_, i) => (i * 7919 + s * 104729 + 13) % m.config.vocabSize);
    engine.feedBatch(seqs, seqs.map((_, s) => prompt(s)));
    const tokens = seqs.map(() => 5);
    for (let i = 0; i < 2; i++) engine.decodeGreedy(seqs, tokens);
    return { l2Prefetch, engine, seqs, tokens, times: [] as number[] };
  });
  for (let r = 0; r < rounds; r++) {
    for (const run of runs) {
      const t = performance.now();
      for (let i = 0; i < steps; i++) run.engine.decodeGreedy(run.seqs, run.tokens);
      run.times.push((performance.now() - t) / steps);
    }
  }
  for (const run of runs) {
    const ms = run.times.slice().sort((a, b) => a - b)[Math.floor(run.times.length / 2)]!;
    if (!perLayers.has(run.l2Prefetch)) perLayers.set(run.l2Prefetch, []);
    perLayers.get(run.l2Prefetch)!.push([layers, ms]);
    console.log(`layers ${layers}, ${label(run.l2Prefetch)}: ${ms.toFixed(3)} ms per decode step of ${batch} (${((1000 * batch) / ms).toFixed(0)} tok/s; median of ${rounds} rounds of ${steps} steps, rounds ${run.times.map((t) => t.toFixed(3)).join(' ')})`);
    for (const s of run.seqs) s.release();
    run.engine.dispose();
  }
}
for (const [setting, pts] of perLayers) {
  if (pts.length < 2) continue;
  const [[l0, t0], [l1, t1]] = [pts[0]!, pts[pts.length - 1]!];
  const slope = (t1 - t0) / (l1 - l0);
  console.log(`${label(setting)}: per layer ${(slope * 1000).toFixed(1)} µs; fixed ${((t0 - slope * l0) * 1000).toFixed(0)} µs`);
}
ctx.release();
