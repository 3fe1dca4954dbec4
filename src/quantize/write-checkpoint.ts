/**
 * Writes intscale's quantized checkpoint (the format: src/model/quantized-checkpoint.ts) from a
 * quantized model's weights and the recipe that made them: streamed part by part (createCheckpointWriter)
 * or all at once from a model in memory (writeQuantizedCheckpoint).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepareOutputDir } from '../io/output-dir.js';
import { createSafetensorsWriter, type TensorToWrite } from '../io/safetensors.js';
import { ROUTER_NAME, layerPrefix, linearModules } from '../model/layout.js';
import { linearEntries } from '../model/layer-linears.js';
import { LAYERS_METADATA_KEY, QUANT_METHOD_NAME, type StoredLayerSettings } from '../model/quantized-checkpoint.js';
import type { ModelConfig } from '../model/config.js';
import { EMBEDDING, LM_HEAD, headIsTable, type LayerWeights, type ModelWeights } from '../model/weights.js';
import type { LinearWeight, QuantizedLinear } from '../quant/types.js';
import { TOOL_VERSION } from '../version.js';
import type { QuantRecipe } from './recipe.js';

export interface CheckpointSource {
  /** the directory quantized, recorded in the metadata and whose tokenizer files are copied. */
  readonly dir: string;
  readonly rawConfig: Readonly<Record<string, unknown>>;
}

const COPIED_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'chat_template.jinja', 'special_tokens_map.json'];

function float32Tensor(name: string, data: Float32Array, shape: number[]): TensorToWrite {
  return { name, dtype: 'F32', shape, data };
}

function quantizedTensors(module: string, w: QuantizedLinear): TensorToWrite[] {
  const groups = w.k / w.groupSize;
  const out: TensorToWrite[] = [
    w.wBits === 4
      ? { name: `${module}.qweight`, dtype: 'U8', shape: [w.n, w.k / 2], data: w.packed }
      : { name: `${module}.qweight`, dtype: 'I8', shape: [w.n, w.k], data: w.packed },
    float32Tensor(`${module}.scales`, w.scales, [w.n, groups]),
  ];
  if (w.scale === 'int') out.push({ name: `${module}.int_scales`, dtype: 'I32', shape: [w.n, groups], data: w.intScales! });
  if (w.bias) out.push(float32Tensor(`${module}.bias`, w.bias, [w.n]));
  return out;
}

/** The sizes the writer checks what it is given against (numExperts: mixtral's experts per layer; absent when dense). */
export type CheckpointShape = Pick<ModelConfig, 'numLayers' | 'hiddenSize' | 'vocabSize'> & { readonly numExperts?: number | undefined };

/**
 * A checkpoint written as it is produced, part by part in file order (the embedding, each decoder
 * layer in turn, then the final norm and lm_head), so a quantizer can drop each layer once written
 * and hold one layer at a time however large the model.
 */
export interface CheckpointWriter {
  /** the token embedding: float, or 8-bit per row (stored under model.embed_tokens.qweight with its settings). */
  embedding(table: LinearWeight): void;
  layer(index: number, layer: LayerWeights): void;
  /** the final norm and the lm_head (float, quantized, or null when tied to the embedding); then config.json and the tokenizer files. */
  finish(finalNorm: Float32Array, lmHead: LinearWeight | null): void;
  /** removes what was written of model.safetensors (after an error). */
  abort(): void;
}

/** Bytes of one tensor entry of the safetensors header, at most (name + dtype, a 2-d shape and two offsets in full). */
const HEADER_ENTRY_BYTES = 120;
const LAYER_TENSOR_SUFFIXES = ['input_layernorm.weight', 'post_attention_layernorm.weight'];
const LINEAR_TENSOR_SUFFIXES = ['qweight', 'scales', 'int_scales', 'bias'];

/** A bound on the header: every tensor a layer can have, and one settings entry per linear module. */
function headerBound(shape: CheckpointShape, metadata: Readonly<Record<string, string>>): number {
  let bytes = Buffer.byteLength(JSON.stringify({ __metadata__: { ...metadata, [LAYERS_METADATA_KEY]: '' } }), 'utf8') + 1024;
  const entry = (name: string) => name.length + HEADER_ENTRY_BYTES;
  bytes += entry(`${EMBEDDING}.weight`) + entry('model.norm.weight') + entry(`${LM_HEAD}.weight`);
  for (const module of [EMBEDDING, LM_HEAD]) { // stored quantized: their tensors and settings
    for (const suffix of LINEAR_TENSOR_SUFFIXES) bytes += entry(`${module}.${suffix}`);
    bytes += entry(module);
  }
  for (let i = 0; i < shape.numLayers; i++) {
    const p = layerPrefix(i);
    for (const s of LAYER_TENSOR_SUFFIXES) bytes += entry(p + s);
    if (shape.numExperts !== undefined) bytes += entry(`${p}${ROUTER_NAME}.weight`);
    for (const name of linearModules(shape.numExperts)) {
      const module = p + name;
      for (const s of LINEAR_TENSOR_SUFFIXES) bytes += entry(`${module}.${s}`);
      bytes += entry(module); // its settings in the metadata (escaped inside a JSON string)
    }
  }
  return bytes;
}

function methodMetadata(source: CheckpointSource, recipe: QuantRecipe): Record<string, string> {
  return {
    format: 'pt',
    'intscale.method': recipe.method,
    ...(recipe.method === 'rtn' ? {} : {
      'intscale.calibration': JSON.stringify(recipe.calibration),
      'intscale.method_settings': JSON.stringify(recipe.method === 'gptq' ? recipe.gptq : recipe.awq),
    }),
    'intscale.source_model': path.resolve(source.dir),
    'intscale.tool_version': TOOL_VERSION,
  };
}

