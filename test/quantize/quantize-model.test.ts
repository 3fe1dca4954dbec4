/**
 * quantizeModel reports progress per linear layer, in model order, for RTN and the calibrated
 * methods; quantizeToCheckpoint streams the same checkpoint to disk, and cleans up after a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cpuGptqEngine } from '../../src/quantize/gptq-products.js';
import type { GptqEngine } from '../../src/quant/methods/gptq.js';
import type { Backend } from '../../src/model/backend.js';
import { cpuBackend } from '../../src/backends/cpu/cpu-backend.js';
import { quantizeModel, quantizeToCheckpoint } from '../../src/quantize/quantize-model.js';
import { writeQuantizedCheckpoint } from '../../src/quantize/write-checkpoint.js';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { DEFAULT_AWQ } from '../../src/quantize/awq.js';
import type { QuantRecipe } from '../../src/quantize/recipe.js';
import { DEFAULT_GPTQ_LAYER } from '../../src/quantize/gptq-layer.js';
import type { QuantSpec } from '../../src/quant/types.js';
import { fixturePath } from '../helpers/paths.js';
import { loadModel } from '../../src/backends/load.js';
import { forwardLastLogits, type Model } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { tempDir, throwsInput } from '../io/temp-dir.js';

const spec: QuantSpec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };

test('onLinear is called once per linear layer, in order, for RTN and GPTQ', () => {
  const calib = path.join(tempDir(), 'calib.txt');
  fs.writeFileSync(calib, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(40));
  const calibration = { file: calib, samples: 2, seqLen: 16, seed: 0 };
  for (const recipe of [
    { method: 'rtn' as const, base: spec, overrides: {} },
    { method: 'gptq' as const, base: spec, overrides: {}, calibration, gptq: DEFAULT_GPTQ_LAYER },
  ]) {
    const seen: string[] = [];
    const { reports } = quantizeModel(fixturePath('llama'), recipe, { onLinear: (r) => seen.push(r.name) });
    assert.equal(seen.length, 2 * 7, recipe.method);
    assert.deepEqual(seen, reports.map((r) => r.name));
    assert.equal(seen[0], 'model.layers.0.self_attn.q_proj');
    assert.equal(seen.at(-1), 'model.layers.1.mlp.down_proj');
  }
});

/** Every tensor of a safetensors file (name → dtype, shape, bytes) and its metadata. */
function contents(file: string): { tensors: Record<string, { dtype: string; shape: readonly number[]; bytes: Buffer }>; metadata: Readonly<Record<string, string>> } {
  const f = openSafetensors(file);
  try {
    const tensors = Object.fromEntries([...f.tensors.values()].map((t) => [t.name, { dtype: t.dtype, shape: t.shape, bytes: Buffer.from(f.readBytes(t.name)) }]));
    return { tensors, metadata: f.metadata };
  } finally {
    f.close();
  }
}

/** The last position's logits of `ids` fed as one prefill. */
const forward = (model: Model, ids: number[]): Float32Array => forwardLastLogits(model, ids, createKvCache(model.config, ids.length, model.backend));

test('quantizeToCheckpoint streams the same checkpoint that quantizeModel + writeQuantizedCheckpoint write, for RTN, GPTQ and AWQ (8-bit embeddings where asked and not tied to a float lm_head)', () => {
  const calib = path.join(tempDir(), 'calib.txt');
  fs.writeFileSync(calib, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(40));
  const calibration = { file: calib, samples: 2, seqLen: 16, seed: 0 };
  const recipes: QuantRecipe[] = [
    { method: 'rtn', base: spec, overrides: { down: { wBits: 8, scale: 'float' }, lmHead: { wBits: 8 } }, embedding: 'int8' },
    { method: 'gptq', base: spec, overrides: {}, calibration, gptq: DEFAULT_GPTQ_LAYER, embedding: 'int8' },
    { method: 'awq', base: spec, overrides: {}, calibration, awq: { ...DEFAULT_AWQ, grid: 4 }, embedding: 'int8' },
  ];
  // qwen2: tied, its lm_head quantized: an 8-bit table; llama: untied: 8-bit; llama-mlp-bias: tied to a float lm_head: float
  for (const [arch, recipe, table] of [['qwen2', recipes[0]!, 'quantized'], ['llama', recipes[1]!, 'quantized'], ['llama-mlp-bias', recipes[2]!, 'float']] as const) {
    const dir = fixturePath(arch);
    const inMemory = path.join(tempDir(), 'in-memory');
    const { loaded, reports } = quantizeModel(dir, recipe);
    writeQuantizedCheckpoint(inMemory, loaded.source, loaded.model.weights, recipe);
    const streamed = path.join(tempDir(), 'streamed');
    const seen: string[] = [];
    const streamedReports = quantizeToCheckpoint(dir, streamed, recipe, { onLinear: (r) => seen.push(r.name) });
    assert.deepEqual(streamedReports, reports, `${arch} ${recipe.method}: the same reports`);
    assert.deepEqual(seen, reports.map((r) => r.name));
    assert.equal(reports.at(-1)!.name === 'lm_head', recipe.overrides.lmHead !== undefined, `${arch} ${recipe.method}: the lm_head reported when quantized`);
    assert.equal(loaded.model.weights.lmHead.kind, recipe.overrides.lmHead ? 'quantized' : 'float');
    assert.equal(loaded.model.weights.embedding.kind, table, `${arch} ${recipe.method}: the embedding table`);
    const [a, b] = [contents(path.join(inMemory, 'model.safetensors')), contents(path.join(streamed, 'model.safetensors'))];
    assert.deepEqual(Object.keys(b.tensors), Object.keys(a.tensors), `${arch} ${recipe.method}: the same tensors in the same order`);
    assert.deepEqual(b, a, `${arch} ${recipe.method}: every tensor and the metadata equal`);
    assert.deepEqual(fs.readdirSync(streamed).sort(), fs.readdirSync(inMemory).sort());
    assert.equal(fs.readFileSync(path.join(streamed, 'config.json'), 'utf8'), fs.readFileSync(path.join(inMemory, 'config.json'), 'utf8'));
    assert.equal('model.embed_tokens.qweight' in b.tensors, table === 'quantized');
    // read back: the table as written, and the model's logits those of the in-memory model bit for bit
    const reread = loadModel(streamed);
    assert.equal(reread.model.weights.embedding.kind, table);
    const ids = [3, 1, 4, 1, 5, 9, 2, 6];
    assert.deepEqual(forward(reread.model, ids), forward(loaded.model, ids), `${arch} ${recipe.method}: reloaded logits equal`);
  }
});

