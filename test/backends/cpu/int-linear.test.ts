import assert from 'node:assert/strict';
import { packWeights, weightAt } from '../../../src/quant/int4-pack.js';
import { after, test } from 'node:test';
import { intLinear, intLinearRows, weightOnlyLinearRows, type IntLinearOptions } from '../../../src/backends/cpu/int-linear.js';
import { wasmIntLinearAvailable } from '../../../src/backends/cpu/int-linear-wasm-kernel.js';
import { CpuPool } from '../../../src/backends/cpu/pool/index.js';
import { groupAccumulators, referenceIntLinear, referenceLinear } from '../../../src/backends/cpu/int-linear-reference.js';
import { quantizeActivations } from '../../../src/quant/activation-quant.js';
import { proveNoOverflow } from '../../../src/quant/overflow.js';
import { dequantize, quantizeLinear } from '../../../src/quant/quantize-linear.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from '../../../src/quant/types.js';
import { assertBitEqual } from '../../helpers/compare.js';
import { freshSeed, makeRng, randomNormals, type Rng } from '../../helpers/random.js';

const SPECS: Record<string, Omit<QuantSpec, 'groupSize'>> = {
  'W4A8-IS': { wBits: 4, aBits: 8, scale: 'int', alpha: { kind: 'fixed', log2: 10 } },
  'W4A8-FS': { wBits: 4, aBits: 8, scale: 'float', alpha: { kind: 'fixed', log2: 10 } },
  'W8A8-IS': { wBits: 8, aBits: 8, scale: 'int', alpha: { kind: 'heuristic' } },
  'W8A8-FS': { wBits: 8, aBits: 8, scale: 'float', alpha: { kind: 'fixed', log2: 10 } },
  'W4A16': { wBits: 4, aBits: 16, scale: 'float', alpha: { kind: 'fixed', log2: 10 } },
  'W8A16-IS': { wBits: 8, aBits: 16, scale: 'int', alpha: { kind: 'fixed', log2: 13 } },
};

/** A two-thread pool, and the kernel paths every A8 case runs (threaded: split even tiny layers). */
const pool = new CpuPool({ threads: 2 });
after(() => pool.close());
const A8_PATHS: Record<string, IntLinearOptions> = {
  js: { kernel: 'js' },
  // without a shared arena (INTSCALE_ARENA=0) only the JS fallback runs
  ...(wasmIntLinearAvailable() ? {
    wasm: { kernel: 'wasm', pool: null },
    'wasm 2 threads': { kernel: 'wasm', pool, minMacsPerThread: 0 },
  } : {}),
};

function randomFloatLinear(rng: Rng, n: number, k: number, withBias: boolean): FloatLinear {
  const w = randomNormals(rng, n * k, 0.03);
  for (let i = 0; i < n; i++) w[i * k + rng.int(0, k - 1)]! *= 10; // outliers
  return { kind: 'float', n, k, w, ...(withBias ? { bias: randomNormals(rng, n, 0.1) } : {}) };
}

function randomActivations(rng: Rng, m: number, k: number): Float32Array {
  const x = randomNormals(rng, m * k, 2);
  for (let i = 0; i < m; i++) x[i * k + rng.int(0, k - 1)]! *= 20; // activation outliers
  return x;
}


test('fast kernels equal the reference bit for bit (ragged M, N, K, groups, all formats)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  let cases = 0;
  for (const [name, spec] of Object.entries(SPECS)) {
    for (const m of [1, 3, 17]) {
      for (const n of [1, 5, 33]) {
        for (const k of [32, 96, 256]) {
          for (const groupSize of [32, 64, 0]) {
            if (groupSize !== 0 && k % groupSize !== 0) continue;
            const w = quantizeLinear(randomFloatLinear(rng, n, k, rng.uniform() < 0.5), { ...spec, groupSize });
            const x = randomActivations(rng, m, k);
            const what = `seed ${seed} ${name} M=${m} N=${n} K=${k} G=${groupSize}`;
            const expected = referenceLinear(x, m, w);
            assertBitEqual(intLinear(x, m, w), expected, what);
            if (w.aBits === 8) {
              for (const [path, options] of Object.entries(A8_PATHS)) assertBitEqual(intLinear(x, m, w, undefined, options), expected, `${what} ${path}`);
            }
            // split over two row ranges, as a worker pool would
            const split = new Float32Array(m * n).fill(NaN);
            const cut = rng.int(0, n);
            if (w.aBits === 8) {
              const act = quantizeActivations(x, m, k);
              intLinearRows(act, w, split, 0, cut);
              intLinearRows(act, w, split, cut, n);
            } else {
              weightOnlyLinearRows(x, m, w, split, 0, cut);
              weightOnlyLinearRows(x, m, w, split, cut, n);
            }
            assertBitEqual(split, expected, `${what} split at ${cut}`);
            cases++;
          }
        }
      }
    }
  }
  assert.equal(cases, 6 * 3 * 3 * 7); // K = 32 and 96 take no G = 64
});

