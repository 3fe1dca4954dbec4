/**
 * Quantizing a mixtral (mixture of experts) per expert: RTN, GPTQ and AWQ with Integer Scale through
 * the shared group quantizer, the router kept in float, an overflow proof per expert, the RTN
 * fallback of experts too few calibration tokens reach (expert-fallback.ts), AWQ's folding (router
 * and experts) leaving the float model unchanged, and the checkpoint carrying the experts (written
 * and read back bit for bit). Models: the mistral fixture made a mixtral of 4 distinct experts
 * (test/helpers/mixtral-dir.ts), fresh seeds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as path from 'node:path';
import { loadModel } from '../../src/backends/load.js';
import { forwardHidden, logitsOf, type Model } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { linearEntries } from '../../src/model/layer-linears.js';
import { overflowRows } from '../../src/eval/overflow-audit.js';
import { calibrationWindows, quantizeCalibrated } from '../../src/quantize/calibration.js';
import { DEFAULT_AWQ, awqFoldLayer, awqLayerMethod } from '../../src/quantize/awq.js';
import { DEFAULT_GPTQ_LAYER, gptqLayerMethod } from '../../src/quantize/gptq-layer.js';
import { expertFallback } from '../../src/quantize/expert-fallback.js';
import { layerQuantizer } from '../../src/quantize/quantize-model.js';
import { writeQuantizedCheckpoint } from '../../src/quantize/write-checkpoint.js';
import { unpackWeights } from '../../src/quant/int4-pack.js';
import type { LinearReport } from '../../src/quant/methods/report.js';
import type { LinearWeight, QuantSpec } from '../../src/quant/types.js';
import { mixtralFromDense } from '../helpers/mixtral-dir.js';
import { freshSeed } from '../helpers/random.js';
import { tempDir } from '../io/temp-dir.js';
import { fixturePath } from '../helpers/paths.js';

const SPEC: QuantSpec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };
const seed = freshSeed();
const dir = mixtralFromDense('mistral', { experts: 4, topK: 2, seed, noise: 0.5, routerStd: 1 });
const windowsOf = (n: number, len: number) => calibrationWindows(Array.from({ length: 4000 }, (_, i) => (i * 7919 + seed) % 2048), n, len, seed);

function logits(model: Model, ids: readonly number[]): Float32Array {
  return logitsOf(model, forwardHidden(model, ids, createKvCache(model.config, ids.length, model.backend)), 0, ids.length);
}

/** Every linear of every layer with its module name (experts included, the router not). */
function linearsByName(model: Model): Map<string, LinearWeight> {
  return new Map(model.weights.layers.flatMap((l, i) => linearEntries(l).map((e) => [`model.layers.${i}.${e.module}`, e.weight] as const)));
}

const IDS = [0, 17, 300, 5, 1200, 44, 9, 81, 2000, 3];

