/**
 * GPTQ on a random layer with correlated inputs: its output error beats RTN's for float and
 * Integer Scale; IS and FS differ only in the scale step (at a huge α they give the same
 * integers); a Hessian that is not positive definite is a clear error naming the layer.
 */
import { unpackWeights, weightAt } from '../../../src/quant/int4-pack.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../../src/errors.js';
import { gptqFactor, gptqQuantizeLinear, DEFAULT_GPTQ, SERIAL_GPTQ, type BlockRows } from '../../../src/quant/methods/gptq.js';
import { gptqBlockRows } from '../../../src/quant/methods/gptq-block.js';
import { HessianAccumulator } from '../../../src/quant/methods/hessian.js';
import { upperCholeskyOfInverse } from '../../../src/quant/methods/cholesky.js';
import { dequantize, quantizeLinear } from '../../../src/quant/quantize-linear.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from '../../../src/quant/types.js';
import { freshSeed, makeRng, randomNormals } from '../../helpers/random.js';
import { correlatedInputs, hessianOf } from '../../helpers/gptq-data.js';

const FS: QuantSpec = { wBits: 4, aBits: 16, groupSize: 32, scale: 'float', alpha: { kind: 'fixed', log2: 10 } };
const IS: QuantSpec = { ...FS, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };

/** ‖X·Wᵀ − X·Ŵᵀ‖² in float64. */
function outputError(x: Float32Array, t: number, w: FloatLinear, q: QuantizedLinear): number {
  const wq = dequantize(q);
  const { n, k } = w;
  let sum = 0;
  for (let r = 0; r < t; r++) {
    for (let o = 0; o < n; o++) {
      let d = 0;
      for (let c = 0; c < k; c++) d += x[r * k + c]! * (w.w[o * k + c]! - wq[o * k + c]!);
      sum += d * d;
    }
  }
  return sum;
}

function setup(seed: number, n = 48, k = 128, t = 512) {
  const rng = makeRng(seed);
  const w: FloatLinear = { kind: 'float', n, k, w: randomNormals(rng, n * k, 0.05) };
  const x = correlatedInputs(rng, t, k);
  return { w, x, t, h: hessianOf(x, t, k) };
}

test('Hessian accumulation equals 2/T·XᵀX in any chunking', () => {
  const rng = makeRng(3);
  const k = 7;
  const x = randomNormals(rng, 11 * k);
  const whole = hessianOf(x, 11, k);
  const acc = new HessianAccumulator(k);
  acc.add(x.subarray(0, 5 * k), 5);
  acc.add(x.subarray(5 * k), 6);
  const parts = acc.hessian();
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let r = 0; r < 11; r++) s += x[r * k + i]! * x[r * k + j]!;
      assert.ok(Math.abs(whole[i * k + j]! - (2 * s) / 11) < 1e-12);
      assert.ok(Math.abs(parts[i * k + j]! - whole[i * k + j]!) < 1e-12);
    }
  }
});

test('upper Cholesky factor of H⁻¹: Uᵀ·U·H = I', () => {
  const { h } = setup(5, 4, 32, 64);
  const k = 32;
  const f = upperCholeskyOfInverse(h, k);
  assert.ok(f.ok);
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) assert.equal(f.u[i * k + j], 0);
  let worst = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let v = 0;
      for (let m = 0; m < k; m++) {
        let hinv = 0;
        for (let p = 0; p < k; p++) hinv += f.u[p * k + i]! * f.u[p * k + m]!;
        v += hinv * h[m * k + j]!;
      }
      worst = Math.max(worst, Math.abs(v - (i === j ? 1 : 0)));
    }
  }
  assert.ok(worst < 1e-8, `‖UᵀUH − I‖∞ = ${worst}`);
});

