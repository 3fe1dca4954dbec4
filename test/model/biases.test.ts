/**
 * Biases through every path, and every tensor of a checkpoint accounted for. The bias fixtures
 * (scripts/gpu/make_fixtures.py --bias-fixtures, made with transformers) are llama models with
 * attention_bias (q/k/v/o) and mlp_bias (gate/up/down), every bias random. Their float logits
 * and greedy tokens are checked against transformers in forward.test.ts / generate.test.ts; here:
 * quantized with RTN, GPTQ and AWQ (W4A8, Integer Scale) the integer path equals its fake-quant
 * cross-check (dequantized weights W' = q·S/α, activations quantized per token, float64 sums),
 * every bias kept; and a tensor the model does not read is an error naming it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../../src/model/backend.js';
import { cpuBackend } from '../../src/backends/cpu/cpu-backend.js';
import { writeQuantizedCheckpoint } from '../../src/quantize/write-checkpoint.js';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { forwardHidden, logitsOf, type Model } from '../../src/model/forward.js';
import { createModel } from '../../src/model/prepare.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { LINEAR_SLOTS, type LinearSlot } from '../../src/model/layout.js';
import { denseLayers } from '../helpers/dense-layers.js';
import { loadModel } from '../../src/backends/load.js';
import { quantizeActivations } from '../../src/quant/activation-quant.js';
import { calibrationWindows, quantizeCalibrated } from '../../src/quantize/calibration.js';
import { DEFAULT_AWQ, awqLayerMethod } from '../../src/quantize/awq.js';
import { DEFAULT_GPTQ_LAYER, gptqLayerMethod } from '../../src/quantize/gptq-layer.js';
import { layerQuantizer } from '../../src/quantize/quantize-model.js';
import { dequantize } from '../../src/quant/quantize-linear.js';
import type { LinearWeight, QuantSpec, QuantizedLinear } from '../../src/quant/types.js';
import { sharedFloat32 } from '../../src/tensor/shared.js';
import { fixturePath } from '../helpers/paths.js';
import { readReference } from '../helpers/reference.js';
import { relativeError } from '../helpers/compare.js';
import { tempDir, throwsInput, writeJson } from '../io/temp-dir.js';

const SPEC: QuantSpec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };
const BIASED: Record<string, readonly LinearSlot[]> = {
  'llama-attention-bias': ['q', 'k', 'v', 'o'],
  'llama-mlp-bias': ['gate', 'up', 'down'],
};

/** The CPU backend with every quantized linear computed as fake quantization in float64. */
const fakeQuantBackend: Backend = {
  ...cpuBackend,
  name: 'fake-quant',
  prepareLinear(w: LinearWeight) {
    if (w.kind === 'float') return cpuBackend.prepareLinear(w);
    assert.equal(w.aBits, 8);
    const wq = dequantize(w);
    return { weight: w, run: (x, m) => fakeQuantLinear(x, m, w, wq), copiedBytes: wq.byteLength, release: () => {} };
  },
};

function fakeQuantLinear(x: Float32Array, m: number, w: QuantizedLinear, wq: Float32Array): Float32Array {
    const { xq, scales } = quantizeActivations(x, m, w.k);
    const y = sharedFloat32(m * w.n);
    for (let r = 0; r < m; r++) {
      for (let n = 0; n < w.n; n++) {
        let sum = 0;
        for (let k = 0; k < w.k; k++) sum += xq[r * w.k + k]! * wq[n * w.k + k]!;
        y[r * w.n + n] = sum * scales[r]! + (w.bias?.[n] ?? 0);
      }
    }
    return y;
}

function logits(model: Model, ids: readonly number[]): Float32Array {
  const h = forwardHidden(model, ids, createKvCache(model.config, ids.length, model.backend));
  return logitsOf(model, h, 0, ids.length);
}

const calibrationTokens = Array.from({ length: 4000 }, (_, i) => (i * 7919 + 13) % 2048);

