/**
 * `intscale serve`'s HTTP API: the OpenAI completions and chat completions endpoints (streamed as
 * server-sent events in OpenAI's chunk format, ending with `data: [DONE]`), /v1/models and
 * /health, on Fastify (every request body validated against request-schemas.ts). Errors come in
 * OpenAI's error JSON. A client that disconnects mid-stream aborts its sequence at the next step.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { LoadedModel } from '../model/load.js';
import type { Model } from '../model/forward.js';
import { asEngine, type SequenceEngine } from '../model/engine.js';
import { createBatchGenerator } from '../model/batch.js';
import { endOfSequenceTokens } from '../model/stream-text.js';
import type { ModelTokenizer } from '../io/tokenizer.js';
import { chatSchema, completionSchema, type ChatBody, type CompletionBody, type SamplingBody } from './request-schemas.js';
import { OpenAiError, badRequest } from './openai-errors.js';
import { createScheduler, QueueFullError, type Scheduler } from './scheduler.js';
import { runCompletion, type CompletionJob, type CompletionOutcome } from './completion.js';

export interface ServerOptions {
  /** the name clients pass as `model` (default: the model directory's base name). */
  readonly modelId: string;
  /** when set, every /v1 request needs `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string;
  /** requests that may wait while maxBatch run; more get 429. */
  readonly maxQueue: number;
  /** requests decoded together (continuous batching; default 8). */
  readonly maxBatch?: number;
  /** one line per finished request (default: none). */
  readonly log?: (line: string) => void;
}

/** OpenAI's default for /v1/completions when max_tokens is not given. */
const COMPLETION_DEFAULT_MAX_TOKENS = 16;

export interface IntscaleServer {
  readonly app: FastifyInstance;
  readonly scheduler: Scheduler;
}

/** What the server runs: a loaded model (its forward pass) or an engine (engine.ts), with its tokenizer and source. */
export type ServedModel<T = unknown> = Omit<LoadedModel<T>, 'model'> & { readonly model: Model<T> | SequenceEngine };

