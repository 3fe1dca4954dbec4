/** A per-layer key/value cache sized for `capacity` positions. */
import type { LayerKvCache } from '../backends/backend.js';
import { sharedFloat32 } from '../tensor/shared.js';
import type { ModelConfig } from './config.js';

export interface KvCache {
  readonly layers: LayerKvCache[];
  readonly capacity: number;
  /** positions already filled: the next token goes at this position. */
  length: number;
}

export function createKvCache(config: ModelConfig, capacity: number): KvCache {
  const kvDim = config.numKvHeads * config.headDim;
  const layers = Array.from({ length: config.numLayers }, () => ({
    keys: sharedFloat32(capacity * kvDim),
    values: sharedFloat32(capacity * kvDim),
    capacity,
  }));
  return { layers, capacity, length: 0 };
}
