/**
 * Quantizes a model layer by layer as it is read (so only one float layer is alive at a time),
 * recording for every linear layer the spec used, the α chosen and the overflow proof.
 *
 * quantizeModel keeps the quantized model in memory, ready to run; quantizeToCheckpoint writes
 * each layer to the checkpoint as it is made and keeps none (a 7B in about a layer's memory).
 *
 *   rtn:       each layer's linears through the shared group quantizer as they are read;
 *   gptq, awq: the calibration stream (calibration.ts): each layer's inputs captured on the
 *              calibration windows, the layer quantized by the method (methods/), the quantized
 *              layer run forward to produce the next layer's inputs.
 */
import type { Backend } from '../model/backend.js';
import type { LinearSlot } from '../model/layout.js';
import { layerPrefix, linearModule } from '../model/layout.js';
import { linearsOf, mapLinears, type LayerLinears } from '../model/layer-linears.js';
import { loadModel, type LoadedModel } from '../backends/load.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { calibrateLayers, quantizeCalibrated, readCalibrationWindows, type LayerMethod, type StreamOptions } from './calibration.js';
import { openModelDir } from '../model/model-dir.js';
import { EMBEDDING, LM_HEAD, readFloatLayer, refuseQuantizedSource, refuseUnreadTensors, releaseFloatLayer, releaseQuantizedLinears } from '../model/weights.js';
import { withArenaAllocation } from '../tensor/shared.js';
import { createCheckpointWriter } from './write-checkpoint.js';
import { awqLayerMethod } from './awq.js';
import { gptqLayerMethod } from './gptq-layer.js';
import type { GptqEngine } from '../quant/methods/gptq.js';
import { linearReport, type LinearReport } from '../quant/methods/report.js';
import { quantizeLinear, quantizeLinearReport } from '../quant/quantize-linear.js';
import { rtnRowsOnPool } from '../backends/cpu/rtn-pool.js';
import { EMBEDDING_SPEC, lmHeadSpec, specFor, type QuantRecipe } from './recipe.js';
import type { FloatLinear, LinearWeight, QuantizedLinear, QuantSpec } from '../quant/types.js';

export type { LinearReport } from '../quant/methods/report.js';

/** RTN-quantizes one linear by `spec`, adding its report to `reports` (and telling onLinear). */
function quantizeReported(w: FloatLinear, spec: QuantSpec, name: string, reports: LinearReport[], onLinear?: (report: LinearReport) => void): QuantizedLinear {
  const { layer, alpha } = quantizeLinearReport(w, spec, name, rtnRowsOnPool);
  const report = linearReport(name, spec, layer, alpha);
  reports.push(report);
  onLinear?.(report);
  return layer;
}

/** The lm_head's and the embedding table's transforms as the recipe wants them (absent: kept in float). */
interface HeadAndTable {
  transformLmHead?: (head: FloatLinear) => LinearWeight;
  transformEmbedding?: (table: FloatLinear) => LinearWeight;
}

/**
 * Returns the per-layer RTN transform for loadModel and the reports it fills in (the lm_head's too,
 * when the recipe quantizes it); `loadOptions` passes loadModel the layers', the lm_head's and the
 * embedding's transforms together.
 */
export function layerQuantizer(recipe: QuantRecipe, onLayer?: (layer: number) => void, onLinear?: (report: LinearReport) => void): {
  transform: (layer: number, linears: LayerLinears<FloatLinear>) => LayerLinears;
  loadOptions: HeadAndTable & { transformLayer: (layer: number, linears: LayerLinears<FloatLinear>) => LayerLinears };
  reports: LinearReport[];
} {
  const reports: LinearReport[] = [];
  const transform = (layer: number, linears: LayerLinears<FloatLinear>) => {
    const out = mapLinears(linears, (w, slot, expert) =>
      quantizeReported(w, specFor(recipe, slot), layerPrefix(layer) + linearModule(slot, expert), reports, onLinear), (router) => router);
    onLayer?.(layer);
    return out;
  };
  return { transform, loadOptions: { transformLayer: transform, ...headAndTable(recipe, reports, onLinear) }, reports };
}