/**
 * Opens a checkpoint in outDir (checked and created by prepareOutputDir; callers with long work
 * before the first write call prepareOutputDir first). model.safetensors is streamed to a temp
 * file and renamed when complete, and config.json is written last, so a directory with a
 * config.json is complete.
 */
export function createCheckpointWriter(outDir: string, source: CheckpointSource, shape: CheckpointShape,
  recipe: QuantRecipe, overwrite = false): CheckpointWriter {
  prepareOutputDir(outDir, { sourceDir: source.dir, overwrite });
  const d = shape.hiddenSize;
  const metadata = methodMetadata(source, recipe);
  const file = path.join(outDir, 'model.safetensors');
  const out = createSafetensorsWriter(file, headerBound(shape, metadata));
  const layers: Record<string, StoredLayerSettings> = {};
  let next = -1; // -1: the embedding comes next; numLayers: finish
  const expect = (what: string, at: number) => {
    if (next !== at) throw new Error(`${file}: ${what} written out of order (expected part ${next}, got ${at})`);
    next++;
  };
  const float = (name: string, data: Float32Array, dims: number[]) => out.write(float32Tensor(name, data, dims));
  return {
    embedding(table) {
      expect('the embedding', -1);
      if (table.kind === 'float') float(`${EMBEDDING}.weight`, table.w, [shape.vocabSize, d]);
      else {
        for (const t of quantizedTensors(EMBEDDING, table)) out.write(t);
        layers[EMBEDDING] = settingsOf(table);
      }
    },
    layer(i, layer) {
      expect(`layer ${i}`, i);
      const p = layerPrefix(i);
      float(`${p}input_layernorm.weight`, layer.inputNorm, [d]);
      float(`${p}post_attention_layernorm.weight`, layer.postAttentionNorm, [d]);
      if ((layer.moe?.experts.length) !== shape.numExperts) {
        throw new Error(`${file}: layer ${i} has ${layer.moe?.experts.length ?? 'no'} experts, the checkpoint ${shape.numExperts ?? 'none'}`);
      }
      if (layer.moe !== undefined) float(`${p}${ROUTER_NAME}.weight`, layer.moe.router.w, [layer.moe.router.n, d]);
      for (const { module: name, weight: w } of linearEntries(layer)) {
        const module = p + name;
        if (w.kind === 'float') {
          float(`${module}.weight`, w.w, [w.n, w.k]);
          if (w.bias) float(`${module}.bias`, w.bias, [w.n]);
          continue;
        }
        for (const t of quantizedTensors(module, w)) out.write(t);
        layers[module] = settingsOf(w);
      }
    },
    finish(finalNorm, lmHead) {
      expect('the final norm', shape.numLayers);
      float('model.norm.weight', finalNorm, [d]);
      if (lmHead?.kind === 'float') float('lm_head.weight', lmHead.w, [shape.vocabSize, d]);
      else if (lmHead?.kind === 'quantized') {
        for (const t of quantizedTensors(LM_HEAD, lmHead)) out.write(t);
        layers[LM_HEAD] = settingsOf(lmHead);
      }
      out.finish({ ...metadata, [LAYERS_METADATA_KEY]: JSON.stringify(layers) });
      writeConfigAndTokenizer(outDir, source, recipe);
    },
    abort: () => out.abort(),
  };
}

/** The stored settings of a quantized linear (the checkpoint's per-module metadata). */
function settingsOf(w: QuantizedLinear): StoredLayerSettings {
  return { w_bits: w.wBits, a_bits: w.aBits, group_size: w.groupSize, scale: w.scale, alpha_log2: w.alphaLog2 ?? null };
}

/** Writes a quantized model held in memory (every part at once) as a checkpoint in outDir. */
export function writeQuantizedCheckpoint(outDir: string, source: CheckpointSource, weights: ModelWeights,
  recipe: QuantRecipe, overwrite = false): void {
  const hiddenSize = weights.finalNorm.length;
  const shape = { numLayers: weights.layers.length, hiddenSize, vocabSize: weights.embedding.n, numExperts: weights.layers[0]?.moe?.experts.length };
  const writer = createCheckpointWriter(outDir, source, shape, recipe, overwrite);
  try {
    writer.embedding(weights.embedding);
    weights.layers.forEach((layer, i) => writer.layer(i, layer));
    const head = weights.lmHead;
    writer.finish(weights.finalNorm, headIsTable(head, weights.embedding) ? null : head);
  } catch (e) {
    writer.abort();
    throw e;
  }
}

function writeConfigAndTokenizer(outDir: string, source: CheckpointSource, recipe: QuantRecipe): void {
  for (const f of COPIED_FILES) {
    const from = path.join(source.dir, f);
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(outDir, f));
  }
  const config = {
    ...source.rawConfig,
    // embeddings, norms and lm_head are stored in F32 (transformers ≥ 4.56 reads dtype, older torch_dtype)
    dtype: 'float32',
    torch_dtype: 'float32',
    quantization_config: {
      quant_method: QUANT_METHOD_NAME,
      method: recipe.method,
      ...(recipe.method === 'rtn' ? {} : { calibration: recipe.calibration, [recipe.method]: recipe.method === 'gptq' ? recipe.gptq : recipe.awq }),
      ...recipe.base,
      overrides: recipe.overrides,
      tool_version: TOOL_VERSION,
    },
  };
  const configPath = path.join(outDir, 'config.json');
  fs.writeFileSync(configPath + '.tmp', JSON.stringify(config, null, 2) + '\n');
  fs.renameSync(configPath + '.tmp', configPath);
}
