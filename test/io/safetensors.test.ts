import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { f32ToBf16, f32ToF16 } from '../../src/io/dtype.js';
import { createSafetensorsWriter, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { asInt8, tempDir, throwsInput, writeRawSafetensors } from './temp-dir.js';

const values = [0.5, -1.25, 3, 0, 1024, -0.0078125];

test('write → read round trip for F32, F16, BF16, F64, I8, I32 with metadata', () => {
  const file = path.join(tempDir(), 'rt.safetensors');
  const i8 = new Int8Array([-128, -1, 0, 1, 127, 7]);
  const i32 = new Int32Array([1 << 30, -5, 0]);
  writeSafetensors(
    file,
    [
      { name: 'a.f32', dtype: 'F32', shape: [2, 3], data: new Float32Array(values) },
      { name: 'b.f16', dtype: 'F16', shape: [3, 2], data: f32ToF16(values) },
      { name: 'c.bf16', dtype: 'BF16', shape: [6], data: f32ToBf16(values) },
      { name: 'd.f64', dtype: 'F64', shape: [6], data: new Float64Array(values) },
      { name: 'e.i8', dtype: 'I8', shape: [2, 3], data: i8 },
      { name: 'f.i32', dtype: 'I32', shape: [3], data: i32 },
      { name: 'g.empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    ],
    { format: 'pt', note: 'hello' },
  );
  const bytes = fs.readFileSync(file);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  assert.equal(headerLen % 8, 0, 'header padded to a multiple of 8');
  const headerText = bytes.subarray(8, 8 + headerLen).toString('utf8');
  assert.match(headerText, /^\{.*\} *$/);
  assert.deepEqual(JSON.parse(headerText)['__metadata__'], { format: 'pt', note: 'hello' });

  const st = openSafetensors(file);
  try {
    assert.deepEqual(st.metadata, { format: 'pt', note: 'hello' });
    assert.deepEqual([...st.tensors.keys()], ['a.f32', 'b.f16', 'c.bf16', 'd.f64', 'e.i8', 'f.i32', 'g.empty']);
    assert.deepEqual(st.tensors.get('b.f16')!.shape, [3, 2]);
    assert.equal(st.tensors.get('a.f32')!.byteOffset, 8 + headerLen);
    for (const name of ['a.f32', 'b.f16', 'c.bf16', 'd.f64']) {
      const f = st.readFloat32(name);
      assert.ok(f.buffer instanceof SharedArrayBuffer, `${name} in shared memory`);
      assert.deepEqual([...f], values, name);
    }
    const raw = st.readBytes('e.i8');
    assert.ok(raw.buffer instanceof SharedArrayBuffer);
    assert.deepEqual([...new Int8Array(raw.buffer, raw.byteOffset, raw.length)], [...i8]);
    const raw32 = st.readBytes('f.i32');
    assert.deepEqual([...new Int32Array(raw32.buffer, raw32.byteOffset, 3)], [...i32]);
    assert.equal(st.readFloat32('g.empty').length, 0);
    throwsInput(() => st.readFloat32('e.i8'), 'rt.safetensors', '"e.i8"', 'I8', 'F32 F16 BF16 F64');
    throwsInput(() => st.readFloat32('nope'), '"nope"');
  } finally {
    st.close();
  }
});

test('large F16 tensor converts across read chunks', () => {
  const n = (1 << 23) + 5; // more than one 16 MiB chunk of f16
  const src = new Uint16Array(n);
  for (let i = 0; i < n; i++) src[i] = f32ToF16([(i % 2048) - 1024])[0]!;
  const file = path.join(tempDir(), 'big.safetensors');
  writeSafetensors(file, [{ name: 'w', dtype: 'F16', shape: [n], data: src }]);
  const st = openSafetensors(file);
  const f = st.readFloat32('w');
  st.close();
  for (const i of [0, 1, 2047, 2048, (1 << 23) - 1, 1 << 23, n - 1]) assert.equal(f[i], (i % 2048) - 1024, `element ${i}`);
});

test('writer is atomic: a failed write leaves the old file and no temp file', () => {
  const dir = tempDir();
  const file = path.join(dir, 'm.safetensors');
  writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array([7]) }]);
  throwsInput(
    () => writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [4], data: new Float32Array([1]) }]),
    'm.safetensors', '"x"', '16 bytes', '4 bytes',
  );
  // rename onto a non-empty directory fails after the data is written
  const blocked = path.join(dir, 'blocked.safetensors');
  fs.mkdirSync(blocked);
  fs.writeFileSync(path.join(blocked, 'keep'), '');
  assert.throws(() => writeSafetensors(blocked, [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array([1]) }]));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['blocked.safetensors', 'm.safetensors']);
  const st = openSafetensors(file);
  assert.deepEqual([...st.readFloat32('x')], [7]);
  st.close();
});

