/**
 * A batched decode step on the CPU (SequenceEngine.decodeBatch: the linears run once on B rows,
 * attention per row): ms per step and tokens/s at each batch size B, on a synthetic LLaMA of RANDOM
 * W4A8 IS weights (speed only; default 8 layers, hidden 2048, ffn 5632, 16 heads, vocab 32000,
 * f32 lm_head) or on the embedded model quantized with `intscale quantize`'s defaults (--embedded: RTN, W8A8 lm_head). Each sequence holds a 3-token
 * prompt; 2 warm-up steps, then --steps timed steps per B.
 *
 *   node dist/bench/cpu-batch-decode.js [--embedded] [--layers 8] [--batches 1,4,8] [--steps 8]
 */
import { cpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.js';
import { modelEngine } from '../src/model/engine.js';
import type { Model } from '../src/model/forward.js';
import { createModel } from '../src/model/prepare.js';
import { quantizeModel } from '../src/quantize/quantize-model.js';
import { DEFAULT_RTN_RECIPE, DEFAULT_SPEC, describeSpec } from '../src/quantize/recipe.js';
import { benchArgs, positiveInt, positiveInts } from './args.js';
import { benchOutput, machineLine } from './stats.js';
import { syntheticModel } from './synthetic.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    embedded: { type: 'boolean', default: false },
    layers: { type: 'string', default: '8' },
    batches: { type: 'string', default: '1,4,8' },
    steps: { type: 'string', default: '8' },
    json: { type: 'boolean', default: false },
  },
});
const out = benchOutput(values.json === true);
let model: Model;
if (values.embedded) {
  model = quantizeModel(DEFAULT_MODEL_DIR, DEFAULT_RTN_RECIPE).loaded.model;
  out.say(`# ${machineLine(cpuPool().threads)}; the embedded model, ${describeSpec(DEFAULT_SPEC)}, W8A8 lm_head, 8-bit embedding (RTN: intscale quantize's defaults)`);
} else {
  const s = syntheticModel(positiveInt('layers', values.layers!), { hidden: 2048, ffn: 5632, heads: 16, vocab: 32000 });
  model = createModel(s.config, s.weights, cpuBackend);
  out.say(`# ${machineLine(cpuPool().threads)}; synthetic LLaMA, ${values.layers} layers, hidden 2048, ffn 5632, 16 heads, vocab 32000, RANDOM ${describeSpec(DEFAULT_SPEC)} weights, f32 lm_head (speed only)`);
}
const steps = positiveInt('steps', values.steps!);
out.say(`# each sequence: a 3-token prompt, 2 warm-up steps, then ${steps} timed decode steps`);
const engine = modelEngine(model);
const rows = [];
let single = 0;
for (const B of positiveInts('batches', values.batches!)) {
  const seqs = Array.from({ length: B }, () => engine.open(steps + 8));
  seqs.forEach((q, i) => q.feed([5 + i, 7, 9]));
  const tokens = (k: number) => seqs.map((_, i) => (31 * i + 7 * k + 3) % model.config.vocabSize);
  for (let w = 0; w < 2; w++) engine.decodeBatch(seqs, tokens(w));
  const t = performance.now();
  for (let k = 0; k < steps; k++) engine.decodeBatch(seqs, tokens(k + 2));
  const ms = (performance.now() - t) / steps;
  const rate = (B * 1000) / ms;
  if (B === 1) single = rate;
  rows.push({ batch: B, 'ms per step': ms.toFixed(2), 'tok/s': rate.toFixed(1), 'vs batch 1': single ? `${(rate / single).toFixed(2)}x` : '-' });
  for (const q of seqs) q.release();
}
out.table(rows);
process.exit(0);
