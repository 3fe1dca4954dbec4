/**
 * A quantized 7B on this machine: writes a LLaMA-2-7B-shaped W4A8 IS checkpoint of RANDOM weights
 * (speed and memory only; 32 layers, hidden 4096, ffn 11008, vocab 32000, tied fp32 lm_head), then,
 * each in a fresh process, loads it and runs `generate` (greedy, a 16-token prompt) and
 * `eval` (perplexity over one window of random tokens), reporting wall time and peak RSS.
 *
 *   npx tsc -p . && node dist/bench/cpu-7b-memory.js [--dir /tmp/intscale-7b-w4a8] [--layers 32]
 *     [--new-tokens 8] [--seq-len 128]
 *
 * The checkpoint is kept in --dir and reused by later runs. Skips (exit 0, with the reason) when
 * the disk has less free space than the checkpoint needs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generate } from '../src/model/generate.js';
import { loadModel } from '../src/backends/load.js';
import { perplexity } from '../src/eval/perplexity.js';
import { defaultThreadCount } from '../src/backends/cpu/pool/index.js';
import { printTable } from '../src/cli/table.js';
import { benchArgs, positiveInt } from './args.js';
import { machineLine } from './stats.js';
import { LLAMA2_7B_SHAPE, syntheticModel, writeSyntheticCheckpoint } from './synthetic.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    dir: { type: 'string', default: '/tmp/intscale-7b-w4a8' },
    layers: { type: 'string', default: '32' },
    'new-tokens': { type: 'string', default: '8' },
    'seq-len': { type: 'string', default: '128' },
    child: { type: 'string' },
  },
});
const dir = values.dir!;
const tokens = (count: number, seed: number) => Array.from({ length: count }, (_, i) => 3 + ((i * 7919 + seed) % 31000));

/** In the child: one job, then its figures as a JSON line. */
function runChild(job: string): void {
  const t0 = performance.now();
  const { model } = loadModel(dir);
  const loadS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  let detail: string;
  if (job === 'generate') {
    const n = positiveInt('new-tokens', values['new-tokens']!);
    const out = generate(model, tokens(16, 1), { maxNewTokens: n, temperature: 0, topP: 1, seed: 0, stopTokens: [] });
    detail = `${out.tokens.length} tokens after a 16-token prompt`;
  } else {
    const seqLen = positiveInt('seq-len', values['seq-len']!);
    const r = perplexity(model, tokens(seqLen, 2), { seqLen, maxWindows: 1 });
    detail = `1 window of ${seqLen}: ppl ${r.perplexity.toFixed(1)} (random weights)`;
  }
  const runS = (performance.now() - t1) / 1000;
  console.log(JSON.stringify({ job, loadS, runS, maxRssGB: process.resourceUsage().maxRSS / 2 ** 20, detail }));
}

function main(): void {
  const layers = positiveInt('layers', values.layers!);
  const s = LLAMA2_7B_SHAPE;
  const linearParams = layers * (4 * s.hidden * s.hidden + 3 * s.hidden * s.ffn);
  console.log(machineLine(defaultThreadCount()));
  console.log(`model: LLaMA-2-7B shape, ${layers} layers, RANDOM W4A8 IS g128 weights (memory and speed only), ${(linearParams / 1e9).toFixed(2)}B linear params`);
  if (!fs.existsSync(`${dir}/config.json`)) {
    const needed = linearParams * 0.6 + 2 * s.vocab * s.hidden * 4;
    const free = fs.statfsSync(fs.existsSync(dir) ? dir : '/tmp');
    if (free.bavail * free.bsize < needed * 1.1) {
      console.log(`skipped: the checkpoint needs ~${(needed / 1e9).toFixed(1)} GB, ${(free.bavail * free.bsize / 1e9).toFixed(1)} GB free`);
      return;
    }
    const t = performance.now();
    const bytes = writeSyntheticCheckpoint(dir, syntheticModel(layers));
    console.log(`wrote ${dir}: ${(bytes / 1e9).toFixed(2)} GB in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  const file = fs.statSync(`${dir}/model.safetensors`).size;
  console.log(`checkpoint: ${(file / 1e9).toFixed(2)} GB (model.safetensors)\n`);
  const self = fileURLToPath(import.meta.url);
  const rows = ['generate', 'eval'].map((job) => {
    const args = [self, '--child', job, '--dir', dir, '--new-tokens', values['new-tokens']!, '--seq-len', values['seq-len']!];
    const line = execFileSync(process.execPath, args, { encoding: 'utf8' }).trim().split('\n').pop()!;
    const r = JSON.parse(line) as { loadS: number; runS: number; maxRssGB: number; detail: string };
    return {
      job, 'load s': Number(r.loadS.toFixed(1)), 'run s': Number(r.runS.toFixed(1)), 'peak RSS GB': Number(r.maxRssGB.toFixed(2)),
      'peak RSS / file': Number((r.maxRssGB * 2 ** 30 / file).toFixed(2)), 'what ran': r.detail,
    };
  });
  printTable(rows);
}

if (values.child) runChild(values.child);
else main();
