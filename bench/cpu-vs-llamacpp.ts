/**
 * intscale against llama.cpp on the same CPU cores (issue 20): prefill and decode tokens/s of a
 * random-weight LLaMA (speed only) in 4-bit (intscale W4A8 IS g128 vs llama.cpp Q4_0) and in f32,
 * each side with lm_head and embeddings in f32, run interleaved (every system once per round, ≥ 3
 * rounds, the median reported), then the float32 perplexity of the embedded model under llama.cpp's
 * protocol on both sides (WikiText-2 test, chunks of 512, the second half of each scored).
 *
 *   node dist/bench/cpu-vs-llamacpp.js [--anchors ../shared/anchors/llama.cpp] [--work DIR] [--threads 2]
 *     [--rounds 3] [--prompt 128] [--decode 32] [--shape 2048,16,5632,32,4,32000] [--chunks 24]
 *     [--text ../shared/data/wikitext-2/test.txt] [--no-perplexity] [--json]
 *
 * It makes what it needs once in --work (default: the OS temp folder): the speed model (the anchors'
 * make_speed_model.py, f16 safetensors, with the embedded model's tokenizer), its GGUF files (the
 * anchors' hf2gguf.py, llama-quantize Q4_0 with --output-tensor-type f32 --token-embedding-type f32)
 * and the intscale checkpoint (`intscale quantize`). Each measurement runs in its own process:
 * llama-bench (-p P -n N -r 1), and this script with --child for intscale (one warm-up generate, then
 * one timed: the prompt as one prefill, then N greedy decode steps). It skips with a message when the
 * llama.cpp tools (or python3 with numpy) are absent.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../src/cli/default-model.js';
import { benchArgs, positiveInt, positiveIntTuple } from './args.js';
import { benchOutput, machineLine, median } from './stats.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    anchors: { type: 'string', default: '../shared/anchors/llama.cpp' },
    work: { type: 'string', default: join(tmpdir(), 'intscale-vs-llamacpp') },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    prompt: { type: 'string', default: '128' },
    decode: { type: 'string', default: '32' },
    shape: { type: 'string', default: '2048,16,5632,32,4,32000' },
    chunks: { type: 'string', default: '24' },
    text: { type: 'string', default: '../shared/data/wikitext-2/test.txt' },
    'no-perplexity': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});
const threads = positiveInt('threads', values.threads!);
const prompt = positiveInt('prompt', values.prompt!);
const decode = positiveInt('decode', values.decode!);
const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');

if (values.child !== undefined) {
  await measureChild(values.child);
  process.exit(0);
}

/** One intscale measurement in this (child) process: prints { prefill, decode } tokens/s as JSON. */
async function measureChild(modelDir: string): Promise<void> {
  const { loadModel } = await import('../src/backends/load.js');
  const { generate } = await import('../src/model/generate.js');
  const { model } = loadModel(modelDir);
  const ids = Array.from({ length: prompt }, (_, i) => (i * 7919 + 13) % model.config.vocabSize);
  const run = () => generate(model, ids, { maxNewTokens: decode + 1, temperature: 0, topP: 1, seed: 0, stopTokens: [] });
  run();
  const g = run();
  console.log(JSON.stringify({ prefill: g.prefillTokens / g.prefillSeconds, decode: g.decodeTokens / g.decodeSeconds }));
}

const out = benchOutput(values.json === true);
const anchors = resolve(values.anchors!);
const tool = (name: string) => join(anchors, 'bin', name);
const missing = ['bin/llama-bench', 'bin/llama-quantize', 'bin/llama-perplexity', 'hf2gguf.py', 'make_speed_model.py'].filter((f) => !existsSync(join(anchors, f)));
const python = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
if (missing.length > 0 || python.status !== 0) {
  const why = missing.length > 0 ? `${anchors} lacks ${missing.join(', ')}` : 'python3 with numpy is not available';
  out.say(`cpu-vs-llamacpp skipped: ${why} (the llama.cpp tools come in ../shared/anchors/llama.cpp)`);
  process.exit(0);
}

