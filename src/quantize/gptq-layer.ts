/**
 * GPTQ over one decoder layer in the calibration stream (calibration.ts): true-sequential as in
 * GPTQ's LLaMA script — q/k/v, then o, then gate/up, then down, each group's Hessian taken from
 * the layer with the groups before it already quantized (so later linears see the error of the
 * earlier ones), or, with trueSequential off, every Hessian from the float layer in one pass.
 * A mixture of experts (mixtral): each expert's gate/up and down get their own Hessian from the rows
 * the router sends it (one pass observes every expert); an expert reached by fewer than
 * minExpertTokens tokens is quantized with RTN (expert-fallback.ts). The router stays float.
 */
import type { LinearInput, LinearObserver } from '../model/forward.js';
import { linearModule, type LinearSlot } from '../model/layout.js';
import { linearAt } from '../model/layer-linears.js';
import type { LayerWeights } from '../model/weights.js';
import type { LayerMethod } from './calibration.js';
import type { LinearWeight, QuantSpec } from '../quant/types.js';
import { DEFAULT_GPTQ, gptqQuantizeLinear, type GptqAccumulator, type GptqEngine, type GptqSettings } from '../quant/methods/gptq.js';
import { LINEAR_INPUTS, groupKey, groupsOf, inputWidth, withReplaced, type LinearGroup } from './layer-inputs.js';
import { linearReport, type ReportSink } from '../quant/methods/report.js';
import { cpuGptqEngine } from './gptq-products.js';
import { DEFAULT_MIN_EXPERT_TOKENS, expertFallback, quantizeFallback } from './expert-fallback.js';

export interface GptqLayerSettings extends GptqSettings {
  /** re-observe the layer after each group of linears is quantized (GPTQ's --true-sequential). */
  readonly trueSequential: boolean;
  /** an expert (mixtral) routed fewer calibration tokens than this is quantized with RTN instead. */
  readonly minExpertTokens: number;
}

export const DEFAULT_GPTQ_LAYER: GptqLayerSettings = { ...DEFAULT_GPTQ, trueSequential: true, minExpertTokens: DEFAULT_MIN_EXPERT_TOKENS };

/** `engine`: where the Hessians, factors and column loops run (the CPU's pool by default, or a GPU: backends/cuda/gptq-cuda.ts). */
export function gptqLayerMethod<T = Float32Array>(specOf: (slot: LinearSlot) => QuantSpec, settings: GptqLayerSettings, report: ReportSink,
  engine?: GptqEngine<T>): LayerMethod<T> {
  const gptq = engine ?? (cpuGptqEngine() as unknown as GptqEngine<T>);
  return (calib) => {
    const replaced = new Map<string, LinearWeight>();
    const current = (): LayerWeights => withReplaced<LinearWeight, LayerWeights>(calib.layer, replaced);
    // true-sequential on a dense layer walks it input by input (each linear runs once a sample); a
    // mixture of experts re-observes from the start, stopping at the input (its experts' gate/up must be
    // quantized before their down inputs are seen, and the block runs as one), as does a stream on a GPU
    const walk = settings.trueSequential && calib.layer.moe === undefined && calib.walks;
    /** every accumulator of this layer, released at its end whatever happens (a GPU's hold device memory) */
    const made: GptqAccumulator<T>[] = [];
    const observeGroups = (groups: readonly LinearGroup[], stopAfter?: LinearInput) => {
      const acc = new Map(groups.map((g) => [g.key, gptq.accumulator(inputWidth(calib.config, g.input))]));
      made.push(...acc.values());
      const observer: LinearObserver<T> = (input, x, m, expert) => acc.get(groupKey(input, expert))?.add(x, m);
      if (walk) calib.walk(current(), observer, stopAfter);
      else calib.observe(current(), observer, stopAfter);
      return acc;
    };
    const groupsOfInput = (input: LinearInput) => groupsOf(calib.config, input);
    try {
      const hessians = settings.trueSequential ? null : observeGroups(LINEAR_INPUTS.flatMap(groupsOfInput));
      for (const input of LINEAR_INPUTS) {
        const groups = groupsOfInput(input);
        const acc = hessians ?? observeGroups(groups, input);
        for (const group of groups) {
          const hessian = acc.get(group.key)!;
          const modules = group.slots.map((slot) => linearModule(slot, group.expert));
          const fallback = expertFallback(group.expert, hessian.tokens, settings.minExpertTokens);
          if (fallback !== null) {
            hessian.release();
            group.slots.forEach((slot, i) => {
              replaced.set(modules[i]!, quantizeFallback(linearAt(calib.layer, slot, group.expert), specOf(slot), calib.prefix + modules[i]!, fallback, report));
            });
            continue;
          }
          // one factorization (the O(K³) part) for every linear reading this input; the accumulator is spent
          const factor = hessian.factor(settings, calib.prefix + modules.join('/'));
          group.slots.forEach((slot, i) => {
            const name = calib.prefix + modules[i]!;
            const spec = specOf(slot);
            const { layer, alpha } = gptqQuantizeLinear(linearAt(calib.layer, slot, group.expert), factor, spec, settings, name, gptq.columns);
            replaced.set(modules[i]!, layer);
            report(linearReport(name, spec, layer, alpha));
          });
        }
      }
    } finally {
      for (const a of made) a.release();
    }
    if (walk) calib.walk(current()); // the last step (down) with the layer as quantized: the stream's hidden states
    return current();
  };
}