test(`RTN per expert: every expert linear quantized with its overflow proof, the router float; the checkpoint round trip is bit for bit (seed ${seed})`, () => {
  const { transform, reports } = layerQuantizer({ method: 'rtn', base: SPEC, overrides: { down: { wBits: 8 } } });
  const q = loadModel(dir, { transformLayer: transform });
  const names = [...linearsByName(q.model).keys()];
  assert.equal(names.length, 2 * (4 + 4 * 3));
  assert.deepEqual(reports.map((r) => r.name), names, 'one report per linear, experts named as the Hub names them');
  assert.ok(names.includes('model.layers.1.block_sparse_moe.experts.3.w2'));
  for (const r of reports) assert.ok(r.overflow?.safe, `${r.name}: proven overflow-free`);
  for (const [name, w] of linearsByName(q.model)) {
    assert.equal(w.kind, 'quantized', name);
    if (name.endsWith('.w2')) assert.equal(w.kind === 'quantized' && w.wBits, 8, `${name}: --override down_proj applies to every expert's w2`);
  }
  for (const l of q.model.weights.layers) assert.equal(l.moe?.router.kind, 'float', 'the router stays float');
  assert.deepEqual(overflowRows(q.model.weights, reports, null).map((r) => r.name), names, 'the overflow audit has a row per expert linear');

  const out = path.join(tempDir(), 'q');
  writeQuantizedCheckpoint(out, q.source, q.model.weights, { method: 'rtn', base: SPEC, overrides: {} });
  const back = loadModel(out);
  assert.deepEqual(back.model.config.moe, { numExperts: 4, topK: 2 });
  const stored = linearsByName(back.model);
  for (const [name, w] of linearsByName(q.model)) {
    const b = stored.get(name)!;
    assert.ok(w.kind === 'quantized' && b.kind === 'quantized');
    assert.deepEqual(b.packed, w.packed, name);
    assert.deepEqual(b.intScales, w.intScales, name);
    assert.deepEqual(b.scales, w.scales, name);
  }
  back.model.weights.layers.forEach((l, i) => assert.deepEqual(l.moe!.router.w, q.model.weights.layers[i]!.moe!.router.w));
  assert.deepEqual(logits(back.model, IDS), logits(q.model, IDS), 'the checkpoint runs bit for bit as the model it was written from');
});

for (const fixture of ['mixtral', 'mixtral-window']) {
  test(`the ${fixture} fixture (transformers-made): GPTQ W4A8 IS per expert, written and read back, runs bit for bit as in memory`, () => {
    const fdir = fixturePath(fixture);
    const reports: LinearReport[] = [];
    const recipe = { method: 'rtn' as const, base: SPEC, overrides: {} };
    const q = quantizeCalibrated(fdir, windowsOf(4, 32), gptqLayerMethod(() => SPEC, { ...DEFAULT_GPTQ_LAYER, minExpertTokens: 16 }, (r) => reports.push(r)));
    const experts = q.model.config.moe!.numExperts;
    assert.equal(reports.length, 2 * (4 + 3 * experts));
    assert.ok(reports.every((r) => r.overflow?.safe));
    const out = path.join(tempDir(), fixture);
    writeQuantizedCheckpoint(out, q.source, q.model.weights, recipe);
    const back = loadModel(out).model;
    assert.deepEqual(logits(back, IDS), logits(q.model, IDS));
    for (const [name, w] of linearsByName(back)) assert.deepEqual((w as { packed: Uint8Array }).packed, (linearsByName(q.model).get(name) as { packed: Uint8Array }).packed, name);
  });
}

