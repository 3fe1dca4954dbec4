/**
 * Load on `intscale serve` (continuous batching): the server started on loopback with the model
 * (default: the embedded model quantized as `intscale quantize` does by default: RTN W4A8 IS, a W8A8 lm_head), in this process or, with --server-process,
 * in a child process of its own (so that its memory is measured apart from the clients'); each
 * prompt is first sent alone once (its solo answer), then `--warmup` requests run at the first
 * level's concurrency (compiled code, sockets, the clients' buffers) before the memory baseline.
 * Then for each concurrency level C, C clients (the official openai client, streamed completions,
 * greedy) each send requests back to back until `--requests` have completed or `--seconds` have
 * passed. Per level: requests/s, output tokens/s (all clients), time to first token and the time
 * between a client's tokens (p50 / p99, within 1%), the batch the server reached, and answers
 * unlike their prompt's solo answer. Memory: the server process's RSS and the JS heap still
 * reachable after a full collection (a leak grows it, GC slack does not) after the warm-up, every
 * `--memory-every` seconds and after each level. The bench keeps nothing per request (latencies go
 * into fixed-size histograms), so in-process figures hold only the server's and the clients' state.
 *
 *   node dist/bench/serve-load.js [--model DIR] [--float] [--backend cpu|cuda] [--levels 1,4,16,64]
 *                                 [--requests 64] [--seconds 60] [--max-tokens 32] [--max-batch 64]
 *                                 [--warmup 200] [--memory-every 60] [--server-process]
 *                                 [--synthetic-layers N]
 *
 * --synthetic-layers N (with --backend cuda): instead of the model's weights, N decoder layers of the
 * LLaMA-2-7B shape (hidden 4096, ffn 11008, 32 heads) with RANDOM W4A8 IS weights and a RANDOM W8A8
 * lm_head (speed only; their answers mean nothing, but greedy batching must still not change them),
 * with --model's tokenizer and vocabulary, and no end-of-sequence token (every answer --max-tokens long);
 * the tokens that stream no text of their own are masked out of the lm_head (textlessTokens), so that
 * the gaps between streamed chunks are gaps between tokens.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { openEngine } from '../src/cli/backend-option.js';
import { quantizeModel } from '../src/quantize/quantize-model.js';
import { DEFAULT_RTN_RECIPE, DEFAULT_SPEC, describeSpec } from '../src/quantize/recipe.js';
import { modelEngine } from '../src/model/engine.js';
import { createServer, type ServedModel } from '../src/serve/server.js';
import { readModel } from '../src/model/load.js';
import type { ModelTokenizer } from '../src/io/tokenizer.js';
import { BenchArgumentError, benchArgs, nonNegativeInt, positiveInt, positiveInts, positiveNumber } from './args.js';
import { machineLine, benchOutput, LatencyHistogram } from './stats.js';
import { LLAMA2_7B_SHAPE, syntheticModel } from './synthetic.js';

const { values } = benchArgs(import.meta.url, {
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
    warmup: { type: 'string', default: '200' },
    'memory-every': { type: 'string', default: '60' },
    'server-process': { type: 'boolean', default: false },
    'synthetic-layers': { type: 'string' },
    /** internal: this process is the server of a --server-process run */
    'serve-child': { type: 'boolean', default: false },
  },
});
const levels = positiveInts('levels', values.levels!);
const requests = positiveInt('requests', values.requests!);
const seconds = positiveNumber('seconds', values.seconds!);
const maxTokens = positiveInt('max-tokens', values['max-tokens']!);
const maxBatch = positiveInt('max-batch', values['max-batch']!);
const warmup = nonNegativeInt('warmup', values.warmup!);
const syntheticLayers = values['synthetic-layers'] === undefined ? null : positiveInt('synthetic-layers', values['synthetic-layers']!);
if (syntheticLayers !== null && values.backend !== 'cuda') throw new BenchArgumentError('--synthetic-layers runs the CUDA decode engine: add --backend cuda');
const memoryEvery = nonNegativeInt('memory-every', values['memory-every']!);
const out = benchOutput(values.json === true);

/** The server process's memory: RSS, and the JS heap in use after a full collection (what stays reachable: a leak grows it, GC slack does not). */
interface Memory { rss: number; heap: number }
v8.setFlagsFromString('--expose-gc'); // not as a node flag: the worker pool refuses it in execArgv
const gc = runInNewContext('gc') as () => void;
const memory = (): Memory => {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
};

/**
 * Tokens whose text alone is empty or an incomplete character (special tokens, byte pieces). Random weights
 * tend to repeat one or two tokens; when they are such tokens no text streams for tens of steps (the
 * 32-layer synthetic model repeats byte piece 115 of the embedded tokenizer: 135 of 200 tokens without
 * text, 83 in a row), and the client's gaps between text chunks measure the model's babble, not the server.
 */
function textlessTokens(tokenizer: ModelTokenizer, vocab: number): number[] {
  const ids: number[] = [];
  for (let id = 0; id < vocab; id++) {
    const text = tokenizer.decode([id], { skipSpecialTokens: true, cleanUpSpaces: false });
    if (text === '' || text.includes('\uFFFD')) ids.push(id);
  }
  return ids;
}

