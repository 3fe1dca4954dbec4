/**
 * End-to-end speed of the CUDA backend (the forward pass on the GPU): prefill and decode tokens/s,
 * and the host time of each backend op, measured in one run: the CUDA backend replaying a pass that
 * repeats the last one as one CUDA graph, the same backend running op by op, and (--cpu) the CPU
 * backend. GPU ops are asynchronous, so their
 * time shows up where the host waits: in `download` (the logits); on the CPU backend each op's
 * share is its real cost.
 *
 *   node dist/bench/cuda-e2e.js [--model DIR] [--synthetic LAYERS] [--prompt-tokens 128] [--decode-tokens 32] [--reps 3]
 *                               [--backends engine,graphs,direct,serial] [--cpu]
 *
 * --backends: which CUDA paths run: engine (the decode engine, decode-engine.ts: the fast path with
 *   fused float32 ops, fp16 KV cache and lm_head, one graph per step), graphs (the exact backend
 *   replaying a pass that repeats the last one as one CUDA graph), direct (the exact backend op by
 *   op), serial (graphs, but no launch overlaps the one before it: CudaBackendOptions.overlap
 *   false); --cpu adds the CPU backend. The engine has no per-op shares (its steps are graphs).
 *
 * --model (default: the embedded model): the real model, RTN-quantized W4A8 with integer and with
 *   float scales, on the CUDA backend (and on the CPU backend with --cpu).
 * --fp16: also the float model (the synthetic shape with random float weights, or --model as stored)
 * run with fp16 linear layers (cuBLAS, fp32 accumulation) on the exact backend and, with engine in
 * --backends, on the engine (the FP16 baseline of the same engine); and the quantized models on the
 * fp16 exact backend too, where the only float linear is the lm_head (fp16 lm_head).
 * --synthetic N: a LLaMA-2-7B-shaped model (hidden 4096, ffn 11008, 32 heads, vocab 32000, tied
 *   fp32 lm_head) with N decoder layers of RANDOM W4A8 integer-scale weights: speed only, its text
 *   means nothing.
 * Prints the GPU, the CPU, the shapes, the repetitions and the median of each figure.
 */
import { loadModel } from '../src/backends/load.js';
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import type { Backend } from '../src/model/backend.js';
import { cpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { createCudaBackend, type CudaBackend, type CudaBackendOptions } from '../src/backends/cuda/cuda-backend.js';
import { CudaContext } from '../src/backends/cuda/context.js';
import { generate } from '../src/model/generate.js';
import { createCudaEngine } from '../src/backends/cuda/decode-engine.js';
import type { SequenceEngine } from '../src/model/engine.js';
import type { Model } from '../src/model/forward.js';
import { createModel } from '../src/model/prepare.js';
import { quantizeModel } from '../src/quantize/quantize-model.js';
import { DEFAULT_SPEC, describeSpec } from '../src/quantize/recipe.js';
import { BenchArgumentError, benchArgs, positiveInt } from './args.js';
import { machineLine, median, benchOutput } from './stats.js';
import { syntheticFloatModel, syntheticModel, type SyntheticModel } from './synthetic.js';
import { needsGpu } from './cuda-timing.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    json: { type: 'boolean', default: false },
    model: { type: 'string', default: DEFAULT_MODEL_DIR },
    synthetic: { type: 'string' },
    'prompt-tokens': { type: 'string', default: '128' },
    'decode-tokens': { type: 'string', default: '32' },
    reps: { type: 'string', default: '3' },
    backends: { type: 'string', default: 'graphs,direct' },
    cpu: { type: 'boolean', default: false },
    fp16: { type: 'boolean', default: false },
  },
});
/** Each --backends kind: its label and the options of its CUDA backend. */
const CUDA_KINDS: Record<string, [label: string, options: CudaBackendOptions]> = {
  graphs: ['cuda (graphs)', {}],
  direct: ['cuda (op by op)', { graphs: false }],
  serial: ['cuda (graphs, no overlap)', { overlap: false }],
};
const ENGINE_LABEL = 'cuda engine (fast path)';
const kinds = values.backends!.split(',');
for (const kind of kinds) if (!(kind in CUDA_KINDS) && kind !== 'engine') throw new BenchArgumentError(`--backends takes engine, graphs, direct and/or serial, got '${kind}'`);
const withEngine = kinds.includes('engine');
const cudaKinds = kinds.filter((k) => k !== 'engine');
const promptTokens = positiveInt('prompt-tokens', values['prompt-tokens']!);
const decodeTokens = positiveInt('decode-tokens', values['decode-tokens']!);
const reps = positiveInt('reps', values.reps!);

