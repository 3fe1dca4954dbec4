import assert from 'node:assert/strict';
import { packWeights, weightAt } from '../../src/quant/int4-pack.js';
import { test } from 'node:test';
import type { Backend } from '../../src/model/backend.js';
import { cpuBackend } from '../../src/backends/cpu/cpu-backend.js';
import { tracingBackend } from '../../src/eval/tracing-backend.js';
import { linearOnce } from '../../src/model/prepare.js';
import { quantizeActivations } from '../../src/quant/activation-quant.js';
import { proveNoOverflow } from '../../src/quant/overflow.js';
import { quantizeLinear } from '../../src/quant/quantize-linear.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from '../../src/quant/types.js';
import { freshSeed, makeRng, randomNormals } from '../helpers/random.js';

const W4A8_IS: QuantSpec = { wBits: 4, aBits: 8, groupSize: 16, scale: 'int', alpha: { kind: 'fixed', log2: 10 } };

function randomLayer(seed: number, n: number, k: number, spec: QuantSpec): QuantizedLinear {
  const rng = makeRng(seed);
  const w: FloatLinear = { kind: 'float', n, k, w: randomNormals(rng, n * k, 0.05) };
  return quantizeLinear(w, spec);
}

/** Brute force, independent of groupAccumulators: max |acc|, max |Σ_g acc·S|. */
function bruteForce(x: Float32Array, m: number, w: QuantizedLinear): { maxAcc: number; maxTotal: number } {
  const { xq } = quantizeActivations(x, m, w.k);
  const G = w.groupSize;
  const groups = w.k / G;
  let maxAcc = 0;
  let maxTotal = 0;
  for (let r = 0; r < m; r++) {
    for (let n = 0; n < w.n; n++) {
      let total = 0;
      for (let g = 0; g < groups; g++) {
        let acc = 0;
        for (let j = 0; j < G; j++) acc += xq[r * w.k + g * G + j]! * weightAt(w, n, g * G + j);
        maxAcc = Math.max(maxAcc, Math.abs(acc));
        total += acc * (w.intScales ? w.intScales[n * groups + g]! : 0);
      }
      maxTotal = Math.max(maxTotal, Math.abs(total));
    }
  }
  return { maxAcc, maxTotal };
}

test('returns exactly what the wrapped backend returns, and forwards every op', () => {
  const calls: string[] = [];
  const sentinel = new Float32Array([42]);
  const spy: Backend = {
    name: 'spy',
    startPass: () => void calls.push('startPass'),
    upload: () => (calls.push('upload'), sentinel),
    download: () => (calls.push('download'), sentinel),
    rows: () => (calls.push('rows'), sentinel),
    layerCache: () => (calls.push('layerCache'), { keys: sentinel, values: sentinel, capacity: 1 }),
    releaseLayerCache: () => void calls.push('releaseLayerCache'),
    prepareLinear: (w) => ({ weight: w, run: () => (calls.push('linear'), sentinel), copiedBytes: 0, release: () => void calls.push('release') }),
    rmsnorm: () => (calls.push('rmsnorm'), sentinel),
    rope: () => void calls.push('rope'),
    attention: () => (calls.push('attention'), sentinel),
    siluMul: () => void calls.push('siluMul'),
    addInPlace: () => void calls.push('addInPlace'),
  };
  const t = tracingBackend(spy);
  const layer = randomLayer(1, 3, 32, W4A8_IS);
  const x = new Float32Array(2 * 32).fill(0.5);
  assert.equal(linearOnce(t, layer, x, 2), sentinel);
  assert.equal(t.rmsnorm(x, 2, new Float32Array(32), 1e-5), sentinel);
  t.rope(x, 2, 1, 32, 0, new Float32Array(16));
  assert.equal(t.attention(x, x, x, 2, 0, { keys: x, values: x, capacity: 2 }, { numHeads: 1, numKvHeads: 1, headDim: 32, slidingWindow: null }), sentinel);
  t.siluMul(x, x);
  t.addInPlace(x, x);
  t.startPass();
  assert.equal(t.upload(x), sentinel);
  assert.equal(t.download(x, 0, 1, 32), sentinel);
  assert.equal(t.rows(x, 0, 1, 32), sentinel);
  const cache = t.layerCache(1, 32);
  assert.equal(cache.keys, sentinel);
  t.releaseLayerCache(cache);
  assert.deepEqual(calls, ['linear', 'release', 'rmsnorm', 'rope', 'attention', 'siluMul', 'addInPlace', 'startPass', 'upload', 'download', 'rows', 'layerCache', 'releaseLayerCache']);
  assert.equal(t.stats.size, 1);

  // and on the real CPU backend the outputs are bit-identical to calling it directly
  const seed = freshSeed();
  const rng = makeRng(seed);
  const real = tracingBackend(cpuBackend);
  for (const spec of [W4A8_IS, { ...W4A8_IS, scale: 'float' } as QuantSpec, { ...W4A8_IS, aBits: 16 } as QuantSpec]) {
    const w = randomLayer(seed + 1, 7, 48, spec);
    const xr = randomNormals(rng, 5 * 48);
    assert.deepEqual(linearOnce(real, w, xr, 5), linearOnce(cpuBackend, w, xr, 5), `seed ${seed}, ${JSON.stringify(spec)}`);
  }
  // A16 layers have no integer accumulation and are not traced
  assert.equal(real.stats.size, 2);
});