/**
 * The lm_head as the recipe wants it: RTN-quantized with lmHeadSpec (reported like a layer's
 * linears; GPTQ/AWQ calibrate only the decoder layers), or null when it stays in float.
 */
function lmHeadQuantizer(recipe: QuantRecipe, reports: LinearReport[], onLinear?: (report: LinearReport) => void): ((head: FloatLinear) => LinearWeight) | undefined {
  const spec = lmHeadSpec(recipe);
  if (spec === null) return undefined;
  return (head) => quantizeReported(head, spec, LM_HEAD, reports, onLinear);
}

/** The 8-bit embedding table of a float one (EMBEDDING_SPEC: int8 per row, one float scale a row). */
export function quantizeEmbedding(table: FloatLinear): QuantizedLinear {
  return quantizeLinear(table, EMBEDDING_SPEC, EMBEDDING);
}

/** The lm_head's transform (its report added to `reports`) and the embedding's, each only when the recipe asks for it. */
function headAndTable(recipe: QuantRecipe, reports: LinearReport[], onLinear?: (report: LinearReport) => void): HeadAndTable {
  const transformLmHead = lmHeadQuantizer(recipe, reports, onLinear);
  return { ...(transformLmHead ? { transformLmHead } : {}), ...(recipe.embedding === 'int8' ? { transformEmbedding: quantizeEmbedding } : {}) };
}

export interface QuantizeModelOptions {
  readonly backend?: Backend;
  /** called after each decoder layer is quantized. */
  readonly onLayer?: (layer: number) => void;
  /** called after each linear layer is quantized (progress finer than per decoder layer: GPTQ/AWQ take long per layer). */
  readonly onLinear?: (report: LinearReport) => void;
  /** GPTQ / AWQ on another device (default: the CPU, its pool for the matrices): see CalibrationPlacement. */
  readonly calibrateOn?: CalibrationPlacement<unknown>;
}

/**
 * GPTQ / AWQ off the CPU: the backend the calibration stream runs the layers on (default: the CPU's;
 * AWQ's statistics and its grid search's products run there too), and the engine of GPTQ's Hessians,
 * factors and column loops (backends/cuda/gptq-cuda.ts; needed by GPTQ with a backend off the CPU). Both
 * use one tensor type, so the stream hands the engine each linear's input where it already is.
 */
export interface CalibrationPlacement<T> {
  readonly backend?: Backend<T>;
  readonly gptqEngine?: GptqEngine<T>;
}

export interface QuantizedModel {
  readonly loaded: LoadedModel;
  readonly reports: LinearReport[];
}

/** The GPTQ or AWQ layer method of `recipe`, with the reports it fills in. */
function calibratedMethod(recipe: QuantRecipe & { method: 'gptq' | 'awq' }, onLinear?: (report: LinearReport) => void, placement?: CalibrationPlacement<unknown>): {
  method: LayerMethod<unknown>;
  /** where the stream runs (placed off the CPU), else the CPU */
  stream: Pick<StreamOptions<unknown>, 'calibrationBackend'>;
  reports: LinearReport[];
} {
  const reports: LinearReport[] = [];
  const specOf = (slot: LinearSlot) => specFor(recipe, slot);
  const sink = (r: LinearReport) => {
    reports.push(r);
    onLinear?.(r);
  };
  const stream = placement?.backend ? { calibrationBackend: placement.backend } : {};
  if (recipe.method === 'awq') return { method: awqLayerMethod<unknown>(specOf, recipe.awq, sink), reports, stream };
  if (placement?.backend && !placement.gptqEngine) throw new Error(`GPTQ with the calibration stream on ${placement.backend.name} needs a GPTQ engine there (CalibrationPlacement.gptqEngine)`);
  return { method: gptqLayerMethod(specOf, recipe.gptq, sink, placement?.gptqEngine), reports, stream };
}

