/**
 * The weights of a LLaMA-family decoder (mixtral's experts included), named as Hugging Face names
 * them, read from a checkpoint with every shape checked against config.json.
 */
import { InputError } from '../errors.js';
import type { WeightSource } from '../io/weight-source.js';
import type { FloatLinear, LinearWeight } from '../quant/types.js';
import { readQuantizedLinear, storedLayerSettings, type StoredLayerSettings } from './quantized-checkpoint.js';
import { releaseArenaBlock, withArenaAllocation } from '../tensor/shared.js';
import type { ModelConfig } from './config.js';
import { ATTENTION_SLOTS, ROUTER_NAME, hasBias, layerPrefix, linearModule, linearShape, type LinearSlot } from './layout.js';
import { linearEntries, type LayerLinears, type MlpLinears } from './layer-linears.js';

export { LINEAR_NAMES, LINEAR_SLOTS, layerPrefix, linearShape, type LinearSlot } from './layout.js';

export interface LayerNorms {
  readonly inputNorm: Float32Array;
  readonly postAttentionNorm: Float32Array;
}

/** A decoder layer: its norms and linears (dense, or a router and experts: layer-linears.ts). */
export type LayerWeights = LayerNorms & LayerLinears<LinearWeight>;

export interface ModelWeights {
  /**
   * The token embedding [vocab, hidden] (n = vocab, k = hidden): float32, or 8-bit per row
   * (`intscale quantize`'s default; stored under model.embed_tokens.qweight, a row is q·s).
   */
  readonly embedding: LinearWeight;
  readonly layers: LayerWeights[];
  readonly finalNorm: Float32Array;
  /**
   * float by default (as GPTQ/AWQ/the paper keep it; the embedding itself when tied), or quantized
   * when the recipe says so (`--override lm_head=w8a8`; stored under lm_head.qweight like a layer's).
   */
  readonly lmHead: LinearWeight;
}

function readLinear(src: WeightSource, config: ModelConfig, layer: number, slot: LinearSlot, expert: number | null,
  stored: Record<string, StoredLayerSettings> | null): LinearWeight {
  const [n, k] = linearShape(config, slot);
  const name = layerPrefix(layer) + linearModule(slot, expert);
  const settings = stored?.[name];
  const withBias = hasBias(config, slot);
  if (settings !== undefined) return readQuantizedLinear(src, name, n, k, settings, withBias);
  const w = src.float32(`${name}.weight`, [n, k]);
  const bias = withBias ? src.float32(`${name}.bias`, [n]) : undefined;
  return { kind: 'float', n, k, w, bias };
}

/** The linears of decoder layer `index` (quantized where the checkpoint's settings say so; the router always float). */
function readLayerLinears(src: WeightSource, config: ModelConfig, index: number, stored: Record<string, StoredLayerSettings> | null): LayerLinears {
  const read = (slot: LinearSlot, expert: number | null) => readLinear(src, config, index, slot, expert, stored);
  const attention = Object.fromEntries(ATTENTION_SLOTS.map((s) => [s, read(s, null)])) as Record<(typeof ATTENTION_SLOTS)[number], LinearWeight>;
  const moe = config.moe;
  if (moe === undefined) return { ...attention, gate: read('gate', null), up: read('up', null), down: read('down', null) };
  const d = config.hiddenSize;
  const router: FloatLinear = { kind: 'float', n: moe.numExperts, k: d, w: src.float32(`${layerPrefix(index)}${ROUTER_NAME}.weight`, [moe.numExperts, d]) };
  const experts: MlpLinears<LinearWeight>[] = Array.from({ length: moe.numExperts }, (_, e) => ({ gate: read('gate', e), up: read('up', e), down: read('down', e) }));
  return { ...attention, moe: { router, experts } };
}

function readNorms(src: WeightSource, config: ModelConfig, index: number): LayerNorms {
  const p = layerPrefix(index);
  const d = config.hiddenSize;
  return { inputNorm: src.float32(`${p}input_layernorm.weight`, [d]), postAttentionNorm: src.float32(`${p}post_attention_layernorm.weight`, [d]) };
}

/** A decoder layer whose linears are float. */
export type FloatLayerWeights = LayerNorms & LayerLinears<FloatLinear>;

/** Reads decoder layer `index` of a float checkpoint (to quantize it), outside the arena so it can be collected. */
export function readFloatLayer(src: WeightSource, config: ModelConfig, index: number): FloatLayerWeights {
  return { ...readNorms(src, config, index), ...(readLayerLinears(src, config, index, null) as LayerLinears<FloatLinear>) };
}

/**
 * Gives a float layer's arrays back to the arena for reuse (tensor/shared.ts releaseArenaBlock) when
 * it was read inside withArenaAllocation: the next layer, of the same sizes, is read into the same
 * memory, so streaming a model layer by layer holds one float layer however the GC runs. Arrays
 * outside the arena are left to the GC. The layer must not be read again.
 */
export function releaseFloatLayer(layer: FloatLayerWeights): void {
  releaseArenaBlock(layer.inputNorm);
  releaseArenaBlock(layer.postAttentionNorm);
  const linears = linearEntries(layer).map((e) => e.weight);
  if (layer.moe !== undefined) linears.push(layer.moe.router);
  for (const w of linears) {
    releaseArenaBlock(w.w);
    if (w.bias) releaseArenaBlock(w.bias);
  }
}

/**
 * Gives a layer's quantized linears' arrays (codes, scales, integer scales) back to the arena once they are
 * written (quantizeToCheckpoint); biases belong to the float layer they came from (releaseFloatLayer). Arrays
 * outside the arena are left to the GC. The linears must not be used after.
 */
