/**
 * What generation needs from a model: sequences to feed tokens into and read the last position's
 * logits from. modelEngine runs any Model through the forward pass written once (forward.ts) on its
 * backend, the reference; a backend may offer a faster engine of its own with the same interface
 * (the CUDA decode engine, backends/cuda/decode-engine.ts).
 */
import type { ModelConfig } from './config.js';
import { forwardDecodeBatch, forwardLastLogits, type Model } from './forward.js';
import { createKvCache, type KvCache } from './kv-cache.js';
import type { TokenPick } from './sampling.js';

/** One sequence's state (its KV cache): tokens go in at positions length, length + 1, … */
export interface Sequence {
  /** positions filled. */
  readonly length: number;
  /** positions it can hold. */
  readonly capacity: number;
  /** Feeds tokens (a prompt, or one token while decoding); returns the logits [vocab] of the last one (on the host). */
  feed(tokens: ArrayLike<number>): Float32Array;
  /** Frees the sequence's cache; it must not be fed again. */
  release(): void;
}

export interface SequenceEngine {
  readonly config: ModelConfig;
  /** A new, empty sequence with room for `capacity` positions. */
  open(capacity: number): Sequence;
  /**
   * One decode step of several of this engine's sequences: tokens[r] is fed to sequences[r]; returns
   * each one's logits [vocab]. Each sequence gets exactly what feed([token]) would give it alone.
   */
  decodeBatch(sequences: readonly Sequence[], tokens: readonly number[]): Float32Array[];
  /**
   * Optional (an engine that packs rows of different sequences into its passes: the CUDA engine): feeds
   * tokens[i] to sequences[i], prompts and single tokens alike, their rows sharing the passes; returns each
   * one's logits [vocab] after its last token, what feed(tokens[i]) gives it alone. Refuses a bad feed
   * before anything runs.
   */
  feedBatch?(sequences: readonly Sequence[], tokens: readonly ArrayLike<number>[]): Float32Array[];
  /**
   * Optional (an engine that picks on its device: the CUDA engine): feedBatch with each sequence's next token picked
   * where the logits are, picks[i] for sequences[i] (every one greedy where picks is omitted): pickToken's token from
   * the logits feedBatch would return (sampling.ts; greedy: argmax's), so only the tokens come back. Prompts and single
   * tokens alike; refuses a bad feed or pick before anything runs.
   */
  feedPicked?(sequences: readonly Sequence[], tokens: readonly ArrayLike<number>[], picks?: readonly TokenPick[]): Int32Array;
}

/** decodeBatch for an engine that steps its sequences one after the other. */
export function decodeOneByOne(sequences: readonly Sequence[], tokens: readonly number[]): Float32Array[] {
  if (sequences.length !== tokens.length) throw new RangeError(`decodeBatch: ${tokens.length} tokens for ${sequences.length} sequences`);
  return sequences.map((s, r) => s.feed([tokens[r]!]));
}

/**
 * The reference engine: the model's forward pass on its backend, one KV cache per sequence; a
 * decode step of several sequences runs their linears as one batch where the backend has
 * decodeAttention (the CPU), one after the other elsewhere.
 */
export function modelEngine<T>(model: Model<T>): SequenceEngine {
  /** the open sequences' caches. */
  const caches = new Map<Sequence, KvCache<T>>();
  return {
    config: model.config,
    decodeBatch(sequences, tokens) {
      if (!model.backend.decodeAttention || sequences.length === 1) return decodeOneByOne(sequences, tokens);
      const own = sequences.map((s) => {
        const cache = caches.get(s);
        if (!cache) throw new Error('decodeBatch: a sequence this engine did not open, or one already released');
        return cache;
      });
      return forwardDecodeBatch(model, tokens, own);
    },
    open(capacity) {
      const cache = createKvCache(model.config, capacity, model.backend);
      const sequence: Sequence = {
        get length() {
          return cache.length;
        },
        capacity,
        feed: (tokens) => {
          if (cache.length + tokens.length > capacity) throw new RangeError(`the sequence holds ${capacity} positions; feeding ${tokens.length} more at ${cache.length} exceeds it`);
          return forwardLastLogits(model, tokens, cache);
        },
        release: () => {
          if (caches.delete(sequence)) cache.release();
        },
      };
      caches.set(sequence, cache);
      return sequence;
    },
  };
}

/** A model or an engine as an engine. */
export function asEngine<T>(runner: Model<T> | SequenceEngine): SequenceEngine {
  return 'open' in runner ? runner : modelEngine(runner);
}
