/** Test layers as dense ones (the fixtures these tests read have no mixture of experts; an error otherwise). */
import type { DenseLinears, LayerLinears } from '../../src/model/layer-linears.js';

export function denseLayers<L extends LayerLinears<unknown, unknown>>(layers: readonly L[]): (L & DenseLinears<unknown>)[] {
  if (layers.some((l) => l.moe !== undefined)) throw new Error('expected dense layers, got a mixture of experts');
  return layers as (L & DenseLinears<unknown>)[];
}
