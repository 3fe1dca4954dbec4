import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModel } from '../../src/backends/load.js';
import { asEngine, modelEngine } from '../../src/model/engine.js';
import { forwardLastLogits } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { generate } from '../../src/model/generate.js';
import { fixturePath } from '../helpers/paths.js';
import { readReference } from '../helpers/reference.js';

test('modelEngine: a sequence fed a prompt then tokens gives the forward pass\'s logits; generate takes the model or its engine alike', () => {
  const dir = fixturePath('qwen2');
  const { model } = loadModel(dir);
  const ids = readReference(dir).inputIds;
  const engine = modelEngine(model);
  assert.equal(asEngine(model).config, model.config);
  assert.equal(asEngine(engine), engine);
  const seq = engine.open(ids.length + 2);
  const cache = createKvCache(model.config, ids.length + 2, model.backend);
  assert.deepEqual(seq.feed(ids), forwardLastLogits(model, ids, cache));
  assert.deepEqual(seq.feed([3]), forwardLastLogits(model, [3], cache));
  assert.equal(seq.length, ids.length + 1);
  assert.equal(seq.capacity, ids.length + 2);
  assert.throws(() => seq.feed([1, 2]), /holds \d+ positions; feeding 2 more/);
  seq.release();
  const options = { maxNewTokens: 6, temperature: 0, topP: 1, seed: 0, stopTokens: [] };
  assert.deepEqual(generate(engine, ids, options).tokens, generate(model, ids, options).tokens);
});