export function createServer<T>(loaded: ServedModel<T>, options: ServerOptions): IntscaleServer {
  const { model, tokenizer } = loaded;
  if (tokenizer === null) throw new Error(`${loaded.source.dir}: no tokenizer.json, the server cannot read prompts`);
  const scheduler = createScheduler(options.maxQueue, options.maxBatch ?? 8);
  const batch = createBatchGenerator(asEngine(model));
  const tokens = batch.stream.bind(batch);
  const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
  const created = Math.floor(Date.now() / 1000);
  const context = model.config.maxPositionEmbeddings;
  const eos = endOfSequenceTokens(model.config, tokenizer, loaded.source.generation);

  app.setErrorHandler((error: FastifyError | OpenAiError, _request, reply) => {
    if (error instanceof OpenAiError) return sendError(reply, error);
    if (error.validation !== undefined) {
      const v = error.validation[0];
      const param = (v?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || String((v?.params as { missingProperty?: string } | undefined)?.missingProperty ?? '') || null;
      return sendError(reply, badRequest(`invalid request: ${param ?? 'body'} ${v?.message ?? error.message}`, param));
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, new OpenAiError(error.statusCode, 'invalid_request_error', error.message));
    }
    return sendError(reply, new OpenAiError(500, 'server_error', `internal error: ${error.message}`));
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new OpenAiError(404, 'not_found_error', `no route ${request.method} ${request.url}`)));

  app.addHook('onRequest', async (request) => {
    if (options.apiKey === undefined || !request.url.startsWith('/v1/')) return;
    const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    if (!sameSecret(given, options.apiKey)) {
      throw new OpenAiError(401, 'authentication_error', given === '' ? 'missing API key: send Authorization: Bearer <key>' : 'incorrect API key', null, 'invalid_api_key');
    }
  });

  app.get('/health', async () => ({ status: 'ok', model: options.modelId, running: scheduler.running, waiting: scheduler.waiting }));
  app.get('/v1/models', async () => ({ object: 'list', data: [{ id: options.modelId, object: 'model', created, owned_by: 'intscale' }] }));

  /** Checks the request and turns it into a job (the prompt tokenized, the limits applied). */
  const jobOf = (body: SamplingBody, prompt: readonly number[], defaultMax: number, signal: AbortSignal): CompletionJob => {
    if (body.model !== options.modelId) throw new OpenAiError(404, 'not_found_error', `model "${body.model}" not found; this server has "${options.modelId}"`, 'model', 'model_not_found');
    if (prompt.length === 0) throw badRequest('the prompt is empty', 'prompt');
    if (prompt.length >= context) {
      throw badRequest(`the prompt has ${prompt.length} tokens; this model's context is ${context}, leaving no room to generate`, 'prompt', 'context_length_exceeded');
    }
    const stop = body.stop === undefined || body.stop === null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop];
    for (const s of stop) if (typeof s === 'number' && s >= model.config.vocabSize) throw badRequest(`stop token ${s} is not below the vocabulary size ${model.config.vocabSize}`, 'stop');
    return {
      prompt,
      maxTokens: Math.min(body.max_tokens ?? defaultMax, context - prompt.length),
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      seed: body.seed ?? Math.floor(Math.random() * 2 ** 31),
      stopStrings: stop.filter((s): s is string => typeof s === 'string'),
      stopTokens: [...eos, ...stop.filter((s): s is number => typeof s === 'number')],
      signal,
    };
  };

  const serve = async (reply: FastifyReply, kind: 'text' | 'chat', body: SamplingBody, prompt: readonly number[], defaultMax: number) => {
    const abort = new AbortController();
    const job = jobOf(body, prompt, defaultMax, abort.signal);
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
    const chunk = (piece: string | null, finish: string | null) => kind === 'chat'
      ? { id, object: 'chat.completion.chunk', created: now(), model: options.modelId, choices: [{ index: 0, delta: piece === null ? {} : { role: 'assistant', content: piece }, finish_reason: finish }] }
      : { id, object: 'text_completion', created: now(), model: options.modelId, choices: [{ index: 0, text: piece ?? '', logprobs: null, finish_reason: finish }] };
    const usage = (o: CompletionOutcome) => ({ prompt_tokens: o.promptTokens, completion_tokens: o.completionTokens, total_tokens: o.promptTokens + o.completionTokens });
    const logLine = (o: CompletionOutcome) => options.log?.(
      `${id} ${kind === 'chat' ? 'chat' : 'completion'}${body.stream === true ? ' stream' : ''}: ${o.promptTokens} tokens in, ${o.completionTokens} out, ` +
      `first token ${(o.firstTokenSeconds * 1000).toFixed(0)} ms, ${o.decodeSeconds > 0 ? ((o.completionTokens - 1) / o.decodeSeconds).toFixed(1) : '-'} tok/s` +
      `${o.aborted ? ', cancelled by the client' : `, finish ${o.finishReason}`}`);
    const queued = <R>(work: () => Promise<R>) => scheduler.run(work).catch((e: unknown) => {
      if (e instanceof QueueFullError) throw new OpenAiError(429, 'rate_limit_error', `the server is busy (${e.message}); retry shortly`, null, 'queue_full', 1);
      throw e;
    });

    if (body.stream !== true) {
      reply.raw.on('close', () => { if (!reply.raw.writableFinished) abort.abort(); });
      const o = await queued(() => runCompletion(tokens, tokenizer, job, () => {}));
      logLine(o);
      const choice = kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: o.text }, finish_reason: o.finishReason }
        : { index: 0, text: o.text, logprobs: null, finish_reason: o.finishReason };
      return { id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created: now(), model: options.modelId, choices: [choice], usage: usage(o) };
    }
    // streamed: refuse a full queue before the event stream starts, so it is an HTTP error
    if (scheduler.full) await queued(async () => {});
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    raw.on('close', () => { if (!raw.writableFinished) abort.abort(); });
    const send = (data: unknown) => { if (!raw.destroyed) raw.write(`data: ${JSON.stringify(data)}\n\n`); };
    try {
      const o = await queued(() => runCompletion(tokens, tokenizer, job, (piece) => send(chunk(piece, null))));
      logLine(o);
      send({ ...chunk(null, o.finishReason), usage: usage(o) });
      if (!raw.destroyed) raw.end('data: [DONE]\n\n');
    } catch (e) {
      const err = e instanceof OpenAiError ? e : new OpenAiError(500, 'server_error', `internal error: ${(e as Error).message}`);
      send(err.body());
      if (!raw.destroyed) raw.end('data: [DONE]\n\n');
    }
    return reply;
  };

  app.post<{ Body: CompletionBody }>('/v1/completions', { schema: { body: completionSchema } }, async (request, reply) =>
    serve(reply, 'text', request.body, tokenizer.encode(request.body.prompt), COMPLETION_DEFAULT_MAX_TOKENS));

  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: { body: chatSchema } }, async (request, reply) => {
    if (!tokenizer.hasChatTemplate) throw badRequest(`model "${options.modelId}" has no chat template; use /v1/completions`, 'messages', 'no_chat_template');
    const prompt = chatPrompt(tokenizer, request.body.messages);
    return serve(reply, 'chat', request.body, prompt, context);
  });

  return { app, scheduler };
}

function chatPrompt(tokenizer: ModelTokenizer, messages: ChatBody['messages']): number[] {
  let text: string;
  try {
    text = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  } catch (e) {
    throw badRequest(`the chat template failed on these messages: ${(e as Error).message}`, 'messages');
  }
  return tokenizer.encode(text, { addSpecialTokens: false });
}

function sendError(reply: FastifyReply, e: OpenAiError): FastifyReply {
  if (e.retryAfter !== undefined) reply.header('retry-after', String(e.retryAfter));
  return reply.status(e.status).send(e.body());
}

const now = () => Math.floor(Date.now() / 1000);

function sameSecret(given: string, expected: string): boolean {
  const [a, b] = [Buffer.from(given), Buffer.from(expected)];
  return a.length === b.length && timingSafeEqual(a, b);
}
