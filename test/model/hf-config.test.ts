import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHfConfig } from '../../src/model/hf-config.js';
import { throwsInput } from '../io/temp-dir.js';

const llama3 = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 128256, hidden_size: 2048,
  intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8,
  rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 131072, tie_word_embeddings: true,
  attention_bias: false, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  torch_dtype: 'bfloat16',
};

test('Llama 3.2 1B: GQA, llama3 rope scaling, tied embeddings, eos list', () => {
  const c = parseHfConfig(llama3, 'config.json');
  assert.deepEqual(c, {
    architecture: 'llama', vocabSize: 128256, hiddenSize: 2048, intermediateSize: 8192, numLayers: 16,
    numHeads: 32, numKvHeads: 8, headDim: 64, rmsNormEps: 1e-5, ropeTheta: 500000,
    ropeScaling: { kind: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    maxPositionEmbeddings: 131072, tieWordEmbeddings: true, bias: { qkv: false, o: false, mlp: false }, slidingWindow: null,
    bosTokenId: 128000, eosTokenIds: [128001, 128008, 128009],
  });
});

test('defaults as transformers: kv heads, head_dim, eps, theta, untied, no scaling', () => {
  const c = parseHfConfig(
    { model_type: 'llama', vocab_size: 32000, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, eos_token_id: 2 },
    'config.json',
  );
  assert.equal(c.numKvHeads, 4);
  assert.equal(c.headDim, 16);
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.tieWordEmbeddings, false);
  assert.deepEqual(c.ropeScaling, { kind: 'none' });
  assert.equal(c.maxPositionEmbeddings, 2048);
  assert.equal(c.bosTokenId, null);
  assert.deepEqual(c.eosTokenIds, [2]);
  assert.deepEqual(c.bias, { qkv: false, o: false, mlp: false });
});

const small = { vocab_size: 100, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 };

