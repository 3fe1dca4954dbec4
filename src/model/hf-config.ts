/**
 * Hugging Face config.json → ModelConfig, with transformers' defaults for llama, mistral, qwen2
 * and mixtral, and errors that name the field and what is wrong with it.
 */
import { InputError } from '../errors.js';
import { NO_BIASES, type Architecture, type LinearBiases, type ModelConfig, type MoeConfig, type RopeScaling } from './config.js';
import { FieldReader, type Json } from '../io/json-fields.js';

export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = ['llama', 'mistral', 'qwen2', 'mixtral'];

const ARCHITECTURE_CLASSES: Readonly<Record<string, Architecture>> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  MixtralForCausalLM: 'mixtral',
};

/** transformers' default max_position_embeddings per architecture. */
const DEFAULT_MAX_POSITIONS: Readonly<Record<Architecture, number>> = {
  llama: 2048,
  mistral: 4096 * 32,
  qwen2: 32768,
  mixtral: 4096 * 32,
};

/** transformers' defaults that differ for mixtral (MixtralConfig): rms_norm_eps 1e-5, rope_theta 1e6. */
const DEFAULT_RMS_NORM_EPS = (a: Architecture): number => (a === 'mixtral' ? 1e-5 : 1e-6);
const DEFAULT_ROPE_THETA = (a: Architecture): number => (a === 'mixtral' ? 1e6 : 10000);

/** Mixture-of-experts model types with parts mixtral does not have (shared experts, other routers). */
const OTHER_MOE_TYPES = ['qwen2_moe', 'qwen3_moe', 'deepseek_v2', 'deepseek_v3', 'dbrx', 'olmoe', 'phimoe', 'granitemoe', 'jamba', 'arctic'];

/** Fields of mixture-of-experts variants this forward pass does not implement (shared experts, dense layers between). */
const UNSUPPORTED_MOE_FIELDS = [
  'shared_expert_intermediate_size', 'n_shared_experts', 'moe_intermediate_size', 'n_routed_experts',
  'decoder_sparse_step', 'mlp_only_layers', 'first_k_dense_replace', 'moe_layer_freq',
];
/** Fields that give a dense architecture experts. */
const EXPERT_FIELDS = ['num_local_experts', 'num_experts', 'num_experts_per_tok'];

/** Parse a config.json already read as JSON; file is used in error messages. */
export function parseHfConfig(json: unknown, file: string): ModelConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InputError(`${file}: expected a JSON object`, { file });
  }
  const c = json as Json;
  const architecture = detectArchitecture(c, file);
  const fields = new FieldReader(c, file);
  refuseUnsupportedComputation(c, file);
  refuseOtherMoe(architecture, c, file);

  const hiddenSize = fields.positiveInt('hidden_size');
  const numLayers = fields.positiveInt('num_hidden_layers');
  const numHeads = fields.positiveInt('num_attention_heads');
  const numKvHeads = fields.optionalPositiveInt('num_key_value_heads') ?? numHeads;
  const explicitHeadDim = fields.optionalPositiveInt('head_dim');
  if (explicitHeadDim === undefined && hiddenSize % numHeads !== 0) {
    throw new InputError(
      `${file}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} (and no head_dim is given)`,
      { file },
    );
  }
  if (numHeads % numKvHeads !== 0) {
    throw new InputError(`${file}: num_attention_heads ${numHeads} is not divisible by num_key_value_heads ${numKvHeads}`, { file });
  }
  const ropeParameters = c['rope_parameters'];
  const ropeParams = ropeParameters !== null && typeof ropeParameters === 'object' ? (ropeParameters as Json) : null;

  return {
    architecture,
    vocabSize: fields.positiveInt('vocab_size'),
    hiddenSize,
    intermediateSize: fields.positiveInt('intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim: explicitHeadDim ?? hiddenSize / numHeads,
    rmsNormEps: fields.optionalPositiveNumber('rms_norm_eps') ?? DEFAULT_RMS_NORM_EPS(architecture),
    ropeTheta: fields.optionalPositiveNumber('rope_theta') ??
      (ropeParams ? new FieldReader(ropeParams, file, `${file} rope_parameters`).optionalPositiveNumber('rope_theta') : undefined) ??
      DEFAULT_ROPE_THETA(architecture),
    ropeScaling: parseRopeScaling(c['rope_scaling'] ?? ropeParams, file),
    maxPositionEmbeddings: fields.optionalPositiveInt('max_position_embeddings') ?? DEFAULT_MAX_POSITIONS[architecture],
    tieWordEmbeddings: fields.optionalBool('tie_word_embeddings') ?? false,
    bias: parseBiases(architecture, fields),
    slidingWindow: parseSlidingWindow(architecture, fields, numLayers, c, file),
    ...(architecture === 'mixtral' ? { moe: parseMoe(fields, file) } : {}),
    bosTokenId: fields.optionalTokenId('bos_token_id') ?? null,
    eosTokenIds: fields.tokenIdList('eos_token_id'),
  };
}

