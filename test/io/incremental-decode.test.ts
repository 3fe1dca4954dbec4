import assert from 'node:assert/strict';
import { test } from 'node:test';
import { incrementalDecoder } from '../../src/io/incremental-decode.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { fixturePath, repoPath } from '../helpers/paths.js';
import { freshSeed, makeRng } from '../helpers/random.js';

test('the pieces joined are the whole decode (byte-level BPE and sentencepiece-style tokenizers, random ids, text with multi-byte characters)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const dir of [repoPath('models/tiny-wikitext'), fixturePath('qwen2'), fixturePath('llama')]) {
    const tokenizer = loadTokenizer(dir);
    const vocab = tokenizer.vocabSize;
    const sequences = [
      tokenizer.encode('Café naïve — 東京 🙂 "quotes", it\'s done.', { addSpecialTokens: false }),
      Array.from({ length: 60 }, () => Math.floor(rng.uniform() * vocab)),
    ];
    for (const ids of sequences) {
      const d = incrementalDecoder(tokenizer);
      let joined = '';
      for (const id of ids) joined += d.push(id);
      joined += d.finish();
      const whole = tokenizer.decode(ids, { skipSpecialTokens: true, cleanUpSpaces: false });
      assert.equal(joined, whole, `seed ${seed}, ${dir}, ids ${ids.slice(0, 8).join(',')}…`);
      assert.equal(d.text(), whole);
    }
  }
});