for (const [name, slots] of Object.entries(BIASED)) {
  const dir = fixturePath(name);
  const quantizers: [string, () => Model][] = [
    ['RTN', () => loadModel(dir, { transformLayer: layerQuantizer({ method: 'rtn', base: SPEC, overrides: {} }).transform }).model],
    ['GPTQ', () => quantizeCalibrated(dir, calibrationWindows(calibrationTokens, 4, 32, 1), gptqLayerMethod(() => SPEC, DEFAULT_GPTQ_LAYER, () => {})).model],
    ['AWQ', () => quantizeCalibrated(dir, calibrationWindows(calibrationTokens, 4, 32, 1), awqLayerMethod(() => SPEC, { ...DEFAULT_AWQ, grid: 4 }, () => {})).model],
  ];
  for (const [method, quantize] of quantizers) {
    test(`${name}, ${method} W4A8 IS: every bias kept; the integer path equals its fake-quant cross-check`, () => {
      const model = quantize();
      for (const layer of denseLayers(model.weights.layers)) {
        for (const slot of LINEAR_SLOTS) {
          const w = layer[slot];
          assert.equal(w.kind, 'quantized');
          assert.equal(w.bias !== undefined, slots.includes(slot), `${slot} bias`);
        }
      }
      const ids = readReference(dir).inputIds;
      const integer = logits(model, ids);
      const fake = logits(createModel(model.config, model.weights, fakeQuantBackend), ids);
      const err = relativeError(integer, fake);
      assert.ok(err < 1e-4, `integer vs fake-quant relative error ${err}`);
      // the biases matter: the same model without them is far off
      const unbiased = { ...model.weights, layers: model.weights.layers.map((l) =>
        Object.fromEntries(Object.entries(l).map(([k, v]) => [k, typeof v === 'object' && 'kind' in v ? { ...v, bias: undefined } : v]))) };
      const without = logits(createModel(model.config, unbiased as typeof model.weights, model.backend), ids);
      assert.ok(relativeError(without, integer) > 1e-2, 'dropping the biases changes the logits');
    });
  }
}

type Tensor = TensorToWrite;

/** Rewrites dir/model.safetensors with `edit` applied to its tensor list (metadata kept). */
function editTensors(dir: string, edit: (tensors: Tensor[]) => void): void {
  const file = path.join(dir, 'model.safetensors');
  const st = openSafetensors(file);
  const tensors = [...st.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: st.readBytes(t.name).slice() }));
  const meta = { ...st.metadata };
  st.close();
  edit(tensors);
  writeSafetensors(file, tensors, meta);
}

/** A copy of a fixture directory with its tensors and config.json edited. */
function editedCopy(fixture: string, edit: (tensors: Tensor[]) => void, config?: (c: Record<string, unknown>) => void): string {
  const from = fixturePath(fixture);
  const dir = path.join(tempDir(), fixture);
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  editTensors(dir, edit);
  if (config) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    config(c);
    writeJson(path.join(dir, 'config.json'), c);
  }
  return dir;
}

test('a tensor the model does not read is an error naming it; rotary inv_freq is allowed', () => {
  const extra = (name: string, n: number) => (t: Tensor[]) =>
    t.push({ name, dtype: 'F32', shape: [n], data: new Uint8Array(new Float32Array(n).fill(0.5).buffer) });
  const unknown = editedCopy('mistral', extra('model.layers.1.mlp.extra_scale', 64));
  throwsInput(() => loadModel(unknown), /holds tensors this mistral model does not use: model\.layers\.1\.mlp\.extra_scale/);
  const rotary = editedCopy('mistral', extra('model.layers.0.self_attn.rotary_emb.inv_freq', 8));
  assert.equal(loadModel(rotary).model.config.architecture, 'mistral');
});

test('the issue\'s case: a checkpoint with o_proj biases under a config that does not give them is refused', () => {
  // the attention_bias fixture with the flag turned off: q/k/v/o biases would be dropped
  const dir = editedCopy('llama-attention-bias', () => {}, (c) => { c['attention_bias'] = false; });
  throwsInput(() => loadModel(dir), /does not use: model\.layers\.0\.self_attn\.q_proj\.bias, .*\(16 in all\)|does not use: .*self_attn\.[qkvo]_proj\.bias/);
  // and a config that gives biases the checkpoint lacks names the missing tensor
  const missing = editedCopy('llama-attention-bias', () => {}, (c) => { c['mlp_bias'] = true; });
  throwsInput(() => loadModel(missing), /tensor "model\.layers\.0\.mlp\.gate_proj\.bias" not found/);
});

test('a quantized checkpoint with an extra tensor is refused the same way', () => {
  const q = loadModel(fixturePath('llama-mlp-bias'), { transformLayer: layerQuantizer({ method: 'rtn', base: SPEC, overrides: {} }).transform });
  const out = path.join(tempDir(), 'q');
  // written with its biases and read back, every tensor is used
  writeQuantizedCheckpoint(out, q.source, q.model.weights, { method: 'rtn', base: SPEC, overrides: {} });
  assert.deepEqual(logits(loadModel(out).model, [0, 5, 9]), logits(q.model, [0, 5, 9]));
  editTensors(out, (t) => t.push({ name: 'model.layers.0.self_attn.o_proj.bias', dtype: 'F32', shape: [64], data: new Uint8Array(256) }));
  throwsInput(() => loadModel(out), /does not use: model\.layers\.0\.self_attn\.o_proj\.bias/);
});
