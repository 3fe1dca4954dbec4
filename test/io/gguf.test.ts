/**
 * GGUF files (io/gguf.ts) written by our test writer (gguf-writer.ts, llama.cpp's layout and
 * quantizers) from the embedded model (BF16 weights, byte-level BPE tokenizer): F32 and BF16 give
 * the original's logits bit for bit; F16 its weights rounded to f16; Q8_0 and Q4_0 weights equal
 * llama.cpp's dequantization exactly and logits near the original's; the tokenizer encodes and
 * decodes as the original; a second open reuses the conversion; bad files are named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ggufModelDir } from '../../src/io/gguf.js';
import { openWeights } from '../../src/io/weight-source.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { loadModel } from '../../src/backends/load.js';
import { modelEngine } from '../../src/model/engine.js';
import { f16ToF32, f32ToF16 } from '../../src/io/dtype.js';
import { repoPath } from '../helpers/paths.js';
import { GGUF_VALUE, writeGgufFrom, type GgufWeightType } from './gguf-writer.js';
import { rejectsInput, tempDir } from './temp-dir.js';
import { toySentencePiece } from './toy-sentencepiece.js';

const EMBEDDED = repoPath('models/tiny-wikitext');
const PROMPT = [0, 5, 200, 17, 1033, 9, 44];
const logitsOf = (dir: string) => modelEngine(loadModel(dir).model).open(16).feed(PROMPT);
const original = logitsOf(EMBEDDED);
const relativeError = (got: Float32Array, want: Float32Array) => got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i]!)), 0) / want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function converted(type: GgufWeightType, notes: string[] = []) {
  const file = path.join(tempDir(), `tiny-${type}.gguf`);
  const written = writeGgufFrom(EMBEDDED, file, type);
  return { file, written, dir: await ggufModelDir(file, { cacheDir: tempDir(), onNote: (l) => notes.push(l) }) };
}


test('GGUF F32 and BF16: the original\'s logits bit for bit; the tokenizer encodes and decodes as the original', async () => {
  for (const type of ['F32', 'BF16'] as const) {
    const { dir } = await converted(type);
    assert.deepEqual(logitsOf(dir), original, type);
    const [mine, theirs] = [loadTokenizer(dir)!, loadTokenizer(EMBEDDED)!];
    const text = 'The game began development in 2010 , carrying over a large portion of the work <|im_start|> done';
    assert.deepEqual(mine.encode(text), theirs.encode(text), `${type}: encode`);
    assert.equal(mine.decode(theirs.encode(text), { skipSpecialTokens: true }), theirs.decode(theirs.encode(text), { skipSpecialTokens: true }));
    assert.equal(mine.bosTokenId, theirs.bosTokenId);
    assert.equal(mine.eosTokenId, theirs.eosTokenId);
  }
});

test('GGUF F16: every weight is the original rounded to f16', async () => {
  const { dir } = await converted('F16');
  const [got, want] = [openWeights(dir), openWeights(EMBEDDED)];
  for (const name of want.names()) {
    const w = want.float32(name);
    const expected = want.shapeOf(name).length === 2 ? (() => {
      const back = new Float32Array(w.length);
      f16ToF32(f32ToF16(w), back);
      return back;
    })() : w;
    assert.deepEqual(got.float32(name), expected, name);
  }
  assert.ok(relativeError(logitsOf(dir), original) < 1e-2);
});

test('GGUF Q8_0 and Q4_0: weights are llama.cpp\'s dequantization exactly, logits near the original\'s, and the output says they were dequantized', async (t) => {
  for (const [type, bound] of [['Q8_0', 0.05], ['Q4_0', 0.5]] as const) {
    const notes: string[] = [];
    const { dir, written } = await converted(type, notes);
    const got = openWeights(dir);
    for (const [name, values] of written.dequantized) assert.deepEqual(got.float32(name), values, `${type} ${name}`);
    assert.equal(written.dequantized.size, 4 * 7 + 2, 'every linear, the embedding and the lm_head');
    const e = relativeError(logitsOf(dir), original);
    t.diagnostic(`${type}: logit error ${e.toExponential(2)} of the largest logit`);
    assert.ok(e > 0 && e < bound, `${type}: ${e}`);
    assert.match(notes.join('\n'), new RegExp(`${type} tensors: they are dequantized to float32; quantizing them again adds`));
  }
});

test('GGUF: a second open reuses the conversion; a changed file is converted again', async () => {
  const file = path.join(tempDir(), 'tiny.gguf');
  writeGgufFrom(EMBEDDED, file, 'F32');
  const cacheDir = tempDir();
  const dir = await ggufModelDir(file, { cacheDir });
  const made = fs.statSync(path.join(dir, 'model.safetensors')).mtimeMs;
  assert.equal(await ggufModelDir(file, { cacheDir }), dir);
  assert.equal(fs.statSync(path.join(dir, 'model.safetensors')).mtimeMs, made, 'not converted again');
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
  assert.notEqual(await ggufModelDir(file, { cacheDir }), dir, 'a new modification time is a new conversion');
});

test('GGUF: a missing, truncated or foreign file, another architecture, an unknown tensor or tokenizer each name the problem', async () => {
  const d = tempDir();
  const cacheDir = tempDir();
  await rejectsInput(ggufModelDir(path.join(d, 'none.gguf'), { cacheDir }), /none\.gguf: file not found/);
  const file = path.join(d, 'a.gguf');
  writeGgufFrom(EMBEDDED, file, 'F32');
  const cut = path.join(d, 'cut.gguf');
  fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, fs.statSync(file).size - 1000));
  await rejectsInput(ggufModelDir(cut, { cacheDir }), /cut\.gguf: tensor \S+ runs past the end of the file \(truncated\?\)/);
  const foreign = path.join(d, 'foreign.gguf');
  fs.writeFileSync(foreign, 'not a gguf file at all, just text');
  await rejectsInput(ggufModelDir(foreign, { cacheDir }), /foreign\.gguf: not a readable GGUF file/);
  const other = path.join(d, 'other.gguf');
  writeGgufFrom(EMBEDDED, other, 'F32', { extra: { 'general.architecture': { t: GGUF_VALUE.STR, v: 'mamba' } } });
  await rejectsInput(ggufModelDir(other, { cacheDir }), /architecture "mamba" is not supported from GGUF/);
  const rope = path.join(d, 'rope.gguf');
  writeGgufFrom(EMBEDDED, rope, 'F32', { extraTensors: { 'rope_freqs.weight': new Float32Array(16).fill(1) } });
  await rejectsInput(ggufModelDir(rope, { cacheDir }), /tensor "rope_freqs\.weight" has no place in a llama model \(Llama 3\.1 rope scaling/);
  const rwkv = path.join(d, 'rwkv.gguf');
  writeGgufFrom(EMBEDDED, rwkv, 'F32', { extra: { 'tokenizer.ggml.model': { t: GGUF_VALUE.STR, v: 'rwkv' } } });
  await rejectsInput(ggufModelDir(rwkv, { cacheDir }), /tokenizer "rwkv" is not supported \(byte-level BPE "gpt2" and SentencePiece "llama" are\)/);
  assert.deepEqual(fs.readdirSync(cacheDir), [], 'nothing half-converted is left in the cache');
});

test('GGUF SentencePiece tokenizer ("llama"): merges by score as transformers derives them, "▁" for spaces, byte fallback, BOS added', async () => {
  const { pieces: tokens, scores, types } = toySentencePiece();
  const { STR, ARR, I32, F32, U32 } = GGUF_VALUE;
  const file = path.join(tempDir(), 'spm.gguf');
  writeGgufFrom(EMBEDDED, file, 'F32', {
    extra: {
      'tokenizer.ggml.model': { t: STR, v: 'llama' }, 'tokenizer.ggml.tokens': { t: ARR, of: STR, v: tokens },
      'tokenizer.ggml.token_type': { t: ARR, of: I32, v: types }, 'tokenizer.ggml.scores': { t: ARR, of: F32, v: scores },
      'tokenizer.ggml.bos_token_id': { t: U32, v: 1 }, 'tokenizer.ggml.eos_token_id': { t: U32, v: 2 },
      'tokenizer.ggml.merges': { t: ARR, of: STR, v: [] },
    },
  });
  const tok = loadTokenizer(await ggufModelDir(file, { cacheDir: tempDir() }))!;
  const id = (p: string) => tokens.indexOf(p);
  // "▁abc": (a,b) first (best score), then (▁,ab), then (▁ab,c); "é" has no piece: its UTF-8 bytes
  assert.deepEqual(tok.encode('abc é'), [1, id('▁abc'), id('▁'), id('<0xC3>'), id('<0xA9>')]);
  assert.deepEqual(tok.encode('ca ab'), [1, id('▁'), id('c'), id('a'), id('▁ab')]);
  assert.equal(tok.decode(tok.encode('abc é ca'), { skipSpecialTokens: true }), 'abc é ca');
  assert.equal(tok.bosTokenId, 1);
  assert.equal(tok.eosTokenId, 2);
});
