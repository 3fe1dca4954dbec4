/**
 * Where a CPU decode step goes: every backend op of the forward pass timed (the CPU backend is
 * synchronous, so wall time per call is its cost) while a synthetic LLaMA of RANDOM W4A8 IS weights
 * (speed only) decodes, split by op and by linear layer shape; the rest of the step (embedding,
 * sampling, host glue) is the remainder of the step's wall time.
 *
 *   npx tsc -p . && node dist/bench/cpu-step-ops.js [--layers 16] [--hidden 2048] [--ffn 5632] [--heads 16]
 *     [--vocab 32000] [--prompt 128] [--steps 32] [--batch 1]
 * --batch B > 1: B sequences, each fed the prompt, then batched decode steps (forwardDecodeBatch, one
 * M = B matmul a linear, attention per row), as the server's batched decode runs them.
 */
import { defaultThreadCount } from '../src/backends/cpu/pool/index.js';
import type { Backend } from '../src/model/backend.js';
import { cpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { createModel } from '../src/model/prepare.js';
import { forwardDecodeBatch, forwardLastLogits, type Model } from '../src/model/forward.js';
import { createKvCache } from '../src/model/kv-cache.js';
import { argmax } from '../src/model/sampling.js';
import type { LinearWeight } from '../src/quant/types.js';
import { benchArgs, positiveInt } from './args.js';
import { machineLine, benchOutput } from './stats.js';
import { syntheticModel } from './synthetic.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    json: { type: 'boolean', default: false },
    layers: { type: 'string', default: '16' }, hidden: { type: 'string', default: '2048' }, ffn: { type: 'string', default: '5632' },
    heads: { type: 'string', default: '16' }, vocab: { type: 'string', default: '32000' },
    prompt: { type: 'string', default: '128' }, steps: { type: 'string', default: '32' }, batch: { type: 'string', default: '1' },
  },
});
const n = (k: Exclude<keyof typeof values, 'json'>): number => positiveInt(k, values[k]!);

/** The backend with every op's time added to `spent` under its name (linears by kind and shape). */
function timed(b: Backend, spent: Map<string, number>): Backend {
  const add = (name: string, t0: number) => spent.set(name, (spent.get(name) ?? 0) + performance.now() - t0);
  const wrap = <A extends unknown[], R>(name: string | ((...a: A) => string), f: (...a: A) => R) => (...a: A): R => {
    const t0 = performance.now();
    const r = f(...a);
    add(typeof name === 'string' ? name : name(...a), t0);
    return r;
  };
  const linearName = (w: LinearWeight) => (_x: Float32Array, m: number) =>
    `linear ${w.kind === 'float' ? 'f32' : `W${w.wBits}A${w.aBits}`} ${w.n}x${w.k}${m > 1 ? ` (m=${m})` : ''}`;
  return {
    ...b,
    prepareLinear: (w) => {
      const p = b.prepareLinear(w);
      return { ...p, run: wrap(linearName(w), p.run) };
    },
    rmsnorm: wrap('rmsnorm', b.rmsnorm), rope: wrap('rope', b.rope),
    attention: wrap('attention', b.attention), siluMul: wrap('silu_mul', b.siluMul), addInPlace: wrap('add', b.addInPlace),
    ...(b.decodeAttention ? { decodeAttention: wrap('attention (batched decode)', b.decodeAttention) } : {}),
  };
}

const synthetic = syntheticModel(n('layers'), { hidden: n('hidden'), ffn: n('ffn'), heads: n('heads'), vocab: n('vocab') });
const spent = new Map<string, number>();
const model: Model = createModel(synthetic.config, synthetic.weights, timed(cpuBackend, spent));
const c = model.config;
const out = benchOutput(values.json === true);
out.say(machineLine(defaultThreadCount()));
out.say(`model: ${c.numLayers} layers, hidden ${c.hiddenSize}, ffn ${c.intermediateSize}, heads ${c.numHeads}, vocab ${c.vocabSize}; RANDOM W4A8 IS g128 weights, tied fp32 lm_head (speed only)`);
const prompt = Array.from({ length: n('prompt') }, (_, i) => 1 + ((i * 7919) % (c.vocabSize - 1)));
const batch = n('batch');
const caches = Array.from({ length: batch }, () => createKvCache(c, prompt.length + n('steps') + 1, model.backend)); // + the warm-up step
let tokens = caches.map((cache) => argmax(forwardLastLogits(model, prompt, cache)));
const step = (): number[] => batch === 1 ? [argmax(forwardLastLogits(model, tokens, caches[0]!))] : forwardDecodeBatch(model, tokens, caches).map(argmax);
tokens = step(); // one warm-up step
spent.clear();
const t0 = performance.now();
for (let s = 0; s < n('steps'); s++) tokens = step();
const total = performance.now() - t0;
const steps = n('steps');
const rows = [...spent].sort((a, b) => b[1] - a[1]).map(([op, ms]) => ({ op, 'ms per step': Number((ms / steps).toFixed(2)), share: `${((100 * ms) / total).toFixed(1)}%` }));
const opsMs = [...spent.values()].reduce((a, b) => a + b, 0);
rows.push({ op: 'outside the ops (embedding, sampling, glue)', 'ms per step': Number(((total - opsMs) / steps).toFixed(2)), share: `${((100 * (total - opsMs)) / total).toFixed(1)}%` });
out.say(`decode: ${steps} steps of ${batch} sequence${batch > 1 ? 's (batched)' : ''} after a ${prompt.length}-token prompt, ${(total / steps).toFixed(1)} ms per step (${((1000 * steps * batch) / total).toFixed(1)} tok/s)\n`);
out.table(rows);
