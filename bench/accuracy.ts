/**
 * Accuracy report: WikiText-2 perplexity of a model under every quantization setting of the
 * paper's Tables 1, 3 and 8 analogues (float32; W4A8 float vs integer scale at several α, g128
 * and per-channel; W8A8; W4A16; the LLaMA-3 recipe), written to docs/accuracy.md.
 *
 *   npx tsc -p . && node dist/bench/accuracy.js [--model DIR] [--text FILE] [--seq-len 512] [--max-windows 32] [--out docs/accuracy.md]
 */
import * as fs from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.js';
import { perplexity } from '../src/eval/perplexity.js';
import { loadModel, type LoadedModel } from '../src/backends/load.js';
import { layerQuantizer, type LinearReport } from '../src/quantize/quantize-model.js';
import { DEFAULT_LM_HEAD, describeSpec, type QuantRecipe } from '../src/quantize/recipe.js';
import type { QuantSpec } from '../src/quant/types.js';
import { benchArgs, positiveInt } from './args.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    model: { type: 'string', default: DEFAULT_MODEL_DIR },
    text: { type: 'string', default: '../shared/data/wikitext-2/test.txt' },
    'seq-len': { type: 'string', default: '512' },
    'max-windows': { type: 'string', default: '32' },
    out: { type: 'string', default: 'docs/accuracy.md' },
  },
});
const seqLen = positiveInt('seq-len', values['seq-len']!);
const maxWindows = positiveInt('max-windows', values['max-windows']!);

const W4A8: QuantSpec = { wBits: 4, aBits: 8, groupSize: 128, scale: 'float', alpha: { kind: 'fixed', log2: 10 } };
const intScale = (alpha: QuantSpec['alpha'], base: QuantSpec = W4A8): QuantSpec => ({ ...base, scale: 'int', alpha });
const W8A8: QuantSpec = { ...W4A8, wBits: 8 };

interface Setting { readonly table: string; readonly label: string; readonly recipe: QuantRecipe | null }
const rtn = (base: QuantSpec, overrides: QuantRecipe['overrides'] = {}): QuantRecipe => ({ method: 'rtn', base, overrides });
const settings: Setting[] = [
  { table: 'baseline', label: 'float32', recipe: null },
  { table: 'W4A8 g128 (Table 1)', label: describeSpec(W4A8), recipe: rtn(W4A8) },
  ...[7, 9, 10, 12, 13].map((b) => ({ table: 'W4A8 g128 (Table 1)', label: describeSpec(intScale({ kind: 'fixed', log2: b })), recipe: rtn(intScale({ kind: 'fixed', log2: b })) })),
  { table: 'W4A8 g128 (Table 1)', label: describeSpec(intScale({ kind: 'heuristic' })), recipe: rtn(intScale({ kind: 'heuristic' })) },
  { table: 'W4A8 g128 (Table 1)', label: describeSpec(intScale({ kind: 'safe', maxLog2: 10 })), recipe: rtn(intScale({ kind: 'safe', maxLog2: 10 })) },
  { table: 'W4A8 g128 (Table 1)', label: describeSpec(intScale({ kind: 'safe', maxLog2: 10 })) + ', lm_head W8A8 IS α≤2^16 (safe) [default]', recipe: rtn(intScale({ kind: 'safe', maxLog2: 10 }), { lmHead: DEFAULT_LM_HEAD }) },
  { table: 'W4A8 g128 (Table 1)', label: describeSpec(intScale({ kind: 'safe', maxLog2: 10 })) + ', lm_head W8A8 IS α≤2^10 (safe)', recipe: rtn(intScale({ kind: 'safe', maxLog2: 10 }), { lmHead: { wBits: 8 } }) },
  { table: 'W4A8 g128 (Table 1)', label: describeSpec(intScale({ kind: 'safe', maxLog2: 10 })) + ', lm_head W8A8 FS', recipe: rtn(intScale({ kind: 'safe', maxLog2: 10 }), { lmHead: { wBits: 8, scale: 'float' } }) },
  { table: 'W4A8 g128 (Table 1)', label: describeSpec(intScale({ kind: 'safe', maxLog2: 16 })), recipe: rtn(intScale({ kind: 'safe', maxLog2: 16 })) },
  { table: 'W4A8 per-channel', label: describeSpec({ ...W4A8, groupSize: 0 }), recipe: rtn({ ...W4A8, groupSize: 0 }) },
  { table: 'W4A8 per-channel', label: describeSpec(intScale({ kind: 'safe', maxLog2: 10 }, { ...W4A8, groupSize: 0 })), recipe: rtn(intScale({ kind: 'safe', maxLog2: 10 }, { ...W4A8, groupSize: 0 })) },
  { table: 'W8A8 g128', label: describeSpec(W8A8), recipe: rtn(W8A8) },
  { table: 'W8A8 g128', label: describeSpec(intScale({ kind: 'safe', maxLog2: 10 }, W8A8)), recipe: rtn(intScale({ kind: 'safe', maxLog2: 10 }, W8A8)) },
  { table: 'W8A8 g128', label: describeSpec(intScale({ kind: 'safe', maxLog2: 20 }, W8A8)), recipe: rtn(intScale({ kind: 'safe', maxLog2: 20 }, W8A8)) },
  { table: 'W4A16 g128 (weight-only)', label: describeSpec({ ...W4A8, aBits: 16 }), recipe: rtn({ ...W4A8, aBits: 16 }) },
  { table: 'LLaMA-3 recipe (Table 8)', label: 'W4A8 g128 IS α=2^13, down_proj W8A8 IS α≤2^13 (safe)', recipe: rtn(intScale({ kind: 'fixed', log2: 13 }), { down: { wBits: 8, alpha: { kind: 'safe', maxLog2: 13 } } }) },
];

