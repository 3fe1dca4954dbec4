/**
 * llama2.c checkpoints (io/llama2c.ts) exported by our test writer from the embedded model, with a
 * SentencePiece tokenizer.bin: the original's logits bit for bit (own and shared classifier), the
 * tokenizer encoding as run.c does (BOS, a leading space, merges by score, byte fallback), and bad
 * files named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { llama2cModelDir } from '../../src/io/llama2c.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { loadModel } from '../../src/backends/load.js';
import { modelEngine } from '../../src/model/engine.js';
import { repoPath } from '../helpers/paths.js';
import { writeLlama2cCheckpoint, writeLlama2cTokenizer } from './llama2c-writer.js';
import { rejectsInput, tempDir } from './temp-dir.js';
import { toySentencePiece } from './toy-sentencepiece.js';

const EMBEDDED = repoPath('models/tiny-wikitext');
const PROMPT = [1, 5, 200, 17, 1033, 9, 44];
const logitsOf = (dir: string) => modelEngine(loadModel(dir).model).open(16).feed(PROMPT);

const { pieces: PIECES, scores: SCORES } = toySentencePiece();

function exported(options: { shared?: boolean } = {}): { bin: string; tok: string } {
  const d = tempDir();
  const [bin, tok] = [path.join(d, 'model.bin'), path.join(d, 'tokenizer.bin')];
  writeLlama2cCheckpoint(EMBEDDED, bin, options);
  writeLlama2cTokenizer(tok, PIECES, SCORES);
  return { bin, tok };
}


test('llama2.c: a checkpoint gives the original\'s logits bit for bit; its tokenizer.bin encodes as run.c (BOS, leading space, merges by score, byte fallback)', async () => {
  const { bin, tok } = exported();
  const dir = await llama2cModelDir(bin, tok, { cacheDir: tempDir() });
  assert.deepEqual(logitsOf(dir), logitsOf(EMBEDDED));
  const t = loadTokenizer(dir)!;
  const id = (p: string) => PIECES.indexOf(p);
  assert.deepEqual(t.encode('abc é'), [1, id('▁abc'), id('▁'), id('<0xC3>'), id('<0xA9>')]);
  assert.equal(t.decode(t.encode('abc é ca'), { skipSpecialTokens: true }), 'abc é ca');
  assert.equal(t.bosTokenId, 1);
  assert.equal(t.eosTokenId, 2);
});

test('llama2.c: a shared classifier (positive vocab_size) ties the lm_head to the embedding', async () => {
  const { bin, tok } = exported({ shared: true });
  const dir = await llama2cModelDir(bin, tok, { cacheDir: tempDir() });
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(config.tie_word_embeddings, true);
  assert.equal(loadModel(dir).model.config.tieWordEmbeddings, true);
});

test('llama2.c: a truncated checkpoint, a versioned export, a zip file, a short tokenizer.bin each name the problem', async () => {
  const { bin, tok } = exported();
  const d = tempDir();
  const cacheDir = tempDir();
  const cut = path.join(d, 'cut.bin');
  fs.writeFileSync(cut, fs.readFileSync(bin).subarray(0, 100000));
  await rejectsInput(llama2cModelDir(cut, tok, { cacheDir }), /cut\.bin: 100000 bytes, the header \(dim 256, hidden 768, 4 layers, vocab 2048, own classifier\) needs \d+ \(truncated\?\)/);
  const versioned = path.join(d, 'v1.bin');
  const b = Buffer.alloc(256);
  b.writeUInt32LE(0x616b3432, 0);
  b.writeInt32LE(1, 4);
  fs.writeFileSync(versioned, b);
  await rejectsInput(llama2cModelDir(versioned, tok, { cacheDir }), /versioned llama2\.c export \(magic "ak42", version 1\)/);
  const zip = path.join(d, 'pytorch_model.bin');
  fs.writeFileSync(zip, Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(100)]));
  await rejectsInput(llama2cModelDir(zip, tok, { cacheDir }), /a zip file \(a PyTorch checkpoint\?\), not a llama2\.c checkpoint/);
  const shortTok = path.join(d, 'short.bin');
  writeLlama2cTokenizer(shortTok, PIECES.slice(0, 300), SCORES.slice(0, 300));
  await rejectsInput(llama2cModelDir(bin, shortTok, { cacheDir }), /short\.bin: ends after 300 of the model's 2048 tokens/);
  await rejectsInput(llama2cModelDir(bin, path.join(d, 'none.bin'), { cacheDir }), /none\.bin: file not found/);
  assert.deepEqual(fs.readdirSync(cacheDir), [], 'nothing half-converted is left in the cache');
});
