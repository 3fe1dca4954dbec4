/**
 * What generation needs from a model: sequences to feed tokens into and read the last position's
 * logits from. modelEngine runs any Model through the forward pass written once (forward.ts) on its
 * backend, the reference; a backend may offer a faster engine of its own with the same interface
 * (the CUDA decode engine, backends/cuda/decode-engine.ts).
 */
import type { ModelConfig } from './config.js';
import { forwardLastLogits, type Model } from './forward.js';
import { createKvCache } from './kv-cache.js';

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
}

/** The reference engine: the model's forward pass on its backend, one KV cache per sequence. */
export function modelEngine<T>(model: Model<T>): SequenceEngine {
  return {
    config: model.config,
    open(capacity) {
      const cache = createKvCache(model.config, capacity, model.backend);
      return {
        get length() {
          return cache.length;
        },
        capacity,
        feed: (tokens) => {
          if (cache.length + tokens.length > capacity) throw new RangeError(`the sequence holds ${capacity} positions; feeding ${tokens.length} more at ${cache.length} exceeds it`);
          return forwardLastLogits(model, tokens, cache);
        },
        release: () => cache.release(),
      };
    },
  };
}

/** A model or an engine as an engine. */
export function asEngine<T>(runner: Model<T> | SequenceEngine): SequenceEngine {
  return 'open' in runner ? runner : modelEngine(runner);
}