function detectArchitecture(c: Json, file: string): Architecture {
  const modelType = c['model_type'];
  if (typeof modelType === 'string') {
    if ((SUPPORTED_ARCHITECTURES as readonly string[]).includes(modelType)) return modelType as Architecture;
    throw unsupported(`model_type "${modelType}"`, file, OTHER_MOE_TYPES.includes(modelType));
  }
  const archs = c['architectures'];
  if (Array.isArray(archs) && typeof archs[0] === 'string') {
    const arch = ARCHITECTURE_CLASSES[archs[0]];
    if (arch) return arch;
    throw unsupported(`architecture "${archs[0]}"`, file, /moe/i.test(archs[0]));
  }
  throw new InputError(
    `${file}: has neither "model_type" nor "architectures"; supported model types: ${SUPPORTED_ARCHITECTURES.join(', ')}`,
    { file },
  );
}

function unsupported(what: string, file: string, otherMoe: boolean): InputError {
  const moe = otherMoe
    ? ' It is a mixture-of-experts variant (shared experts or another router) intscale does not implement; the mixture of experts supported is mixtral\'s.'
    : '';
  return new InputError(
    `${file}: ${what} is not supported; supported: ${SUPPORTED_ARCHITECTURES.join(', ')} ` +
      `(${Object.keys(ARCHITECTURE_CLASSES).join(', ')}).${moe}`,
    { file },
  );
}

/**
 * mixtral: num_local_experts experts (default 8; num_experts is read as its other name), num_experts_per_tok
 * of them per token (default 2, at most the number of experts). router_jitter_noise is ignored, as
 * transformers does outside training.
 */
function parseMoe(fields: FieldReader, file: string): MoeConfig {
  const local = fields.optionalPositiveInt('num_local_experts');
  const alias = fields.optionalPositiveInt('num_experts');
  if (local !== undefined && alias !== undefined && local !== alias) {
    throw new InputError(`${file}: "num_local_experts" ${local} and "num_experts" ${alias} disagree`, { file });
  }
  const numExperts = local ?? alias ?? 8;
  const topK = fields.optionalPositiveInt('num_experts_per_tok') ?? 2;
  if (topK > numExperts) {
    throw new InputError(`${file}: "num_experts_per_tok" ${topK} is more than "num_local_experts" ${numExperts}`, { file });
  }
  return { numExperts, topK };
}

/** A field of a mixture-of-experts variant this forward pass does not implement: an error naming it. */
function refuseOtherMoe(architecture: Architecture, c: Json, file: string): void {
  const fields = architecture === 'mixtral' ? UNSUPPORTED_MOE_FIELDS : [...UNSUPPORTED_MOE_FIELDS, ...EXPERT_FIELDS];
  for (const key of fields) {
    const v = c[key];
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) continue;
    throw new InputError(
      `${file}: "${key}" ${JSON.stringify(v)} belongs to a mixture-of-experts variant intscale does not implement ` +
        `(${architecture === 'mixtral' ? 'shared experts or dense layers between the sparse ones' : `experts on a ${architecture} model`}); ` +
        'the mixture of experts supported is mixtral\'s (model_type "mixtral": num_local_experts, num_experts_per_tok)',
      { file },
    );
  }
}

/** The biases transformers' modeling code builds: see LinearBiases. */
function parseBiases(architecture: Architecture, fields: FieldReader): LinearBiases {
  switch (architecture) {
    case 'llama': {
      const attention = fields.optionalBool('attention_bias') ?? false;
      return { qkv: attention, o: attention, mlp: fields.optionalBool('mlp_bias') ?? false };
    }
    case 'qwen2': return { qkv: true, o: false, mlp: false };
    case 'mistral':
    case 'mixtral': return NO_BIASES;
  }
}

/** Activations transformers' ACT2FN maps to SiLU, the only one the SwiGLU MLP here computes. */
const SILU_NAMES = ['silu', 'swish'];

