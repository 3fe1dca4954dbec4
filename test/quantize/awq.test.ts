/**
 * AWQ: folding the scales leaves the float model unchanged (fixture logits within 1e-5; o_proj
 * folding on a multi-head layer), the search never does worse than RTN on its objective, and
 * float / Integer Scale AWQ run the same code with only the scale step differing.
 */
import { denseLayers } from '../helpers/dense-layers.js';
import { unpackWeights } from '../../src/quant/int4-pack.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuBackend } from '../../src/backends/cpu/cpu-backend.js';
import type { ModelConfig } from '../../src/model/config.js';
import { forwardHidden, logitsOf, runDecoderLayer, type Model } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { createModel } from '../../src/model/prepare.js';
import { loadModel } from '../../src/backends/load.js';
import { calibrationWindows, quantizeCalibrated, type FloatLayerWeights } from '../../src/quantize/calibration.js';
import { awqFoldLayer, awqLayerMethod, awqScales, foldAwqScales, hostScaleSearch, searchScales, DEFAULT_AWQ, type InputStats } from '../../src/quantize/awq.js';
import type { Backend, ScaleSearchProblem } from '../../src/model/backend.js';
import type { LinearReport } from '../../src/quant/methods/report.js';
import type { FloatLinear, QuantSpec } from '../../src/quant/types.js';
import { sharedFloat32 } from '../../src/tensor/shared.js';
import { fixturePath } from '../helpers/paths.js';
import { makeRng, randomNormals, type Rng } from '../helpers/random.js';
import { readReference } from '../helpers/reference.js';

const SPEC: QuantSpec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'float', alpha: { kind: 'safe', maxLog2: 10 } };
const tokens = Array.from({ length: 4000 }, (_, i) => (i * 7919 + 13) % 2048);

function maxAbsDiff(a: Float32Array, b: Float32Array): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, scale };
}

function logits(model: Model, ids: number[]): Float32Array {
  const hidden = forwardHidden(model, ids, createKvCache(model.config, ids.length, model.backend));
  return logitsOf(model, hidden, 0, ids.length);
}

test('AWQ-folded fixture model equals the original in float (logits within 1e-5), with searched and with random scales', () => {
  const dir = fixturePath('llama');
  const ids = readReference(dir).inputIds;
  const original = logits(loadModel(dir).model, ids);
  const windows = calibrationWindows(tokens, 4, 32, 1);
  const ratios: number[] = [];
  const searched = quantizeCalibrated(dir, windows, (calib) => {
    const fold = awqFoldLayer(calib, () => SPEC, DEFAULT_AWQ);
    for (const s of fold.scales.values()) if (s) ratios.push(s.ratio);
    return fold.layer;
  });
  const a = maxAbsDiff(logits(searched.model, ids), original);
  assert.ok(a.diff < 1e-5, `searched scales: max |Δlogit| ${a.diff} (logits up to ${a.scale})`);
  assert.ok(ratios.some((r) => r > 0), `the search kept every ρ = 0: ${ratios}`);

  const rng = makeRng(9);
  const random = (k: number) => Float32Array.from({ length: k }, () => Math.exp(rng.normal()));
  const folded = quantizeCalibrated(dir, windows, (calib) => foldAwqScales(calib.layer, {
    qkv: random(calib.config.hiddenSize), o: null, gateUp: random(calib.config.hiddenSize), down: random(calib.config.intermediateSize),
  }));
  const b = maxAbsDiff(logits(folded.model, ids), original);
  assert.ok(b.diff < 1e-5, `random scales: max |Δlogit| ${b.diff} (logits up to ${b.scale})`);
});

function floatLinear(rng: Rng, n: number, k: number): FloatLinear {
  const w = sharedFloat32(n * k);
  w.set(randomNormals(rng, n * k, 1 / Math.sqrt(k)));
  return { kind: 'float', n, k, w };
}

test('folding o_proj scales into v_proj (multi-head attention) leaves the layer unchanged', () => {
  const rng = makeRng(4);
  const config: ModelConfig = {
    architecture: 'llama', vocabSize: 16, hiddenSize: 32, intermediateSize: 48, numLayers: 1, numHeads: 4, numKvHeads: 4,
    headDim: 8, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: { kind: 'none' }, maxPositionEmbeddings: 64,
    tieWordEmbeddings: false, bias: { qkv: true, o: false, mlp: false }, slidingWindow: null, bosTokenId: null, eosTokenIds: [],
  };
  const layer: FloatLayerWeights = {
    inputNorm: Float32Array.from({ length: 32 }, () => 1 + 0.2 * rng.normal()),
    postAttentionNorm: Float32Array.from({ length: 32 }, () => 1 + 0.2 * rng.normal()),
    q: { ...floatLinear(rng, 32, 32), bias: randomNormals(rng, 32) }, k: { ...floatLinear(rng, 32, 32), bias: randomNormals(rng, 32) },
    v: { ...floatLinear(rng, 32, 32), bias: randomNormals(rng, 32) }, o: floatLinear(rng, 32, 32),
    gate: floatLinear(rng, 48, 32), up: floatLinear(rng, 48, 32), down: floatLinear(rng, 32, 48),
  };
  const s = (k: number) => Float32Array.from({ length: k }, () => Math.exp(rng.normal()));
  const folded = foldAwqScales(layer, { qkv: s(32), o: s(32), gateUp: s(32), down: s(48) });
  const run = (l: FloatLayerWeights) => {
    const model: Model = createModel(config, { embedding: { kind: 'float', n: 0, k: 32, w: new Float32Array(0) }, layers: [l], finalNorm: new Float32Array(0), lmHead: floatLinear(rng, 1, 32) }, cpuBackend);
    const h = sharedFloat32(10 * 32);
    h.set(randomNormals(makeRng(5), 10 * 32));
    runDecoderLayer(model, model.layers[0]!, h, 10, { cache: createKvCache(config, 10, model.backend).layers[0]!, start: 0 });
    return h;
  };
  const { diff, scale } = maxAbsDiff(run(folded), run(layer));
  assert.ok(diff < 1e-5 * scale, `max |Δh| ${diff} of ${scale}`);
});

