import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../../src/model/generate.js';
import { loadModel } from '../../src/backends/load.js';
import { sampleToken, seededRandom } from '../../src/model/sampling.js';
import { fixturePath, repoPath } from '../helpers/paths.js';
import { readReference } from '../helpers/reference.js';

const dirs = ['llama', 'mistral', 'qwen2', 'llama-attention-bias', 'llama-mlp-bias', 'mixtral', 'mixtral-window'].map(fixturePath);
for (const dir of [...dirs, repoPath('models/tiny-wikitext')]) {
  test(`greedy generation equals transformers' generate() on ${dir.split('/').pop()}`, () => {
    const { model } = loadModel(dir);
    const ref = readReference(dir);
    const streamed: number[] = [];
    const out = generate(model, ref.inputIds, {
      maxNewTokens: ref.greedy.length, temperature: 0, topP: 1, seed: 0, stopTokens: [], onToken: (t) => streamed.push(t),
    });
    assert.deepEqual(out.tokens, ref.greedy);
    assert.deepEqual(streamed, ref.greedy);
    assert.equal(out.stoppedBy, 'max-new-tokens');
  });
}

test('sampling with a seed repeats; a different seed differs; top-p keeps only the nucleus', () => {
  const logits = new Float32Array([2, 1.5, 1, 0.5, 0, -1, -2, -3]);
  const draw = (seed: number, topP: number) => {
    const r = seededRandom(seed);
    return Array.from({ length: 200 }, () => sampleToken(logits, { temperature: 1, topP }, r));
  };
  assert.deepEqual(draw(7, 0.9), draw(7, 0.9));
  assert.notDeepEqual(draw(7, 0.9), draw(8, 0.9));
  const narrow = new Set(draw(3, 0.6)); // p0 ≈ 0.415, p0 + p1 ≈ 0.667: the nucleus is {0, 1}
  assert.deepEqual([...narrow].sort(), [0, 1]);
  assert.ok(new Set(draw(3, 1)).size > 4);
});

test('stop tokens end generation and are reported', () => {
  const { model } = loadModel(fixturePath('llama'));
  const ref = readReference(fixturePath('llama'));
  const stop = ref.greedy[2];
  const out = generate(model, ref.inputIds, { maxNewTokens: 8, temperature: 0, topP: 1, seed: 0, stopTokens: [stop] });
  assert.equal(out.stoppedBy, 'stop-token');
  assert.deepEqual(out.tokens, ref.greedy.slice(0, ref.greedy.indexOf(stop) + 1));
});
