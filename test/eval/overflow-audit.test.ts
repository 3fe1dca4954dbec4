import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createMseSweep,
  largestInt32Seen,
  MSE_ALPHA_LOG2S,
  overflowRows,
  scaleBitHistogram,
  scaleBitWidth,
  traceCalibration,
} from '../../src/eval/overflow-audit.js';
import { loadModel } from '../../src/backends/load.js';
import { dequantize, meanSquaredError, quantizeLinear } from '../../src/quant/quantize-linear.js';
import { layerQuantizer } from '../../src/quantize/quantize-model.js';
import { DEFAULT_SPEC, type QuantRecipe } from '../../src/quantize/recipe.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from '../../src/quant/types.js';
import { repoPath } from '../helpers/paths.js';
import { freshSeed, makeRng, randomNormals } from '../helpers/random.js';

test('scale bit width is ceil(log2(S + 1))', () => {
  const cases: [number, number][] = [[0, 0], [1, 1], [2, 2], [3, 2], [4, 3], [255, 8], [256, 9], [1023, 10], [1024, 11], [2 ** 31 - 1, 31]];
  for (const [S, bits] of cases) {
    assert.equal(scaleBitWidth(S), bits, `S = ${S}`);
    assert.equal(scaleBitWidth(S), Math.ceil(Math.log2(S + 1)), `S = ${S}`);
  }
});

test('bit-width histogram counts every integer scale once, with contiguous bins', () => {
  const mk = (intScales: number[], scale: 'int' | 'float' = 'int'): QuantizedLinear => ({
    kind: 'quantized', n: intScales.length, k: 8, groupSize: 8, wBits: 4, aBits: 8, packed: new Uint8Array(intScales.length * 4),
    scale, scales: new Float32Array(intScales.length), ...(scale === 'int' ? { intScales: new Int32Array(intScales), alphaLog2: 10 } : {}),
  });
  const bins = scaleBitHistogram([mk([3, 4, 5, 100]), mk([7, 1]), mk([9, 9], 'float')]);
  assert.deepEqual(bins, [
    { bits: 1, groups: 1 }, { bits: 2, groups: 1 }, { bits: 3, groups: 3 }, { bits: 4, groups: 0 },
    { bits: 5, groups: 0 }, { bits: 6, groups: 0 }, { bits: 7, groups: 1 },
  ]);
  assert.deepEqual(scaleBitHistogram([]), []);
});

test('MSE sweep: one row per α 2^7..2^13, pooled over the weights of every layer', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const spec: QuantSpec = { ...DEFAULT_SPEC, groupSize: 32 };
  const layers: FloatLinear[] = [
    { kind: 'float', n: 6, k: 64, w: randomNormals(rng, 6 * 64, 0.02) },
    { kind: 'float', n: 3, k: 96, w: randomNormals(rng, 3 * 96, 0.1) },
  ];
  const sweep = createMseSweep();
  for (const l of layers) sweep.add(l, spec);
  assert.equal(sweep.layers, 2);
  const rows = sweep.rows();
  assert.deepEqual(rows.map((r) => r.alphaLog2), [7, 8, 9, 10, 11, 12, 13]);
  assert.deepEqual(MSE_ALPHA_LOG2S, [7, 8, 9, 10, 11, 12, 13]);

  // brute force for α = 2^10: Σ squared errors / Σ weights
  const total = layers.reduce((s, l) => s + l.w.length, 0);
  const pooled = (f: (l: FloatLinear) => number) => layers.reduce((s, l) => s + f(l) * l.w.length, 0) / total;
  const fs = (l: FloatLinear) => dequantize(quantizeLinear(l, { ...spec, scale: 'float' }));
  const is10 = (l: FloatLinear) => dequantize(quantizeLinear(l, { ...spec, scale: 'int', alpha: { kind: 'fixed', log2: 10 } }));
  const r10 = rows.find((r) => r.alphaLog2 === 10)!;
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
  assert.ok(close(r10.floatMse, pooled((l) => meanSquaredError(l.w, fs(l)))), `seed ${seed}`);
  assert.ok(close(r10.intMse, pooled((l) => meanSquaredError(l.w, is10(l)))), `seed ${seed}`);
  assert.ok(close(r10.intVsFloatMse, pooled((l) => meanSquaredError(is10(l), fs(l)))), `seed ${seed}`);
  for (const r of rows) {
    assert.equal(r.floatMse, rows[0]!.floatMse);
    assert.ok(r.intMse > 0 && r.intVsFloatMse >= 0);
  }
  // a larger α brings the integer scale closer to the float one
  assert.ok(rows[6]!.intVsFloatMse < rows[0]!.intVsFloatMse, `seed ${seed}`);
});

