/**
 * Perplexity of a token stream, the stream cut into consecutive, non-overlapping windows of seqLen
 * tokens; ppl = exp(total negative log-likelihood / tokens predicted). Deterministic. Two protocols:
 *  - 'gptq' (GPTQ's and AWQ's): in each window every position but the last predicts the next token.
 *  - 'llama.cpp' (llama-perplexity's): each window's first token replaced by BOS, and only the
 *    positions j ∈ [seqLen/2, seqLen − 1) scored (each predicting token j + 1): every scored token
 *    sees at least half a window of context.
 */
import { forwardHidden, logitsOf, type Model } from '../model/forward.js';
import { createKvCache } from '../model/kv-cache.js';

export type PerplexityProtocol = 'gptq' | 'llama.cpp';
export const PERPLEXITY_PROTOCOLS: readonly PerplexityProtocol[] = ['gptq', 'llama.cpp'];

export interface PerplexityOptions {
  readonly seqLen: number;
  /** default 'gptq'; 'llama.cpp' needs `bos`. */
  readonly protocol?: PerplexityProtocol;
  /** the BOS token id (the llama.cpp protocol puts it first in every window). */
  readonly bos?: number | null;
  /** evaluate at most this many windows (quick runs); undefined = all. */
  readonly maxWindows?: number;
  /** called after each window with (windows done, windows total). */
  readonly onWindow?: (done: number, total: number) => void;
}

export interface PerplexityResult {
  readonly perplexity: number;
  /** mean negative log-likelihood per predicted token (nats). */
  readonly meanNll: number;
  readonly windows: number;
  readonly seqLen: number;
  readonly tokensPredicted: number;
  readonly seconds: number;
}

/** rows of logits scored at a time, bounding memory to rows × vocab floats. */
const LOGIT_ROWS = 64;

export function perplexity<T>(model: Model<T>, tokens: ArrayLike<number>, options: PerplexityOptions): PerplexityResult {
  const { seqLen } = options;
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new RangeError(`seq-len must be an integer ≥ 2, got ${seqLen}`);
  const context = model.config.maxPositionEmbeddings;
  if (seqLen > context) {
    throw new RangeError(`seq-len ${seqLen} is longer than the model's context of ${context} positions (max_position_embeddings); use a seq-len ≤ ${context}`);
  }
  const available = Math.floor(tokens.length / seqLen);
  if (available === 0) {
    const count = `${tokens.length} token${tokens.length === 1 ? '' : 's'}`;
    throw new RangeError(`the text has ${count}, fewer than one window of ${seqLen}: use a longer text or a smaller seq-len`);
  }
  const windows = Math.min(available, options.maxWindows ?? available);
  const llama = options.protocol === 'llama.cpp';
  if (llama && (options.bos === undefined || options.bos === null)) throw new RangeError('the llama.cpp perplexity protocol puts BOS first in each window: the model\'s tokenizer names no BOS token');
  /** the first position scored in a window. */
  const scoreFrom = llama ? seqLen >> 1 : 0;
  const vocab = model.config.vocabSize;
  const cache = createKvCache(model.config, seqLen, model.backend);
  const started = performance.now();
  let nll = 0;
  try {
    for (let w = 0; w < windows; w++) {
      const window = Array.prototype.slice.call(tokens, w * seqLen, (w + 1) * seqLen) as number[];
      if (llama) window[0] = options.bos!;
      cache.length = 0;
      const hidden = forwardHidden(model, window, cache);
      for (let first = scoreFrom; first < seqLen - 1; first += LOGIT_ROWS) {
        const rows = Math.min(LOGIT_ROWS, seqLen - 1 - first);
        const logits = logitsOf(model, hidden, first, rows);
        for (let r = 0; r < rows; r++) {
          nll += negativeLogLikelihood(logits, r * vocab, vocab, window[first + r + 1]);
        }
      }
      options.onWindow?.(w + 1, windows);
    }
  } finally {
    cache.release();
  }
  const tokensPredicted = windows * (seqLen - 1 - scoreFrom);
  const meanNll = nll / tokensPredicted;
  return {
    perplexity: Math.exp(meanNll),
    meanNll,
    windows,
    seqLen,
    tokensPredicted,
    seconds: (performance.now() - started) / 1000,
  };
}

/** −log softmax(logits[offset … offset+vocab))[target], computed stably in float64. */
export function negativeLogLikelihood(logits: Float32Array, offset: number, vocab: number, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i] - max);
  return Math.log(sum) + max - logits[offset + target];
}
