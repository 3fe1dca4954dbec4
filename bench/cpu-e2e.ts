/**
 * End-to-end CPU speed: prefill and decode tokens/s of a model in float32 and quantized
 * (W4A8 integer scale, W4A8 float scale), measured in one run on the same prompt.
 *
 *   npx tsc -p . && node dist/bench/cpu-e2e.js [--model DIR] [--prompt-tokens 256] [--decode-tokens 64] [--reps 3]
 *
 * Prints the machine (CPU model, cores, threads used, Node version), the model's shape, the
 * repetitions and the median of each figure.
 */
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { generate } from '../src/model/generate.js';
import { loadModel, type LoadedModel } from '../src/backends/load.js';
import { layerQuantizer } from '../src/quantize/quantize-model.js';
import { DEFAULT_SPEC, describeSpec, type QuantRecipe } from '../src/quantize/recipe.js';
import type { QuantSpec } from '../src/quant/types.js';
import { benchArgs, positiveInt } from './args.js';
import { machineLine, median, benchOutput } from './stats.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    json: { type: 'boolean', default: false },
    model: { type: 'string', default: DEFAULT_MODEL_DIR },
    'prompt-tokens': { type: 'string', default: '256' },
    'decode-tokens': { type: 'string', default: '64' },
    reps: { type: 'string', default: '3' },
  },
});
const promptTokens = positiveInt('prompt-tokens', values['prompt-tokens']!);
const decodeTokens = positiveInt('decode-tokens', values['decode-tokens']!);
const reps = positiveInt('reps', values.reps!);


function quantized(spec: QuantSpec): LoadedModel {
  const recipe: QuantRecipe = { method: 'rtn', base: spec, overrides: {} };
  return loadModel(values.model!, layerQuantizer(recipe).loadOptions);
}

const settings: [string, () => LoadedModel][] = [
  ['float32', () => loadModel(values.model!)],
  [describeSpec(DEFAULT_SPEC), () => quantized(DEFAULT_SPEC)],
  [describeSpec({ ...DEFAULT_SPEC, scale: 'float' }), () => quantized({ ...DEFAULT_SPEC, scale: 'float' })],
];

const out = benchOutput(values.json === true);
out.say(machineLine(cpuPool().threads));
const first = settings[0][1]();
const c = first.model.config;
out.say(`model: ${values.model} (${c.architecture}, ${c.numLayers} layers, hidden ${c.hiddenSize}, ffn ${c.intermediateSize}, vocab ${c.vocabSize})`);
out.say(`prompt ${promptTokens} tokens (one batched prefill), then ${decodeTokens} decode steps; median of ${reps} runs after one warm-up\n`);
const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % c.vocabSize);

const rows = settings.map(([name, load]) => {
  const { model } = name === 'float32' ? first : load();
  const run = () => generate(model, prompt, { maxNewTokens: decodeTokens + 1, temperature: 0, topP: 1, seed: 0, stopTokens: [] });
  run();
  const prefill: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r < reps; r++) {
    const g = run();
    prefill.push(g.prefillTokens / g.prefillSeconds);
    decode.push(g.decodeTokens / g.decodeSeconds);
  }
  return { setting: name, 'prefill tok/s': Math.round(median(prefill)), 'decode tok/s': Math.round(median(decode)) };
});
out.table(rows);
process.exit(0);