test('awqScales: ρ = 0 gives ones; scales are normalised to max·min = 1', () => {
  const mean = Float64Array.from([0.1, 1, 10, 0]);
  assert.deepEqual(Array.from(awqScales(mean, 0)), [1, 1, 1, 1]);
  const s = awqScales(mean, 0.5);
  const max = Math.max(...s);
  const min = Math.min(...s);
  assert.ok(Math.abs(max * min - 1) < 1e-6);
});

test('AWQ with float and Integer Scale: same path, only the scale step differs (α = 2^30 gives the float integers)', () => {
  const dir = fixturePath('llama');
  const windows = calibrationWindows(tokens, 2, 32, 3);
  const run = (spec: QuantSpec, clip: boolean) => {
    const reports: LinearReport[] = [];
    const m = quantizeCalibrated(dir, windows, awqLayerMethod(() => spec, { ...DEFAULT_AWQ, clip, searchTokens: 64 }, (r) => reports.push(r)));
    return { layers: m.model.weights.layers, reports };
  };
  for (const clip of [false, true]) {
    const fs = run({ ...SPEC, aBits: 16 }, clip);
    const is = run({ ...SPEC, aBits: 16, scale: 'int', alpha: { kind: 'fixed', log2: 30 } }, clip);
    assert.equal(is.reports.length, 14);
    assert.ok(is.reports.every((r) => r.alphaLog2 === 30));
    const isLayers = denseLayers(is.layers);
    denseLayers(fs.layers).forEach((l, i) => {
      for (const slot of ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const) {
        const a = l[slot];
        const b = isLayers[i]![slot];
        assert.ok(a.kind === 'quantized' && b.kind === 'quantized' && a.scale === 'float' && b.scale === 'int');
        assert.deepEqual(unpackWeights(b), unpackWeights(a), `layer ${i} ${slot} clip ${clip}`);
        assert.deepEqual(b.scales, a.scales);
      }
      assert.deepEqual(is.layers[i]!.inputNorm, l.inputNorm);
    });
  }
});

test('searchScales runs a backend\'s own scale search where it has one (each grid point once, released once) and the host loop where it returns null: the same choice', () => {
  const rng = makeRng(5);
  const k = 64, t = 24;
  const rows = sharedFloat32(t * k);
  rows.set(randomNormals(rng, t * k));
  const meanAbs = new Float64Array(k);
  for (let r = 0; r < t; r++) for (let c = 0; c < k; c++) meanAbs[c] += Math.abs(rows[r * k + c]!) / t;
  const stats: InputStats = { k, meanAbs, rows, t, tokens: t };
  const linear = (n: number): FloatLinear => ({ kind: 'float', n, k, w: Float32Array.from(randomNormals(rng, n * k), (v) => v * 0.05) });
  const linears = [{ w: linear(48), spec: SPEC, name: 'a' }, { w: linear(32), spec: { ...SPEC, scale: 'int' as const }, name: 'b' }];
  const plain = searchScales(stats, linears, 6, cpuBackend);
  const calls = { problems: 0, losses: 0, released: 0 };
  const withSearch = (answer: 'session' | 'null'): Backend => ({
    ...cpuBackend,
    scaleSearch: (problem: ScaleSearchProblem) => {
      calls.problems++;
      assert.deepEqual(problem.linears.map((l) => [l.name, l.input]), [['a', 0], ['b', 0]]);
      assert.equal(problem.inputs.length, 1);
      if (answer === 'null') return null;
      const inner = hostScaleSearch(cpuBackend, problem);
      return { loss: (sc: Float32Array) => (calls.losses++, inner.loss(sc)), release: () => calls.released++ };
    },
  });
  assert.deepEqual(searchScales(stats, linears, 6, withSearch('session')), plain);
  assert.deepEqual(calls, { problems: 1, losses: 6, released: 1 });
  assert.deepEqual(searchScales(stats, linears, 6, withSearch('null')), plain);
  assert.equal(calls.problems, 2);
  assert.ok(plain.loss <= plain.rtnLoss);
});
