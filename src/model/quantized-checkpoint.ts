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
import { InputError } from '../errors.js';
import type { WeightSource } from '../io/weight-source.js';
import type { ActivationBits, QuantizedLinear, ScaleKind, WeightBits } from '../quant/types.js';

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

export function isQuantizedCheckpoint(rawConfig: Readonly<Record<string, unknown>>): boolean {
  const q = rawConfig['quantization_config'] as Record<string, unknown> | undefined;
  return q !== undefined && q !== null && q['quant_method'] === QUANT_METHOD_NAME;
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