/** A backend whose every op adds its wall time (ms) to `ms` (GPU ops are asynchronous: their time lands on the op that waits, download). */
function timed<T>(b: Backend<T>): { backend: Backend<T>; ms: Record<string, number> } {
  const ms: Record<string, number> = {};
  const wrap = <A extends unknown[], R>(name: string, f: (...a: A) => R) => (...a: A): R => {
    const t = performance.now();
    try {
      return f(...a);
    } finally {
      ms[name] = (ms[name] ?? 0) + performance.now() - t;
    }
  };
  return {
    ms,
    backend: {
      name: b.name,
      startPass: b.startPass, upload: wrap('upload', b.upload), download: wrap('download', b.download), rows: b.rows,
      layerCache: b.layerCache, releaseLayerCache: b.releaseLayerCache,
      prepareLinear: (w) => {
        const p = b.prepareLinear(w);
        return { ...p, run: wrap('linear', p.run) };
      },
      rmsnorm: wrap('rmsnorm', b.rmsnorm), rope: wrap('rope', b.rope),
      attention: wrap('attention', b.attention), siluMul: wrap('siluMul', b.siluMul), addInPlace: wrap('add', b.addInPlace),
    },
  };
}

const ctx = needsGpu('the CUDA end-to-end bench', () => new CudaContext(0));
const cudaBackends = cudaKinds.map((kind): [string, CudaBackend] => [CUDA_KINDS[kind]![0], createCudaBackend({ ctx, ...CUDA_KINDS[kind]![1] })]);
const out = benchOutput(values.json === true);
out.say(`# ${ctx.info.name}, driver ${ctx.info.driverVersion}; ${machineLine(cpuPool().threads)}`);

const synthetic = values.synthetic === undefined ? 0 : positiveInt('synthetic', values.synthetic!);
/** Each model, and the CUDA backends it runs on (null: every --backends kind). */
type ModelRow = [name: string, model: SyntheticModel, backends: [string, CudaBackend][] | null];
const models: ModelRow[] = synthetic > 0
  ? [[`synthetic LLaMA-2-7B shape, ${synthetic} layers, RANDOM ${describeSpec(DEFAULT_SPEC)} weights (speed only)`, syntheticModel(synthetic), null]]
  : [DEFAULT_SPEC, { ...DEFAULT_SPEC, scale: 'float' as const }].map((spec): ModelRow => [
    `${values.model} ${describeSpec(spec)} (RTN)`,
    quantizeModel(values.model!, { method: 'rtn', base: spec, overrides: {} }).loaded.model,
    null,
  ]);
const c = models[0]![1].config;
out.say(`# shape: ${c.numLayers} layers, hidden ${c.hiddenSize}, ffn ${c.intermediateSize}, heads ${c.numHeads}/${c.numKvHeads}, vocab ${c.vocabSize}`);
out.say(`# prompt ${promptTokens} tokens (one batched prefill), then ${decodeTokens} decode steps; median of ${reps} runs after one warm-up\n`);