test('on the embedded model: every A8 layer traced, named, and its max seen ≤ its proven bound', () => {
  const recipe: QuantRecipe = { method: 'rtn', base: DEFAULT_SPEC, overrides: { down: { wBits: 8 }, v: { aBits: 16 } } };
  const { transform, reports } = layerQuantizer(recipe);
  const { model } = loadModel(repoPath('models/tiny-wikitext'), { transformLayer: transform });
  const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % model.config.vocabSize);
  let windowsDone = 0;
  const trace = traceCalibration(model, tokens, { seqLen: 16, windows: 5, onWindow: () => windowsDone++ });
  assert.equal(trace.windows, 2, 'only whole windows: 40 tokens hold 2 windows of 16');
  assert.equal(windowsDone, 2);
  assert.equal(trace.tokens, 32);

  const rows = overflowRows(model.weights, reports, trace.stats);
  assert.equal(rows.length, model.config.numLayers * 7);
  assert.equal(new Set(rows.map((r) => r.name)).size, rows.length);
  assert.equal(rows[0]!.name, 'model.layers.0.self_attn.q_proj');
  for (const r of rows) {
    const isV = r.name.endsWith('v_proj');
    if (isV) {
      assert.equal(r.proof, null, 'A16 layers have no int32 accumulation');
      assert.equal(r.seen, null);
      continue;
    }
    assert.ok(r.proof !== null && r.seen !== null, r.name);
    assert.equal(r.seen.tokens, 32, r.name);
    assert.equal(r.alphaLowered, reports.find((p) => p.name === r.name)!.alphaLowered);
    assert.equal(r.boundRatio, r.proof.maxBound / 2 ** 31);
    assert.ok(r.seen.maxGroupAcc > 0, r.name);
    assert.ok(largestInt32Seen(r.seen) <= r.proof.maxBound, `${r.name}: seen ${largestInt32Seen(r.seen)} > bound ${r.proof.maxBound}`);
    assert.equal(r.layer.wBits, r.name.endsWith('down_proj') ? 8 : 4);
  }
  // a loaded checkpoint gives no reports: "lowered" is unknown, not false
  assert.ok(overflowRows(model.weights, null, null).every((r) => r.alphaLowered === null && r.seen === null));
  assert.throws(() => traceCalibration(model, tokens.slice(0, 10), { seqLen: 16, windows: 1 }), /fewer than one window of 16/);
});

test('an α too large for int32 on real text: the trace stops at the overflowing layer and says so', () => {
  const recipe: QuantRecipe = { method: 'rtn', base: { ...DEFAULT_SPEC, alpha: { kind: 'fixed', log2: 24 } }, overrides: {} };
  const { transform } = layerQuantizer(recipe);
  const { model } = loadModel(repoPath('models/tiny-wikitext'), { transformLayer: transform });
  const tokens = Array.from({ length: 32 }, (_, i) => (i * 37 + 5) % model.config.vocabSize);
  const trace = traceCalibration(model, tokens, { seqLen: 16, windows: 2 });
  assert.ok(trace.stopped !== null);
  assert.equal(trace.stopped.window, 0);
  assert.equal(trace.windows, 0);
  assert.match(trace.stopped.layer, /^model\.layers\.\d+\./);
  assert.match(trace.stopped.message, /int32 overflow/);
  const rows = overflowRows(model.weights, null, trace.stats);
  const failed = rows.find((r) => r.name === trace.stopped!.layer)!;
  assert.ok(failed.seen !== null && largestInt32Seen(failed.seen) >= 2 ** 31, 'the overflowing value was recorded');
  assert.ok(!failed.proof!.safe);
});
