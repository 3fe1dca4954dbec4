/**
 * A model's linears prepared once on its backend (Backend.prepareLinear): createModel makes the
 * runnable Model from weights, prepareLayer one decoder layer (calibration prepares a layer at a
 * time and releases it), releaseModel gives back what preparation made.
 */
import type { Backend, PreparedLinear } from './backend.js';
import type { ModelConfig } from './config.js';
import type { Model, PreparedLayer } from './forward.js';
import { LINEAR_SLOTS, type LinearSlot } from './layout.js';
import { ropeInverseFrequencies } from './rope.js';
import type { LayerWeights, ModelWeights } from './weights.js';
import type { LinearWeight } from '../quant/types.js';

/** Prepares the seven linears of a layer; on a failure the ones already prepared are released. */
export function prepareLayer<T>(backend: Backend<T>, layer: LayerWeights): PreparedLayer<T> {
  const prepared: Partial<Record<LinearSlot, PreparedLinear<T>>> = {};
  try {
    for (const slot of LINEAR_SLOTS) prepared[slot] = backend.prepareLinear(layer[slot]);
  } catch (e) {
    for (const p of Object.values(prepared)) p.release();
    throw e;
  }
  return { inputNorm: layer.inputNorm, postAttentionNorm: layer.postAttentionNorm, ...(prepared as Record<LinearSlot, PreparedLinear<T>>) };
}

export function releaseLayer<T>(layer: PreparedLayer<T>): void {
  for (const slot of LINEAR_SLOTS) layer[slot].release();
}

/** The runnable model: every linear prepared on backend (released again if one fails). */
export function createModel<T>(config: ModelConfig, weights: ModelWeights, backend: Backend<T>): Model<T> {
  const layers: PreparedLayer<T>[] = [];
  try {
    for (const layer of weights.layers) layers.push(prepareLayer(backend, layer));
    const lmHead = backend.prepareLinear(weights.lmHead);
    const invFreq = ropeInverseFrequencies(config.headDim, config.ropeTheta, config.ropeScaling);
    return { config, weights, backend, invFreq, layers, lmHead };
  } catch (e) {
    for (const l of layers) releaseLayer(l);
    throw e;
  }
}

/** Releases every prepared linear of the model (it must not run again). */
export function releaseModel<T>(model: Model<T>): void {
  for (const l of model.layers) releaseLayer(l);
  model.lmHead.release();
}

/** y = x · Wᵀ (+ bias) for one call: w prepared, run and released (search loops over candidate weights). */
export function linearOnce<T>(backend: Backend<T>, w: LinearWeight, x: T, m: number): T {
  const prepared = backend.prepareLinear(w);
  try {
    return prepared.run(x, m);
  } finally {
    prepared.release();
  }
}
