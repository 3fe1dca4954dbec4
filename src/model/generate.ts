/**
 * Text generation: one batched prefill of the prompt, then token-by-token decode through the
 * KV cache, each new token handed to onToken as it is chosen (generate) or yielded by an async
 * stream that can be aborted (generateStream). Reports prefill and decode speed.
 */
import type { Model } from './forward.js';
import { asEngine, type Sequence, type SequenceEngine } from './engine.js';
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

/** Checks the prompt against the context and opens a sequence with the capacity the run needs. */
function openFor(engine: SequenceEngine, prompt: readonly number[], maxNewTokens: number): Sequence {
  if (prompt.length === 0) throw new RangeError('the prompt is empty: give at least one token');
  const capacity = Math.min(engine.config.maxPositionEmbeddings, prompt.length + maxNewTokens);
  if (prompt.length >= capacity && maxNewTokens > 0) {
    throw new RangeError(`the prompt has ${prompt.length} tokens; the model's context is ${engine.config.maxPositionEmbeddings}`);
  }
  return engine.open(capacity);
}

/**
 * Generates synchronously, calling onToken with each token as it is chosen. `runner`: a Model (its
 * forward pass on its backend) or a SequenceEngine (engine.ts).
 */
export function generate<T>(runner: Model<T> | SequenceEngine, prompt: readonly number[], options: GenerateOptions): GenerateResult {
  const sequence = openFor(asEngine(runner), prompt, options.maxNewTokens);
  try {
    const steps = generationSteps(prompt, options, sequence);
    for (let step = steps.next(); ; step = steps.next()) {
      if (step.done) return step.value;
      options.onToken?.(step.value);
    }
  } finally {
    sequence.release();
  }
}

/**
 * The same generation as an async stream of tokens: `for await (const token of stream)`; the
 * stream's return value (from `.next()` when done) is the GenerateResult. Between steps it yields
 * to the event loop, so a server keeps answering while a sequence decodes, and it checks `signal`.
 */
export async function* generateStream<T>(runner: Model<T> | SequenceEngine, prompt: readonly number[], options: StreamOptions): AsyncGenerator<number, GenerateResult> {
  const sequence = openFor(asEngine(runner), prompt, options.maxNewTokens);
  try {
    const steps = generationSteps(prompt, options, sequence, options.signal);
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const step = steps.next();
      if (step.done) return step.value;
      yield step.value;
    }
  } finally {
    sequence.release();
  }
}

/** One prefill, then one decode step per pull: yields each token, returns the result. */
function* generationSteps(prompt: readonly number[], options: Omit<GenerateOptions, 'onToken'>, sequence: Sequence,
  signal?: AbortSignal): Generator<number, GenerateResult> {
  const random = seededRandom(options.seed);
  const t0 = performance.now();
  const tokens: number[] = [];
  const result = (stoppedBy: GenerateResult['stoppedBy'], prefillSeconds: number, t1: number): GenerateResult => ({
    tokens, prefillTokens: prompt.length, prefillSeconds, decodeTokens: Math.max(0, tokens.length - 1),
    decodeSeconds: (performance.now() - t1) / 1000, stoppedBy,
  });
  if (signal?.aborted) return result('aborted', 0, t0);
  let logits = sequence.feed(prompt);
  const prefillSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  while (tokens.length < options.maxNewTokens) {
    const next = sampleToken(logits, options, random);
    tokens.push(next);
    yield next;
    if (options.stopTokens.includes(next)) return result('stop-token', prefillSeconds, t1);
    if (tokens.length === options.maxNewTokens) break;
    if (sequence.length >= sequence.capacity) return result('context-full', prefillSeconds, t1);
    if (signal?.aborted) return result('aborted', prefillSeconds, t1);
    logits = sequence.feed([next]);
  }
  return result('max-new-tokens', prefillSeconds, t1);
}