test('writer rejects repeated and reserved names', () => {
  const file = path.join(tempDir(), 'dup.safetensors');
  const t = { name: 'x', dtype: 'F32' as const, shape: [1], data: new Float32Array(1) };
  throwsInput(() => writeSafetensors(file, [t, t]), '"x"', 'repeated');
  throwsInput(() => writeSafetensors(file, [{ ...t, name: '__metadata__' }]), 'reserved');
  assert.equal(fs.existsSync(file), false);
});

test('reader errors name the file, the tensor and the problem', () => {
  const dir = tempDir();
  const p = (n: string) => path.join(dir, n);
  throwsInput(() => openSafetensors(p('missing.safetensors')), 'missing.safetensors', 'not found');

  fs.writeFileSync(p('short.safetensors'), Buffer.from([1, 2, 3]));
  throwsInput(() => openSafetensors(p('short.safetensors')), 'short.safetensors', '3 bytes', 'too short');

  const past = Buffer.alloc(16);
  past.writeBigUInt64LE(100n);
  fs.writeFileSync(p('past.safetensors'), past);
  throwsInput(() => openSafetensors(p('past.safetensors')), 'past.safetensors', 'header size 100', 'past the end');

  const absurd = Buffer.alloc(16);
  absurd.writeBigUInt64LE(1n << 60n);
  fs.writeFileSync(p('absurd.safetensors'), absurd);
  throwsInput(() => openSafetensors(p('absurd.safetensors')), 'absurd.safetensors', 'absurd');

  writeRawSafetensors(p('nojson.safetensors'), '{"a": ');
  throwsInput(() => openSafetensors(p('nojson.safetensors')), 'nojson.safetensors', 'not valid JSON');

  writeRawSafetensors(p('array.safetensors'), [1, 2]);
  throwsInput(() => openSafetensors(p('array.safetensors')), 'array.safetensors', 'not a JSON object');

  writeRawSafetensors(p('dtype.safetensors'), { w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2));
  throwsInput(() => openSafetensors(p('dtype.safetensors')), 'dtype.safetensors', '"w"', 'F8_E4M3', 'F32 F16 BF16');

  writeRawSafetensors(
    p('span.safetensors'),
    { 'model.layers.0.mlp.up_proj.weight': { dtype: 'F16', shape: [2, 3], data_offsets: [0, 10] } },
    new Uint8Array(12),
  );
  throwsInput(() => openSafetensors(p('span.safetensors')), 'span.safetensors', '"model.layers.0.mlp.up_proj.weight"', '[2, 3]', '12 bytes', '10 bytes');

  writeRawSafetensors(p('trunc.safetensors'), { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8));
  throwsInput(() => openSafetensors(p('trunc.safetensors')), 'trunc.safetensors', '"w"', 'past the end of the data section (8 bytes)');

  writeRawSafetensors(p('shape.safetensors'), { w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4));
  throwsInput(() => openSafetensors(p('shape.safetensors')), '"w"', 'shape [-1]');

  writeRawSafetensors(p('meta.safetensors'), { __metadata__: { n: 3 } });
  throwsInput(() => openSafetensors(p('meta.safetensors')), '__metadata__', '"n"');
  writeRawSafetensors(p('overlap.safetensors'), {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
  }, new Uint8Array(12));
  throwsInput(() => openSafetensors(p('overlap.safetensors')), 'overlap.safetensors', 'tensors "a" and "b" overlap in the data section');
});

