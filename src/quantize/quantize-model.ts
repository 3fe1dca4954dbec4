/**
 * Quantizes a model layer by layer as it is read (so only one float layer is alive at a time),
 * recording for every linear layer the spec used, the α chosen and the overflow proof.
 *
 *   rtn:       each layer's linears through the shared group quantizer as they are read;
 *   gptq, awq: the calibration stream (calibration.ts): each layer's inputs captured on the
 *              calibration windows, the layer quantized by the method (methods/), the quantized
 *              layer run forward to produce the next layer's inputs.
 */
import type { Backend } from '../model/backend.js';
import type { LinearSlot } from '../model/layout.js';
import { LINEAR_NAMES, LINEAR_SLOTS, layerPrefix } from '../model/layout.js';
import { loadModel, type LoadedModel } from '../backends/load.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { quantizeCalibrated, readCalibrationWindows } from './calibration.js';
import { awqLayerMethod } from './awq.js';
import { gptqLayerMethod } from './gptq-layer.js';
import { linearReport, type LinearReport } from '../quant/methods/report.js';
import { quantizeLinearReport } from '../quant/quantize-linear.js';
import { specFor, type QuantRecipe } from './recipe.js';
import type { FloatLinear, LinearWeight, QuantizedLinear } from '../quant/types.js';

export type { LinearReport } from '../quant/methods/report.js';

/** Returns the per-layer RTN transform for loadModel plus the reports it fills in. */
export function layerQuantizer(recipe: QuantRecipe, onLayer?: (layer: number) => void, onLinear?: (report: LinearReport) => void): {
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
      const report = linearReport(name, spec, q, alpha);
      reports.push(report);
      onLinear?.(report);
    }
    onLayer?.(layer);
    return out;
  };
  return { transform, reports };
}

export interface QuantizeModelOptions {
  readonly backend?: Backend;
  /** called after each decoder layer is quantized. */
  readonly onLayer?: (layer: number) => void;
  /** called after each linear layer is quantized (progress finer than per decoder layer: GPTQ/AWQ take long per layer). */
  readonly onLinear?: (report: LinearReport) => void;
}

export interface QuantizedModel {
  readonly loaded: LoadedModel;
  readonly reports: LinearReport[];
}

/** Loads the float model in `dir` quantized by `recipe` (any method). */
export function quantizeModel(dir: string, recipe: QuantRecipe, options: QuantizeModelOptions = {}): QuantizedModel {
  if (recipe.method === 'rtn') {
    const { transform, reports } = layerQuantizer(recipe, options.onLayer, options.onLinear);
    const loaded = loadModel(dir, { transformLayer: transform, ...(options.backend ? { backend: options.backend } : {}) });
    return { loaded, reports };
  }
  const windows = readCalibrationWindows(loadTokenizer(dir), recipe.calibration);
  const reports: LinearReport[] = [];
  const specOf = (slot: LinearSlot) => specFor(recipe, slot);
  const sink = (r: LinearReport) => {
    reports.push(r);
    options.onLinear?.(r);
  };
  const method = recipe.method === 'gptq' ? gptqLayerMethod(specOf, recipe.gptq, sink) : awqLayerMethod(specOf, recipe.awq, sink);
  return { loaded: quantizeCalibrated(dir, windows, method, options), reports };
}
