/**
 * Fuzzed readers: thousands of seeded mutations of a small safetensors file (truncations, bit flips in
 * the header and the data, header-size prefixes, broken and hostile entries: negative, huge, swapped
 * and overlapping data offsets, bad shapes and dtypes, duplicate names) and of a quantized checkpoint's
 * settings. Every case must end in an InputError or in a load whose every tensor reads back at its
 * declared size; nothing may crash, hang or read out of bounds. The seed is printed on failure
 * (TEST_SEED=… repeats a run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../src/errors.js';
import { writeQuantizedCheckpoint } from '../../src/quantize/write-checkpoint.js';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { FLOAT_DTYPES, dtypeBytes } from '../../src/io/dtype.js';
import { forwardLastLogits } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { loadModel } from '../../src/backends/load.js';
import { layerQuantizer } from '../../src/quantize/quantize-model.js';
import type { QuantRecipe } from '../../src/quantize/recipe.js';
import { fixturePath } from '../helpers/paths.js';
import { freshSeed, makeRng, type Rng } from '../helpers/random.js';
import { tempDir } from './temp-dir.js';

const CASES = 2000;

/** A small valid file: every dtype family, a metadata block. */
function baseFile(file: string): void {
  const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
  const tensors: TensorToWrite[] = [
    { name: 'a.f32', dtype: 'F32', shape: [3, 5], data: new Float32Array(15).map((_, i) => i / 7) },
    { name: 'b.f16', dtype: 'F16', shape: [7], data: bytes(14, 1) },
    { name: 'c.bf16', dtype: 'BF16', shape: [2, 2], data: bytes(8, 2) },
    { name: 'd.i8', dtype: 'I8', shape: [9], data: bytes(9, 3) },
    { name: 'e.u8', dtype: 'U8', shape: [4], data: bytes(4, 4) },
    { name: 'f.i32', dtype: 'I32', shape: [3], data: bytes(12, 5) },
  ];
  writeSafetensors(file, tensors, { format: 'pt', note: 'fuzz base' });
}

/** The header of a safetensors file as [json text, data bytes]. */
function split(buf: Buffer): [string, Buffer] {
  const n = Number(buf.readBigUInt64LE(0));
  return [buf.subarray(8, 8 + n).toString('utf8'), buf.subarray(8 + n)];
}

function join(json: string, data: Buffer, prefix?: bigint): Buffer {
  const head = Buffer.from(json, 'utf8');
  const p = Buffer.alloc(8);
  p.writeBigUInt64LE(prefix ?? BigInt(head.length));
  return Buffer.concat([p, head, data]);
}

const HOSTILE_NUMBERS = [-1, -(2 ** 40), 2 ** 31, 2 ** 32 + 3, 2 ** 53, 1e300, 0.5, Number.MAX_SAFE_INTEGER];
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(0, xs.length - 1)]!;

/** One mutation of the base file's bytes (a description for the failure message). */
function mutate(base: Buffer, rng: Rng): [Buffer, string] {
  const [json, data] = split(base);
  const header = JSON.parse(json) as Record<string, Record<string, unknown>>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const victim = pick(rng, names);
  const entry = header[victim]!;
  switch (rng.int(0, 9)) {
    case 0: {
      const at = rng.int(0, base.length - 1);
      return [base.subarray(0, at), `truncated at ${at}`];
    }
    case 1: {
      const out = Buffer.from(base);
      const flips = rng.int(1, 8);
      for (let i = 0; i < flips; i++) out[rng.int(0, 8 + json.length - 1)]! ^= 1 << rng.int(0, 7);
      return [out, `${flips} bit flips in the header`];
    }
    case 2: {
      const out = Buffer.from(base);
      for (let i = 0; i < 8; i++) out[8 + json.length + rng.int(0, data.length - 1)]! ^= 1 << rng.int(0, 7);
      return [out, 'bit flips in the data'];
    }
    case 3: {
      const prefix = pick(rng, [0n, 1n, 7n, BigInt(json.length - 1), BigInt(json.length + 1), 2n ** 63n, 2n ** 64n - 1n, 100_000_001n]);
      return [join(json, data, prefix), `header size prefix ${prefix}`];
    }
    case 4: {
      const [b, e] = entry['data_offsets'] as [number, number];
      const offsets = pick(rng, [[e, b], [b, pick(rng, HOSTILE_NUMBERS)], [pick(rng, HOSTILE_NUMBERS), e], [b, e + 1], [b + 1, e + 1], 'x', [b], null]);
      entry['data_offsets'] = offsets;
      return [join(JSON.stringify(header), data), `${victim} data_offsets ${JSON.stringify(offsets)}`];
    }
    case 5: {
      // another tensor's range, or one that overlaps it by a byte
      const other = header[pick(rng, names.filter((n) => n !== victim))]!;
      const [b] = other['data_offsets'] as [number, number];
      const [vb, ve] = entry['data_offsets'] as [number, number];
      entry['data_offsets'] = [b, b + (ve - vb)];
      return [join(JSON.stringify(header), data), `${victim} overlapping another tensor`];
    }
    case 6: {
      const shape = pick(rng, [[-1], [0.5, 2], [2 ** 40, 2 ** 40], [], 'x', [Number.MAX_SAFE_INTEGER, 2], [1, 1, 1, 1, 1, 2 ** 30]]);
      entry['shape'] = shape;
      return [join(JSON.stringify(header), data), `${victim} shape ${JSON.stringify(shape)}`];
    }
    case 7: {
      const dtype = pick(rng, ['F8', 'f32', '', 7, null, 'I64', 'BOOL', 'F64', 'U16']);
      entry['dtype'] = dtype;
      return [join(JSON.stringify(header), data), `${victim} dtype ${JSON.stringify(dtype)}`];
    }
    case 8: {
      // a duplicate name: the same key twice in the JSON text (the last one wins, as JSON.parse has it)
      const dup = `"${victim}":${JSON.stringify({ ...entry, shape: [1] })},`;
      return [join(`{${dup}${json.slice(1)}`, data), `${victim} duplicated`];
    }
    default: {
      const meta = pick(rng, [[1, 2], 'x', { k: 3 }, null, { k: { nested: true } }]);
      (header as Record<string, unknown>)['__metadata__'] = meta;
      return [join(JSON.stringify(header), data), `__metadata__ ${JSON.stringify(meta)}`];
    }
  }
}