test(`GPTQ per expert: below --min-expert-tokens an expert is RTN, bit for bit, and reported; above it GPTQ on its routed tokens (seed ${seed})`, () => {
  const rtn = linearsByName(loadModel(dir, { transformLayer: layerQuantizer({ method: 'rtn', base: SPEC, overrides: {} }).transform }).model);
  const run = (minExpertTokens: number) => {
    const reports: LinearReport[] = [];
    const m = quantizeCalibrated(dir, windowsOf(4, 32), gptqLayerMethod(() => SPEC, { ...DEFAULT_GPTQ_LAYER, minExpertTokens }, (r) => reports.push(r))).model;
    return { linears: linearsByName(m), reports, model: m };
  };
  const all = run(Infinity);
  const experts = [...all.linears.keys()].filter((n) => n.includes('.experts.'));
  assert.equal(experts.length, 2 * 4 * 3);
  for (const name of experts) {
    const r = all.reports.find((x) => x.name === name)!;
    assert.match(r.fallback ?? '', /^RTN: expert \d was routed \d+ calibration tokens, fewer than Infinity$/, name);
    assert.deepEqual(unpackWeights(all.linears.get(name) as never), unpackWeights(rtn.get(name) as never), `${name}: the fallback is plain RTN`);
  }
  const attention = [...all.linears.keys()].filter((n) => n.includes('self_attn'));
  assert.ok(attention.some((n) => !unpackWeights(all.linears.get(n) as never).every((v, i) => v === unpackWeights(rtn.get(n) as never)[i])), 'attention is still GPTQ');
  assert.ok(all.reports.filter((r) => r.name.includes('self_attn')).every((r) => r.fallback === undefined));

  const none = run(0);
  assert.ok(none.reports.every((r) => r.fallback === undefined && r.overflow?.safe), 'no fallback, every expert proven overflow-free');
  const changed = experts.filter((n) => !unpackWeights(none.linears.get(n) as never).every((v, i) => v === unpackWeights(rtn.get(n) as never)[i]));
  assert.ok(changed.length >= experts.length - 2, `GPTQ changed ${changed.length} of ${experts.length} expert linears from RTN`);
  for (const l of none.model.weights.layers) assert.equal(l.moe?.router.kind, 'float');
  // 4 windows of 32 tokens, top-2 of 4: each expert gets about 64 tokens per layer
  const some = run(64);
  const fell = some.reports.filter((r) => r.fallback !== undefined).length;
  assert.equal(fell % 3, 0, 'an expert falls back as a whole (w1, w3, w2)');

  const onePass: LinearReport[] = [];
  quantizeCalibrated(dir, windowsOf(2, 32), gptqLayerMethod(() => SPEC, { ...DEFAULT_GPTQ_LAYER, trueSequential: false, minExpertTokens: 1 }, (r) => onePass.push(r)));
  assert.equal(onePass.length, 2 * (4 + 4 * 3), 'every Hessian from the float layer in one pass: every expert quantized too');
});

test('expertFallback: only experts, below the threshold or with no token at all', () => {
  assert.equal(expertFallback(null, 0, 64), null, 'attention and dense MLPs never fall back');
  assert.equal(expertFallback(1, 64, 64), null);
  assert.equal(expertFallback(1, 63, 64), 'RTN: expert 1 was routed 63 calibration tokens, fewer than 64');
  assert.match(expertFallback(2, 0, 0) ?? '', /^RTN: expert 2 was routed 0 calibration tokens/, 'an expert no token reached cannot be calibrated, whatever the threshold');
});

test(`AWQ on a mixtral: the folded model (router, every expert) equals the original in float; quantized, every expert is reported (seed ${seed})`, () => {
  const original = logits(loadModel(dir).model, IDS);
  const windows = windowsOf(4, 32);
  const ratios: number[] = [];
  const folded = quantizeCalibrated(dir, windows, (calib) => {
    const fold = awqFoldLayer(calib, () => SPEC, { ...DEFAULT_AWQ, grid: 6, minExpertTokens: 0 });
    for (const s of fold.scales.values()) if (s) ratios.push(s.ratio);
    assert.ok(fold.scales.has('down#3') && fold.scales.has('gateUp') && !fold.scales.has('gateUp#0'), 'one gate/up scale, a down scale per expert');
    return fold.layer;
  }).model;
  const f = logits(folded, IDS);
  let diff = 0;
  let scale = 0;
  f.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - original[i]!)); scale = Math.max(scale, Math.abs(original[i]!)); });
  assert.ok(diff < 1e-5 * scale, `max |Δlogit| ${diff} of ${scale}`);
  assert.ok(ratios.some((r) => r > 0), 'the search moved off ρ = 0 somewhere');

  const reports: LinearReport[] = [];
  const q = quantizeCalibrated(dir, windows, awqLayerMethod(() => SPEC, { ...DEFAULT_AWQ, grid: 4, minExpertTokens: Infinity, clip: true }, (r) => reports.push(r))).model;
  assert.deepEqual(reports.map((r) => r.name), [...linearsByName(q).keys()]);
  assert.ok(reports.filter((r) => r.name.includes('.experts.')).every((r) => r.fallback?.startsWith('RTN: expert')));
  assert.ok(reports.every((r) => r.overflow?.safe));
});
