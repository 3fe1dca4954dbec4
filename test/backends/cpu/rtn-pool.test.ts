/**
 * RTN's row passes split over the CPU pool (backends/cpu/rtn-pool.ts) give one thread's bits, and both give
 * the group quantizer's own codes packed by int4-pack.ts (the layer quantize-linear.ts made before its passes
 * were row kernels): 4 and 8 bits, float and Integer Scale, even and odd group sizes, ragged shapes large
 * enough for the pool to split (≥ 2^17 weights); an integer scale past int32 is the same error naming the same row either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rtnRowsOnPool } from '../../../src/backends/cpu/rtn-pool.js';
import { quantizeLinearReport, RTN_ON_THIS_THREAD } from '../../../src/quant/quantize-linear.js';
import { chooseAlpha } from '../../../src/quant/amplifier.js';
import { chooseGroupScale, floatGroupScale, groupAbsMax, quantizeWithScale, type GroupScaler } from '../../../src/quant/group-quant.js';
import { packWeights } from '../../../src/quant/int4-pack.js';
import type { FloatLinear, QuantSpec } from '../../../src/quant/types.js';
import { sharedFloat32 } from '../../../src/tensor/shared.js';
import { freshSeed, makeRng, randomNormals } from '../../helpers/random.js';

/** The codes and scales straight from the group quantizer (no row kernels). */
function direct(w: FloatLinear, spec: QuantSpec, G: number): { packed: Uint8Array; scales: Float32Array; intScales?: Int32Array } {
  const { n, k } = w, groupCount = k / G;
  const floatScales = Float32Array.from({ length: n * groupCount }, (_, i) => floatGroupScale(groupAbsMax(w.w, i * G, i * G + G), spec.wBits));
  const scaler: GroupScaler = spec.scale === 'int'
    ? { kind: 'int', alphaLog2: chooseAlpha({ scales: floatScales, n, groupCount, groupSize: G, wBits: spec.wBits }, spec.alpha, 'x').alphaLog2 }
    : { kind: 'float' };
  const q = new Int8Array(n * k), scales = new Float32Array(n * groupCount), intScales = new Int32Array(n * groupCount);
  for (let i = 0; i < n * groupCount; i++) {
    const chosen = chooseGroupScale(scaler, groupAbsMax(w.w, i * G, i * G + G), spec.wBits);
    scales[i] = chosen.scale;
    if (chosen.intScale !== undefined) intScales[i] = chosen.intScale;
    quantizeWithScale(w.w, chosen.scale, spec.wBits, q, i * G, i * G + G, i * G);
  }
  return { packed: packWeights(q, n, k, spec.wBits), scales, ...(spec.scale === 'int' ? { intScales } : {}) };
}

test('RTN on the pool gives one thread\'s layer bit for bit, and both the group quantizer\'s codes (4/8 bits, FS/IS, odd groups)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [n, k, G, wBits, scale] of [[601, 512, 128, 4, 'int'], [301, 768, 32, 4, 'float'], [513, 258, 3, 4, 'int'], [260, 600, 40, 8, 'int'], [1030, 128, 64, 8, 'float']] as const) {
    const w = sharedFloat32(n * k);
    w.set(randomNormals(rng, n * k, 0.05));
    const layer: FloatLinear = { kind: 'float', n, k, w };
    const spec: QuantSpec = { wBits, aBits: 8, groupSize: G, scale, alpha: { kind: 'safe', maxLog2: 10 } };
    const one = quantizeLinearReport(layer, spec, 'x', RTN_ON_THIS_THREAD);
    const pooled = quantizeLinearReport(layer, spec, 'x', rtnRowsOnPool);
    const what = `n ${n} k ${k} G ${G} W${wBits} ${scale} seed ${seed}`;
    assert.deepEqual(pooled, one, what);
    const want = direct(layer, spec, G);
    assert.deepEqual(one.layer.packed, want.packed, `${what}: packed codes`);
    assert.deepEqual(one.layer.scales, want.scales, `${what}: scales`);
    if (scale === 'int') assert.deepEqual(one.layer.intScales, want.intScales, `${what}: integer scales`);
  }
});

test('an integer scale past int32 is refused naming its row, on the pool as on one thread', () => {
  const [n, k] = [2048, 128]; // enough rows that the pool splits them: the first bad row wins whichever thread meets it
  const w = sharedFloat32(n * k).fill(0.01);
  w.fill(3e4, 1500 * k, 1500 * k + 8);
  w.fill(3e4, 23 * k + 64, 23 * k + 96); // row 23, its second group of 64
  const spec: QuantSpec = { wBits: 4, aBits: 8, groupSize: 64, scale: 'int', alpha: { kind: 'fixed', log2: 30 } };
  for (const rows of [RTN_ON_THIS_THREAD, rtnRowsOnPool]) {
    assert.throws(() => quantizeLinearReport({ kind: 'float', n, k, w }, spec, 'model.layers.0.mlp.up_proj', rows), /model\.layers\.0\.mlp\.up_proj: integer scale \d+ of row 23 does not fit int32; lower α/);
  }
});
