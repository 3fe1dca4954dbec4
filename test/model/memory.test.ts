/**
 * Memory proportional to the model's bytes: a quantized checkpoint loads in its packed form and
 * the CPU kernels read it in place, so the resident memory a load (and a first forward pass) adds
 * is at most 1.3× the checkpoint's file size. Measured in a child process (a fresh heap, one
 * thread) on a random W4A8 checkpoint of 12 layers, hidden 1024 (about 100 MB): before the packed
 * format, the loader expanded each 4-bit weight to a byte and the kernel kept a second, laid-out
 * copy (about 3× the file). And a load that cannot fit in the memory available is refused before
 * any weight is read, naming the numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { syntheticModel, writeSyntheticCheckpoint } from '../../bench/synthetic.js';
import { wasmIntLinearAvailable } from '../../src/backends/cpu/int-linear-wasm-kernel.js';
import { openModelDir } from '../../src/model/model-dir.js';
import { checkLoadFits, kvCacheBytes, loadMemory } from '../../src/model/memory.js';
import { fixturePath, repoPath } from '../helpers/paths.js';
import { tempDir, throwsInput } from '../io/temp-dir.js';

const skip = wasmIntLinearAvailable() ? false : 'no WASM SIMD / shared arena: the packed layers run on the JS path';

test('a loaded quantized checkpoint costs at most 1.3× its file size in resident memory, every layer read in place', { skip }, () => {
  const dir = path.join(tempDir(), 'w4a8');
  const bytes = writeSyntheticCheckpoint(dir, syntheticModel(12, { hidden: 1024, ffn: 2816, heads: 8, vocab: 2048 }));
  const dist = (rel: string) => pathToFileURL(repoPath(path.join('dist', rel))).href;
  const child = `
    const { loadModel } = await import(${JSON.stringify(dist('src/backends/load.js'))});
    const { forwardLastLogits } = await import(${JSON.stringify(dist('src/model/forward.js'))});
    const { createKvCache } = await import(${JSON.stringify(dist('src/model/kv-cache.js'))});
    const rss = () => { globalThis.gc(); return process.memoryUsage().rss; };
    const before = rss();
    const { model } = loadModel(${JSON.stringify(dir)});
    forwardLastLogits(model, [1, 2, 3], createKvCache(model.config, 3, model.backend));
    const after = rss();
    const slots = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
    const inPlace = model.layers.every((l) => slots.every((s) => l[s].copiedBytes === 0));
    console.log(JSON.stringify({ before, after, inPlace }));`;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', child], {
    env: { ...process.env, INTSCALE_THREADS: '1' }, encoding: 'utf8',
  });
  const { before, after, inPlace } = JSON.parse(out.trim().split('\n').pop()!) as { before: number; after: number; inPlace: boolean };
  const grown = after - before;
  assert.equal(inPlace, true, 'every quantized layer is read in place by the WASM kernel');
  assert.ok(grown <= 1.3 * bytes, `resident memory grew by ${(grown / 1e6).toFixed(1)} MB for a ${(bytes / 1e6).toFixed(1)} MB checkpoint`);
});

test('a load that cannot fit is refused up front with the numbers and what to do', () => {
  const f16 = openModelDir(fixturePath('mistral'));
  try {
    const { resident, widened } = loadMemory(f16.weights);
    const values = f16.weights.names().reduce((n, t) => n + f16.weights.shapeOf(t).reduce((a, b) => a * b, 1), 0);
    assert.equal(resident, 4 * values, 'f16 weights are held as float32');
    assert.equal(widened, resident);
    assert.doesNotThrow(() => checkLoadFits(f16.weights, 'm', 0, resident));
    throwsInput(() => checkLoadFits(f16.weights, 'models/m', 0, resident - 1),
      /models\/m: loading needs about 0\.0 GB of memory but 0\.0 GB is available; its 0\.0 GB of 16-bit float weights are held as float32 .*quantize it first \(`intscale quantize/);
  } finally {
    f16.weights.close();
  }
  const dir = path.join(tempDir(), 'q');
  const bytes = writeSyntheticCheckpoint(dir, syntheticModel(1, { hidden: 256, ffn: 512, heads: 4, vocab: 64 }));
  const q = openModelDir(dir);
  try {
    const { resident, widened } = loadMemory(q.weights);
    assert.equal(widened, 0);
    assert.ok(resident <= bytes && resident > 0.95 * bytes, `quantized: ${resident} resident for a ${bytes}-byte file`);
    throwsInput(() => checkLoadFits(q.weights, dir, 0, 1000), /GB is available; free memory, or use a machine with more/);
    // the KV cache the run will hold counts too, and the message says how to shrink it
    const kv = kvCacheBytes(q.config, 1 << 20);
    assert.equal(kv, 2 * 4 * q.config.numLayers * q.config.numKvHeads * q.config.headDim * q.config.maxPositionEmbeddings, 'capped at the context');
    assert.doesNotThrow(() => checkLoadFits(q.weights, dir, 0, resident));
    throwsInput(() => checkLoadFits(q.weights, dir, kv, resident), /GB of weights, .* GB of KV cache: a smaller --seq-len or -n shrinks it\) but/);
  } finally {
    q.weights.close();
  }
});
