/**
 * The OpenAI-compatible server, driven by the official `openai` npm client (and raw HTTP where a
 * client would hide the wire): greedy output equal to the library's generate(), streaming equal to
 * the whole answer, stop strings, usage, chat through the model's template, and every error with
 * its status and OpenAI error JSON (bad field, unknown model, long prompt, full queue, API key);
 * 8 concurrent clients decoded in one batch get their solo answers.
 * INTSCALE_SERVE_BACKEND=cuda (the GPU machine) serves the embedded model from the CUDA decode engine
 * instead of the CPU model, and the answers compared are that engine's own solo generations; it
 * fails, not skips, when CUDA is missing, since it was asked for.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { loadModel } from '../../src/backends/load.js';
import { generate } from '../../src/model/generate.js';
import { asEngine, type Sequence, type SequenceEngine } from '../../src/model/engine.js';
import type { LoadedModel } from '../../src/model/load.js';
import { createServer, type IntscaleServer, type ServedModel } from '../../src/serve/server.js';
import { openEngine } from '../../src/cli/backend-option.js';
import { fixturePath, repoPath } from '../helpers/paths.js';

const MODEL_ID = 'tiny';
const KEY = 'sk-test-key';
const BACKEND = process.env.INTSCALE_SERVE_BACKEND === 'cuda' ? 'cuda' : 'cpu';
let loaded: LoadedModel;
/** what the servers run: the CPU model, or the CUDA decode engine of the same directory. */
let served: ServedModel;
let closeServed = (): void => {};
let server: IntscaleServer;
let base: string;
const logged: string[] = [];

before(async () => {
  loaded = loadModel(repoPath('models/tiny-wikitext'));
  served = loaded;
  if (BACKEND === 'cuda') {
    const opened = await openEngine('cuda', repoPath('models/tiny-wikitext'), {}, { maxSequences: 16 });
    served = { model: opened.engine, tokenizer: opened.tokenizer, source: opened.source };
    closeServed = opened.close;
  }
  server = createServer(served, { modelId: MODEL_ID, maxQueue: 1, maxBatch: 2, apiKey: KEY, log: (l) => logged.push(l) });
  base = `${await server.app.listen({ host: '127.0.0.1', port: 0 })}/v1`;
});
after(async () => {
  await server.app.close();
  closeServed();
});

const client = () => new OpenAI({ apiKey: KEY, baseURL: base, maxRetries: 0 });

/** the greedy continuation the library gives for `prompt` alone, on what the server runs. */
function greedyText(prompt: string, maxTokens: number): string {
  const tokenizer = loaded.tokenizer!;
  const eos = [...loaded.model.config.eosTokenIds, ...(tokenizer.eosTokenId === null ? [] : [tokenizer.eosTokenId])];
  const r = generate(served.model, tokenizer.encode(prompt), { maxNewTokens: maxTokens, temperature: 0, topP: 1, seed: 0, stopTokens: eos });
  return tokenizer.decode(r.tokens.filter((t) => !eos.includes(t)), { skipSpecialTokens: true, cleanUpSpaces: false });
}

test('GET /v1/models and /health', async () => {
  const models = await client().models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL_ID]);
  const health = await (await fetch(base.replace('/v1', '/health'))).json() as { status: string };
  assert.equal(health.status, 'ok');
});

test('a greedy completion is the library\'s greedy generation, with usage and finish_reason length', async () => {
  const prompt = 'The history of the game';
  const r = await client().completions.create({ model: MODEL_ID, prompt, max_tokens: 12, temperature: 0 });
  assert.equal(r.choices[0]!.text, greedyText(prompt, 12));
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.usage!.prompt_tokens, loaded.tokenizer!.encode(prompt).length);
  assert.equal(r.usage!.completion_tokens, 12);
  assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + 12);
  assert.ok(logged.some((l) => /tokens in, 12 out/.test(l)), 'one log line per request');
});

test('streamed, the chunks add up to the same text and end with a finish reason', async () => {
  const prompt = 'In 2010 the team';
  const stream = await client().completions.create({ model: MODEL_ID, prompt, max_tokens: 10, temperature: 0, stream: true });
  let text = '';
  let finish: string | null = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(chunks > 2, `${chunks} chunks`);
  assert.equal(text, greedyText(prompt, 10));
  assert.equal(finish, 'length');
});

