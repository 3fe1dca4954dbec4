/**
 * Text generation: one batched prefill of the prompt, then token-by-token decode through the
 * KV cache, each new token handed to onToken as it is chosen. Reports prefill and decode speed.
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
  readonly stoppedBy: 'stop-token' | 'max-new-tokens' | 'context-full';
}

export function generate<T>(model: Model<T>, prompt: readonly number[], options: GenerateOptions): GenerateResult {
  if (prompt.length === 0) throw new RangeError('the prompt is empty: give at least one token');
  const capacity = Math.min(model.config.maxPositionEmbeddings, prompt.length + options.maxNewTokens);
  if (prompt.length >= capacity && options.maxNewTokens > 0) {
    throw new RangeError(`the prompt has ${prompt.length} tokens; the model's context is ${model.config.maxPositionEmbeddings}`);
  }
  const cache = createKvCache(model.config, capacity, model.backend);
  try {
    return generateInto(model, prompt, options, cache, capacity);
  } finally {
    cache.release();
  }
}

function generateInto<T>(model: Model<T>, prompt: readonly number[], options: GenerateOptions, cache: KvCache<T>, capacity: number): GenerateResult {
  const random = seededRandom(options.seed);
  const t0 = performance.now();
  let logits = forwardLastLogits(model, prompt, cache);
  const prefillSeconds = (performance.now() - t0) / 1000;
  const tokens: number[] = [];
  let stoppedBy: GenerateResult['stoppedBy'] = 'max-new-tokens';
  const t1 = performance.now();
  while (tokens.length < options.maxNewTokens) {
    const next = sampleToken(logits, options, random);
    tokens.push(next);
    options.onToken?.(next);
    if (options.stopTokens.includes(next)) { stoppedBy = 'stop-token'; break; }
    if (tokens.length === options.maxNewTokens) break;
    if (cache.length >= capacity) { stoppedBy = 'context-full'; break; }
    logits = forwardLastLogits(model, [next], cache);
  }
  const decodeSeconds = (performance.now() - t1) / 1000;
  return { tokens, prefillTokens: prompt.length, prefillSeconds, decodeTokens: Math.max(0, tokens.length - 1), decodeSeconds, stoppedBy };
}