test('qwen2: q/k/v bias always (never o or the MLP), sliding window on the layers transformers gives it', () => {
  const q = parseHfConfig({ ...small, model_type: 'qwen2', sliding_window: 4096, use_sliding_window: false }, 'config.json');
  assert.equal(q.architecture, 'qwen2');
  assert.deepEqual(q.bias, { qkv: true, o: false, mlp: false });
  assert.equal(q.slidingWindow, null);
  assert.equal(q.maxPositionEmbeddings, 32768);
  const sliding = { ...small, model_type: 'qwen2', sliding_window: 4096, use_sliding_window: true };
  // transformers slides only layers ≥ max_window_layers (default 28): none of these 2
  assert.equal(parseHfConfig(sliding, 'c').slidingWindow, null);
  assert.equal(parseHfConfig({ ...sliding, max_window_layers: 0 }, 'c').slidingWindow, 4096);
  assert.equal(parseHfConfig({ ...sliding, layer_types: ['sliding_attention', 'sliding_attention'] }, 'c').slidingWindow, 4096);
  throwsInput(() => parseHfConfig({ ...sliding, max_window_layers: 1 }, 'c.json'), /sliding-window attention on only some layers \(from layer 1 of 2/);
  throwsInput(() => parseHfConfig({ ...sliding, layer_types: ['full_attention'] }, 'c.json'), /"layer_types" must list .* each of the 2 layers/);
});

test('llama biases as transformers builds them: attention_bias → q/k/v/o, mlp_bias → gate/up/down; mistral none', () => {
  const llama = { ...small, model_type: 'llama' };
  assert.deepEqual(parseHfConfig({ ...llama, attention_bias: true }, 'c').bias, { qkv: true, o: true, mlp: false });
  assert.deepEqual(parseHfConfig({ ...llama, mlp_bias: true }, 'c').bias, { qkv: false, o: false, mlp: true });
  assert.deepEqual(parseHfConfig({ ...small, model_type: 'mistral' }, 'c').bias, { qkv: false, o: false, mlp: false });
  throwsInput(() => parseHfConfig({ ...llama, mlp_bias: 'yes' }, 'c.json'), /c\.json: "mlp_bias" must be true or false, got "yes"/);
});

test('config fields that change the computation and are not implemented are errors naming the field', () => {
  const llama = { ...small, model_type: 'llama' };
  assert.equal(parseHfConfig({ ...llama, hidden_act: 'silu' }, 'c').architecture, 'llama');
  assert.equal(parseHfConfig({ ...llama, hidden_act: 'swish', attn_logit_softcapping: null }, 'c').architecture, 'llama');
  throwsInput(() => parseHfConfig({ ...llama, hidden_act: 'gelu' }, 'c.json'), /c\.json: "hidden_act" "gelu" is not supported/);
  throwsInput(() => parseHfConfig({ ...llama, attn_logit_softcapping: 50 }, 'c.json'), /"attn_logit_softcapping" 50 is not supported/);
  throwsInput(() => parseHfConfig({ ...llama, final_logit_softcapping: 30 }, 'c.json'), /"final_logit_softcapping" 30 is not supported/);
  throwsInput(() => parseHfConfig({ ...llama, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'c.json'), /rope_scaling type "yarn" is not supported/);
  throwsInput(() => parseHfConfig({ ...llama, rope_parameters: { rope_type: 'default', partial_rotary_factor: 0.5 } }, 'c.json'),
    /"partial_rotary_factor" 0\.5 is not supported/);
  throwsInput(() => parseHfConfig({ ...llama, quantization_config: { quant_method: 'gptq', bits: 4 } }, 'c.json'),
    /"quantization_config" says the weights are already quantized with "gptq"/);
  assert.equal(parseHfConfig({ ...llama, quantization_config: { quant_method: 'intscale' } }, 'c').architecture, 'llama');
});

test('mistral sliding window (null when absent), explicit head_dim, architectures fallback', () => {
  const m = parseHfConfig({ ...small, architectures: ['MistralForCausalLM'], sliding_window: 4096, head_dim: 32 }, 'config.json');
  assert.equal(m.architecture, 'mistral');
  assert.equal(m.slidingWindow, 4096);
  assert.equal(m.headDim, 32);
  assert.equal(parseHfConfig({ ...small, model_type: 'mistral', sliding_window: null }, 'c').slidingWindow, null);
});

test('rope scaling: linear, default, transformers v5 rope_parameters', () => {
  assert.deepEqual(parseHfConfig({ ...small, model_type: 'llama', rope_scaling: { type: 'linear', factor: 4 } }, 'c').ropeScaling, { kind: 'linear', factor: 4 });
  assert.deepEqual(parseHfConfig({ ...small, model_type: 'llama', rope_scaling: { rope_type: 'default' } }, 'c').ropeScaling, { kind: 'none' });
  const v5 = parseHfConfig({ ...small, model_type: 'llama', rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }, 'c');
  assert.equal(v5.ropeTheta, 1e6);
  assert.deepEqual(v5.ropeScaling, { kind: 'none' });
});

test('errors name the file, the field and the problem', () => {
  throwsInput(() => parseHfConfig({ ...small, model_type: 'qwen2_moe' }, 'm/config.json'), 'm/config.json', 'qwen2_moe', 'llama, mistral, qwen2, mixtral', 'mixture-of-experts variant');
  throwsInput(() => parseHfConfig({ ...small, model_type: 'gpt2' }, 'config.json'), '"gpt2"', 'not supported');
  throwsInput(() => parseHfConfig({ ...small, architectures: ['Phi3ForCausalLM'] }, 'config.json'), 'Phi3ForCausalLM');
  throwsInput(() => parseHfConfig(small, 'config.json'), 'neither "model_type" nor "architectures"');
  throwsInput(() => parseHfConfig([], 'config.json'), 'JSON object');
  throwsInput(() => parseHfConfig({ ...small, model_type: 'llama', hidden_size: 0 }, 'config.json'), '"hidden_size"', 'positive integer', 'got 0');
  throwsInput(() => parseHfConfig({ ...small, model_type: 'llama', num_hidden_layers: 2.5 }, 'config.json'), '"num_hidden_layers"', '2.5');
  const { vocab_size: _, ...noVocab } = small;
  throwsInput(() => parseHfConfig({ ...noVocab, model_type: 'llama' }, 'config.json'), '"vocab_size"', 'missing');
  throwsInput(() => parseHfConfig({ ...small, model_type: 'llama', hidden_size: 66 }, 'config.json'), 'hidden_size 66', 'num_attention_heads 4');
  throwsInput(() => parseHfConfig({ ...small, model_type: 'llama', num_key_value_heads: 3 }, 'config.json'), 'num_key_value_heads 3');
  throwsInput(() => parseHfConfig({ ...small, model_type: 'llama', rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'config.json'), '"yarn"', 'linear, llama3');
  throwsInput(() => parseHfConfig({ ...small, model_type: 'llama', rope_scaling: { type: 'dynamic', factor: 2 } }, 'config.json'), '"dynamic"');
  throwsInput(
    () => parseHfConfig({ ...small, model_type: 'llama', rope_scaling: { rope_type: 'llama3', factor: 8 } }, 'config.json'),
    'rope_scaling', '"low_freq_factor"',
  );
  throwsInput(() => parseHfConfig({ ...small, model_type: 'llama', eos_token_id: ['x'] }, 'config.json'), '"eos_token_id"');
  throwsInput(() => parseHfConfig({ ...small, model_type: 'llama', tie_word_embeddings: 'yes' }, 'config.json'), '"tie_word_embeddings"');
});

const mixtral = {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, num_local_experts: 8, num_experts_per_tok: 2,
  max_position_embeddings: 32768, rms_norm_eps: 1e-5, rope_theta: 1e6, sliding_window: null, router_jitter_noise: 0,
  output_router_logits: false, router_aux_loss_coef: 0.02, bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: false,
};

test('mixtral (Mixtral-8x7B config): experts and top-k, no biases, sliding window when set, MixtralConfig defaults', () => {
  const c = parseHfConfig(mixtral, 'config.json');
  assert.equal(c.architecture, 'mixtral');
  assert.deepEqual(c.moe, { numExperts: 8, topK: 2 });
  assert.deepEqual(c.bias, { qkv: false, o: false, mlp: false });
  assert.equal(c.slidingWindow, null);
  assert.equal(c.intermediateSize, 14336);
  assert.equal(parseHfConfig({ ...mixtral, sliding_window: 4096 }, 'config.json').slidingWindow, 4096);
  const bare = parseHfConfig({ model_type: 'mixtral', vocab_size: 100, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4 }, 'c.json');
  assert.deepEqual([bare.moe, bare.rmsNormEps, bare.ropeTheta, bare.maxPositionEmbeddings], [{ numExperts: 8, topK: 2 }, 1e-5, 1e6, 131072]);
  assert.equal(parseHfConfig(llama3, 'config.json').moe, undefined, 'dense models have no experts');
});

test('mixture-of-experts configs intscale does not run are errors naming the field or the model type', () => {
  throwsInput(() => parseHfConfig({ ...mixtral, num_experts_per_tok: 9 }, 'config.json'), 'config.json', '"num_experts_per_tok" 9 is more than "num_local_experts" 8');
  throwsInput(() => parseHfConfig({ ...mixtral, num_local_experts: 0 }, 'config.json'), 'num_local_experts');
  throwsInput(() => parseHfConfig({ ...mixtral, num_experts: 4 }, 'config.json'), '"num_local_experts" 8 and "num_experts" 4 disagree');
  assert.deepEqual(parseHfConfig({ ...mixtral, num_local_experts: undefined, num_experts: 4 }, 'config.json').moe, { numExperts: 4, topK: 2 }, 'num_experts: the other name');
  throwsInput(() => parseHfConfig({ ...mixtral, shared_expert_intermediate_size: 5632 }, 'config.json'), '"shared_expert_intermediate_size" 5632', 'shared experts');
  throwsInput(() => parseHfConfig({ ...mixtral, model_type: 'qwen2_moe' }, 'config.json'), 'model_type "qwen2_moe" is not supported', 'mixture-of-experts variant');
  throwsInput(() => parseHfConfig({ ...mixtral, model_type: undefined, architectures: ['Qwen3MoeForCausalLM'] }, 'config.json'), 'Qwen3MoeForCausalLM', 'mixture-of-experts variant');
  throwsInput(() => parseHfConfig({ ...llama3, num_local_experts: 4 }, 'config.json'), '"num_local_experts" 4', 'experts on a llama model');
  throwsInput(() => parseHfConfig({ ...llama3, model_type: 'gemma' }, 'config.json'), 'model_type "gemma" is not supported');
});