test('group accumulators are the exact integer dot products', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const w = quantizeLinear(randomFloatLinear(rng, 3, 64, false), { ...SPECS['W4A8-IS']!, groupSize: 32 });
  const act = quantizeActivations(randomActivations(rng, 2, 64), 2, 64);
  const acc = groupAccumulators(act, w);
  for (let m = 0; m < 2; m++) for (let n = 0; n < 3; n++) for (let g = 0; g < 2; g++) {
    let sum = 0;
    for (let k = g * 32; k < g * 32 + 32; k++) sum += act.xq[m * 64 + k]! * weightAt(w, n, k);
    assert.equal(acc[(m * 3 + n) * 2 + g], sum, `seed ${seed}`);
  }
});

/** Σ_k (xq·a)·W' in float64, and Σ |terms| for a relative tolerance. */
function fakeQuantProduct(xq: Int8Array, a: Float32Array, wq: Float32Array, m: number, n: number, k: number, mi: number, ni: number): [number, number] {
  let sum = 0;
  let mag = 0;
  for (let i = 0; i < k; i++) {
    const t = xq[mi * k + i]! * a[mi]! * wq[ni * k + i]!;
    sum += t;
    mag += Math.abs(t);
  }
  return [sum, mag];
}

test('integer-scale and float-scale paths agree with the fake-quant product to float rounding', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const m = 5;
  const n = 7;
  const k = 512;
  const floatW = randomFloatLinear(rng, n, k, false);
  const x = randomActivations(rng, m, k);
  const act = quantizeActivations(x, m, k);
  const intLayer = quantizeLinear(floatW, { ...SPECS['W4A8-IS']!, groupSize: 128 });
  const floatLayer = quantizeLinear(floatW, { ...SPECS['W4A8-FS']!, groupSize: 128 });
  // the float-scale epilogue run on the integer layer's weights (scales = S/α)
  const intLayerFloatEpilogue: QuantizedLinear = { ...intLayer, scale: 'float' };
  for (const [layer, label] of [[intLayer, 'int'], [floatLayer, 'float'], [intLayerFloatEpilogue, 'int weights, float epilogue']] as const) {
    const y = intLinear(x, m, layer);
    const wq = dequantize(layer);
    for (let mi = 0; mi < m; mi++) for (let ni = 0; ni < n; ni++) {
      const [expected, mag] = fakeQuantProduct(act.xq, act.scales, wq, m, n, k, mi, ni);
      assert.ok(Math.abs(y[mi * n + ni]! - expected) <= 1e-5 * mag, `seed ${seed} ${label}: ${y[mi * n + ni]} vs ${expected}`);
    }
  }
  // and the two epilogues on the same integer weights are nearly identical
  const yi = intLinear(x, m, intLayer);
  const yf = intLinear(x, m, intLayerFloatEpilogue);
  for (let i = 0; i < yi.length; i++) assert.ok(Math.abs(yi[i]! - yf[i]!) <= 1e-5 * (Math.abs(yi[i]!) + 1e-3), `seed ${seed}`);
});

test('safe α on a large-scale layer: an adversarial input at the extreme stays exact', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const n = 4;
  const k = 256;
  const floatW: FloatLinear = { kind: 'float', n, k, w: randomNormals(rng, n * k, 40) };
  const spec: QuantSpec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };
  const layer = quantizeLinear(floatW, spec);
  assert.ok(layer.alphaLog2! < 10, `seed ${seed}: expected the safe policy to lower α`);
  const proof = proveNoOverflow(layer);
  assert.ok(proof.safe);
  for (let target = 0; target < n; target++) {
    // x = -sign(q) drives every xq to ∓127: |acc| = 127·Σ|q| in every group of the target row.
    const x = new Float32Array(k);
    for (let i = 0; i < k; i++) x[i] = weightAt(layer, target, i) < 0 ? -1 : 1;
    const act = quantizeActivations(x, 1, k);
    let total = 0n;
    for (let g = 0; g < k / 32; g++) {
      let acc = 0n;
      for (let i = g * 32; i < g * 32 + 32; i++) acc += BigInt(act.xq[i]! * weightAt(layer, target, i));
      total += acc * BigInt(layer.intScales![target * 8 + g]!);
    }
    assert.ok(total < 2n ** 31n);
    const expected = Math.fround(Math.fround(Math.fround(Number(total)) * act.scales[0]!) * 2 ** -layer.alphaLog2!);
    const ref = referenceIntLinear(act, layer);
    assert.equal(ref[target], expected, `seed ${seed}`);
    assertBitEqual(intLinear(x, 1, layer), ref, `seed ${seed}`);
  }
});