test('a streamed file (header reserved, filled in at the end) reads back like one written at once', () => {
  const dir = tempDir();
  const tensors = [
    { name: 'w', dtype: 'F32' as const, shape: [2, 3], data: new Float32Array([0.5, -1.25, 3, 0, 1024, -0.0078125]) },
    { name: 'q', dtype: 'I8' as const, shape: [3], data: new Int8Array([-8, 0, 7]) },
    { name: 'empty', dtype: 'F32' as const, shape: [0], data: new Float32Array(0) },
  ];
  writeSafetensors(path.join(dir, 'once.safetensors'), tensors, { format: 'pt' });
  const streamed = path.join(dir, 'streamed.safetensors');
  const writer = createSafetensorsWriter(streamed, 4001);
  for (const t of tensors) writer.write(t);
  assert.ok(!fs.existsSync(streamed), 'the file appears only when complete');
  writer.finish({ format: 'pt', added: 'at the end' });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['once.safetensors', 'streamed.safetensors']);
  const [a, b] = [openSafetensors(path.join(dir, 'once.safetensors')), openSafetensors(streamed)];
  assert.deepEqual(b.metadata, { format: 'pt', added: 'at the end' });
  assert.deepEqual([...b.tensors.keys()], [...a.tensors.keys()]);
  for (const name of a.tensors.keys()) assert.deepEqual(b.readBytes(name), a.readBytes(name), name);
  assert.equal(fs.statSync(streamed).size, 8 + 4008 + 27, 'the reserve rounded up to 8 bytes, then the data');
  a.close();
  b.close();

  const small = path.join(dir, 'small.safetensors');
  const tight = createSafetensorsWriter(small, 16);
  tight.write(tensors[0]!);
  assert.throws(() => tight.finish(), /header needs \d+ bytes but 16 were reserved/);
  tight.abort();
  const bad = createSafetensorsWriter(small, 1000);
  assert.throws(() => bad.write({ ...tensors[0]!, shape: [4, 3] }), /shape \[4, 3\] × F32 = 48 bytes but its data is 24 bytes/);
  bad.write(tensors[1]!);
  assert.throws(() => bad.write(tensors[1]!), /"q" is reserved or repeated/);
  bad.abort();
  assert.deepEqual(fs.readdirSync(dir).sort(), ['once.safetensors', 'streamed.safetensors'], 'aborted writers leave no file');
});

const python = spawnSync('python3', ['-c', 'import safetensors, numpy'], { encoding: 'utf8' });
test('Python safetensors reads what we write', { skip: python.status !== 0 && 'python3 with safetensors+numpy not installed' }, () => {
  const file = path.join(tempDir(), 'py.safetensors');
  writeSafetensors(
    file,
    [
      { name: 'w', dtype: 'F32', shape: [2, 3], data: new Float32Array(values) },
      { name: 'h', dtype: 'F16', shape: [6], data: f32ToF16(values) },
      { name: 'q', dtype: 'I8', shape: [3], data: new Int8Array([-8, 0, 7]) },
      { name: 'b', dtype: 'BF16', shape: [1], data: f32ToBf16([2]) },
    ],
    { format: 'pt' },
  );
  const script = `
import json, sys
from safetensors import safe_open
with safe_open(sys.argv[1], framework="numpy") as f:
    out = {"meta": f.metadata(), "keys": sorted(f.keys())}
    out["w"] = f.get_tensor("w").tolist()
    out["h"] = f.get_tensor("h").astype("float64").tolist()
    out["q"] = f.get_tensor("q").tolist()
    out["b_shape"] = f.get_slice("b").get_shape()
print(json.dumps(out))`;
  const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.meta, { format: 'pt' });
  assert.deepEqual(out.keys, ['b', 'h', 'q', 'w']);
  assert.deepEqual(out.w, [[0.5, -1.25, 3], [0, 1024, -0.0078125]]);
  assert.deepEqual(out.h, values);
  assert.deepEqual(out.q, [-8, 0, 7]);
  assert.deepEqual(out.b_shape, [1]);
});

test('we read what Python safetensors writes', { skip: python.status !== 0 && 'python3 with safetensors+numpy not installed' }, () => {
  const file = path.join(tempDir(), 'from-py.safetensors');
  const script = `
import sys, numpy as np
from safetensors.numpy import save_file
save_file({"z.w": np.arange(6, dtype=np.float16).reshape(2, 3) / 4, "a.q": np.array([-3, 5], dtype=np.int8),
           "m.f": np.array([[1.5], [-2.0]], dtype=np.float32)}, sys.argv[1], metadata={"k": "v"})`;
  const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const st = openSafetensors(file);
  assert.deepEqual(st.metadata, { k: 'v' });
  assert.deepEqual(st.tensors.get('z.w')!.shape, [2, 3]);
  assert.deepEqual([...st.readFloat32('z.w')], [0, 0.25, 0.5, 0.75, 1, 1.25]);
  assert.deepEqual([...st.readFloat32('m.f')], [1.5, -2]);
  assert.deepEqual([...asInt8(st.readBytes('a.q'))], [-3, 5]);
  st.close();
});
