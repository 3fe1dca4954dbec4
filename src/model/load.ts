/**
 * loadModelOn(dir, backend): a Hugging Face model directory (or an intscale quantized checkpoint)
 * read into a runnable Model on the backend given, with its tokenizer when it has one. The model
 * layer never picks a backend: backends/load.ts's loadModel defaults to the CPU.
 */
import type { Backend } from './backend.js';
import { openModelDir, type ModelDir } from './model-dir.js';
import { loadTokenizer, type ModelTokenizer } from '../io/tokenizer.js';
import type { FloatLinear, LinearWeight } from '../quant/types.js';
import type { Model } from './forward.js';
import { checkLoadFits, kvCacheBytes } from './memory.js';
import { createModel } from './prepare.js';
import { readModelWeights, type ModelWeights } from './weights.js';
import type { LayerLinears } from './layer-linears.js';
import type { ModelConfig } from './config.js';

export interface LoadedModel<T = Float32Array> {
  readonly model: Model<T>;
  readonly tokenizer: ModelTokenizer | null;
  readonly source: ModelDir;
}

export interface ModelLoadOptions {
  /**
   * refuse up front (an InputError with the numbers) when the weights as held cannot fit in the
   * memory available (default true; not applied with transformLayer, which holds one float layer at a time).
   */
  readonly checkMemory?: boolean;
  /** positions the run will keep in its KV cache (a window, a prompt plus new tokens): counted in the memory check. */
  readonly cachePositions?: number;
  /** replace a layer's float linears as it is read (quantize), so one float layer is alive at a time. */
  readonly transformLayer?: (layer: number, linears: LayerLinears<FloatLinear>) => LayerLinears;
  /** replace the float lm_head as it is read (quantize it). */
  readonly transformLmHead?: (head: FloatLinear) => LinearWeight;
  /** replace the float embedding table once read (quantize it; not applied while the float lm_head is tied to it). */
  readonly transformEmbedding?: (table: FloatLinear) => LinearWeight;
}

/** A model read from its directory but not yet prepared on a backend (an engine prepares it its own way). */
export interface ReadModel {
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  readonly tokenizer: ModelTokenizer | null;
  readonly source: ModelDir;
}

/** Reads the weights, config and tokenizer of `dir` (with the memory check of ModelLoadOptions). */
export function readModel(dir: string, options: ModelLoadOptions = {}): ReadModel {
  const source = openModelDir(dir);
  try {
    const { config } = source;
    if (options.checkMemory !== false && options.transformLayer === undefined) {
      checkLoadFits(source.weights, dir, kvCacheBytes(config, options.cachePositions ?? 0));
    }
    const weights = readModelWeights(source.weights, config, options.transformLayer, options.transformLmHead, options.transformEmbedding);
    const tokenizer = source.tokenizerPath === null ? null : loadTokenizer(dir);
    return { config, weights, tokenizer, source };
  } finally {
    source.weights.close();
  }
}

export function loadModelOn<T>(dir: string, backend: Backend<T>, options: ModelLoadOptions = {}): LoadedModel<T> {
  const { config, weights, tokenizer, source } = readModel(dir, options);
  return { model: createModel(config, weights, backend), tokenizer, source };
}
