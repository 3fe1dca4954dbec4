import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { negativeLogLikelihood, perplexity } from '../../src/eval/perplexity.js';
import { loadModel } from '../../src/backends/load.js';
import { repoPath, sharedPath } from '../helpers/paths.js';
import { freshSeed, makeRng } from '../helpers/random.js';
import { modelEngine } from '../../src/model/engine.js';

test('negative log-likelihood is −log softmax, stable for large logits', () => {
  const logits = new Float32Array([1000, 1001, 999]);
  const z = Math.exp(-1) + 1 + Math.exp(-2);
  assert.ok(Math.abs(negativeLogLikelihood(logits, 0, 3, 1) - Math.log(z)) < 1e-12);
  assert.ok(Math.abs(negativeLogLikelihood(logits, 0, 3, 2) - (Math.log(z) + 2)) < 1e-12);
});

test('too short a text, or a bad seq-len, is a clear error', () => {
  const { model } = loadModel(repoPath('models/tiny-wikitext'));
  assert.throws(() => perplexity(model, [0, 5, 6], { seqLen: 8 }), /the text has 3 tokens, fewer than one window of 8: use a longer text or a smaller seq-len/);
  assert.throws(() => perplexity(model, [0], { seqLen: 8 }), /the text has 1 token, fewer than one window of 8/);
  assert.throws(() => perplexity(model, [0, 5, 6], { seqLen: 1 }), /seq-len must be an integer ≥ 2/);
  // longer than the model's context (512): never a silent number (issue 23 measured 80.53 where 41.37 is right)
  const tokens = Array.from({ length: 2048 }, (_, i) => i % 2000);
  assert.throws(() => perplexity(model, tokens, { seqLen: 2048, maxWindows: 1 }),
    /seq-len 2048 is longer than the model's context of 512 positions \(max_position_embeddings\); use a seq-len ≤ 512/);
});

const wikitext = sharedPath('data/wikitext-2/test.txt');
test('WikiText-2 perplexity of the embedded model equals transformers\' (16 windows of 128)', { skip: wikitext === null ? '../shared/data/wikitext-2 is absent' : false }, () => {
  const { model, tokenizer } = loadModel(repoPath('models/tiny-wikitext'));
  const expected = JSON.parse(fs.readFileSync(repoPath('models/tiny-wikitext/reference_perplexity.json'), 'utf8')).seq128_first16;
  // the first 16·128 tokens only depend on the start of the file: tokenize a prefix, not 1.2 MB
  const text = fs.readFileSync(wikitext!, 'utf8').slice(0, 40000);
  const tokens = tokenizer!.encode(text);
  let calls = 0;
  const r = perplexity(model, tokens, { seqLen: 128, maxWindows: 16, onWindow: () => calls++ });
  assert.equal(calls, 16);
  assert.equal(r.tokensPredicted, expected.tokens_scored);
  assert.ok(Math.abs(r.perplexity - expected.ppl) / expected.ppl < 1e-4, `ours ${r.perplexity} vs transformers ${expected.ppl}`);
});

test('llama.cpp protocol: BOS first in each window, only its second half scored (checked against logits fed token by token)', () => {
  const { model } = loadModel(repoPath('models/tiny-wikitext'));
  const seed = freshSeed();
  const rng = makeRng(seed);
  const seqLen = 16, windows = 2, bos = 0, vocab = model.config.vocabSize;
  const tokens = Array.from({ length: windows * seqLen + 5 }, () => rng.int(2, vocab - 1));
  const r = perplexity(model, tokens, { seqLen, protocol: 'llama.cpp', bos });
  assert.equal(r.windows, windows);
  assert.equal(r.tokensPredicted, windows * (seqLen - 1 - seqLen / 2));
  let nll = 0;
  for (let w = 0; w < windows; w++) {
    const window = tokens.slice(w * seqLen, (w + 1) * seqLen);
    window[0] = bos;
    const seq = modelEngine(model).open(seqLen);
    for (let j = 0; j < seqLen - 1; j++) {
      const logits = seq.feed([window[j]!]);
      if (j >= seqLen / 2) nll += negativeLogLikelihood(logits, 0, vocab, window[j + 1]!);
    }
    seq.release();
  }
  const want = nll / r.tokensPredicted;
  assert.ok(Math.abs(r.meanNll - want) <= 1e-5 * want, `seed ${seed}: ${r.meanNll} vs ${want}`);
  const gptq = perplexity(model, tokens, { seqLen });
  assert.notEqual(gptq.meanNll, r.meanNll, 'the protocols score different tokens');
  assert.throws(() => perplexity(model, tokens, { seqLen, protocol: 'llama.cpp', bos: null }), /names no BOS token/);
});