/** An lm_head bias of −10⁴ on `ids` (never the argmax), 0 elsewhere. */
function maskBias(vocab: number, ids: readonly number[]): Float32Array {
  const bias = new Float32Array(vocab);
  for (const id of ids) bias[id] = -1e4;
  return bias;
}

/** The model loaded and the server listening on a free loopback port. */
async function startServer() {
  let served: ServedModel;
  let closeEngine = () => {};
  let what: string;
  if (syntheticLayers !== null) {
    const { config, tokenizer, source } = readModel(values.model!);
    if (tokenizer === null) throw new Error(`${values.model} has no tokenizer: the synthetic model borrows it`);
    const random = syntheticModel(syntheticLayers, { ...LLAMA2_7B_SHAPE, vocab: config.vocabSize }, 'w8a8');
    const masked = textlessTokens(tokenizer, config.vocabSize);
    const m = { ...random, weights: { ...random.weights, lmHead: { ...random.weights.lmHead, bias: maskBias(config.vocabSize, masked) } } };
    const { createCudaEngine } = await import('../src/backends/cuda/decode-engine.js');
    const { CudaContext } = await import('../src/backends/cuda/context.js');
    const ctx = new CudaContext(0);
    const engine = createCudaEngine(m.config, m.weights, { ctx, maxSequences: maxBatch });
    served = { model: engine, tokenizer, source };
    closeEngine = () => {
      engine.dispose();
      ctx.release();
    };
    what = `${syntheticLayers} RANDOM W4A8 IS layers of the LLaMA-2-7B shape, W8A8 lm_head, vocabulary ${config.vocabSize} (${values.model}'s tokenizer; ` +
      `its ${masked.length} tokens without text of their own masked by a −10⁴ bias, so every token streams text); ${engine.describe()}`;
  } else if (values.backend === 'cpu' && !values.float) {
    const { loaded } = quantizeModel(values.model!, DEFAULT_RTN_RECIPE);
    served = { model: modelEngine(loaded.model), tokenizer: loaded.tokenizer, source: loaded.source };
    what = `${values.model} ${describeSpec(DEFAULT_SPEC)}, W8A8 lm_head, 8-bit embedding (RTN: intscale quantize's defaults)`;
  } else {
    const opened = await openEngine(values.backend === 'cuda' ? 'cuda' : 'cpu', values.model!, {}, { maxSequences: maxBatch });
    served = { model: opened.engine, tokenizer: opened.tokenizer, source: opened.source };
    closeEngine = opened.close;
    what = `${values.model} as stored`;
  }
  const server = createServer(served, { modelId: 'bench', maxQueue: 1024, maxBatch });
  const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const close = async () => {
    await server.app.close();
    closeEngine();
  };
  return { server, address, what, threads: cpuPool().threads, close };
}

/** Messages between the bench and its server process (--server-process). */
type ToServer = 'memory' | 'most-running' | 'close';
type FromServer = { address: string; what: string; threads: number } | { memory: Memory } | { mostRunning: number } | { closed: true };

/**
 * Where the load goes: the server's address, its memory, and the most requests it ran at once
 * since the last call (in this process read at every streamed chunk, in a server process sampled
 * every 2 ms).
 */
interface Target {
  readonly base: string;
  readonly what: string;
  readonly threads: number;
  readonly where: string;
  /** called at every streamed chunk. */
  chunk(): void;
  memory(): Promise<Memory>;
  takeMostRunning(): Promise<number>;
  close(): Promise<void>;
}

if (values['serve-child']) {
  const started = await startServer();
  let most = 0;
  setInterval(() => (most = Math.max(most, started.server.scheduler.running)), 2).unref();
  const send = (m: FromServer) => process.send!(m);
  process.on('message', (m: ToServer) => {
    if (m === 'memory') send({ memory: memory() });
    else if (m === 'most-running') {
      send({ mostRunning: most });
      most = 0;
    } else void started.close().then(() => {
      send({ closed: true });
      process.exit(0);
    });
  });
  send({ address: started.address, what: started.what, threads: started.threads });
} else {
  await runBench(values['server-process'] ? await serverProcess() : await inProcess());
}

async function inProcess(): Promise<Target> {
  const { server, address, what, threads, close } = await startServer();
  let most = 0;
  return {
    base: `${address}/v1`, what, threads, where: 'the server in this process (with the clients)',
    chunk: () => (most = Math.max(most, server.scheduler.running)),
    memory: async () => memory(),
    takeMostRunning: async () => {
      const m = most;
      most = 0;
      return m;
    },
    close,
  };
}

