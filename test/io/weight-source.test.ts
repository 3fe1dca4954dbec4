import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { f32ToBf16 } from '../../src/io/dtype.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { openWeights } from '../../src/io/weight-source.js';
import { asInt8, tempDir, throwsInput, writeJson } from './temp-dir.js';

const f32 = (name: string, shape: number[], fill: number) => ({
  name, dtype: 'F32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill),
});

test('single model.safetensors: names, shapes, float32 with expected shape', () => {
  const dir = tempDir();
  writeSafetensors(path.join(dir, 'model.safetensors'), [f32('a', [2, 3], 1), f32('b', [4], 2)], { format: 'pt' });
  const w = openWeights(dir);
  assert.deepEqual(w.files, ['model.safetensors']);
  assert.deepEqual(w.metadata, { format: 'pt' });
  assert.ok(w.has('a') && !w.has('c'));
  assert.deepEqual(w.names().sort(), ['a', 'b']);
  assert.deepEqual(w.shapeOf('a'), [2, 3]);
  assert.equal(w.dtypeOf('b'), 'F32');
  assert.deepEqual([...w.float32('b', [4])], [2, 2, 2, 2]);
  throwsInput(() => w.float32('a', [3, 2]), 'model.safetensors', '"a"', '[2, 3]', '[3, 2]');
  throwsInput(() => w.float32('model.norm.weight'), '"model.norm.weight"', 'not found', 'model.safetensors');
  w.close();
});

test('sharded checkpoint through model.safetensors.index.json', () => {
  const dir = tempDir();
  writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), [f32('embed', [4, 2], 1)]);
  writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), [
    { name: 'norm', dtype: 'BF16', shape: [2], data: f32ToBf16([0.5, 3]) },
    { name: 'q', dtype: 'I8', shape: [2], data: new Int8Array([-8, 7]) },
  ]);
  writeJson(path.join(dir, 'model.safetensors.index.json'), {
    metadata: { total_size: 40 },
    weight_map: { embed: 'model-00001-of-00002.safetensors', norm: 'model-00002-of-00002.safetensors', q: 'model-00002-of-00002.safetensors' },
  });
  const w = openWeights(dir);
  assert.deepEqual(w.files, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  assert.deepEqual(w.names(), ['embed', 'norm', 'q']);
  assert.deepEqual([...w.float32('norm', [2])], [0.5, 3]);
  assert.deepEqual([...w.float32('embed')], new Array(8).fill(1));
  assert.deepEqual([...asInt8(w.bytes('q'))], [-8, 7]);
  throwsInput(() => w.float32('lm_head.weight'), '"lm_head.weight"', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors');
  w.close();
});

test('index errors: missing shard, tensor not in its shard, bad JSON, no weight_map', () => {
  const dir = tempDir();
  writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), [f32('embed', [2], 1)]);
  const index = path.join(dir, 'model.safetensors.index.json');
  writeJson(index, { weight_map: { embed: 'model-00001-of-00002.safetensors', norm: 'model-00002-of-00002.safetensors' } });
  throwsInput(() => openWeights(dir), 'model.safetensors.index.json', 'model-00002-of-00002.safetensors', '"norm"', 'does not exist');
  writeJson(index, { weight_map: { embed: 'model-00001-of-00002.safetensors', norm: 'model-00001-of-00002.safetensors' } });
  throwsInput(() => openWeights(dir), '"norm"', 'model-00001-of-00002.safetensors', 'does not contain it');
  fs.writeFileSync(index, '{ weight_map');
  throwsInput(() => openWeights(dir), 'model.safetensors.index.json', 'not valid JSON');
  writeJson(index, { metadata: {} });
  throwsInput(() => openWeights(dir), 'model.safetensors.index.json', 'weight_map');
});

test('directory of unindexed .safetensors files is merged; duplicates are an error', () => {
  const dir = tempDir();
  writeSafetensors(path.join(dir, 'a.safetensors'), [f32('x', [1], 1)]);
  writeSafetensors(path.join(dir, 'b.safetensors'), [f32('y', [1], 2)]);
  const w = openWeights(dir);
  assert.deepEqual(w.names(), ['x', 'y']);
  w.close();
  writeSafetensors(path.join(dir, 'c.safetensors'), [f32('x', [1], 3)]);
  throwsInput(() => openWeights(dir), '"x"', 'a.safetensors', 'c.safetensors');
});

test('no safetensors: error says .bin is unsupported and how to convert', () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), '');
  throwsInput(() => openWeights(dir), 'no .safetensors', 'pytorch_model.bin', 'not supported', 'safe_serialization=True');
});