/** Loads the float model in `dir` quantized by `recipe` (any method), all of it in memory. */
export function quantizeModel(dir: string, recipe: QuantRecipe, options: QuantizeModelOptions = {}): QuantizedModel {
  if (recipe.method === 'rtn') {
    const { loadOptions, reports } = layerQuantizer(recipe, options.onLayer, options.onLinear);
    const loaded = loadModel(dir, { ...loadOptions, ...(options.backend ? { backend: options.backend } : {}) });
    return { loaded, reports };
  }
  const windows = readCalibrationWindows(loadTokenizer(dir), recipe.calibration);
  const { method, reports, stream } = calibratedMethod(recipe, options.onLinear, options.calibrateOn);
  return { loaded: quantizeCalibrated(dir, windows, method, { ...options, ...stream, ...headAndTable(recipe, reports, options.onLinear) }), reports };
}

export interface QuantizeToCheckpointOptions extends QuantizeModelOptions {
  /** replace a checkpoint already in outDir. */
  readonly overwrite?: boolean;
}

/**
 * Quantizes the float model in `dir` by `recipe` straight into a checkpoint in outDir: each part is
 * written as soon as it is made and dropped, so memory holds one float layer and its quantized
 * form (plus, for GPTQ/AWQ, the calibration hidden states), whatever the model's size. The
 * checkpoint is the one writeQuantizedCheckpoint writes from quantizeModel's result.
 */
export function quantizeToCheckpoint(dir: string, outDir: string, recipe: QuantRecipe,
  options: QuantizeToCheckpointOptions = {}): LinearReport[] {
  const windows = recipe.method === 'rtn' ? null : readCalibrationWindows(loadTokenizer(dir), recipe.calibration);
  const source = openModelDir(dir);
  try {
    const { config, weights: src } = source;
    refuseQuantizedSource(src);
    const d = config.hiddenSize;
    const writer = createCheckpointWriter(outDir, source, { ...config, numExperts: config.moe?.numExperts }, recipe, options.overwrite === true);
    try {
      const embedding = src.float32(`${EMBEDDING}.weight`, [config.vocabSize, d]);
      const headQuantized = lmHeadSpec(recipe) !== null;
      // the float lm_head tied to the table keeps it float (the head is the table)
      const table: FloatLinear = { kind: 'float', n: config.vocabSize, k: d, w: embedding };
      const headIsTable = config.tieWordEmbeddings && !headQuantized;
      writer.embedding(recipe.embedding === 'int8' && !headIsTable ? quantizeEmbedding(table) : table);
      let reports: LinearReport[];
      if (recipe.method === 'rtn') {
        const rtn = layerQuantizer(recipe, options.onLayer, options.onLinear);
        reports = rtn.reports;
        for (let i = 0; i < config.numLayers; i++) {
          // read into the arena and given back once written: every layer reuses the first one's memory
          const layer = withArenaAllocation(() => readFloatLayer(src, config, i));
          // its quantized linears in the arena too, given back once written: memory stays one layer's whatever
          // the GC does (dead layers outside the arena had been left to it: 5.7 GB peak on a 7B)
          const quantized = withArenaAllocation(() => rtn.transform(i, linearsOf(layer)));
          writer.layer(i, { inputNorm: layer.inputNorm, postAttentionNorm: layer.postAttentionNorm, ...quantized });
          releaseQuantizedLinears(quantized);
          releaseFloatLayer(layer);
        }
      } else {
        const calibrated = calibratedMethod(recipe, options.onLinear, options.calibrateOn);
        reports = calibrated.reports;
        calibrateLayers(source, embedding, windows!, calibrated.method, (i, layer) => writer.layer(i, layer), { ...options, ...calibrated.stream });
      }
      const finalNorm = src.float32('model.norm.weight', [d]);
      const quantizeHead = lmHeadQuantizer(recipe, reports, options.onLinear);
      const tied = config.tieWordEmbeddings;
      const floatHead: FloatLinear | null = tied && !quantizeHead ? null : { kind: 'float', n: config.vocabSize, k: d, w: tied ? embedding : src.float32('lm_head.weight', [config.vocabSize, d]) };
      refuseUnreadTensors(src, config);
      writer.finish(finalNorm, floatHead && quantizeHead ? quantizeHead(floatHead) : floatHead);
      return reports;
    } catch (e) {
      writer.abort();
      throw e;
    }
  } finally {
    source.weights.close();
  }
}