/**
 * Config fields that would change the computation in ways this forward pass does not implement:
 * an error naming the field, never a silent default.
 */
function refuseUnsupportedComputation(c: Json, file: string): void {
  const act = c['hidden_act'];
  if (act !== undefined && act !== null && !SILU_NAMES.includes(act as string)) {
    throw new InputError(`${file}: "hidden_act" ${JSON.stringify(act)} is not supported; the MLP computes silu (SwiGLU)`, { file });
  }
  for (const key of ['attn_logit_softcapping', 'final_logit_softcapping']) {
    if (c[key] !== undefined && c[key] !== null) {
      throw new InputError(`${file}: "${key}" ${JSON.stringify(c[key])} is not supported (logit soft-capping is not implemented)`, { file });
    }
  }
  const quant = c['quantization_config'];
  if (quant !== undefined && quant !== null) {
    const method = typeof quant === 'object' ? (quant as Json)['quant_method'] : undefined;
    if (method !== 'intscale') {
      throw new InputError(
        `${file}: "quantization_config" says the weights are already quantized with ${JSON.stringify(method ?? quant)}; ` +
          'only float checkpoints (f32/f16/bf16) and intscale checkpoints load: quantize the float original with `intscale quantize`',
        { file },
      );
    }
  }
}

/**
 * mistral: one window for every layer. qwen2: layer_types (or, without it, use_sliding_window and
 * max_window_layers as transformers derives them) says which layers slide; layers that differ are
 * not supported.
 */
function parseSlidingWindow(architecture: Architecture, fields: FieldReader, layers: number, c: Json, file: string): number | null {
  if (architecture === 'llama') return null;
  if (architecture === 'mistral' || architecture === 'mixtral') return fields.optionalPositiveInt('sliding_window') ?? null;
  const window = fields.optionalBool('use_sliding_window') === true ? fields.optionalPositiveInt('sliding_window') ?? null : null;
  const types = c['layer_types'];
  let sliding: boolean[];
  if (types === undefined || types === null) {
    const full = fields.optionalNumber('max_window_layers') ?? 28;
    sliding = Array.from({ length: layers }, (_, i) => window !== null && i >= full);
  } else {
    if (!Array.isArray(types) || types.length !== layers || types.some((t) => t !== 'full_attention' && t !== 'sliding_attention')) {
      throw new InputError(`${file}: "layer_types" must list "full_attention" or "sliding_attention" for each of the ${layers} layers`, { file });
    }
    sliding = types.map((t) => t === 'sliding_attention');
  }
  if (sliding.every((s) => !s)) return null;
  if (window === null) {
    throw new InputError(`${file}: "layer_types" has sliding_attention layers but no sliding window is set (use_sliding_window, sliding_window)`, { file });
  }
  if (!sliding.every((s) => s)) {
    const first = sliding.indexOf(true);
    throw new InputError(
      `${file}: sliding-window attention on only some layers (from layer ${first} of ${layers}, max_window_layers) is not supported; ` +
        'every layer must use the same attention',
      { file },
    );
  }
  return window;
}

function parseRopeScaling(value: unknown, file: string): RopeScaling {
  if (value === null || value === undefined) return { kind: 'none' };
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InputError(`${file}: rope_scaling must be an object or null, got ${JSON.stringify(value)}`, { file });
  }
  const r = new FieldReader(value as Json, file, `${file} rope_scaling`);
  const type = (value as Json)['rope_type'] ?? (value as Json)['type'];
  const partial = (value as Json)['partial_rotary_factor'];
  if (partial !== undefined && partial !== null && partial !== 1) {
    throw new InputError(`${file}: rope "partial_rotary_factor" ${JSON.stringify(partial)} is not supported (rotary embedding covers the whole head)`, { file });
  }
  switch (type) {
    case undefined:
    case 'default':
      return { kind: 'none' };
    case 'linear':
      return { kind: 'linear', factor: r.positiveNumber('factor') };
    case 'llama3':
      return {
        kind: 'llama3',
        factor: r.positiveNumber('factor'),
        lowFreqFactor: r.positiveNumber('low_freq_factor'),
        highFreqFactor: r.positiveNumber('high_freq_factor'),
        originalMaxPositionEmbeddings: r.positiveInt('original_max_position_embeddings'),
      };
    default:
      throw new InputError(
        `${file}: rope_scaling type ${JSON.stringify(type)} is not supported; supported: default, linear, llama3`,
        { file },
      );
  }
}