async function serverProcess(): Promise<Target> {
  const child = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--serve-child'], { stdio: 'inherit' });
  const next = () => new Promise<FromServer>((resolve, reject) => {
    const exited = (code: number | null) => reject(new Error(`the server process exited (${code})`));
    child.once('exit', exited);
    child.once('message', (m: FromServer) => {
      child.off('exit', exited);
      resolve(m);
    });
  });
  const ask = async (m: ToServer) => {
    const reply = next();
    child.send(m);
    return reply;
  };
  const hello = await next();
  if (!('address' in hello)) throw new Error('the server process did not start');
  return {
    base: `${hello.address}/v1`, what: hello.what, threads: hello.threads, where: `the server in its own process (pid ${child.pid})`,
    chunk: () => {},
    memory: async () => (await ask('memory') as { memory: Memory }).memory,
    takeMostRunning: async () => (await ask('most-running') as { mostRunning: number }).mostRunning,
    close: async () => {
      await ask('close');
    },
  };
}

async function runBench(target: Target): Promise<void> {
  const client = new OpenAI({ apiKey: 'none', baseURL: target.base, maxRetries: 0 });
  out.say(`# ${machineLine(target.threads)}; backend ${values.backend}; model ${target.what}; ${target.where}`);
  out.say(`# greedy streamed completions of ${maxTokens} tokens (no stop), server --max-batch ${maxBatch}; each prompt alone once, ${warmup} warm-up requests, then per level ${requests} requests or ${seconds} s`);

  const prompts = ['The game began', 'In 2010 , the', 'Valkyria Chronicles III is', 'The music was composed by', 'After the war', 'It was released in', 'The first', 'During the'];
  /** each prompt's answer alone. */
  const solo = new Map<string, string>();

  /** What a level measured: latencies in histograms and counts, nothing kept per request. */
  interface LevelStats { requests: number; tokens: number; mismatches: number; first: LatencyHistogram; gaps: LatencyHistogram }
  const newStats = (): LevelStats => ({ requests: 0, tokens: 0, mismatches: 0, first: new LatencyHistogram(), gaps: new LatencyHistogram() });

  /** One streamed request, its timings and answer folded into stats. */
  async function one(prompt: string, stats: LevelStats): Promise<void> {
    const t0 = performance.now();
    const stream = await client.completions.create({ model: 'bench', prompt, max_tokens: maxTokens, temperature: 0, stream: true });
    let last = 0;
    let text = '';
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.text ?? '';
      if (chunk.usage) stats.tokens += chunk.usage.completion_tokens;
      target.chunk();
      if (piece === '') continue;
      const now = performance.now();
      if (last === 0) stats.first.add(now - t0);
      else stats.gaps.add(now - last);
      last = now;
      text += piece;
    }
    stats.requests++;
    const expected = solo.get(prompt);
    if (expected === undefined) solo.set(prompt, text);
    else if (expected !== text) stats.mismatches++;
  }

  /** c clients sending requests back to back until n are done or the time is up; memory sampled every memoryEvery seconds. */
  async function load(c: number, n: number, limitSeconds: number, trail: string[]): Promise<LevelStats & { elapsed: number }> {
    const stats = newStats();
    const started = performance.now();
    const deadline = started + limitSeconds * 1000;
    let issued = 0;
    let sampling = Promise.resolve();
    const sample = async () => {
      trail.push(`${describeMemory(await target.memory())} at ${((performance.now() - started) / 1000).toFixed(0)} s`);
    };
    const timer = memoryEvery > 0 ? setInterval(() => (sampling = sampling.then(sample)), memoryEvery * 1000) : undefined;
    await Promise.all(Array.from({ length: c }, async (_, client) => {
      while (issued < n && performance.now() < deadline) await one(prompts[(issued++ + client) % prompts.length]!, stats);
    }));
    clearInterval(timer);
    await sampling;
    return { ...stats, elapsed: (performance.now() - started) / 1000 };
  }

  for (const prompt of prompts) await one(prompt, newStats());
  const warm = await load(levels[0]!, warmup, Infinity, []);
  const memStart = await target.memory();
  await target.takeMostRunning();
  const rows = [];
  const trails: string[] = [];
  for (const c of levels) {
    const trail: string[] = [];
    const s = await load(c, requests, seconds, trail);
    trails.push(`${c} clients: ${[...trail, `${describeMemory(await target.memory())} at the end (${s.requests} requests)`].join(', ')}`);
    rows.push({
      clients: c, requests: s.requests, 'req/s': (s.requests / s.elapsed).toFixed(2), 'output tok/s': (s.tokens / s.elapsed).toFixed(1),
      'first token p50 ms': s.first.percentile(0.5).toFixed(0), 'first token p99 ms': s.first.percentile(0.99).toFixed(0),
      'token gap p50 ms': s.gaps.count ? s.gaps.percentile(0.5).toFixed(1) : '-', 'token gap p99 ms': s.gaps.count ? s.gaps.percentile(0.99).toFixed(1) : '-',
      'most running': await target.takeMostRunning(), 'answers unlike solo': s.mismatches,
    });
  }
  out.table(rows);
  const memEnd = await target.memory();
  out.say(`server memory (RSS; JS heap after a full collection): ${describeMemory(memStart)} after the warm-up (${warm.requests} requests, ${warm.mismatches} unlike solo), ${describeMemory(memEnd)} at the end`);
  for (const t of trails) out.say(`  ${t}`);
  await target.close();
  process.exit(0);
}

function describeMemory(m: Memory): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  return `${mib(m.rss)} / ${mib(m.heap)} MiB`;
}