test('the worst case of the bound is reached exactly; one more unit of S throws instead of wrapping', () => {
  // q = -8 everywhere, xq = -127 everywhere: acc = 127·8·32 = 32512 per group, total = bound.
  const make = (s1: number): QuantizedLinear => ({
    kind: 'quantized', n: 1, k: 64, groupSize: 32, wBits: 4, aBits: 8,
    packed: packWeights(new Int8Array(64).fill(-8), 1, 64, 4), scale: 'int',
    scales: new Float32Array([33026 / 1024, s1 / 1024]), intScales: new Int32Array([33026, s1]), alphaLog2: 10,
  });
  const x = new Float32Array(64).fill(-3);
  const safe = make(33026);
  assert.equal(proveNoOverflow(safe).safe, true);
  const y = intLinear(x, 1, safe);
  const a = Math.fround(3 / 127);
  assert.equal(y[0], Math.fround(Math.fround(Math.fround(2147482624) * a) * 2 ** -10));
  assertBitEqual(y, referenceLinear(x, 1, safe), 'at the bound');
  const unsafe = make(33027);
  assert.equal(proveNoOverflow(unsafe).safe, false);
  assert.throws(() => referenceLinear(x, 1, unsafe), /int32 overflow .* output channel 0/);
  assert.throws(() => intLinear(x, 1, unsafe), /int32 overflow .* output channel 0/);
  for (const options of Object.values(A8_PATHS)) {
    assert.throws(() => intLinear(x, 1, unsafe, undefined, options), (e: unknown) => e instanceof RangeError && /int32 overflow .* output channel 0/.test(e.message));
  }
  // a mild input on the unproven layer still runs, exactly
  const mild = new Float32Array(64).map((_, i) => (i % 2 === 0 ? 1 : -1));
  for (const [path, options] of Object.entries(A8_PATHS)) {
    assertBitEqual(intLinear(mild, 1, unsafe, undefined, options), referenceLinear(mild, 1, unsafe), `unproven layer, mild input, ${path}`);
  }
});

test('bit exact where the int32 total exceeds 2^24 (the int→float conversion rounds)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  let roundedTotals = 0;
  for (const wBits of [4, 8] as const) {
    for (const [m, n, k, groupSize] of [[5, 9, 256, 32], [4, 6, 192, 64], [3, 4, 128, 0]] as const) {
      const floatW: FloatLinear = { kind: 'float', n, k, w: randomNormals(rng, n * k, 0.05) };
      const layer = quantizeLinear(floatW, { wBits, aBits: 8, groupSize, scale: 'int', alpha: { kind: 'safe', maxLog2: 24 } });
      assert.ok(proveNoOverflow(layer).safe);
      // token mi leans towards weight row mi % n, so its total for that channel is large
      const x = new Float32Array(m * k);
      for (let i = 0; i < m * k; i++) x[i] = floatW.w[(Math.floor(i / k) % n) * k + (i % k)]! * (1 + 0.3 * rng.normal()) * 100;
      const act = quantizeActivations(x, m, k);
      const acc = groupAccumulators(act, layer);
      const groupCount = k / layer.groupSize;
      for (let mi = 0; mi < m; mi++) for (let ni = 0; ni < n; ni++) {
        let total = 0;
        for (let g = 0; g < groupCount; g++) total += acc[(mi * n + ni) * groupCount + g]! * layer.intScales![ni * groupCount + g]!;
        if (Math.fround(total) !== total) roundedTotals++;
      }
      for (const [path, options] of Object.entries(A8_PATHS)) {
        assertBitEqual(intLinear(x, m, layer, undefined, options), referenceIntLinear(act, layer), `seed ${seed} W${wBits} M=${m} N=${n} K=${k} G=${groupSize} ${path}`);
      }
    }
  }
  assert.ok(roundedTotals >= 10, `seed ${seed}: only ${roundedTotals} totals needed rounding to float32`);
});
