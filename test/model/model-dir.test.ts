import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openModelDir } from '../../src/model/model-dir.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { tempDir, throwsInput, writeJson } from '../io/temp-dir.js';

const config = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 16, hidden_size: 8, intermediate_size: 16,
  num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, tie_word_embeddings: true, eos_token_id: 3,
};

test('openModelDir: config, weights, generation config, tokenizer path', () => {
  const dir = tempDir();
  writeJson(path.join(dir, 'config.json'), config);
  writeSafetensors(path.join(dir, 'model.safetensors'), [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [16, 8], data: new Float32Array(128).fill(0.25) },
  ]);
  const m = openModelDir(dir);
  assert.equal(m.dir, dir);
  assert.equal(m.config.architecture, 'qwen2');
  assert.deepEqual(m.config.bias, { qkv: true, o: false, mlp: false });
  assert.equal(m.config.headDim, 4);
  assert.equal(m.rawConfig['model_type'], 'qwen2');
  assert.equal(m.generation, null);
  assert.equal(m.tokenizerPath, null);
  assert.equal(m.weights.float32('model.embed_tokens.weight', [16, 8])[127], 0.25);
  m.weights.close();

  writeJson(path.join(dir, 'generation_config.json'), { eos_token_id: [3, 4] });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  const m2 = openModelDir(dir);
  assert.deepEqual(m2.generation?.eosTokenIds, [3, 4]);
  assert.equal(m2.tokenizerPath, path.join(dir, 'tokenizer.json'));
  m2.weights.close();
});

test('openModelDir errors: missing, not a directory, no config, bad JSON, bad config, no safetensors', () => {
  const root = tempDir();
  throwsInput(() => openModelDir(path.join(root, 'nope')), 'nope', 'not found');
  const file = path.join(root, 'file.txt');
  fs.writeFileSync(file, 'x');
  throwsInput(() => openModelDir(file), 'file.txt', 'expected a model directory');
  const dir = path.join(root, 'model');
  fs.mkdirSync(dir);
  throwsInput(() => openModelDir(dir), 'no config.json');
  fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": "llama",');
  throwsInput(() => openModelDir(dir), 'config.json', 'not valid JSON');
  writeJson(path.join(dir, 'config.json'), { ...config, model_type: 'qwen2_moe' });
  throwsInput(() => openModelDir(dir), 'config.json', 'qwen2_moe');
  writeJson(path.join(dir, 'config.json'), config);
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), '');
  throwsInput(() => openModelDir(dir), 'no .safetensors', 'pytorch_model.bin', 'not supported', 'save_pretrained');
});
