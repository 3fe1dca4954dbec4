/**
 * intscale's quantized checkpoint: a Hugging Face-style directory whose model.safetensors holds,
 * for every quantized linear layer `<module>` (e.g. model.layers.0.mlp.down_proj):
 *
 *   <module>.qweight     4-bit: U8 [N, K/2], two values a byte (int4-pack.ts: even k in the low
 *                        nibble, two's complement); 8-bit: I8 [N, K]
 *   <module>.scales      F32 [N, K/G]  the scale actually used (S/α for integer scales)
 *   <module>.int_scales  I32 [N, K/G]  integer scales S (integer-scale layers only)
 *   <module>.bias        F32 [N]       when the layer has one (qwen2 q/k/v; llama attention_bias, mlp_bias)
 *
 * and every other tensor (embeddings, norms, lm_head) in F32 under its Hugging Face name.
 * The safetensors metadata carries `intscale.layers`: a JSON object of per-layer settings
 * {w_bits, a_bits, group_size, scale: "int"|"float", alpha_log2}, plus method, source model and
 * tool version (and for GPTQ/AWQ `intscale.calibration` {file, samples, seqLen, seed} and
 * `intscale.method_settings`, JSON); config.json carries a `quantization_config` with quant_method "intscale".
 * Loading it gives QuantizedLinear layers that run on the exact integer kernels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import type { ModelWeights } from '../model/weights.js';
import { LINEAR_NAMES, LINEAR_SLOTS, layerPrefix } from '../model/layout.js';
import type { QuantRecipe } from '../quant/recipe.js';
import type { ActivationBits, QuantizedLinear, ScaleKind, WeightBits } from '../quant/types.js';
import { TOOL_VERSION } from '../version.js';
import { prepareOutputDir } from './output-dir.js';
import { writeSafetensors, type TensorToWrite } from './safetensors.js';
import type { WeightSource } from './weight-source.js';

export const QUANT_METHOD_NAME = 'intscale';
export const LAYERS_METADATA_KEY = 'intscale.layers';

/** Per-layer settings as stored in the metadata. */
export interface StoredLayerSettings {
  readonly w_bits: WeightBits;
  readonly a_bits: ActivationBits;
  readonly group_size: number;
  readonly scale: ScaleKind;
  readonly alpha_log2: number | null;
}

export interface CheckpointSource {
  /** the directory quantized, recorded in the metadata and whose tokenizer files are copied. */
  readonly dir: string;
  readonly rawConfig: Readonly<Record<string, unknown>>;
}

const COPIED_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'chat_template.jinja', 'special_tokens_map.json'];

export function isQuantizedCheckpoint(rawConfig: Readonly<Record<string, unknown>>): boolean {
  const q = rawConfig['quantization_config'] as Record<string, unknown> | undefined;
  return q !== undefined && q !== null && q['quant_method'] === QUANT_METHOD_NAME;
}

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

/** Per-layer settings from a quantized checkpoint's metadata (null when it has none). */
export function storedLayerSettings(src: WeightSource): Record<string, StoredLayerSettings> | null {
  const raw = src.metadata[LAYERS_METADATA_KEY];
  if (raw === undefined) return null;
  try {
    return JSON.parse(raw) as Record<string, StoredLayerSettings>;
  } catch {
    throw new InputError(`${src.files.join(', ')}: metadata "${LAYERS_METADATA_KEY}" is not valid JSON`, { file: src.files[0] });
  }
}

/** Reads one quantized linear layer [n, k] stored under `module` (with its bias when withBias), checking every shape. */
export function readQuantizedLinear(src: WeightSource, module: string, n: number, k: number, s: StoredLayerSettings,
  withBias: boolean): QuantizedLinear {
  const G = s.group_size;
  if (!(Number.isInteger(G) && G > 0 && k % G === 0) || (s.w_bits !== 4 && s.w_bits !== 8)) {
    throw new InputError(`${module}: stored settings ${JSON.stringify(s)} do not fit a [${n}, ${k}] layer`, { tensor: module });
  }
  const groups = k / G;
  const name = `${module}.qweight`;
  const expected = s.w_bits === 4 ? [n, k / 2] : [n, k];
  const shape = src.shapeOf(name);
  if (shape.length !== 2 || shape[0] !== expected[0] || shape[1] !== expected[1]) {
    throw new InputError(`${name}: shape [${shape.join(', ')}] but a ${s.w_bits}-bit [${n}, ${k}] layer needs [${expected.join(', ')}]`, { tensor: name });
  }
  const packed = src.bytes(name); // held as stored: the packed format is the in-memory one
  const scales = src.float32(`${module}.scales`, [n, groups]);
  let intScales: Int32Array | undefined;
  if (s.scale === 'int') {
    const shapeS = src.shapeOf(`${module}.int_scales`);
    if (shapeS.length !== 2 || shapeS[0] !== n || shapeS[1] !== groups || src.dtypeOf(`${module}.int_scales`) !== 'I32') {
      throw new InputError(`${module}.int_scales: expected I32 [${n}, ${groups}], found ${src.dtypeOf(`${module}.int_scales`)} [${shapeS.join(', ')}]`, { tensor: `${module}.int_scales` });
    }
    const b = src.bytes(`${module}.int_scales`);
    intScales = new Int32Array(b.buffer, b.byteOffset, n * groups);
  }
  const bias = withBias ? src.float32(`${module}.bias`, [n]) : undefined;
  return {
    kind: 'quantized', n, k, groupSize: G, wBits: s.w_bits, aBits: s.a_bits, packed, scale: s.scale, scales,
    ...(intScales ? { intScales, alphaLog2: s.alpha_log2 ?? 0 } : {}),
    ...(bias ? { bias } : {}),
  };
}