for (const [label, spec] of [['float scale', FS], ['Integer Scale', IS], ['Integer Scale W4A8', { ...IS, aBits: 8 as const }]] as const) {
  for (const actOrder of [false, true]) {
    test(`GPTQ (${label}${actOrder ? ', act-order' : ''}) has a lower output error than RTN on correlated inputs`, () => {
      const seed = freshSeed();
      const { w, x, t, h } = setup(seed);
      const rtn = outputError(x, t, w, quantizeLinear(w, spec));
      const g = gptqQuantizeLinear(w, h, spec, { ...DEFAULT_GPTQ, actOrder, blockSize: 48 }, 'test.linear');
      const gptq = outputError(x, t, w, g.layer);
      assert.ok(gptq < 0.8 * rtn, `seed ${seed}: GPTQ ${gptq} vs RTN ${rtn}`);
      assert.equal(g.layer.scale, spec.scale);
      if (spec.scale === 'int') {
        assert.ok(g.alpha !== undefined);
        for (let i = 0; i < g.layer.scales.length; i++) {
          assert.equal(g.layer.scales[i], Math.fround(g.layer.intScales![i]! * 2 ** -g.layer.alphaLog2!));
        }
      }
    });
  }
}

test('GPTQ with Integer Scale at a huge α gives exactly the float-scale integers (only the scale step differs)', () => {
  const seed = freshSeed();
  const { w, h } = setup(seed, 16, 64, 128);
  for (const actOrder of [false, true]) {
    const settings = { ...DEFAULT_GPTQ, actOrder, blockSize: 16 };
    const fs = gptqQuantizeLinear(w, h, FS, settings).layer;
    const is = gptqQuantizeLinear(w, h, { ...FS, scale: 'int', alpha: { kind: 'fixed', log2: 30 } }, settings).layer;
    assert.deepEqual(unpackWeights(is), unpackWeights(fs), `seed ${seed}`);
    // each scale is the float scale's exact value put on the 2^-30 grid and then rounded to float32: within one float32
    // step of the float scale (two roundings instead of one), and mostly the same float
    const ulp = (v: number): number => 2 ** (Math.floor(Math.log2(v)) - 23);
    for (let i = 0; i < fs.scales.length; i++) assert.ok(Math.abs(is.scales[i]! - fs.scales[i]!) <= ulp(fs.scales[i]!), `seed ${seed}: scale ${i}: ${is.scales[i]} vs ${fs.scales[i]}`);
    assert.ok(fs.scales.filter((v, i) => is.scales[i] === v).length >= fs.scales.length / 2, `seed ${seed}: most scales are the same float`);
    // at a small α they differ: the scaler really is in the loop
    const coarse = gptqQuantizeLinear(w, h, { ...FS, scale: 'int', alpha: { kind: 'fixed', log2: 4 } }, settings).layer;
    assert.notDeepEqual(unpackWeights(coarse), unpackWeights(fs));
  }
});

test('GPTQ with a block size of 1, of K and of 128 gives the same result (lazy updates are exact)', () => {
  const { w, h } = setup(11, 8, 64, 128);
  const results = [1, 7, 64, 128].map((blockSize) => unpackWeights(gptqQuantizeLinear(w, h, FS, { ...DEFAULT_GPTQ, blockSize }).layer));
  for (const q of results.slice(1)) assert.deepEqual(q, results[0]);
  const act = [1, 13, 64].map((blockSize) => unpackWeights(gptqQuantizeLinear(w, h, FS, { ...DEFAULT_GPTQ, blockSize, actOrder: true }).layer));
  for (const q of act.slice(1)) assert.deepEqual(q, act[0]);
});

test('GPTQ zeroes dead inputs (H[i,i] = 0) and quantizes the rest', () => {
  const { w, x, t } = setup(13, 8, 64, 128);
  for (let r = 0; r < t; r++) x[r * 64 + 5] = 0;
  const q = gptqQuantizeLinear(w, hessianOf(x, t, 64), FS).layer;
  for (let r = 0; r < 8; r++) assert.equal(weightAt(q, r, 5), 0);
});