test('recorded max |acc| and max |Σ acc·S| equal a brute-force max, and stay within the proven bound', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [n, k, G, m] of [[5, 64, 16, 3], [9, 96, 32, 4], [4, 40, 40, 2]] as const) {
    const w = randomLayer(seed + n, n, k, { ...W4A8_IS, groupSize: G });
    const t = tracingBackend(cpuBackend, new Map([[w, 'my.layer']]));
    const x1 = randomNormals(rng, m * k);
    const x2 = randomNormals(rng, 1 * k, 3);
    linearOnce(t, w, x1, m);
    linearOnce(t, w, x2, 1);
    const b1 = bruteForce(x1, m, w);
    const b2 = bruteForce(x2, 1, w);
    const s = t.stats.get(w)!;
    const msg = `seed ${seed}, shape ${n}×${k} g${G}`;
    assert.equal(s.name, 'my.layer');
    assert.equal(s.maxGroupAcc, Math.max(b1.maxAcc, b2.maxAcc), msg);
    assert.equal(s.maxTotal, Math.max(b1.maxTotal, b2.maxTotal), msg);
    assert.ok(s.maxRunning! >= s.maxTotal!, msg);
    assert.equal(s.tokens, m + 1);
    assert.equal(s.calls, 2);
    assert.ok(s.maxRunning! <= proveNoOverflow(w).maxBound, msg);
    assert.ok(s.maxGroupAcc <= 127 * 8 * G, msg);
  }
});

test('float-scale layers record max |acc| only', () => {
  const w = randomLayer(3, 4, 32, { ...W4A8_IS, scale: 'float' });
  const t = tracingBackend(cpuBackend);
  const x = randomNormals(makeRng(4), 2 * 32);
  linearOnce(t, w, x, 2);
  const s = t.stats.get(w)!;
  assert.equal(s.name, 'unnamed#0');
  assert.equal(s.maxGroupAcc, bruteForce(x, 2, w).maxAcc);
  assert.equal(s.maxTotal, null);
  assert.equal(s.maxRunning, null);
});

test('an adversarial input (xq = -127 against q = qmin everywhere) reaches the proven bound exactly', () => {
  // 127·8·32 = 32512 per group; channel 0 has Σ_g S = 66052 → bound 2147482624, just below 2^31
  const n = 3;
  const k = 64;
  const G = 32;
  const intScales = new Int32Array([33026, 33026, 1, 2, 500, 7]);
  const layer: QuantizedLinear = {
    kind: 'quantized', n, k, groupSize: G, wBits: 4, aBits: 8,
    packed: packWeights(new Int8Array(n * k).fill(-8), n, k, 4),
    scale: 'int',
    scales: Float32Array.from(intScales, (S) => S / 1024),
    intScales,
    alphaLog2: 10,
  };
  const proof = proveNoOverflow(layer);
  assert.equal(proof.maxBound, 2147482624);
  assert.ok(proof.safe);
  const m = 2;
  const x = new Float32Array(m * k).fill(-1); // a = 1/127, xq = -127: same sign as q = -8
  const t = tracingBackend(cpuBackend);
  const y = linearOnce(t, layer, x, m);
  const s = t.stats.get(layer)!;
  assert.equal(s.maxGroupAcc, 127 * 8 * G);
  assert.equal(s.maxTotal, proof.maxBound);
  assert.equal(s.maxRunning, proof.maxBound);
  // the integer kernel computes that extreme value without overflowing
  const expected = Math.fround(Math.fround(Math.fround(proof.maxBound) * Math.fround(1 / 127)) * 2 ** -10);
  assert.equal(y[0], expected);
});

test('a layer whose kernel refuses an int32 overflow is still recorded, named in failure, and the error rethrown', () => {
  const n = 1;
  const k = 64;
  const intScales = new Int32Array([33027, 33027]); // bound 32512 · 66054 ≥ 2^31
  const layer: QuantizedLinear = {
    kind: 'quantized', n, k, groupSize: 32, wBits: 4, aBits: 8, packed: packWeights(new Int8Array(n * k).fill(-8), n, k, 4),
    scale: 'int', scales: Float32Array.from(intScales, (S) => S / 1024), intScales, alphaLog2: 10,
  };
  const t = tracingBackend(cpuBackend, new Map([[layer, 'bad.layer']]));
  const failureName = () => t.failure?.name ?? null; // a function, so TS does not narrow t.failure
  assert.equal(failureName(), null);
  assert.throws(() => linearOnce(t, layer, new Float32Array(k).fill(-1), 1), RangeError);
  assert.equal(failureName(), 'bad.layer');
  assert.equal(t.stats.get(layer)!.maxTotal, 32512 * 66054);
  t.reset();
  assert.equal(failureName(), null);
  assert.equal(t.stats.size, 0);
});
