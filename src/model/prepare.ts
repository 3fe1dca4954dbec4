/**
 * A model's linears prepared once on its backend (Backend.prepareLinear): createModel makes the
 * runnable Model from weights, prepareLayer one decoder layer (calibration prepares a layer at a
 * time and releases it), releaseModel gives back what preparation made.
 */
import { InputError } from '../errors.js';
import type { Backend, PreparedLinear } from './backend.js';
import type { ModelConfig } from './config.js';
import type { Model, PreparedLayer } from './forward.js';
import { linearEntries, mapLinears } from './layer-linears.js';
import { ropeInverseFrequencies } from './rope.js';
import type { LayerWeights, ModelWeights } from './weights.js';
import type { LinearWeight } from '../quant/types.js';

/** Prepares every linear of a layer (the router too); on a failure the ones already prepared are released. */
export function prepareLayer<T>(backend: Backend<T>, layer: LayerWeights): PreparedLayer<T> {
  const prepared: PreparedLinear<T>[] = [];
  const prepare = (w: LinearWeight) => {
    const p = backend.prepareLinear(w);
    prepared.push(p);
    return p;
  };
  try {
    return { inputNorm: layer.inputNorm, postAttentionNorm: layer.postAttentionNorm, ...mapLinears(layer, prepare, prepare) };
  } catch (e) {
    for (const p of prepared) p.release();
    throw e;
  }
}

export function releaseLayer<T>(layer: PreparedLayer<T>): void {
  for (const { weight } of linearEntries(layer)) weight.release();
  layer.moe?.router.release();
}

/** A model with experts on a backend that lacks the operations they need: an error naming both. */
function refuseUnsupportedMoe<T>(config: ModelConfig, backend: Backend<T>): void {
  if (config.moe !== undefined && (!backend.gatherRows || !backend.addScaledRows)) {
    throw new InputError(
      `the ${backend.name} backend does not run mixture-of-experts (${config.architecture}) layers yet ` +
        '(it has no gatherRows / addScaledRows); run the model with --backend cpu',
    );
  }
}

/** The runnable model: every linear prepared on backend (released again if one fails). */
export function createModel<T>(config: ModelConfig, weights: ModelWeights, backend: Backend<T>): Model<T> {
  refuseUnsupportedMoe(config, backend);
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
