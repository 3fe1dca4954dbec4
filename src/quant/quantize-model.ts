/**
 * Quantizes a model layer by layer as it is read (so only one float layer is alive at a time),
 * recording for every linear layer the spec used, the α chosen and the overflow proof.
 */
import type { LinearSlot } from '../model/layout.js';
import { LINEAR_NAMES, LINEAR_SLOTS, layerPrefix } from '../model/layout.js';
import { proveNoOverflow, type OverflowProof } from './overflow.js';
import { quantizeLinearReport } from './quantize-linear.js';
import { specFor, type QuantRecipe } from './recipe.js';
import type { FloatLinear, LinearWeight, QuantizedLinear, QuantSpec } from './types.js';

export interface LinearReport {
  /** Hugging Face module name, e.g. model.layers.0.mlp.down_proj */
  readonly name: string;
  readonly spec: QuantSpec;
  readonly alphaLog2: number | null;
  /** the safe policy chose a smaller α than asked, to rule out int32 overflow. */
  readonly alphaLowered: boolean;
  readonly overflow: OverflowProof | null;
}

/** Returns the per-layer transform for loadModel plus the reports it fills in. */
export function layerQuantizer(recipe: QuantRecipe, onLayer?: (layer: number) => void): {
  transform: (layer: number, linears: Record<LinearSlot, FloatLinear>) => Record<LinearSlot, LinearWeight>;
  reports: LinearReport[];
} {
  const reports: LinearReport[] = [];
  const transform = (layer: number, linears: Record<LinearSlot, FloatLinear>) => {
    const out = {} as Record<LinearSlot, QuantizedLinear>;
    for (const slot of LINEAR_SLOTS) {
      const name = layerPrefix(layer) + LINEAR_NAMES[slot];
      const spec = specFor(recipe, slot);
      const { layer: q, alpha } = quantizeLinearReport(linears[slot], spec, name);
      out[slot] = q;
      reports.push({
        name,
        spec,
        alphaLog2: alpha?.alphaLog2 ?? null,
        alphaLowered: alpha?.lowered ?? false,
        overflow: q.scale === 'int' && q.aBits === 8 ? proveNoOverflow(q) : null,
      });
    }
    onLayer?.(layer);
    return out;
  };
  return { transform, reports };
}