/** Runs a command; returns its stdout (with `withStderr`, stdout then stderr); throws with its output when it fails. */
function sh(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, withStderr = false): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}\n${r.stdout}`.slice(0, 4000));
  return withStderr ? `${r.stdout}\n${r.stderr}` : r.stdout;
}

const work = resolve(values.work!);
mkdirSync(work, { recursive: true });
const hf = join(work, 'speed-hf');
const [hidden, layers, ffn, heads, kvHeads, vocab] = positiveIntTuple('shape', values.shape!, ['hidden', 'layers', 'ffn', 'heads', 'kvHeads', 'vocab']);
const pyEnv = { PYTHONPATH: join(anchors, 'py') };
/** Makes `path` with `make` unless it exists (a previous run's files are reused). */
function once(path: string, what: string, make: () => void): string {
  if (!existsSync(path)) {
    process.stderr.write(`making ${what} …\n`);
    make();
  }
  return path;
}
once(join(hf, 'model.safetensors'), 'the random-weight speed model', () => {
  sh('python3', [join(anchors, 'make_speed_model.py'), hf, ...[hidden, layers, ffn, heads, kvHeads, vocab].map(String)]);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEFAULT_MODEL_DIR, f), join(hf, f));
});
const f32Gguf = once(join(work, 'speed-f32.gguf'), 'its F32 GGUF', () => sh('python3', [join(anchors, 'hf2gguf.py'), hf, join(work, 'speed-f32.gguf'), 'f32'], pyEnv));
const q4Gguf = once(join(work, 'speed-q4_0.gguf'), 'its Q4_0 GGUF (lm_head and embeddings f32)', () =>
  sh(tool('llama-quantize'), ['--output-tensor-type', 'f32', '--token-embedding-type', 'f32', f32Gguf, join(work, 'speed-q4_0.gguf'), 'Q4_0', String(threads)]));
// lm_head and embedding kept f32 like the Q4_0 GGUF's (quantize's defaults would make them 8-bit)
const isDir = once(join(work, 'speed-w4a8-is-f32-head'), 'the intscale W4A8 IS g128 checkpoint (lm_head and embedding f32)', () =>
  sh(process.execPath, [CLI, 'quantize', '-m', hf, '-o', join(work, 'speed-w4a8-is-f32-head'), '--lm-head', 'float', '--embedding', 'float'], { INTSCALE_THREADS: String(threads) }));

/** A system timed; `baseline`: the llama.cpp system its ratios are taken against (none for llama.cpp's own rows). */
interface System { readonly name: string; readonly baseline?: System; measure(): { prefill: number; decode: number } }
const llamaBench = (name: string, gguf: string): System => ({
  name,
  measure() {
    const lines = sh(tool('llama-bench'), ['-m', gguf, '-t', String(threads), '-p', String(prompt), '-n', String(decode), '-r', '1', '-o', 'jsonl']).trim().split('\n');
    const rows = lines.map((l) => JSON.parse(l) as { n_prompt: number; n_gen: number; avg_ts: number });
    return { prefill: rows.find((r) => r.n_prompt > 0)!.avg_ts, decode: rows.find((r) => r.n_gen > 0)!.avg_ts };
  },
});
const intscale = (name: string, dir: string, baseline: System): System => ({
  name,
  baseline,
  measure() {
    const raw = sh(process.execPath, [join(PACKAGE_ROOT, 'dist', 'bench', 'cpu-vs-llamacpp.js'), '--child', dir, '--prompt', String(prompt), '--decode', String(decode)],
      { INTSCALE_THREADS: String(threads) });
    return JSON.parse(raw.trim().split('\n').pop()!) as { prefill: number; decode: number };
  },
});
const q4 = llamaBench('llama.cpp Q4_0', q4Gguf), f32 = llamaBench('llama.cpp F32', f32Gguf);
const systems: System[] = [
  q4, intscale('intscale W4A8 IS g128', isDir, q4),
  f32, intscale('intscale float32', hf, f32),
];

out.say(machineLine(threads));
out.say(`RANDOM-weight LLaMA for speed only: hidden ${hidden}, ${layers} layers, ffn ${ffn}, ${heads}/${kvHeads} heads, vocab ${vocab}; ` +
  `lm_head and embeddings f32 on both sides; ${threads} threads; prompt ${prompt} tokens, then ${decode} decode steps; ` +
  `${values.rounds} interleaved rounds (each system once a round, its own process), median`);
const samples = systems.map(() => ({ prefill: [] as number[], decode: [] as number[] }));
for (let r = 0; r < positiveInt('rounds', values.rounds!); r++) {
  systems.forEach((s, i) => {
    const m = s.measure();
    samples[i]!.prefill.push(m.prefill);
    samples[i]!.decode.push(m.decode);
    process.stderr.write(`round ${r + 1}: ${s.name} prefill ${m.prefill.toFixed(1)} decode ${m.decode.toFixed(1)} tok/s\n`);
  });
}
const med = samples.map((s) => ({ prefill: median(s.prefill), decode: median(s.decode) }));
const ratio = (i: number, what: 'prefill' | 'decode'): string => {
  const b = systems[i]!.baseline;
  return b === undefined ? '' : `${(med[i]![what] / med[systems.indexOf(b)]![what]).toFixed(2)}×`;
};
out.table(systems.map((s, i) => ({
  system: s.name,
  'prefill tok/s': Number(med[i]!.prefill.toFixed(1)),
  'decode tok/s': Number(med[i]!.decode.toFixed(1)),
  'prefill vs llama.cpp': ratio(i, 'prefill'),
  'decode vs llama.cpp': ratio(i, 'decode'),
  'decode tok/s by round': samples[i]!.decode.map((v) => v.toFixed(1)).join(' '),
})));

if (!values['no-perplexity']) {
  const text = resolve(values.text!);
  if (!existsSync(text)) {
    out.say(`perplexity skipped: ${text} is absent`);
  } else {
    const chunks = values.chunks!;
    const embeddedGguf = once(join(work, 'embedded-f32.gguf'), 'the embedded model\'s F32 GGUF', () =>
      sh('python3', [join(anchors, 'hf2gguf.py'), DEFAULT_MODEL_DIR, join(work, 'embedded-f32.gguf'), 'f32'], pyEnv));
    const llama = sh(tool('llama-perplexity'), ['-m', embeddedGguf, '-f', text, '-c', '512', '--chunks', chunks, '-t', String(threads)], {}, true);
    const llamaPpl = /Final estimate: PPL = ([\d.]+)/.exec(llama)?.[1];
    const ours = JSON.parse(sh(process.execPath, [CLI, 'eval', '-m', DEFAULT_MODEL_DIR, '-t', text, '--seq-len', '512', '--max-windows', chunks, '--protocol', 'llama.cpp', '--json'],
      { INTSCALE_THREADS: String(threads) }).trim().split('\n').pop()!) as { perplexity: number; tokens: number };
    out.say(`\nembedded model, float32, WikiText-2 test, llama.cpp's protocol (${chunks} chunks of 512, second halves scored):`);
    out.table([
      { system: 'llama-perplexity (F32 GGUF)', perplexity: llamaPpl === undefined ? 'not found in its output' : Number(llamaPpl) },
      { system: 'intscale eval --protocol llama.cpp', perplexity: Number(ours.perplexity.toFixed(4)), 'tokens scored': ours.tokens },
    ]);
  }
}
