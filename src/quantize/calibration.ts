/**
 * Calibration for GPTQ and AWQ: random token windows, and the layer-by-layer stream that feeds
 * them (as GPTQ's reference implementation does).
 *
 * Windows: N windows of L consecutive tokens from a tokenized text, window i starting at
 *   start_i = floor(u_i · (T − L + 1)),   u_i from mulberry32(seed)   (T = tokens in the text)
 * so the same (text, N, L, seed) always gives the same windows.
 *
 * Stream: h⁰_s = embed(window_s) for every sample s; then for each decoder layer ℓ in order
 *   1. read layer ℓ's float weights (one float layer alive at a time),
 *   2. the method observes the inputs of ℓ's linears by running ℓ in float on every h^ℓ_s
 *      (`observe`, any number of times, e.g. with scales folded in),
 *   3. the method returns the quantized layer (its norms may change too: AWQ folds scales there),
 *   4. h^{ℓ+1}_s = layer_ℓ^quantized(h^ℓ_s) — the next layer calibrates on what the quantized
 *      model really feeds it.
 * Memory: the hidden states N·L·hidden floats plus what one layer's method keeps, bounded by one
 * layer's activations; the KV cache holds one layer (L positions), reused by every layer.
 * Backend: the layers run on the CPU backend, or on any other (StreamOptions.calibrationBackend: a GPU's),
 * each window's hidden states uploaded for a run and downloaded when the stream advances; the methods'
 * observers then see that backend's tensors (GPTQ on a GPU reads them where they are).
 */
import { seededRandom } from '../tensor/random.js';
import * as fs from 'node:fs';
import type { Backend } from '../model/backend.js';
import { cpuBackend } from '../backends/cpu/cpu-backend.js';
import { InputError } from '../errors.js';
import { openModelDir, type ModelDir } from '../model/model-dir.js';
import { loadTokenizer, type ModelTokenizer } from '../io/tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import { advanceLayer, embedTokens, runDecoderLayer, type LayerContext, type LayerState, type LinearInput, type LinearObserver, type Model, type PreparedLayer } from '../model/forward.js';
import { layerPrefix } from '../model/layout.js';
import { createModel, prepareLayer, releaseLayer } from '../model/prepare.js';
import type { LoadedModel } from '../backends/load.js';
import { ropeInverseFrequencies } from '../model/rope.js';
import { EMBEDDING, headIsTable, readFloatLayer, refuseQuantizedSource, refuseUnreadTensors, type FloatLayerWeights, type LayerWeights, type ModelWeights } from '../model/weights.js';
import type { FloatLinear, LinearWeight } from '../quant/types.js';
import { sharedFloat32, withArenaAllocation } from '../tensor/shared.js';

/** Where calibration tokens come from and how many. */
export interface CalibrationSettings {
  /** UTF-8 text file (calibration data: never the evaluation set). */
  readonly file: string;
  /** N windows. */
  readonly samples: number;
  /** L tokens per window. */
  readonly seqLen: number;
  readonly seed: number;
}

/** N random windows of L tokens (deterministic for a seed); `file` names the text in errors. */
export function calibrationWindows(tokens: ArrayLike<number>, samples: number, seqLen: number, seed: number,
  file = 'calibration text'): Int32Array[] {
  if (!Number.isSafeInteger(samples) || samples < 1) throw new InputError(`--calib-samples must be a positive integer, got ${samples}`);
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new InputError(`--calib-seq-len must be a positive integer, got ${seqLen}`);
  if (tokens.length < seqLen) {
    throw new InputError(`${file}: ${tokens.length} tokens, fewer than one calibration window of ${seqLen}; lower --calib-seq-len or use a longer text`, { file });
  }
  const next = seededRandom(seed);
  const starts = tokens.length - seqLen + 1;
  return Array.from({ length: samples }, () => {
    const start = Math.floor(next() * starts);
    return Int32Array.from(Array.prototype.slice.call(tokens, start, start + seqLen) as number[]);
  });
}

/** Reads and tokenizes the calibration file with the model's tokenizer, and draws the windows. */
export function readCalibrationWindows(tokenizer: ModelTokenizer, s: CalibrationSettings): Int32Array[] {
  if (!fs.existsSync(s.file) || !fs.statSync(s.file).isFile()) throw new InputError(`${s.file}: calibration text file not found`, { file: s.file });
  return calibrationWindows(tokenizer.encode(fs.readFileSync(s.file, 'utf8')), s.samples, s.seqLen, s.seed, s.file);
}

export type { FloatLayerWeights } from '../model/weights.js';

