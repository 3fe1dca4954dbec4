/**
 * Hugging Face config.json → ModelConfig, with transformers' defaults for llama, mistral and
 * qwen2, and errors that name the field and what is wrong with it.
 */
import { InputError } from '../errors.js';
import type { Architecture, ModelConfig, RopeScaling } from '../model/config.js';
import { FieldReader, type Json } from './json-fields.js';

export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = ['llama', 'mistral', 'qwen2'];

const ARCHITECTURE_CLASSES: Readonly<Record<string, Architecture>> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};

/** transformers' default max_position_embeddings per architecture. */
const DEFAULT_MAX_POSITIONS: Readonly<Record<Architecture, number>> = {
  llama: 2048,
  mistral: 4096 * 32,
  qwen2: 32768,
};

/** Parse a config.json already read as JSON; file is used in error messages. */
export function parseHfConfig(json: unknown, file: string): ModelConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InputError(`${file}: expected a JSON object`, { file });
  }
  const c = json as Json;
  const architecture = detectArchitecture(c, file);
  const fields = new FieldReader(c, file);

  const hiddenSize = fields.positiveInt('hidden_size');
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
    numLayers: fields.positiveInt('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim: explicitHeadDim ?? hiddenSize / numHeads,
    rmsNormEps: fields.optionalPositiveNumber('rms_norm_eps') ?? 1e-6,
    ropeTheta: fields.optionalPositiveNumber('rope_theta') ??
      (ropeParams ? new FieldReader(ropeParams, file, `${file} rope_parameters`).optionalPositiveNumber('rope_theta') : undefined) ??
      10000,
    ropeScaling: parseRopeScaling(c['rope_scaling'] ?? ropeParams, file),
    maxPositionEmbeddings: fields.optionalPositiveInt('max_position_embeddings') ?? DEFAULT_MAX_POSITIONS[architecture],
    tieWordEmbeddings: fields.optionalBool('tie_word_embeddings') ?? false,
    attentionBias: architecture === 'qwen2' ? true : architecture === 'llama' ? (fields.optionalBool('attention_bias') ?? false) : false,
    slidingWindow: parseSlidingWindow(architecture, fields),
    bosTokenId: fields.optionalTokenId('bos_token_id') ?? null,
    eosTokenIds: fields.tokenIdList('eos_token_id'),
  };
}

function detectArchitecture(c: Json, file: string): Architecture {
  const modelType = c['model_type'];
  if (typeof modelType === 'string') {
    if ((SUPPORTED_ARCHITECTURES as readonly string[]).includes(modelType)) return modelType as Architecture;
    throw unsupported(`model_type "${modelType}"`, file);
  }
  const archs = c['architectures'];
  if (Array.isArray(archs) && typeof archs[0] === 'string') {
    const arch = ARCHITECTURE_CLASSES[archs[0]];
    if (arch) return arch;
    throw unsupported(`architecture "${archs[0]}"`, file);
  }
  throw new InputError(
    `${file}: has neither "model_type" nor "architectures"; supported model types: ${SUPPORTED_ARCHITECTURES.join(', ')}`,
    { file },
  );
}

function unsupported(what: string, file: string): InputError {
  return new InputError(
    `${file}: ${what} is not supported; supported: ${SUPPORTED_ARCHITECTURES.join(', ')} ` +
      `(${Object.keys(ARCHITECTURE_CLASSES).join(', ')}). Mixtral/MoE is planned but not yet supported.`,
    { file },
  );
}

function parseSlidingWindow(architecture: Architecture, fields: FieldReader): number | null {
  if (architecture === 'llama') return null;
  if (architecture === 'qwen2' && fields.optionalBool('use_sliding_window') !== true) return null;
  return fields.optionalPositiveInt('sliding_window') ?? null;
}

function parseRopeScaling(value: unknown, file: string): RopeScaling {
  if (value === null || value === undefined) return { kind: 'none' };
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InputError(`${file}: rope_scaling must be an object or null, got ${JSON.stringify(value)}`, { file });
  }
  const r = new FieldReader(value as Json, file, `${file} rope_scaling`);
  const type = (value as Json)['rope_type'] ?? (value as Json)['type'];
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