test('quantizeToCheckpoint leaves nothing behind when the source fails part-way, and refuses a quantized source', () => {
  const src = path.join(tempDir(), 'src');
  fs.cpSync(fixturePath('llama'), src, { recursive: true });
  // a tensor the model does not use, found only after every layer was written
  writeSafetensors(path.join(src, 'extra.safetensors'), [{ name: 'model.layers.0.self_attn.rogue.weight', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
  const indexFile = path.join(src, 'model.safetensors.index.json');
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map: Record<string, string> };
  index.weight_map['model.layers.0.self_attn.rogue.weight'] = 'extra.safetensors';
  fs.writeFileSync(indexFile, JSON.stringify(index));
  const out = path.join(tempDir(), 'out');
  const recipe: QuantRecipe = { method: 'rtn', base: spec, overrides: {} };
  throwsInput(() => quantizeToCheckpoint(src, out, recipe), /does not use: model\.layers\.0\.self_attn\.rogue\.weight/);
  assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], [], 'no partial checkpoint, no temporary file');

  const once = path.join(tempDir(), 'once');
  quantizeToCheckpoint(fixturePath('llama'), once, recipe);
  throwsInput(() => quantizeToCheckpoint(once, path.join(tempDir(), 'twice'), recipe), /already quantized; quantize the original float model/);
});

/** A backend that is not the CPU backend object but computes with it: host arrays, copied on upload and download as a GPU's are. */
function elsewhereBackend(): { elsewhere: Backend; uploads: number[] } {
  const uploads: number[] = [];
  const elsewhere: Backend = {
    ...cpuBackend,
    name: 'cpu-elsewhere',
    upload: (x) => { uploads.push(x.length); return Float32Array.from(x); },
    download: (x, first, rows, dim) => Float32Array.from(x.subarray(first * dim, (first + rows) * dim)),
  };
  return { elsewhere, uploads };
}

test('GPTQ placed on another backend (the stream observes each input from the layer\'s start, the engine takes the stream\'s tensors) gives the CPU\'s walked checkpoint bit for bit', () => {
  const calib = path.join(tempDir(), 'calib.txt');
  fs.writeFileSync(calib, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(40));
  const recipe = { method: 'gptq' as const, base: spec, overrides: {}, calibration: { file: calib, samples: 2, seqLen: 16, seed: 0 }, gptq: DEFAULT_GPTQ_LAYER };
  const { elsewhere, uploads } = elsewhereBackend();
  const seenRows: number[] = [];
  const engine = cpuGptqEngine();
  const counting: GptqEngine = { ...engine, accumulator: (k) => { const a = engine.accumulator(k); return { ...a, get tokens() { return a.tokens; }, add: (x, m) => { seenRows.push(m); a.add(x, m); } }; } };
  const dir = fixturePath('llama');
  const want = quantizeModel(dir, recipe);
  const got = quantizeModel(dir, recipe, { calibrateOn: { backend: elsewhere, gptqEngine: counting } });
  assert.deepEqual(got.reports, want.reports);
  assert.deepEqual(got.loaded.model.weights.layers, want.loaded.model.weights.layers);
  // per layer: 4 inputs × 2 windows observed (each run from the layer's start), then the advance of 2 windows
  assert.equal(seenRows.length, 2 * 4 * 2);
  assert.ok(seenRows.every((m) => m === 16));
  assert.equal(uploads.length, 2 * (4 * 2 + 2), 'each window uploaded once a run: 4 observing runs and the advance, per layer');
});

test('AWQ placed on another backend (statistics and the grid search\'s products through its uploads and downloads) gives the CPU\'s checkpoint bit for bit', () => {
  const calib = path.join(tempDir(), 'calib.txt');
  fs.writeFileSync(calib, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(40));
  const recipe = { method: 'awq' as const, base: spec, overrides: {}, calibration: { file: calib, samples: 2, seqLen: 16, seed: 0 }, awq: { ...DEFAULT_AWQ, grid: 4 } };
  const { elsewhere, uploads } = elsewhereBackend();
  const dir = fixturePath('llama');
  const want = quantizeModel(dir, recipe);
  const got = quantizeModel(dir, recipe, { calibrateOn: { backend: elsewhere } });
  assert.deepEqual(got.reports, want.reports);
  assert.deepEqual(got.loaded.model.weights.layers, want.loaded.model.weights.layers);
  assert.ok(uploads.length > 0, 'the stream and the search ran through the other backend');
});
