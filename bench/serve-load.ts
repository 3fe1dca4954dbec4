/**
 * Load on `intscale serve` (continuous batching): the server started in this process on loopback
 * with the model (default: the embedded model, RTN-quantized W4A8 IS), then for each concurrency
 * level C, C clients (the official openai client, streamed completions, greedy) each send requests
 * back to back until `--requests` have completed or `--seconds` have passed. Per level: requests/s,
 * output tokens/s (all clients), time to first token and the time between a client's tokens (p50 /
 * p99), and the batch the server reached; the RSS at the start and end of the run and the JS heap
 * still reachable after a full collection (a leak grows it, GC slack does not). Every answer is
 * checked against the answer the same prompt gets alone (first level) — a mismatch is reported.
 *
 *   node dist/bench/serve-load.js [--model DIR] [--float] [--backend cpu|cuda] [--levels 1,4,16,64]
 *                                 [--requests 64] [--seconds 60] [--max-tokens 32] [--max-batch 64]
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { openEngine } from '../src/cli/backend-option.js';
import { quantizeModel } from '../src/quantize/quantize-model.js';
import { DEFAULT_SPEC, describeSpec } from '../src/quantize/recipe.js';
import { modelEngine } from '../src/model/engine.js';
import { createServer, type ServedModel } from '../src/serve/server.js';
import { machineLine, benchOutput, percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_MODEL_DIR },
    float: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'cpu' },
    levels: { type: 'string', default: '1,4,16,64' },
    requests: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '60' },
    'max-tokens': { type: 'string', default: '32' },
    'max-batch': { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
});
const levels = values.levels!.split(',').map(Number);
const requests = Number(values.requests);
const seconds = Number(values.seconds);
const maxTokens = Number(values['max-tokens']);
const maxBatch = Number(values['max-batch']);
const out = benchOutput(values.json === true);

let served: ServedModel;
let close = () => {};
let what: string;
if (values.backend === 'cpu' && !values.float) {
  const { loaded } = quantizeModel(values.model!, { method: 'rtn', base: DEFAULT_SPEC, overrides: {} });
  served = { model: modelEngine(loaded.model), tokenizer: loaded.tokenizer, source: loaded.source };
  what = `${values.model} ${describeSpec(DEFAULT_SPEC)} (RTN)`;
} else {
  const opened = await openEngine(values.backend === 'cuda' ? 'cuda' : 'cpu', values.model!, {}, { maxSequences: maxBatch });
  served = { model: opened.engine, tokenizer: opened.tokenizer, source: opened.source };
  close = opened.close;
  what = `${values.model} as stored`;
}
const server = createServer(served, { modelId: 'bench', maxQueue: 1024, maxBatch });
const base = `${await server.app.listen({ host: '127.0.0.1', port: 0 })}/v1`;
const client = new OpenAI({ apiKey: 'none', baseURL: base, maxRetries: 0 });
out.say(`# ${machineLine(cpuPool().threads)}; backend ${values.backend}; model ${what}`);
out.say(`# greedy streamed completions of ${maxTokens} tokens (no stop), server --max-batch ${maxBatch}; per level ${requests} requests or ${seconds} s`);

const prompts = ['The game began', 'In 2010 , the', 'Valkyria Chronicles III is', 'The music was composed by', 'After the war', 'It was released in', 'The first', 'During the'];
const solo = new Map<string, string>();

interface Sample { firstToken: number; gaps: number[]; tokens: number; text: string; prompt: string }
async function one(prompt: string): Promise<Sample> {
  const t0 = performance.now();
  const stream = await client.completions.create({ model: 'bench', prompt, max_tokens: maxTokens, temperature: 0, stream: true });
  let first = 0;
  let last = 0;
  const gaps: number[] = [];
  let text = '';
  let tokens = 0;
  for await (const chunk of stream) {
    const piece = chunk.choices[0]?.text ?? '';
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
    mostRunning = Math.max(mostRunning, server.scheduler.running);
    if (piece === '') continue;
    const now = performance.now();
    if (first === 0) first = now;
    else gaps.push(now - last);
    last = now;
    text += piece;
  }
  return { firstToken: first - t0, gaps, tokens, text, prompt };
}

/** the most requests the server ran at once during a level (read at every streamed chunk). */
let mostRunning = 0;
/** RSS, and the JS heap in use after a full collection (what stays reachable: a leak grows it, GC slack does not). */
v8.setFlagsFromString('--expose-gc'); // not as a node flag: the worker pool refuses it in execArgv
const gc = runInNewContext('gc') as () => void;
const memory = (): { rss: number; heap: number } => {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
};
const memStart = memory();
const rows = [];
for (const c of levels) {
  const samples: Sample[] = [];
  mostRunning = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let issued = 0;
  await Promise.all(Array.from({ length: c }, async (_, client) => {
    while (issued < requests && performance.now() < deadline) {
      const prompt = prompts[(issued++ + client) % prompts.length]!;
      samples.push(await one(prompt));
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  let mismatches = 0;
  for (const s of samples) {
    const expected = solo.get(s.prompt);
    if (expected === undefined) solo.set(s.prompt, s.text);
    else if (expected !== s.text) mismatches++;
  }
  const first = samples.map((s) => s.firstToken).sort((a, b) => a - b);
  const gaps = samples.flatMap((s) => s.gaps).sort((a, b) => a - b);
  const tokens = samples.reduce((n, s) => n + s.tokens, 0);
  rows.push({
    clients: c, requests: samples.length, 'req/s': (samples.length / elapsed).toFixed(2), 'output tok/s': (tokens / elapsed).toFixed(1),
    'first token p50 ms': percentile(first, 0.5).toFixed(0), 'first token p99 ms': percentile(first, 0.99).toFixed(0),
    'token gap p50 ms': gaps.length ? percentile(gaps, 0.5).toFixed(1) : '-', 'token gap p99 ms': gaps.length ? percentile(gaps, 0.99).toFixed(1) : '-',
    'most running': mostRunning, 'answers unlike solo': mismatches,
  });
}
out.table(rows);
const memEnd = memory();
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
out.say(`RSS: ${mib(memStart.rss)} at the start of the load, ${mib(memEnd.rss)} at the end; JS heap after a full collection: ${mib(memStart.heap)} → ${mib(memEnd.heap)}`);
await server.app.close();
close();
process.exit(0);