/** Opens and reads every tensor; 'loaded' or 'refused' (an InputError), anything else fails the test. */
function readAll(file: string, what: string): 'loaded' | 'refused' {
  let f;
  try {
    f = openSafetensors(file);
  } catch (e) {
    assert.ok(e instanceof InputError, `${what}: ${String(e)}`);
    return 'refused';
  }
  try {
    for (const t of f.tensors.values()) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      assert.equal(t.byteLength, count * dtypeBytes(t.dtype), `${what}: ${t.name} size`);
      if (FLOAT_DTYPES.includes(t.dtype)) assert.equal(f.readFloat32(t.name).length, count, what);
      else assert.equal(f.readBytes(t.name).length, t.byteLength, what);
    }
    return 'loaded';
  } finally {
    f.close();
  }
}

test(`safetensors reader: ${CASES} seeded mutations end in an InputError or a load of declared sizes`, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const dir = tempDir();
  const baseName = path.join(dir, 'base.safetensors');
  baseFile(baseName);
  const base = fs.readFileSync(baseName);
  assert.equal(readAll(baseName, 'base'), 'loaded');
  const outcomes = { loaded: 0, refused: 0 };
  const file = path.join(dir, 'case.safetensors');
  for (let i = 0; i < CASES; i++) {
    const [bytes, what] = mutate(base, rng);
    fs.writeFileSync(file, bytes);
    const outcome = readAll(file, `seed ${seed} case ${i} (${what})`);
    outcomes[outcome]++;
    if (/overlapping|data_offsets \[\d+,\d+\]$/.test(what) && outcome === 'loaded') {
      // a load may only come from an entry that still fits its own range without touching another's
      const f = openSafetensors(file);
      const ranges = [...f.tensors.values()].map((t) => [t.byteOffset, t.byteOffset + t.byteLength] as const).sort((a, b) => a[0] - b[0]);
      f.close();
      for (let r = 1; r < ranges.length; r++) assert.ok(ranges[r]![0] >= ranges[r - 1]![1], `seed ${seed} case ${i} (${what}): overlapping ranges loaded`);
    }
  }
  assert.ok(outcomes.loaded > 0 && outcomes.refused > 0, `both outcomes occur: ${JSON.stringify(outcomes)}`);
});

test('quantized checkpoint reader: mutated layer settings and tensor headers end in an InputError or a model that runs', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const recipe: QuantRecipe = { method: 'rtn', base: { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } }, overrides: { down: { wBits: 8 } } };
  const source = loadModel(fixturePath('qwen2'), { transformLayer: layerQuantizer(recipe).transform });
  const dir = path.join(tempDir(), 'q');
  writeQuantizedCheckpoint(dir, source.source, source.model.weights, recipe);
  const file = path.join(dir, 'model.safetensors');
  const base = fs.readFileSync(file);
  const [json, data] = split(base);
  const header = JSON.parse(json) as Record<string, Record<string, unknown>>;
  const settings = JSON.parse((header['__metadata__'] as Record<string, string>)['intscale.layers']!) as Record<string, Record<string, unknown>>;
  const modules = Object.keys(settings);
  const fields = ['w_bits', 'a_bits', 'group_size', 'scale', 'alpha_log2'];
  const values = [0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 32, 64, 128, -1, 1.5, 2 ** 40, 'int', 'float', 'x', null, true];
  const outcomes = { ran: 0, refused: 0 };
  for (let i = 0; i < 300; i++) {
    const s = structuredClone(settings);
    const h = structuredClone(header);
    const module = pick(rng, modules);
    let what: string;
    if (rng.uniform() < 0.7) {
      const field = pick(rng, fields);
      const value = pick(rng, values);
      s[module]![field] = value;
      what = `${module} ${field} = ${JSON.stringify(value)}`;
    } else if (rng.uniform() < 0.5) {
      delete s[module];
      what = `${module} settings removed`;
    } else {
      const t = pick(rng, ['qweight', 'scales', 'int_scales']);
      const entry = h[`${module}.${t}`];
      if (entry === undefined) continue;
      entry['dtype'] = pick(rng, ['F32', 'I8', 'U8', 'I32', 'F16']);
      what = `${module}.${t} dtype ${String(entry['dtype'])}`;
    }
    (h['__metadata__'] as Record<string, string>)['intscale.layers'] = JSON.stringify(s);
    // a dtype change keeps the offsets: the reader must notice the sizes no longer agree
    fs.writeFileSync(file, join(JSON.stringify(h), data));
    try {
      const { model } = loadModel(dir);
      const logits = forwardLastLogits(model, [0, 5, 9], createKvCache(model.config, 3, model.backend));
      assert.equal(logits.length, model.config.vocabSize);
      outcomes.ran++;
    } catch (e) {
      assert.ok(e instanceof InputError, `seed ${seed} case ${i} (${what}): ${String(e)}`);
      outcomes.refused++;
    }
  }
  assert.ok(outcomes.refused > 0, JSON.stringify(outcomes));
});
