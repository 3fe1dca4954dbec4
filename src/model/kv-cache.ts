/** A per-layer key/value cache sized for `capacity` positions, in the memory of the backend that fills it. */
import type { Backend, LayerKvCache } from './backend.js';
import type { ModelConfig } from './config.js';

export interface KvCache<T = Float32Array> {
  readonly layers: LayerKvCache<T>[];
  readonly capacity: number;
  /** positions already filled: the next token goes at this position. */
  length: number;
  /** Frees the layers' memory (device memory on a GPU backend; nothing to do on the CPU). */
  release(): void;
}

/** An empty cache for `capacity` positions of every layer, in `backend`'s memory (usually the model's: model.backend). */
export function createKvCache<T>(config: ModelConfig, capacity: number, backend: Backend<T>): KvCache<T> {
  const kvDim = config.numKvHeads * config.headDim;
  const layers: LayerKvCache<T>[] = [];
  try {
    for (let l = 0; l < config.numLayers; l++) layers.push(backend.layerCache(capacity, kvDim));
  } catch (e) {
    for (const layer of layers) backend.releaseLayerCache(layer);
    throw e;
  }
  return { layers, capacity, length: 0, release: () => layers.splice(0).forEach((layer) => backend.releaseLayerCache(layer)) };
}