/**
 * What a method sees of one decoder layer while the stream is at it. T is the stream's tensor type: the
 * CPU backend's Float32Array, or a GPU's device buffers when the stream runs on one (StreamOptions.calibrationBackend).
 */
export interface LayerCalibration<T = Float32Array> {
  readonly index: number;
  /** "model.layers.<index>." */
  readonly prefix: string;
  readonly config: ModelConfig;
  readonly backend: Backend<T>;
  /** the layer in float, as read. */
  readonly layer: FloatLayerWeights;
  readonly samples: number;
  readonly seqLen: number;
  /**
   * Runs `layer` (the float layer or a transformed one) on every sample's current hidden states,
   * calling `observer` with each linear's input; the hidden states are left unchanged. With
   * `stopAfter` each run ends once that input is observed (nothing after it is computed).
   */
  observe(layer: LayerWeights, observer: LinearObserver<T>, stopAfter?: LinearInput): void;
  /**
   * Whether `walk` is available: on the CPU, where every sample's state stays in host memory between
   * steps. A stream on a GPU re-runs the layer from its start for each input (observe) instead.
   */
  readonly walks: boolean;
  /**
   * Walks the layer on every sample for real, from where the last walk stopped (the start) up to
   * the input `until` (observed; to the end of the layer when absent), running `layer` as the method
   * has it now, `observer` seeing the inputs on the way. A method that walks must walk to the end
   * with the layer it returns: the stream then keeps these hidden states and skips its own pass.
   * True-sequential GPTQ walks input by input, each input's linears quantized before the next step:
   * every linear runs once per sample (observe re-runs the layer from its start each time). Once a
   * method walks, it may not observe the layer again. Throws where `walks` is false.
   */
  walk(layer: LayerWeights, observer?: LinearObserver<T>, until?: LinearInput): void;
}

/** A method turns one float layer into its quantized replacement (norms included). */
export type LayerMethod<T = Float32Array> = (calib: LayerCalibration<T>) => LayerWeights;

export interface StreamOptions<T = Float32Array> {
  /** the backend of the model quantizeCalibrated returns (default: the CPU's). */
  readonly backend?: Backend;
  /**
   * where the stream runs the layers on the calibration windows (default: the CPU backend). A GPU
   * backend must not replay passes as graphs (the observers are host code): createCudaBackend({ graphs: false }).
   */
  readonly calibrationBackend?: Backend<T>;
  /** called after each layer is quantized, with the layer index. */
  readonly onLayer?: (layer: number) => void;
  /** replaces the float lm_head (quantizes it) once read (quantizeCalibrated). */
  readonly transformLmHead?: (head: FloatLinear) => LinearWeight;
  /** replaces the float embedding table (quantizes it) unless the float lm_head is tied to it (quantizeCalibrated). */
  readonly transformEmbedding?: (table: FloatLinear) => LinearWeight;
}

/**
 * The calibration stream over the float model `source` (see the header): `embedding` is its
 * embedding table (read by the caller, who may write or keep it); each decoder layer is read,
 * quantized by `method` and handed to `emit` in order, then dropped here.
 */
