import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadGenerationConfig, parseGenerationConfig } from '../../src/io/generation-config.js';
import { tempDir, throwsInput, writeJson } from './temp-dir.js';

test('generation_config.json: eos list, sampling settings; absent file → null', () => {
  const dir = tempDir();
  assert.equal(loadGenerationConfig(dir), null);
  writeJson(path.join(dir, 'generation_config.json'), {
    bos_token_id: 128000, eos_token_id: [128001, 128009], do_sample: true, temperature: 0.6, top_p: 0.9, transformers_version: '4.45.0',
  });
  assert.deepEqual(loadGenerationConfig(dir), {
    bosTokenId: 128000, eosTokenIds: [128001, 128009], doSample: true, temperature: 0.6, topP: 0.9, topK: null, maxNewTokens: null,
  });
  assert.deepEqual(parseGenerationConfig({ eos_token_id: 2, top_k: 20 }, 'g').eosTokenIds, [2]);
});

test('generation_config.json errors', () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'generation_config.json'), '{');
  throwsInput(() => loadGenerationConfig(dir), 'generation_config.json', 'not valid JSON');
  throwsInput(() => parseGenerationConfig({ top_p: 2 }, 'generation_config.json'), 'generation_config.json', '"top_p"', '2');
  throwsInput(() => parseGenerationConfig({ temperature: 'hot' }, 'generation_config.json'), '"temperature"', 'hot');
  throwsInput(() => parseGenerationConfig({ eos_token_id: -1 }, 'generation_config.json'), '"eos_token_id"');
});