const started = Date.now();
const fp = loadModel(values.model!);
const text = fs.readFileSync(values.text!, 'utf8');
const tokens = fp.tokenizer!.encode(text);
const windows = Math.min(maxWindows, Math.floor(tokens.length / seqLen));

function alphaSummary(reports: readonly LinearReport[]): string {
  const bs = reports.map((r) => r.alphaLog2).filter((b): b is number => b !== null);
  if (bs.length === 0) return '-';
  const lo = Math.min(...bs);
  const hi = Math.max(...bs);
  const lowered = reports.filter((r) => r.alphaLowered).length;
  return `${lo === hi ? `2^${lo}` : `2^${lo}…2^${hi}`}${lowered ? ` (${lowered} lowered)` : ''}`;
}

const results = settings.map((s) => {
  let loaded: LoadedModel = fp;
  let reports: LinearReport[] = [];
  if (s.recipe !== null) {
    const q = layerQuantizer(s.recipe);
    loaded = loadModel(values.model!, q.loadOptions);
    reports = q.reports;
  }
  const r = perplexity(loaded.model, tokens, { seqLen, maxWindows: windows });
  const proven = reports.filter((x) => x.overflow?.safe).length;
  const intLayers = reports.filter((x) => x.overflow !== null).length;
  const row = { ...s, ppl: r.perplexity, alpha: alphaSummary(reports), proof: intLayers ? `${proven}/${intLayers}` : '-', seconds: r.seconds };
  console.log(`${s.label.padEnd(60)} ppl ${r.perplexity.toFixed(4)}  α ${row.alpha}  proven ${row.proof}  (${r.seconds.toFixed(0)} s)`);
  return row;
});

const fsPpl = results.find((r) => r.label === describeSpec(W4A8))!.ppl;
const c = fp.model.config;
const lines = [
  '# Accuracy: float scale vs Integer Scale',
  '',
  `Made by \`node dist/bench/accuracy.js --model ${values.model} --text ${values.text} --seq-len ${seqLen} --max-windows ${maxWindows}\``,
  `on ${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? 'CPU'} (${availableParallelism()} cores), Node ${process.version}; ${((Date.now() - started) / 1000).toFixed(0)} s in all.`,
  '',
  `Model: \`${values.model}\` (${c.architecture}, ${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}). ` +
    `Text: WikiText-2 test, the first ${windows} windows of ${seqLen} tokens (${windows * (seqLen - 1)} predicted tokens). ` +
    'Every quantized setting runs on the true integer path (int8 activations × int4/int8 weights, int32 accumulation); RTN; the lm_head in float unless the row names it, embeddings in float.',
  '',
  '| table | setting | α chosen | overflow proven | perplexity | Δ vs W4A8 g128 FS |',
  '|---|---|---|---|---|---|',
  ...results.map((r) => `| ${r.table} | ${r.label} | ${r.alpha} | ${r.proof} | ${r.ppl.toFixed(3)} | ${r.recipe === null || r.table !== 'W4A8 g128 (Table 1)' ? '' : (r.ppl - fsPpl >= 0 ? '+' : '') + (r.ppl - fsPpl).toFixed(3)} |`),
  '',
];
fs.mkdirSync('docs', { recursive: true });
fs.writeFileSync(values.out!, lines.join('\n'));
console.log(`wrote ${values.out}`);
process.exit(0);
