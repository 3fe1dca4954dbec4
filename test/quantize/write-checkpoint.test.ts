import { denseLayers } from '../helpers/dense-layers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { writeQuantizedCheckpoint } from '../../src/quantize/write-checkpoint.js';
import { forwardHidden, logitsOf, type Model } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { loadModel } from '../../src/backends/load.js';
import { layerQuantizer } from '../../src/quantize/quantize-model.js';
import { quantizeLinear } from '../../src/quant/quantize-linear.js';
import type { QuantRecipe } from '../../src/quantize/recipe.js';
import { fixturePath } from '../helpers/paths.js';
import { readReference } from '../helpers/reference.js';
import { tempDir, throwsInput } from '../io/temp-dir.js';

const recipe: QuantRecipe = {
  method: 'rtn',
  base: { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } },
  overrides: { down: { wBits: 8, scale: 'float' }, lmHead: { wBits: 8 } },
};

function logits(model: Model, ids: number[]): Float32Array {
  const h = forwardHidden(model, ids, createKvCache(model.config, ids.length, model.backend));
  return logitsOf(model, h, 0, ids.length);
}

for (const arch of ['llama', 'qwen2', 'llama-attention-bias', 'llama-mlp-bias']) {
  test(`${arch}: a written quantized checkpoint loads back to the same integer model, bit for bit`, () => {
    const dir = fixturePath(arch);
    const ids = readReference(dir).inputIds;
    const { transform } = layerQuantizer(recipe);
    const inMemory = loadModel(dir, { transformLayer: transform, transformLmHead: (head) => quantizeLinear(head, { ...recipe.base, wBits: 8 }, 'lm_head') });
    const out = path.join(tempDir(), 'q');
    writeQuantizedCheckpoint(out, inMemory.source, inMemory.model.weights, recipe);

    const loaded = loadModel(out);
    const [layer0] = denseLayers(loaded.model.weights.layers);
    assert.equal(layer0.q.kind, 'quantized');
    assert.equal(layer0.down.kind === 'quantized' && layer0.down.wBits, 8);
    assert.equal(layer0.q.kind === 'quantized' && layer0.q.scale, 'int');
    const head = loaded.model.weights.lmHead;
    assert.equal(head.kind === 'quantized' && head.wBits, 8, 'the lm_head is stored and read back quantized (W8A8)');
    assert.deepEqual(logits(loaded.model, ids), logits(inMemory.model, ids));
    assert.ok(loaded.tokenizer !== null, 'tokenizer files are copied');

    const meta = openSafetensors(path.join(out, 'model.safetensors')).metadata;
    assert.equal(meta['intscale.method'], 'rtn');
    assert.equal(meta['intscale.source_model'], path.resolve(dir));
    assert.match(meta['intscale.tool_version'] ?? '', /^\d+\.\d+\.\d+/);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.equal(cfg.quantization_config.quant_method, 'intscale');
    assert.ok(!fs.readdirSync(out).some((f) => f.includes('.tmp')), 'no temporary files left');
  });
}

test('writing over a non-empty directory needs overwrite; re-quantizing a quantized checkpoint is refused', () => {
  const dir = fixturePath('llama');
  const { transform } = layerQuantizer(recipe);
  const m = loadModel(dir, { transformLayer: transform });
  const out = path.join(tempDir(), 'q');
  writeQuantizedCheckpoint(out, m.source, m.model.weights, recipe);
  throwsInput(() => writeQuantizedCheckpoint(out, m.source, m.model.weights, recipe), /output directory is not empty \(pass --overwrite/);
  writeQuantizedCheckpoint(out, m.source, m.model.weights, recipe, true);
  throwsInput(() => loadModel(out, { transformLayer: layerQuantizer(recipe).transform }), /already quantized; quantize the original float model/);
});

test('a quantized tensor with the wrong shape is named in the error', () => {
  const dir = fixturePath('qwen2');
  const { transform } = layerQuantizer(recipe);
  const m = loadModel(dir, { transformLayer: transform });
  const out = path.join(tempDir(), 'q');
  writeQuantizedCheckpoint(out, m.source, m.model.weights, recipe);
  const file = path.join(out, 'model.safetensors');
  const f = openSafetensors(file);
  const tensors = [...f.tensors.values()].map((t) => {
    const bytes = f.readBytes(t.name);
    const bad = t.name === 'model.layers.1.self_attn.k_proj.qweight';
    return { name: t.name, dtype: t.dtype, shape: bad ? [t.shape[0] / 2, t.shape[1]] : [...t.shape], data: bad ? bytes.subarray(0, bytes.length / 2) : bytes };
  });
  const meta = { ...f.metadata };
  f.close();
  writeSafetensors(file, tensors, meta);
  throwsInput(() => loadModel(out), /model\.layers\.1\.self_attn\.k_proj\.qweight: shape \[16, 32\] but a 4-bit \[32, 64\] layer needs \[32, 32\]/);
});

test('a checkpoint with an 8-bit embedding but a float lm_head tied to it (config tie_word_embeddings) is refused by name', () => {
  const dir = fixturePath('qwen2'); // tied
  const q = loadModel(dir, layerQuantizer({ ...recipe, embedding: 'int8' }).loadOptions);
  const w = q.model.weights;
  assert.equal(w.embedding.kind, 'quantized');
  // a float head that is not the table: written as lm_head.weight beside the 8-bit table
  const head = { kind: 'float' as const, n: w.lmHead.n, k: w.lmHead.k, w: new Float32Array(w.lmHead.n * w.lmHead.k).fill(0.01) };
  const out = path.join(tempDir(), 'q');
  writeQuantizedCheckpoint(out, q.source, { ...w, lmHead: head }, recipe);
  throwsInput(() => loadModel(out), /the embedding is stored quantized but the float lm_head is tied to it; the checkpoint is inconsistent/);
});
