/**
 * End-to-end speed of the CUDA backend (the forward pass on the GPU): prefill and decode tokens/s,
 * and the host time of each backend op, measured in one run. GPU ops are asynchronous, so their
 * time shows up where the host waits: in `download` (the logits); on the CPU backend each op's
 * share is its real cost.
 *
 *   node dist/bench/cuda-e2e.js [--model DIR] [--synthetic LAYERS] [--prompt-tokens 128] [--decode-tokens 32] [--reps 3] [--cpu]
 *
 * --model (default: the embedded model): the real model, RTN-quantized W4A8 with integer and with
 *   float scales, on the CUDA backend (and on the CPU backend with --cpu).
 * --synthetic N: a LLaMA-2-7B-shaped model (hidden 4096, ffn 11008, 32 heads, vocab 32000, tied
 *   fp32 lm_head) with N decoder layers of RANDOM W4A8 integer-scale weights: speed only, its text
 *   means nothing.
 * Prints the GPU, the CPU, the shapes, the repetitions and the median of each figure.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import type { Backend } from '../src/backends/backend.js';
import { cpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { createCudaBackend, type CudaBackend } from '../src/backends/cuda/cuda-backend.js';
import { generate } from '../src/model/generate.js';
import type { Model } from '../src/model/forward.js';
import type { ModelConfig } from '../src/model/config.js';
import { ropeInverseFrequencies } from '../src/model/rope.js';
import type { LayerWeights } from '../src/model/weights.js';
import { quantizeModel } from '../src/quant/quantize-model.js';
import { DEFAULT_SPEC, describeSpec } from '../src/quant/recipe.js';
import type { QuantizedLinear } from '../src/quant/types.js';
import { machineLine, median } from './stats.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_MODEL_DIR },
    synthetic: { type: 'string' },
    'prompt-tokens': { type: 'string', default: '128' },
    'decode-tokens': { type: 'string', default: '32' },
    reps: { type: 'string', default: '3' },
    cpu: { type: 'boolean', default: false },
  },
});
const promptTokens = Number(values['prompt-tokens']);
const decodeTokens = Number(values['decode-tokens']);
const reps = Number(values.reps);

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
      linear: wrap('linear', b.linear), rmsnorm: wrap('rmsnorm', b.rmsnorm), rope: wrap('rope', b.rope),
      attention: wrap('attention', b.attention), siluMul: wrap('siluMul', b.siluMul), addInPlace: wrap('add', b.addInPlace),
    },
  };
}

/** xorshift32 words; 4 random int4 values in [-8, 7] per 32-bit word. */
function randomInt4(count: number, seed: number): Int8Array {
  const q = new Int8Array(count);
  const words = new Uint32Array(q.buffer, 0, count >> 2);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const nib = s & 0x0f0f0f0f;
    words[i] = (nib | (((nib & 0x08080808) >>> 3) * 0xf0)) >>> 0;
  }
  return q;
}

function randomW4A8(n: number, k: number, seed: number): QuantizedLinear {
  const groups = k / 128;
  const intScales = new Int32Array(n * groups);
  for (let i = 0; i < intScales.length; i++) intScales[i] = 1 + ((i * 2654435761 + seed) >>> 29);
  const scales = Float32Array.from(intScales, (v) => v / 1024);
  return { kind: 'quantized', n, k, groupSize: 128, wBits: 4, aBits: 8, q: randomInt4(n * k, seed), scale: 'int', scales, intScales, alphaLog2: 10 };
}