// --fp16: the same shape with float weights, run by the same engine with fp16 linears (cuBLAS, fp32 accumulation)
const fp16Backends: [string, CudaBackend][] = values.fp16 && cudaKinds.length > 0 ? [['cuda (graphs, fp16 linears)', createCudaBackend({ ctx, floatPrecision: 'f16' })]] : [];
if (values.fp16) {
  for (const row of models) row[2] = [...cudaBackends, ...fp16Backends]; // quantized models: their lm_head in fp16
  const label = synthetic > 0 ? `synthetic LLaMA-2-7B shape, ${synthetic} layers, RANDOM float weights, FP16 linears (speed only)` : `${values.model} float, FP16 linears`;
  models.push([label, synthetic > 0 ? syntheticFloatModel(synthetic) : loadModel(values.model!).model, fp16Backends]);
}

const rows: Record<string, string | number>[] = [];
/** Adds a row to the table and prints it at once (a run cut short still shows what it measured). */
const addRow = (row: Record<string, string | number>): void => {
  rows.push(row);
  out.say(`# ${row.model} | ${row.backend}: prefill ${row['prefill tok/s']} tok/s, decode ${row['decode tok/s']} tok/s`);
};
const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % c.vocabSize);
/** Median prefill and decode tokens/s over the repetitions after one warm-up, and the total ms. */
function timeRuns(runner: Model<unknown> | SequenceEngine, beforeReps: () => void = () => {}) {
  const run = () => generate(runner, prompt, { maxNewTokens: decodeTokens + 1, temperature: 0, topP: 1, seed: 0, stopTokens: [] });
  run();
  beforeReps();
  const prefill: number[] = [];
  const decode: number[] = [];
  let total = 0;
  for (let r = 0; r < reps; r++) {
    const g = run();
    prefill.push(g.prefillTokens / g.prefillSeconds);
    decode.push(g.decodeTokens / g.decodeSeconds);
    total += (g.prefillSeconds + g.decodeSeconds) * 1000;
  }
  return { 'prefill tok/s': Math.round(median(prefill)), 'decode tok/s': Math.round(median(decode)), total };
}
for (const [name, model, only] of models) {
  if (withEngine) {
    const floatModel = only === fp16Backends;
    const engine = createCudaEngine(model.config, model.weights, { ctx });
    const { total: _total, ...speed } = timeRuns(engine);
    addRow({ model: name, backend: floatModel ? `${ENGINE_LABEL}, fp16 linears` : ENGINE_LABEL, ...speed, linear: '-', attention: '-', download: '-', 'norm+rope+silu+add': '-' });
    out.say(`${name}: ${engine.describe()}`);
    engine.dispose();
  }
  const backends: [string, Backend<unknown>][] = [...(only ?? cudaBackends)];
  if (values.cpu) backends.push(['cpu', cpuBackend as Backend<unknown>]);
  for (const [label, backend] of backends) {
    const t = timed(backend);
    const m: Model<unknown> = createModel(model.config, model.weights, t.backend);
    const { total, ...speed } = timeRuns(m, () => {
      for (const key of Object.keys(t.ms)) delete t.ms[key];
    });
    const share = (key: string) => `${(((t.ms[key] ?? 0) / total) * 100).toFixed(0)}%`;
    addRow({
      model: name, backend: label, ...speed,
      linear: share('linear'), attention: share('attention'), download: share('download'), 'norm+rope+silu+add': `${((((t.ms.rmsnorm ?? 0) + (t.ms.rope ?? 0) + (t.ms.siluMul ?? 0) + (t.ms.add ?? 0)) / total) * 100).toFixed(0)}%`,
    });
  }
}
out.table(rows);
for (const [label, backend] of [...cudaBackends, ...fp16Backends]) {
  const p = backend.placements();
  out.say(`${label}: placements GPU ${JSON.stringify(p.gpu)}, CPU ${JSON.stringify(p.cpu)}; pass replay (all its runs) ${JSON.stringify(backend.replayStats())}`);
  backend.dispose();
}
ctx.release();
process.exit(0);