export function calibrateLayers<T = Float32Array>(source: ModelDir, embedding: Float32Array, windows: readonly Int32Array[],
  method: LayerMethod<T>, emit: (index: number, layer: LayerWeights) => void, options: StreamOptions<T> = {}): void {
  if (windows.length === 0) throw new InputError('calibration needs at least one window');
  refuseQuantizedSource(source.weights);
  const { config } = source;
  const backend = options.calibrationBackend ?? (cpuBackend as unknown as Backend<T>);
  // host tensors (the CPU backend's) persist between steps, so a layer can be walked input by input
  const walks = (backend as unknown) === cpuBackend;
  const context: LayerContext<T> = { config, backend, invFreq: ropeInverseFrequencies(config.headDim, config.ropeTheta, config.ropeScaling) };
  const d = config.hiddenSize;
  const seqLen = windows[0]!.length;
  if (windows.some((w) => w.length !== seqLen)) throw new InputError('calibration windows must all have the same length');

  // h⁰: the embeddings of every window
  const table: FloatLinear = { kind: 'float', n: config.vocabSize, k: d, w: embedding };
  const hidden = windows.map((w) => embedTokens(config, table, w, 0));
  // one layer's KV cache, reused by every layer (layers run one at a time, each window from position 0)
  const cache = backend.layerCache(seqLen, config.numKvHeads * config.headDim);
  const scratch = sharedFloat32(seqLen * d);
  /** run(l prepared on the backend), the preparation released after. */
  const withPrepared = (l: LayerWeights, run: (prepared: PreparedLayer<T>) => void) => {
    const prepared = prepareLayer(backend, l);
    try {
      run(prepared);
    } finally {
      releaseLayer(prepared);
    }
  };
  /**
   * Runs layer l (prepared for this call and released after) on every window's hidden states:
   * in place to advance them to the next layer, else on a scratch copy (observing its inputs).
   */
  const runLayer = (l: LayerWeights, advance: boolean, observer?: LinearObserver<T>, stopAfter?: LinearInput) => withPrepared(l, (prepared) => {
    for (const h of hidden) {
      backend.startPass(); // a GPU's tensors of the last window go back to its arena
      if (!advance) scratch.set(h);
      const x = backend.upload(advance ? h : scratch); // on the CPU the array itself
      runDecoderLayer(context, prepared, x, seqLen, { cache, start: 0 }, observer, stopAfter);
      if (advance) {
        const out = backend.download(x, 0, seqLen, d);
        if (out.buffer !== h.buffer || out.byteOffset !== h.byteOffset) h.set(out);
      }
    }
  });
  /** Walks l on every window's hidden states from where `states` stand (see LayerCalibration.walk); host tensors only. */
  const walkLayer = (states: LayerState<T>[], l: LayerWeights, observer?: LinearObserver<T>, until?: LinearInput) => withPrepared(l, (prepared) => {
    for (const state of states) advanceLayer(context, prepared, state, seqLen, { cache, start: 0 }, observer, until);
  });
  try {
    for (let index = 0; index < config.numLayers; index++) {
      const layer = readFloatLayer(source.weights, config, index);
      let walked: LayerState<T>[] | null = null;
      const calib: LayerCalibration<T> = {
        index, prefix: layerPrefix(index), config, backend, layer, samples: windows.length, seqLen, walks,
        observe: (l, observer, stopAfter) => {
          if (walked !== null) throw new Error(`${layerPrefix(index)}: observe after walk (the walk has moved the hidden states on)`);
          runLayer(l, false, observer, stopAfter);
        },
        walk: (l, observer, until) => {
          if (!walks) throw new Error(`${layerPrefix(index)}: the calibration stream on ${backend.name} does not walk a layer (observe it instead)`);
          walked ??= hidden.map((h): LayerState<T> => ({ h: h as unknown as T, at: 'start', input: null }));
          walkLayer(walked, l, observer, until);
        },
      };
      const quantized = method(calib);
      if (walked === null) runLayer(quantized, true);
      else if ((walked as LayerState<T>[]).some((s) => s.at !== 'end')) {
        throw new Error(`${calib.prefix}: the calibration method walked the layer part-way (it must walk to the end with the layer it returns)`);
      }
      emit(index, quantized);
      options.onLayer?.(index);
    }
  } finally {
    backend.releaseLayerCache(cache);
  }
}

/**
 * Loads `dir` quantizing it layer by layer with `method`, calibrated on `windows` (see the header).
 * Returns the quantized model (embeddings in float, the lm_head too unless transformLmHead) ready to run.
 */
export function quantizeCalibrated<T = Float32Array>(dir: string, windows: readonly Int32Array[], method: LayerMethod<T>,
  options: StreamOptions<T> = {}): LoadedModel {
  const source = openModelDir(dir);
  try {
    const { config, weights: src } = source;
    const d = config.hiddenSize;
    const tied = config.tieWordEmbeddings;
    // the table stays only when it is also the lm_head (then in the arena, for the kernels)
    const readEmbedding = () => src.float32(`${EMBEDDING}.weight`, [config.vocabSize, d]);
    const embedding = tied ? withArenaAllocation(readEmbedding) : readEmbedding();
    const layers: LayerWeights[] = [];
    calibrateLayers(source, embedding, windows, method, (i, layer) => { layers[i] = layer; }, options);
    const finalNorm = src.float32('model.norm.weight', [d]);
    const head = tied ? embedding : withArenaAllocation(() => src.float32('lm_head.weight', [config.vocabSize, d]));
    refuseUnreadTensors(src, config);
    const floatHead: FloatLinear = { kind: 'float', n: config.vocabSize, k: d, w: head };
    const lmHead = options.transformLmHead?.(floatHead) ?? floatHead;
    const table: FloatLinear = { kind: 'float', n: config.vocabSize, k: d, w: embedding };
    const weights: ModelWeights = { embedding: options.transformEmbedding && !headIsTable(lmHead, table) ? options.transformEmbedding(table) : table, layers, finalNorm, lmHead };
    const model: Model = createModel(config, weights, options.backend ?? cpuBackend);
    const tokenizer = source.tokenizerPath === null ? null : loadTokenizer(dir);
    return { model, tokenizer, source };
  } finally {
    source.weights.close();
  }
}