/** LLaMA-2-7B's shape with `layers` decoder layers of random W4A8 IS weights. */
function syntheticModel(layers: number): Model {
  const config: ModelConfig = {
    architecture: 'llama', vocabSize: 32000, hiddenSize: 4096, intermediateSize: 11008, numLayers: layers,
    numHeads: 32, numKvHeads: 32, headDim: 128, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: { kind: 'none' },
    maxPositionEmbeddings: 4096, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null, bosTokenId: 1, eosTokenIds: [],
  };
  const d = 4096;
  const f = 11008;
  const embedding = Float32Array.from({ length: 32000 * d }, (_, i) => (((i * 2654435761) >>> 16) / 65536 - 0.5) * 0.05);
  const ones = new Float32Array(d).fill(1);
  const built: LayerWeights[] = [];
  for (let l = 0; l < layers; l++) {
    const s = 1000 * (l + 1);
    built.push({
      inputNorm: ones, postAttentionNorm: ones,
      q: randomW4A8(d, d, s + 1), k: randomW4A8(d, d, s + 2), v: randomW4A8(d, d, s + 3), o: randomW4A8(d, d, s + 4),
      gate: randomW4A8(f, d, s + 5), up: randomW4A8(f, d, s + 6), down: randomW4A8(d, f, s + 7),
    });
  }
  return {
    config, backend: cpuBackend, invFreq: ropeInverseFrequencies(128, 10000, { kind: 'none' }),
    weights: { embedding, layers: built, finalNorm: ones, lmHead: { kind: 'float', n: 32000, k: d, w: embedding } },
  };
}

const cuda: CudaBackend = createCudaBackend();
console.log(`# ${cuda.ctx.info.name}, driver ${cuda.ctx.info.driverVersion}; ${machineLine(cpuPool().threads)}`);

const synthetic = values.synthetic === undefined ? 0 : Number(values.synthetic);
const models: [string, Model][] = synthetic > 0
  ? [[`synthetic LLaMA-2-7B shape, ${synthetic} layers, RANDOM ${describeSpec(DEFAULT_SPEC)} weights (speed only)`, syntheticModel(synthetic)]]
  : [DEFAULT_SPEC, { ...DEFAULT_SPEC, scale: 'float' as const }].map((spec) => [
    `${values.model} ${describeSpec(spec)} (RTN)`,
    quantizeModel(values.model!, { method: 'rtn', base: spec, overrides: {} }).loaded.model,
  ]);
const c = models[0]![1].config;
console.log(`# shape: ${c.numLayers} layers, hidden ${c.hiddenSize}, ffn ${c.intermediateSize}, heads ${c.numHeads}/${c.numKvHeads}, vocab ${c.vocabSize}`);
console.log(`# prompt ${promptTokens} tokens (one batched prefill), then ${decodeTokens} decode steps; median of ${reps} runs after one warm-up\n`);

const rows = [];
for (const [name, model] of models) {
  const backends: Backend<unknown>[] = values.cpu ? [cuda, cpuBackend as Backend<unknown>] : [cuda];
  for (const backend of backends) {
    const t = timed(backend);
    const m: Model<unknown> = { ...model, backend: t.backend };
    const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % c.vocabSize);
    const run = () => generate(m, prompt, { maxNewTokens: decodeTokens + 1, temperature: 0, topP: 1, seed: 0, stopTokens: [] });
    run();
    for (const key of Object.keys(t.ms)) delete t.ms[key];
    const prefill: number[] = [];
    const decode: number[] = [];
    let total = 0;
    for (let r = 0; r < reps; r++) {
      const g = run();
      prefill.push(g.prefillTokens / g.prefillSeconds);
      decode.push(g.decodeTokens / g.decodeSeconds);
      total += (g.prefillSeconds + g.decodeSeconds) * 1000;
    }
    const share = (key: string) => `${(((t.ms[key] ?? 0) / total) * 100).toFixed(0)}%`;
    rows.push({
      model: name, backend: backend.name,
      'prefill tok/s': Math.round(median(prefill)), 'decode tok/s': Math.round(median(decode)),
      linear: share('linear'), attention: share('attention'), download: share('download'), 'norm+rope+silu+add': `${((((t.ms.rmsnorm ?? 0) + (t.ms.rope ?? 0) + (t.ms.siluMul ?? 0) + (t.ms.add ?? 0)) / total) * 100).toFixed(0)}%`,
    });
  }
}
console.table(rows);
const p = cuda.placements();
console.log(`placements: GPU ${JSON.stringify(p.gpu)}, CPU ${JSON.stringify(p.cpu)}`);
cuda.dispose();
process.exit(0);