test('a stop string cuts the text before it and finishes with stop', async () => {
  const prompt = 'The history of the game';
  const full = greedyText(prompt, 16);
  const stopAt = full.indexOf(' ', 3);
  assert.ok(stopAt > 0, `the greedy text has a space after its start: ${JSON.stringify(full)}`);
  const stop = full.slice(stopAt, stopAt + 2);
  const r = await client().completions.create({ model: MODEL_ID, prompt, max_tokens: 16, temperature: 0, stop: [stop] });
  assert.equal(r.choices[0]!.text, full.slice(0, full.indexOf(stop)));
  assert.equal(r.choices[0]!.finish_reason, 'stop');
});

test('seeded sampling repeats for the same seed', async () => {
  const ask = (seed: number) => client().completions.create({ model: MODEL_ID, prompt: 'The', max_tokens: 8, temperature: 1, top_p: 0.9, seed });
  const [a, b] = [await ask(7), await ask(7)];
  assert.equal(a.choices[0]!.text, b.choices[0]!.text);
});

test('errors: a bad field is 400 naming it, an unknown model 404, a prompt past the context 400, no key 401', async () => {
  await assert.rejects(client().completions.create({ model: MODEL_ID, prompt: 'x', temperature: 5 }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && /temperature/.test(e.message) && (e.error as { param?: string }).param === 'temperature');
  await assert.rejects(client().completions.create({ model: 'gpt-4', prompt: 'x' }),
    (e: unknown) => e instanceof OpenAI.NotFoundError && /gpt-4/.test(e.message));
  const long = 'word '.repeat(loaded.model.config.maxPositionEmbeddings + 10);
  await assert.rejects(client().completions.create({ model: MODEL_ID, prompt: long }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && (e.error as { code?: string }).code === 'context_length_exceeded');
  await assert.rejects(new OpenAI({ apiKey: 'wrong', baseURL: base, maxRetries: 0 }).models.list(),
    (e: unknown) => e instanceof OpenAI.AuthenticationError && /incorrect API key/.test(e.message));
  const noKey = await fetch(`${base}/models`);
  assert.equal(noKey.status, 401);
  assert.match(((await noKey.json()) as { error: { message: string } }).error.message, /missing API key: send Authorization: Bearer <key>/);
  const malformed = await fetch(`${base}/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: '{"model": ' });
  assert.equal(malformed.status, 400);
  const malformedError = ((await malformed.json()) as { error: { message: string; type: string } }).error;
  assert.equal(malformedError.type, 'invalid_request_error');
  assert.match(malformedError.message, /JSON/i, 'the message says the body is not JSON');
  const chat = await fetch(`${base}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(chat.status, 400, 'a model without a chat template');
  assert.match(((await chat.json()) as { error: { message: string } }).error.message, /model "tiny" has no chat template; use \/v1\/completions/);
});

test('a full queue is refused with 429 and Retry-After; a client that leaves mid-stream frees its place', async () => {
  const controller = new AbortController();
  const streams = await Promise.all([0, 1].map(() => client().completions.create({ model: MODEL_ID, prompt: 'The', max_tokens: 400, temperature: 0, stream: true }, { signal: controller.signal })));
  for (const s of streams) await s[Symbol.asyncIterator]().next(); // both places of the batch run
  const waiting = client().completions.create({ model: MODEL_ID, prompt: 'A', max_tokens: 2, temperature: 0 }); // queue: 1 of 1
  while (server.scheduler.waiting < 1) await new Promise((resolve) => setTimeout(resolve, 5));
  const refused = await fetch(`${base}/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_ID, prompt: 'B', max_tokens: 2 }) });
  assert.equal(refused.status, 429);
  assert.ok(refused.headers.get('retry-after'));
  controller.abort();
  const r = await waiting; // runs once the cancelled streams have freed their places
  assert.equal(r.choices[0]!.text, greedyText('A', 2));
  await server.scheduler.idle();
  assert.ok(logged.some((l) => /cancelled by the client/.test(l)), 'the aborted stream stopped early');
});

test('chat completions apply the model\'s chat template (qwen2 fixture), streamed and not', async () => {
  const qwen = loadModel(fixturePath('qwen2'));
  const s = createServer(qwen, { modelId: 'qwen', maxQueue: 4 });
  const url = `${await s.app.listen({ host: '127.0.0.1', port: 0 })}/v1`;
  try {
    const c = new OpenAI({ apiKey: 'none', baseURL: url, maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'Say something.' }];
    const r = await c.chat.completions.create({ model: 'qwen', messages, max_tokens: 6, temperature: 0 });
    assert.equal(r.choices[0]!.message.role, 'assistant');
    const prompt = qwen.tokenizer!.encode(qwen.tokenizer!.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
    assert.equal(r.usage!.prompt_tokens, prompt.length);
    let streamed = '';
    for await (const chunk of await c.chat.completions.create({ model: 'qwen', messages, max_tokens: 6, temperature: 0, stream: true })) {
      streamed += chunk.choices[0]?.delta.content ?? '';
    }
    assert.equal(streamed, r.choices[0]!.message.content);
  } finally {
    await s.app.close();
  }
});

test('8 concurrent clients decoded together (continuous batching) each get the answer they get alone', async () => {
  const s = createServer(served, { modelId: MODEL_ID, maxQueue: 0, maxBatch: 8 });
  const url = `${await s.app.listen({ host: '127.0.0.1', port: 0 })}/v1`;
  try {
    const c = new OpenAI({ apiKey: 'none', baseURL: url, maxRetries: 0 });
    const prompts = ['The', 'A game', 'In 2010 ,', 'Valkyria', 'The music', 'It was', 'After the', 'During'];
    const lengths = [12, 3, 20, 7, 16, 1, 9, 14];
    let most = 0;
    const answers = await Promise.all(prompts.map(async (prompt, i) => {
      const stream = await c.completions.create({ model: MODEL_ID, prompt, max_tokens: lengths[i]!, temperature: 0, stream: true });
      let text = '';
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? '';
        most = Math.max(most, s.scheduler.running);
      }
      return text;
    }));
    assert.ok(most >= 4, `requests overlapped: at most ${most} ran at once`);
    prompts.forEach((prompt, i) => assert.equal(answers[i], greedyText(prompt, lengths[i]!), `client ${i} (${JSON.stringify(prompt)})`));
  } finally {
    await s.app.close();
  }
});

test('every request gives back what it took: after plain, streamed, stopped, cancelled and refused requests no sequence stays open', async () => {
  // the engine counts the sequences (KV caches) it opened and those released
  const engine = asEngine(served.model);
  let opened = 0;
  let open = 0;
  // the engine knows its own sequences (decodeBatch refuses others): hand it those behind the counting proxies
  const inner = new Map<Sequence, Sequence>();
  const counting: SequenceEngine = {
    config: engine.config,
    decodeBatch: (sequences, tokens) => engine.decodeBatch(sequences.map((s) => inner.get(s) ?? s), tokens),
    open(capacity) {
      const sequence = engine.open(capacity);
      opened++;
      open++;
      let released = false;
      const counted = new Proxy(sequence, {
        get: (target, key) => key === 'release'
          ? () => {
            if (!released) open--;
            released = true;
            target.release();
          }
          : Reflect.get(target, key, target),
      });
      inner.set(counted, sequence);
      return counted;
    },
  };
  const s = createServer({ model: counting, tokenizer: loaded.tokenizer, source: loaded.source }, { modelId: MODEL_ID, maxQueue: 4, maxBatch: 2 });
  const url = `${await s.app.listen({ host: '127.0.0.1', port: 0 })}/v1`;
  try {
    const c = new OpenAI({ apiKey: 'none', baseURL: url, maxRetries: 0 });
    const kinds = ['plain', 'stream', 'stop', 'cancel', 'unknown-model'] as const;
    let refused = 0;
    const outcomes = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const kind = kinds[i % kinds.length]!;
      const body = { model: kind === 'unknown-model' ? 'other' : MODEL_ID, prompt: ['The', 'A game', 'In 2010 ,'][i % 3]!, max_tokens: 8, temperature: 0 };
      try {
        if (kind === 'plain') return (await c.completions.create(body)).choices[0]!.finish_reason;
        const controller = new AbortController();
        const stream = await c.completions.create({ ...body, stream: true, ...(kind === 'stop' ? { stop: [' '] } : {}) }, { signal: controller.signal });
        let chunks = 0;
        for await (const _ of stream) if (kind === 'cancel' && ++chunks === 2) controller.abort();
        return kind;
      } catch (e) {
        if (e instanceof OpenAI.RateLimitError) refused++;
        return (e as Error).name;
      }
    }));
    assert.equal(outcomes.length, 20);
    await s.scheduler.idle();
    // a cancelled or stopped run leaves the batch at its next turn, which may come after its request answered
    for (let turn = 0; turn < 10_000 && open > 0; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(opened >= 12 - refused, `${opened} sequences opened (${refused} requests refused)`);
    assert.equal(open, 0, `${open} of ${opened} sequences still open`);
    assert.equal(s.scheduler.running + s.scheduler.waiting, 0);
    // and the server still answers
    assert.equal((await c.completions.create({ model: MODEL_ID, prompt: 'The', max_tokens: 3, temperature: 0 })).choices[0]!.text, greedyText('The', 3));
    assert.equal(open, 0);
  } finally {
    await s.app.close();
  }
});
