/**
 * GPTQ over one decoder layer in the calibration stream (calibration.ts): true-sequential as in
 * GPTQ's LLaMA script — q/k/v, then o, then gate/up, then down, each group's Hessian taken from
 * the layer with the groups before it already quantized (so later linears see the error of the
 * earlier ones), or, with trueSequential off, every Hessian from the float layer in one pass.
 */
import type { LinearInput } from '../model/forward.js';
import { LINEAR_NAMES, type LinearSlot } from '../model/layout.js';
import type { LayerWeights } from '../model/weights.js';
import type { LayerMethod } from './calibration.js';
import type { QuantSpec } from '../quant/types.js';
import { DEFAULT_GPTQ, gptqFactor, gptqQuantizeLinear, type GptqSettings } from '../quant/methods/gptq.js';
import { HessianAccumulator } from '../quant/methods/hessian.js';
import { LINEAR_INPUTS, LINEARS_OF, inputWidth } from './layer-inputs.js';
import { linearReport, type ReportSink } from '../quant/methods/report.js';
import { lazyUpdateMatmul } from './gptq-products.js';
import { poolTriangularKernels } from '../backends/cpu/triangular.js';

export interface GptqLayerSettings extends GptqSettings {
  /** re-observe the layer after each group of linears is quantized (GPTQ's --true-sequential). */
  readonly trueSequential: boolean;
}

export const DEFAULT_GPTQ_LAYER: GptqLayerSettings = { ...DEFAULT_GPTQ, trueSequential: true };

export function gptqLayerMethod(specOf: (slot: LinearSlot) => QuantSpec, settings: GptqLayerSettings, report: ReportSink): LayerMethod {
  const lazyUpdate = lazyUpdateMatmul();
  const triangular = poolTriangularKernels();
  return (calib) => {
    const current: { -readonly [K in keyof LayerWeights]: LayerWeights[K] } = { ...calib.layer };
    const observeAll = (inputs: readonly LinearInput[]) => {
      const acc = new Map(inputs.map((i) => [i, new HessianAccumulator(inputWidth(calib.config, i))]));
      calib.observe(current, (input, x, m) => acc.get(input)?.add(x, m));
      return acc;
    };
    let hessians = settings.trueSequential ? null : observeAll(LINEAR_INPUTS);
    for (const input of LINEAR_INPUTS) {
      const acc = settings.trueSequential ? observeAll([input]) : hessians!;
      const h = acc.get(input)!.hessian(calib.prefix + input);
      // one factorization (the O(K³) part) for every linear reading this input
      const factor = gptqFactor(h, inputWidth(calib.config, input), settings, calib.prefix + LINEARS_OF[input].map((s) => LINEAR_NAMES[s]).join('/'), triangular);
      for (const slot of LINEARS_OF[input]) {
        const name = calib.prefix + LINEAR_NAMES[slot];
        const spec = specOf(slot);
        const { layer, alpha } = gptqQuantizeLinear(calib.layer[slot], factor, spec, settings, name, lazyUpdate);
        current[slot] = layer;
        report(linearReport(name, spec, layer, alpha));
      }
    }
    hessians = null;
    return current;
  };
}
