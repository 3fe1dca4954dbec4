/**
 * Text generation: one batched prefill of the prompt, then token-by-token decode through the
 * KV cache, each new token handed to onToken as it is chosen (generate) or yielded by an async
 * stream that can be aborted (generateStream). Reports prefill and decode speed.
 */
import { forwardLastLogits, type Model } from './forward.js';
import { createKvCache, type KvCache } from './kv-cache.js';
import { sampleToken, seededRandom, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  readonly seed: number;
  /** generation stops after any of these tokens (it is included in the output). */
  readonly stopTokens: readonly number[];
  readonly onToken?: (token: number) => void;
}

export interface GenerateResult {
  readonly tokens: number[];
  readonly prefillTokens: number;
  readonly prefillSeconds: number;
  readonly decodeTokens: number;
  readonly decodeSeconds: number;
  readonly stoppedBy: 'stop-token' | 'max-new-tokens' | 'context-full' | 'aborted';
}

export interface StreamOptions extends Omit<GenerateOptions, 'onToken'> {
  /** aborting it ends the stream before the next step (the result says stoppedBy 'aborted'). */
  readonly signal?: AbortSignal;
}

/** Checks the prompt against the context and returns the KV cache capacity the run needs. */
function capacityFor<T>(model: Model<T>, prompt: readonly number[], maxNewTokens: number): number {
  if (prompt.length === 0) throw new RangeError('the prompt is empty: give at least one token');
  const capacity = Math.min(model.config.maxPositionEmbeddings, prompt.length + maxNewTokens);
  if (prompt.length >= capacity && maxNewTokens > 0) {
    throw new RangeError(`the prompt has ${prompt.length} tokens; the model's context is ${model.config.maxPositionEmbeddings}`);
  }
  return capacity;
}

/** Generates synchronously, calling onToken with each token as it is chosen. */
export function generate<T>(model: Model<T>, prompt: readonly number[], options: GenerateOptions): GenerateResult {
  const capacity = capacityFor(model, prompt, options.maxNewTokens);
  const cache = createKvCache(model.config, capacity, model.backend);
  try {
    const steps = generationSteps(model, prompt, options, cache, capacity);
    for (let step = steps.next(); ; step = steps.next()) {
      if (step.done) return step.value;
      options.onToken?.(step.value);
    }
  } finally {
    cache.release();
  }
}

/**
 * The same generation as an async stream of tokens: `for await (const token of stream)`; the
 * stream's return value (from `.next()` when done) is the GenerateResult. Between steps it yields
 * to the event loop, so a server keeps answering while a sequence decodes, and it checks `signal`.
 */
export async function* generateStream<T>(model: Model<T>, prompt: readonly number[], options: StreamOptions): AsyncGenerator<number, GenerateResult> {
  const capacity = capacityFor(model, prompt, options.maxNewTokens);
  const cache = createKvCache(model.config, capacity, model.backend);
  try {
    const steps = generationSteps(model, prompt, options, cache, capacity, options.signal);
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const step = steps.next();
      if (step.done) return step.value;
      yield step.value;
    }
  } finally {
    cache.release();
  }
}

/** One prefill, then one decode step per pull: yields each token, returns the result. */
function* generationSteps<T>(model: Model<T>, prompt: readonly number[], options: Omit<GenerateOptions, 'onToken'>, cache: KvCache<T>,
  capacity: number, signal?: AbortSignal): Generator<number, GenerateResult> {
  const random = seededRandom(options.seed);
  const t0 = performance.now();
  const tokens: number[] = [];
  const result = (stoppedBy: GenerateResult['stoppedBy'], prefillSeconds: number, t1: number): GenerateResult => ({
    tokens, prefillTokens: prompt.length, prefillSeconds, decodeTokens: Math.max(0, tokens.length - 1),
    decodeSeconds: (performance.now() - t1) / 1000, stoppedBy,
  });
  if (signal?.aborted) return result('aborted', 0, t0);
  let logits = forwardLastLogits(model, prompt, cache);
  const prefillSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  while (tokens.length < options.maxNewTokens) {
    const next = sampleToken(logits, options, random);
    tokens.push(next);
    yield next;
    if (options.stopTokens.includes(next)) return result('stop-token', prefillSeconds, t1);
    if (tokens.length === options.maxNewTokens) break;
    if (cache.length >= capacity) return result('context-full', prefillSeconds, t1);
    if (signal?.aborted) return result('aborted', prefillSeconds, t1);
    logits = forwardLastLogits(model, [next], cache);
  }
  return result('max-new-tokens', prefillSeconds, t1);
}
