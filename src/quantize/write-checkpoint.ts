/**
 * Writes intscale's quantized checkpoint (the format: src/model/quantized-checkpoint.ts) from a
 * quantized model's weights and the recipe that made them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepareOutputDir } from '../io/output-dir.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { LINEAR_NAMES, LINEAR_SLOTS, layerPrefix } from '../model/layout.js';
import { LAYERS_METADATA_KEY, QUANT_METHOD_NAME, type StoredLayerSettings } from '../model/quantized-checkpoint.js';
import type { ModelWeights } from '../model/weights.js';
import type { QuantizedLinear } from '../quant/types.js';
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

/**
 * Writes the checkpoint into outDir (checked and created by prepareOutputDir; callers with long
 * work before the write call prepareOutputDir first). The
 * safetensors file is written atomically (temp file + rename) and config.json last, so a
 * directory with a config.json is complete.
 */
export function writeQuantizedCheckpoint(outDir: string, source: CheckpointSource, weights: ModelWeights,
  recipe: QuantRecipe, overwrite = false): void {
  prepareOutputDir(outDir, { sourceDir: source.dir, overwrite });
  const d = weights.finalNorm.length;
  const vocab = weights.embedding.length / d;
  const tensors: TensorToWrite[] = [float32Tensor('model.embed_tokens.weight', weights.embedding, [vocab, d])];
  const layers: Record<string, StoredLayerSettings> = {};
  weights.layers.forEach((layer, i) => {
    const p = layerPrefix(i);
    tensors.push(float32Tensor(`${p}input_layernorm.weight`, layer.inputNorm, [d]));
    tensors.push(float32Tensor(`${p}post_attention_layernorm.weight`, layer.postAttentionNorm, [d]));
    for (const slot of LINEAR_SLOTS) {
      const module = p + LINEAR_NAMES[slot];
      const w = layer[slot];
      if (w.kind === 'float') {
        tensors.push(float32Tensor(`${module}.weight`, w.w, [w.n, w.k]));
        if (w.bias) tensors.push(float32Tensor(`${module}.bias`, w.bias, [w.n]));
        continue;
      }
      tensors.push(...quantizedTensors(module, w));
      layers[module] = { w_bits: w.wBits, a_bits: w.aBits, group_size: w.groupSize, scale: w.scale, alpha_log2: w.alphaLog2 ?? null };
    }
  });
  tensors.push(float32Tensor('model.norm.weight', weights.finalNorm, [d]));
  if (weights.lmHead.w !== weights.embedding) tensors.push(float32Tensor('lm_head.weight', weights.lmHead.w, [vocab, d]));

  writeSafetensors(path.join(outDir, 'model.safetensors'), tensors, {
    format: 'pt',
    'intscale.method': recipe.method,
    ...(recipe.method === 'rtn' ? {} : {
      'intscale.calibration': JSON.stringify(recipe.calibration),
      'intscale.method_settings': JSON.stringify(recipe.method === 'gptq' ? recipe.gptq : recipe.awq),
    }),
    'intscale.source_model': path.resolve(source.dir),
    'intscale.tool_version': TOOL_VERSION,
    [LAYERS_METADATA_KEY]: JSON.stringify(layers),
  });
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
