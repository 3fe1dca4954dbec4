/**
 * Quantizing a 7B on this machine: writes a LLaMA-2-7B-shaped f16 checkpoint of RANDOM weights
 * (speed and memory only; 32 layers, hidden 4096, ffn 11008, vocab 32000, untied lm_head; three
 * shards and an index, as real checkpoints come, one shard in memory at a time), then times
 * `intscale quantize` on it with the methods asked for, each in a fresh process, with its peak RSS
 * (GNU time's maximum resident set size).
 *
 *   npx tsc -p . && node dist/bench/quantize-7b.js [--dir /tmp/intscale-7b-f16] [--methods rtn]
 *     [--calib FILE --calib-windows 16 --calib-seq-len 512]   (for gptq / awq)   [--no-jobs]
 *
 * The random checkpoint gets the embedded model's tokenizer (its ids lie inside the 32000 of the
 * vocabulary; with random weights the text means nothing), so that gptq / awq can tokenize their
 * calibration text: by default data/wikitext-2-test-excerpt.txt.
 *
 * Then, unless --no-jobs, generate and eval on each checkpoint made, each in a fresh process with its
 * peak RSS (bench/cpu-7b-memory.ts's jobs on that checkpoint).
 *
 * The f16 checkpoint is kept in --dir and reused. Skips (exit 0, with the reason) when the disk or
 * /usr/bin/time is missing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { printTable } from '../src/cli/table.js';
import { defaultThreadCount } from '../src/backends/cpu/pool/index.js';
import { benchArgs } from './args.js';
import { machineLine } from './stats.js';
import { LLAMA2_7B_SHAPE } from './synthetic.js';
import { writeSynthetic7B } from './synthetic-checkpoint.js';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../src/cli/default-model.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    dir: { type: 'string', default: '/tmp/intscale-7b-f16' },
    methods: { type: 'string', default: 'rtn' },
    calib: { type: 'string', default: path.join(PACKAGE_ROOT, 'data', 'wikitext-2-test-excerpt.txt') },
    'calib-windows': { type: 'string', default: '16' },
    'calib-seq-len': { type: 'string', default: '512' },
    'no-jobs': { type: 'boolean', default: false },
  },
});
const dir = values.dir!;
const LAYERS = 32;
const { hidden: d, ffn: f, vocab } = LLAMA2_7B_SHAPE;

function main(): void {
  console.log(machineLine(defaultThreadCount()));
  console.log(`model: LLaMA-2-7B shape, ${LAYERS} layers, RANDOM f16 weights (memory and speed only), 3 shards + index`);
  if (!fs.existsSync('/usr/bin/time')) {
    console.log('skipped: /usr/bin/time (GNU time) is needed for the peak RSS');
    return;
  }
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    const free = fs.statfsSync(fs.existsSync(dir) ? dir : path.dirname(dir));
    const needed = 2 * (LAYERS * (4 * d * d + 3 * d * f) + 2 * vocab * d) * 1.6; // the f16 source, then a W4A8 checkpoint
    if (free.bavail * free.bsize < needed) {
      console.log(`skipped: needs ~${(needed / 1e9).toFixed(0)} GB of disk, ${(free.bavail * free.bsize / 1e9).toFixed(0)} GB free`);
      return;
    }
    const t = performance.now();
    writeSynthetic7B(dir, LAYERS, (line) => console.log(line));
    console.log(`wrote ${dir} in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
    if (!fs.existsSync(path.join(dir, file))) fs.copyFileSync(path.join(DEFAULT_MODEL_DIR, file), path.join(dir, file));
  }
  const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
  const rows = values.methods!.split(',').map((method) => {
    const out = `${dir}-${method}`;
    const calib = method === 'rtn' ? [] : ['--calib', values.calib!, '--calib-windows', values['calib-windows']!, '--calib-seq-len', values['calib-seq-len']!];
    const t = performance.now();
    const r = spawnSync('/usr/bin/time', ['-v', process.execPath, cli, 'quantize', '-m', dir, '-o', out, '--overwrite', '--method', method, ...calib], { encoding: 'utf8' });
    const seconds = (performance.now() - t) / 1000;
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1];
    const ok = r.status === 0;
    const outBytes = ok ? fs.statSync(path.join(out, 'model.safetensors')).size : 0;
    return {
      method, result: ok ? 'ok' : `failed: ${r.stderr.split('\n').find((l) => l.startsWith('intscale:')) ?? `exit ${r.status}`}`,
      seconds: Number(seconds.toFixed(0)), 'peak RSS GB': rss ? Number((Number(rss) / 2 ** 20).toFixed(2)) : '-',
      'checkpoint GB': ok ? Number((outBytes / 1e9).toFixed(2)) : '-',
    };
  });
  printTable(rows);
  if (values['no-jobs']) return;
  const jobs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cpu-7b-memory.js');
  for (const row of rows) {
    if (row.result !== 'ok') continue;
    console.log(`\ngenerate and eval on the ${row.method} checkpoint (${dir}-${row.method}), each in a fresh process:`);
    spawnSync(process.execPath, [jobs, '--dir', `${dir}-${row.method}`], { stdio: 'inherit' });
  }
}

main();
