/**
 * The forward pass against transformers' own logits (float32, eager attention, CPU) saved
 * beside each fixture by scripts/gpu/make_fixtures.py: prefill of the whole prompt, then
 * token-by-token decode through the KV cache, both within 1e-4 relative.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardHidden, logitsOf } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { loadModel } from '../../src/backends/load.js';
import { fixturePath, repoPath } from '../helpers/paths.js';
import { readReference } from '../helpers/reference.js';
import { relativeError } from '../helpers/compare.js';


const cases = [
  ['llama (bf16, sharded, llama3 rope, GQA)', fixturePath('llama')],
  ['mistral (f16, sliding window 8)', fixturePath('mistral')],
  ['qwen2 (f32, q/k/v bias, tied embeddings)', fixturePath('qwen2')],
  ['llama attention_bias (bf16, q/k/v/o biases, tied embeddings)', fixturePath('llama-attention-bias')],
  ['llama mlp_bias (f16, gate/up/down biases, head_dim 24 ≠ hidden/heads)', fixturePath('llama-mlp-bias')],
  ['tiny-wikitext (the embedded trained model)', repoPath('models/tiny-wikitext')],
  ['tiny-wikitext-moe (a small Mixtral trained the same way: top-2 of 4 experts, GQA 8/4)', repoPath('models/tiny-wikitext-moe')],
  ['mixtral (top-2 of 4 experts, GQA 4/2, bf16, 3 shards with index)', fixturePath('mixtral')],
  ['mixtral-window (top-2 of 8 experts, sliding window 8, f16)', fixturePath('mixtral-window')],
] as const;

for (const [label, dir] of cases) {
  test(`${label}: prefill and decode logits match transformers within 1e-4`, () => {
    const { model } = loadModel(dir);
    const ref = readReference(dir);
    const t = ref.inputIds.length;
    const vocab = model.config.vocabSize;
    assert.equal(ref.logits.length, t * vocab);

    const prefillCache = createKvCache(model.config, t, model.backend);
    const hidden = forwardHidden(model, ref.inputIds, prefillCache);
    const prefill = logitsOf(model, hidden, 0, t);
    const prefillErr = relativeError(prefill, ref.logits);
    assert.ok(prefillErr < 1e-4, `prefill relative error ${prefillErr}`);
    if (process.env['INTSCALE_REPORT_ERRORS']) console.log(`${label}: prefill relative error ${prefillErr.toExponential(2)}`);

    const cache = createKvCache(model.config, t, model.backend);
    for (let i = 0; i < t; i++) {
      const h = forwardHidden(model, [ref.inputIds[i]], cache);
      const row = logitsOf(model, h, 0, 1);
      const err = relativeError(row, ref.logits.subarray(i * vocab, (i + 1) * vocab));
      assert.ok(err < 1e-4, `decode step ${i} relative error ${err}`);
    }
  });
}