export function releaseQuantizedLinears(linears: LayerLinears<LinearWeight>): void {
  for (const { weight: w } of linearEntries(linears)) {
    if (w.kind !== 'quantized') continue;
    releaseArenaBlock(w.packed);
    releaseArenaBlock(w.scales);
    if (w.intScales) releaseArenaBlock(w.intScales);
  }
}

/** The lm_head's module name in checkpoints (its quantized tensors are lm_head.qweight, …). */
export const LM_HEAD = 'lm_head';
/** The token embedding's module name (its settings key when stored quantized). */
export const EMBEDDING = 'model.embed_tokens';

/** Whether the lm_head is the float embedding table itself (tied, neither quantized): the table then stays float. */
export function headIsTable(head: LinearWeight, table: LinearWeight): boolean {
  return head.kind === 'float' && table.kind === 'float' && head.w === table.w;
}

/** Refuses a checkpoint intscale already quantized where a float one is needed (quantizing twice). */
export function refuseQuantizedSource(src: WeightSource): void {
  if (storedLayerSettings(src) !== null) {
    throw new InputError(`${src.files.join(', ')}: this checkpoint is already quantized; quantize the original float model instead`);
  }
}

/**
 * Reads every weight, layer by layer. `onLayer` may replace a layer's linears (quantizing them)
 * as soon as the layer is read, so the float copy of only one layer is alive at a time.
 */
export function readModelWeights(
  src: WeightSource,
  config: ModelConfig,
  onLayer?: (layer: number, linears: LayerLinears<FloatLinear>) => LayerLinears,
  onLmHead?: (head: FloatLinear) => LinearWeight,
  onEmbedding?: (table: FloatLinear) => LinearWeight,
): ModelWeights {
  const d = config.hiddenSize;
  if (onLayer !== undefined) refuseQuantizedSource(src);
  const stored = storedLayerSettings(src);
  // Weights the kernels read go to the WASM arena (the SIMD kernels address them there, quantized
  // layers in their packed form; the arena is never freed and holds at most 4 GiB). Float layers
  // about to be quantized are read outside it, so they can be collected once quantized; so is the
  // embedding table unless it is also the lm_head (tied), since it only gives rows to copy.
  const kept = withArenaAllocation;
  const headSettings = stored?.[LM_HEAD] ?? null;
  const tied = config.tieWordEmbeddings && headSettings === null;
  const embedSettings = stored?.[EMBEDDING] ?? null;
  if (tied && embedSettings !== null) {
    throw new InputError(`${src.files.join(', ')}: the embedding is stored quantized but the float lm_head is tied to it; the checkpoint is inconsistent`, { file: src.files[0] });
  }
  const readEmbedding = (): LinearWeight => embedSettings !== null
    ? readQuantizedLinear(src, EMBEDDING, config.vocabSize, d, embedSettings, false)
    : { kind: 'float', n: config.vocabSize, k: d, w: src.float32(`${EMBEDDING}.weight`, [config.vocabSize, d]) };
  // in the arena only while it will be the float lm_head the kernels read (not when onLmHead quantizes the head)
  const embedding = tied && onLmHead === undefined ? kept(readEmbedding) : readEmbedding();
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const readAll = () => readLayerLinears(src, config, i, stored);
    const read = onLayer === undefined ? kept(readAll) : readAll();
    const linears = onLayer === undefined ? read : onLayer(i, read as LayerLinears<FloatLinear>);
    layers.push({ ...readNorms(src, config, i), ...linears });
  }
  const finalNorm = src.float32('model.norm.weight', [d]);
  const floatHead = (): FloatLinear => ({ kind: 'float', n: config.vocabSize, k: d, w: tied ? (embedding as FloatLinear).w : kept(() => src.float32('lm_head.weight', [config.vocabSize, d])) });
  const lmHead: LinearWeight = headSettings !== null
    ? kept(() => readQuantizedLinear(src, LM_HEAD, config.vocabSize, d, headSettings, false))
    : onLmHead ? onLmHead(floatHead()) : floatHead();
  refuseUnreadTensors(src, config);
  const table = onEmbedding && embedding.kind === 'float' && !headIsTable(lmHead, embedding) ? onEmbedding(embedding) : embedding;
  return { embedding: table, layers, finalNorm, lmHead };
}

/**
 * Tensors a checkpoint may hold that transformers does not use either: rotary tables older
 * exports saved, and lm_head.weight beside tied embeddings (transformers ties it to the embedding).
 */
function legitimatelyUnused(name: string, config: ModelConfig): boolean {
  return /(^|\.)rotary_emb\.inv_freq$/.test(name) || (config.tieWordEmbeddings && name === 'lm_head.weight');
}

/** Every tensor is accounted for: one the model did not read means config.json describes another model. */
export function refuseUnreadTensors(src: WeightSource, config: ModelConfig): void {
  const unread = src.unread().filter((name) => !legitimatelyUnused(name, config));
  if (unread.length === 0) return;
  const shown = unread.slice(0, 5).join(', ') + (unread.length > 5 ? `, … (${unread.length} in all)` : '');
  throw new InputError(
    `${src.files.join(', ')}: the checkpoint holds tensors this ${config.architecture} model does not use: ${shown}. ` +
      'config.json does not describe these weights (a bias its settings do not give, another architecture); ' +
      'running without them would give wrong results',
    { file: src.files[0], tensor: unread[0] },
  );
}