test('a Hessian that is not positive definite is an InputError naming the layer and suggesting --damp', () => {
  const k = 32;
  const w: FloatLinear = { kind: 'float', n: 4, k, w: randomNormals(makeRng(1), 4 * k) };
  const h = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) h[i * k + j] = i === j ? 1 : -0.5; // eigenvalue 1 − 0.5·32 < 0
  assert.throws(
    () => gptqQuantizeLinear(w, h, FS, { ...DEFAULT_GPTQ, damp: 0.01 }, 'model.layers.3.mlp.up_proj'),
    (e: unknown) => e instanceof InputError && /model\.layers\.3\.mlp\.up_proj/.test(e.message) && /not positive definite/.test(e.message) && /--damp/.test(e.message),
  );
  // with enough dampening it goes through
  assert.doesNotThrow(() => gptqQuantizeLinear(w, h, FS, { ...DEFAULT_GPTQ, damp: 20 }, "x"));
  // a singular Hessian (two equal inputs) without dampening also fails clearly
  const rng = makeRng(2);
  const x = randomNormals(rng, 64 * k);
  for (let r = 0; r < 64; r++) x[r * k + 1] = x[r * k]!;
  assert.throws(() => gptqQuantizeLinear(w, hessianOf(x, 64, k), FS, { ...DEFAULT_GPTQ, damp: 0 }, 'L'), InputError);
});

test('a GPTQ factor made once serves every linear of its input: the same layers as from the Hessian, bit for bit; a mismatched factor is refused', () => {
  const seed = freshSeed();
  const { w, h } = setup(seed);
  const settings = { ...DEFAULT_GPTQ, actOrder: true, blockSize: 48 };
  const factor = gptqFactor(h, w.k, settings, 'test.qkv');
  const other: FloatLinear = { ...w, w: w.w.map((v) => -0.5 * v) };
  for (const layer of [w, other]) {
    assert.deepEqual(gptqQuantizeLinear(layer, factor, IS, settings, 'test.linear').layer, gptqQuantizeLinear(layer, h, IS, settings, 'test.linear').layer, `seed ${seed}`);
  }
  assert.throws(() => gptqQuantizeLinear({ kind: 'float', n: 2, k: 64, w: new Float32Array(128) }, factor, IS, settings, 'small'), /factor of 128 inputs for a layer of 64/);
  assert.throws(() => gptqQuantizeLinear(w, factor, IS, { ...settings, damp: 0.1 }, 'test.linear'), /other settings/);
});

test('GPTQ rows are independent given U: block rows run in uneven pieces, last rows first, give the same layer bit for bit', () => {
  const seed = freshSeed();
  const { w, h } = setup(seed, 37, 128, 256);
  const pieces: BlockRows = (args, rows) => {
    const cuts = [rows, 29, 12, 11, 0];
    for (let c = 0; c + 1 < cuts.length; c++) gptqBlockRows(args, cuts[c + 1]!, cuts[c]!);
  };
  for (const [spec, actOrder] of [[FS, false], [IS, true]] as const) {
    const settings = { ...DEFAULT_GPTQ, actOrder, blockSize: 48 };
    const serial = gptqQuantizeLinear(w, h, spec, settings, 'test.linear').layer;
    const split = gptqQuantizeLinear(w, h, spec, settings, 'test.linear', { ...SERIAL_GPTQ, blockRows: pieces }).layer;
    assert.deepEqual(split, serial, `seed ${seed}`);
  }
});

test('an integer scale past int32 is an InputError naming the layer and row', () => {
  const { w, h } = setup(17, 6, 64, 128);
  const loud: FloatLinear = { ...w, w: w.w.map((v, i) => (i === 3 * 64 + 5 ? 1000 : v)) };
  assert.throws(
    () => gptqQuantizeLinear(loud, h, { ...FS, scale: 'int', alpha: { kind: 'fixed', log2: 30 } }, DEFAULT_GPTQ, 'model.layers.0.mlp.down_proj'),
    (e: unknown) => e instanceof InputError && /model\.layers\.0\.mlp\.down_proj/.test(e.message) && /row 3 does not fit int32/.test(e.message),
  );
});
