/**
 * The CUDA backend (the forward pass on the GPU) against the CPU backend: integer layers bit for
 * bit at every kernel size class (decode, split-K TMA, full TMA) with and without bias; float and
 * W4A16 layers within their float tolerance; layers no kernel takes run on the CPU and say why;
 * RMSNorm, rotary embedding, attention (grouped-query, sliding window, a cache already holding
 * positions), SwiGLU and residual add within float64-rounding distance of the CPU ops; the quantized
 * embedded model's hidden states within 1e-5 of the CPU backend's and its greedy tokens equal;
 * decode steps replayed as CUDA graphs equal the same steps run op by op, bit for bit.
 * Fresh random inputs (never zeros). Skips without a GPU.
 */
import { weightAt } from '../../../src/quant/int4-pack.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import { createCudaBackend, type CudaBackend } from '../../../src/backends/cuda/cuda-backend.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import type { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import type { PreparedLinear } from '../../../src/model/backend.js';
import { cpuBackend } from '../../../src/backends/cpu/cpu-backend.js';
import { f16ToF32, f32ToF16 } from '../../../src/io/dtype.js';
import { quantizeModel } from '../../../src/quantize/quantize-model.js';
import { DEFAULT_SPEC } from '../../../src/quantize/recipe.js';
import { forwardHidden, forwardLastLogits, logitsOf, type Model } from '../../../src/model/forward.js';
import { createKvCache } from '../../../src/model/kv-cache.js';
import { createModel, linearOnce } from '../../../src/model/prepare.js';
import { generate } from '../../../src/model/generate.js';
import { argmax } from '../../../src/model/sampling.js';
import type { FloatLinear, QuantizedLinear } from '../../../src/quant/types.js';
import { randomActivations, randomW4Layer, randomW8Layer, rng } from './helpers.js';
import { assertBitExact } from './gpu-checks.js';
import { fixturePath } from '../../helpers/paths.js';
import { readReference } from '../../helpers/reference.js';
import { loadModel } from '../../../src/backends/load.js';
import { quantizedEmbedded } from './embedded.js';
import { relativeError } from '../../helpers/compare.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

function withBackend(run: (b: CudaBackend) => void): void {
  const b = createCudaBackend({ ctx: ctxOf() });
  try {
    run(b);
  } finally {
    b.dispose();
  }
}

/** y = x·Wᵀ through the backend: upload, the prepared linear, download. */
function gpuLinear(b: CudaBackend, x: Float32Array, m: number, prepared: PreparedLinear<DeviceBuffer>): Float32Array {
  b.startPass();
  return b.download(prepared.run(b.upload(x), m), 0, m, prepared.weight.n);
}

const NO_PLACEMENTS = { gpu: { w4a8: 0, w8a8: 0, w4a16: 0, f32: 0, f16: 0 }, cpu: [] };

function randomBias(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * 3);
}

/** |got[i] - want[i]| <= bound(i) for every element (a NaN fails). */
function assertWithin(got: Float32Array, want: Float32Array, bound: (i: number) => number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= bound(i))) assert.fail(`${what}: element ${i} is ${got[i]}, CPU ${want[i]} (bound ${bound(i)})`);
  }
}

/** |got - want| <= tol · Σ_k |x·w| per output, where `absDot` gives that sum. */
const assertCloseScaled = (got: Float32Array, want: Float32Array, absDot: (i: number) => number, tol: number, what: string): void =>
  assertWithin(got, want, (i) => tol * absDot(i) + 1e-30, what);

/** |got - want| <= tol · max(|want|, floor) elementwise. */
const assertClose = (got: Float32Array, want: Float32Array, tol: number, floor: number, what: string): void =>
  assertWithin(got, want, (i) => tol * Math.max(Math.abs(want[i]!), floor), what);

// M = 1..16 decode, 33-64 decode MT8, 100 and 200 the TMA kernel with split-K on 3 / 6 tiles (K = 1024)
const TOKENS = [1, 7, 16, 33, 64, 100, 200];

test('CUDA backend: W4A8 and W8A8 layers equal the CPU backend bit for bit, with and without bias', { skip }, () => {
  withBackend((b) => {
    const layers: [string, QuantizedLinear][] = [
      ['W4A8 300x1024 g128', randomW4Layer(300, 1024, 128, 11)],
      ['W4A8 260x1024 g256 + bias', { ...randomW4Layer(260, 1024, 256, 12), bias: randomBias(260, 13) }],
      ['W8A8 200x1024 g128', randomW8Layer(200, 1024, 128, 14)],
      ['W8A8 136x512 g128 + bias', { ...randomW8Layer(136, 512, 128, 15), bias: randomBias(136, 16) }],
    ];
    const prepared = layers.map(([, w]) => b.prepareLinear(w));
    layers.forEach(([name, w], i) => {
      for (const m of TOKENS) {
        const x = randomActivations(m, w.k, 100 + m);
        assertBitExact(gpuLinear(b, x, m, prepared[i]!), linearOnce(cpuBackend, w, x, m), `${name}, m=${m}`);
      }
    });
    assert.deepEqual(b.placements(), { gpu: { w4a8: 2, w8a8: 2, w4a16: 0, f32: 0, f16: 0 }, cpu: [] });
    for (const p of prepared) p.release();
    assert.deepEqual(b.placements(), NO_PLACEMENTS, 'released layers are gone');
    assert.throws(() => prepared[0]!.run(b.upload(randomActivations(1, 1024, 1)), 1), /released/);
  });
});

test('CUDA backend: float and W4A16 layers within float tolerance; layers no kernel takes run on the CPU and are named', { skip }, () => {
  withBackend((b) => {
    const r = rng(21);
    const n = 333;
    const k = 640;
    const float: FloatLinear = { kind: 'float', n, k, w: Float32Array.from({ length: n * k }, () => r() * 2 - 1), bias: randomBias(n, 22) };
    const w4a16: QuantizedLinear = { ...randomW4Layer(n, 1024, 128, 23), aBits: 16 };
    const ragged = randomW4Layer(100, 192, 64, 24); // K % 128 != 0: no CUDA kernel
    const [pf, p4, pr] = [float, w4a16, ragged].map((w) => b.prepareLinear(w)) as [PreparedLinear<DeviceBuffer>, PreparedLinear<DeviceBuffer>, PreparedLinear<DeviceBuffer>];
    for (const m of [1, 9, 40]) {
      const x = randomActivations(m, k, 200 + m);
      const absDot = (i: number) => {
        const [row, col] = [Math.floor(i / n), i % n];
        let s = Math.abs(float.bias![col]!);
        for (let j = 0; j < k; j++) s += Math.abs(x[row * k + j]! * float.w[col * k + j]!);
        return s;
      };
      assertCloseScaled(gpuLinear(b, x, m, pf), linearOnce(cpuBackend, float, x, m), absDot, 1e-6, `float, m=${m}`);

      const x4 = randomActivations(m, 1024, 300 + m);
      // the GPU kernel reads fp16 activations: compare with the CPU on the same fp16-rounded x
      const x16 = new Float32Array(x4.length);
      f16ToF32(f32ToF16(x4), x16);
      const absDot4 = (i: number) => {
        const [row, col] = [Math.floor(i / n), i % n];
        let s = 0;
        for (let j = 0; j < 1024; j++) s += Math.abs(x16[row * 1024 + j]! * weightAt(w4a16, col, j) * w4a16.scales[col * 8 + (j >> 7)]!);
        return s;
      };
      assertCloseScaled(gpuLinear(b, x4, m, p4), linearOnce(cpuBackend, w4a16, x16, m), absDot4, 2e-3, `W4A16, m=${m}`);

      const xr = randomActivations(m, 192, 400 + m);
      assertBitExact(gpuLinear(b, xr, m, pr), linearOnce(cpuBackend, ragged, xr, m), `K=192 on the CPU, m=${m}`);
    }
    const p = b.placements();
    assert.deepEqual(p.gpu, { w4a8: 0, w8a8: 0, w4a16: 1, f32: 1, f16: 0 });
    assert.equal(p.cpu.length, 1);
    assert.equal(p.cpu[0]!.layers, 1);
    assert.match(p.cpu[0]!.reason, /K % 128 == 0 \(K = 192\)/);
    for (const prepared of [pf, p4, pr]) prepared.release();
    assert.deepEqual(b.placements(), NO_PLACEMENTS);
  });
});

test('CUDA backend: RMSNorm, rope, attention, SwiGLU and add match the CPU ops', { skip }, () => {
  withBackend((b) => {
    const r = rng(31);
    const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
    b.startPass();
    const m = 5;
    const dim = 320;
    const x = rand(m * dim, 3);
    const weight = rand(dim);
    assertClose(b.download(b.rmsnorm(b.upload(x), m, weight, 1e-5), 0, m, dim), cpuBackend.rmsnorm(x, m, weight, 1e-5), 1e-6, 1e-3, 'rmsnorm');

    const heads = 6;
    const headDim = 48;
    const invFreq = Float32Array.from({ length: headDim / 2 }, (_, i) => 10000 ** (-(2 * i) / headDim));
    const xr = rand(m * heads * headDim);
    const gpuRope = b.upload(xr);
    b.rope(gpuRope, m, heads, headDim, 1000, invFreq);
    const cpuRope = xr.slice();
    cpuBackend.rope(cpuRope, m, heads, headDim, 1000, invFreq);
    assertClose(b.download(gpuRope, 0, m, heads * headDim), cpuRope, 1e-6, 1e-3, 'rope at positions 1000..1004');

    const [g, u] = [rand(1000, 6), rand(1000, 2)];
    const gg = b.upload(g);
    b.siluMul(gg, b.upload(u));
    const cpuG = g.slice();
    cpuBackend.siluMul(cpuG, u);
    assertClose(b.download(gg, 0, 1, 1000), cpuG, 1e-6, 1e-3, 'siluMul');

    const [a1, a2] = [rand(777, 5), rand(777, 5)];
    const ga = b.upload(a1);
    b.addInPlace(ga, b.upload(a2));
    const cpuA = a1.slice();
    cpuBackend.addInPlace(cpuA, a2);
    assertBitExact(b.download(ga, 0, 1, 777), cpuA, 'add');
  });
});

test('CUDA backend: attention (grouped-query, sliding window, a cache already holding positions) matches the CPU and writes the cache', { skip }, () => {
  withBackend((b) => {
    const r = rng(41);
    const rand = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
    const ctx = ctxOf();
    // the split over positions (attention.cu) is by capacity: long caches have many splits, some past the position or outside the window
    for (const [numHeads, numKvHeads, headDim, window, startPos, m] of [[8, 2, 40, null, 37, 6], [4, 4, 128, 16, 30, 3], [6, 3, 64, null, 0, 20], [8, 2, 128, null, 650, 1], [4, 2, 64, 100, 500, 3]] as const) {
      const kvDim = numKvHeads * headDim;
      const capacity = startPos + m + 4;
      const shape = { numHeads, numKvHeads, headDim, slidingWindow: window };
      const past = [rand(capacity * kvDim), rand(capacity * kvDim)];
      const [q, k, v] = [rand(m * numHeads * headDim), rand(m * kvDim), rand(m * kvDim)];
      const cpuCache = cpuBackend.layerCache(capacity, kvDim);
      cpuCache.keys.set(past[0]!.subarray(0, startPos * kvDim));
      cpuCache.values.set(past[1]!.subarray(0, startPos * kvDim));
      const want = cpuBackend.attention(q, k, v, m, startPos, cpuCache, shape);

      const gpuCache = b.layerCache(capacity, kvDim);
      try {
        ctx.copyToDevice(gpuCache.keys, past[0]!.subarray(0, startPos * kvDim));
        ctx.copyToDevice(gpuCache.values, past[1]!.subarray(0, startPos * kvDim));
        b.startPass();
        const out = b.attention(b.upload(q), b.upload(k), b.upload(v), m, startPos, gpuCache, shape);
        const what = `H=${numHeads} KVH=${numKvHeads} D=${headDim} window=${window} start=${startPos} m=${m}`;
        assertClose(b.download(out, 0, m, numHeads * headDim), want, 1e-6, 1e-2, what);
        const filled = startPos + m;
        assertBitExact(b.download(gpuCache.keys, 0, filled, kvDim), cpuCache.keys.subarray(0, filled * kvDim), `${what}: cached keys`);
        assertBitExact(b.download(gpuCache.values, 0, filled, kvDim), cpuCache.values.subarray(0, filled * kvDim), `${what}: cached values`);
      } finally {
        b.releaseLayerCache(gpuCache);
      }
    }
  });
});

test('CUDA backend: the quantized embedded model gives the CPU backend\'s hidden states (within 1e-5 of their largest) and its greedy tokens', { skip }, (t) => {
  const { model: cpuModel, prompt } = quantizedEmbedded();
  withBackend((b) => {
    const gpuModel: Model<DeviceBuffer> = createModel(cpuModel.config, cpuModel.weights, b);
    const hc = forwardHidden(cpuModel, prompt, createKvCache(cpuModel.config, prompt.length, cpuModel.backend));
    const gpuCache = createKvCache(gpuModel.config, prompt.length, b);
    const hg = forwardHidden(gpuModel, prompt, gpuCache);
    const hgHost = b.download(hg, 0, prompt.length, cpuModel.config.hiddenSize);
    const largest = hc.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
    const same = hgHost.reduce((n, v, i) => n + (Object.is(v, hc[i]) ? 1 : 0), 0);
    const worst = hgHost.reduce((w, v, i) => Math.max(w, Math.abs(v - hc[i]!)), 0);
    t.diagnostic(`hidden states: ${same} of ${hc.length} bit-identical, largest difference ${worst.toExponential(2)} (largest value ${largest.toFixed(2)})`);
    assertClose(hgHost, hc, 1e-5, largest, 'final hidden states of the prompt');
    const [lc, lg] = [logitsOf(cpuModel, hc, prompt.length - 1, 1), logitsOf(gpuModel, hg, prompt.length - 1, 1)];
    gpuCache.release();
    const scale = lc.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
    for (let i = 0; i < lc.length; i++) assert.ok(Math.abs(lc[i]! - lg[i]!) <= 1e-5 * scale, `logit ${i}: GPU ${lg[i]}, CPU ${lc[i]}`);

    const options = { maxNewTokens: 24, temperature: 0, topP: 1, seed: 0, stopTokens: [] };
    assert.deepEqual(generate(gpuModel, prompt, options).tokens, generate(cpuModel, prompt, options).tokens);
    const linears = cpuModel.weights.layers.length * 7;
    assert.deepEqual(b.placements(), { gpu: { w4a8: linears, w8a8: 0, w4a16: 0, f32: 1, f16: 0 }, cpu: [] });
  });
});

test('CUDA backend: decode steps replayed as one CUDA graph each give the logits of the same steps run op by op, bit for bit', { skip }, (t) => {
  const { model: cpuModel, prompt } = quantizedEmbedded();
  const steps = 10;
  const run = (graphs: boolean) => {
    const b = createCudaBackend({ ctx: ctxOf(), graphs });
    try {
      const model: Model<DeviceBuffer> = createModel(cpuModel.config, cpuModel.weights, b);
      const cache = createKvCache(model.config, prompt.length + steps, b);
      try {
        const logits = [forwardLastLogits(model, prompt, cache)];
        for (let s = 0; s < steps; s++) logits.push(forwardLastLogits(model, [argmax(logits[logits.length - 1]!)], cache));
        return { logits, stats: b.replayStats() };
      } finally {
        cache.release();
      }
    } finally {
      b.dispose();
    }
  };
  const direct = run(false);
  const replayed = run(true);
  assert.equal(direct.stats, null);
  const stats = replayed.stats!;
  t.diagnostic(`pass replay: ${JSON.stringify(stats)}`);
  assert.deepEqual(stats, { recorded: 2, replayed: steps - 1, diverged: 0, captureFailures: 0 }, 'the prefill and the first decode step recorded, every later step replayed');
  for (let s = 0; s <= steps; s++) assertBitExact(replayed.logits[s]!, direct.logits[s]!, s === 0 ? 'prefill logits' : `decode step ${s} logits`);
});

test('CUDA backend: llama with attention_bias (q/k/v/o) and mlp_bias (gate/up/down) gives transformers\' logits (float) and the CPU backend\'s (W4A8 IS)', { skip }, () => {
  for (const name of ['llama-attention-bias', 'llama-mlp-bias']) {
    const dir = fixturePath(name);
    const ref = readReference(dir);
    const ids = ref.inputIds;
    const vocab = ref.logits.length / ids.length;
    const float = loadModel(dir).model;
    const { loaded } = quantizeModel(dir, { method: 'rtn', base: { ...DEFAULT_SPEC, groupSize: 32 }, overrides: {} });
    withBackend((b) => {
      for (const [label, cpuModel, tol] of [['float', float, 1e-4], ['W4A8 IS g32', loaded.model, 1e-5]] as const) {
        const gpuModel: Model<DeviceBuffer> = createModel(cpuModel.config, cpuModel.weights, b);
        const cache = createKvCache(gpuModel.config, ids.length, b);
        const got = logitsOf(gpuModel, forwardHidden(gpuModel, ids, cache), 0, ids.length);
        cache.release();
        const expected = label === 'float' ? ref.logits : logitsOf(cpuModel, forwardHidden(cpuModel, ids, createKvCache(cpuModel.config, ids.length, cpuModel.backend)), 0, ids.length);
        const scale = expected.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
        assert.equal(got.length, ids.length * vocab);
        assertWithin(got, expected, () => tol * scale, `${name} ${label} logits`);
      }
    });
  }
});

test('CUDA backend, fp16 linears (the FP16 baseline): a float model\'s logits within 2e-2 of transformers\' largest, every linear on the GPU in fp16', { skip }, () => {
  const dir = fixturePath('llama-attention-bias');
  const ref = readReference(dir);
  const cpuModel = loadModel(dir).model;
  const b = createCudaBackend({ ctx: ctxOf(), floatPrecision: 'f16' });
  try {
    const gpuModel: Model<DeviceBuffer> = createModel(cpuModel.config, cpuModel.weights, b);
    const cache = createKvCache(gpuModel.config, ref.inputIds.length, b);
    const got = logitsOf(gpuModel, forwardHidden(gpuModel, ref.inputIds, cache), 0, ref.inputIds.length);
    cache.release();
    const scale = ref.logits.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
    assertWithin(got, ref.logits, () => 2e-2 * scale, 'fp16 logits');
    const worst = got.reduce((w, v, i) => Math.max(w, Math.abs(v - ref.logits[i]!)), 0);
    assert.ok(worst > 0, 'fp16 rounding shows: not the fp32 path');
    assert.deepEqual(b.placements(), { gpu: { w4a8: 0, w8a8: 0, w4a16: 0, f32: 0, f16: 2 * 7 + 1 }, cpu: [] });
  } finally {
    b.dispose();
  }
});

test('CUDA backend: gatherRows and addScaledRows (a mixture of experts) equal the CPU ops bit for bit; bad rows are RangeErrors', { skip }, () => {
  withBackend((b) => {
    const r = rng(47);
    for (const [m, dim, count] of [[7, 96, 3], [33, 130, 33], [5, 1, 1]] as const) {
      const x = Float32Array.from({ length: m * dim }, () => (r() * 2 - 1) * 4);
      // count distinct rows in a shuffled order
      const rows = Array.from({ length: m }, (_, i) => i).sort(() => r() - 0.5).slice(0, count);
      const weights = Float32Array.from({ length: count }, () => r());
      b.startPass();
      const gx = b.upload(x);
      const gathered = b.gatherRows!(gx, rows, dim);
      const want = cpuBackend.gatherRows!(x, rows, dim);
      assertBitExact(b.download(gathered, 0, count, dim), want, `gatherRows m ${m} dim ${dim}`);
      const y = Float32Array.from({ length: count * dim }, () => (r() * 2 - 1) * 3);
      const out = Float32Array.from({ length: m * dim }, () => r() * 2 - 1);
      const gout = b.upload(out);
      b.addScaledRows!(gout, b.upload(y), rows, weights, dim);
      cpuBackend.addScaledRows!(out, y, rows, weights, dim);
      assertBitExact(b.download(gout, 0, m, dim), out, `addScaledRows m ${m} dim ${dim}`);
    }
    b.startPass();
    const x = b.upload(new Float32Array(4 * 8).fill(1));
    assert.throws(() => b.gatherRows!(x, [0, 4], 8), /row 4 outside \[0, 4\)/);
    assert.throws(() => b.addScaledRows!(x, x, [1, 1], new Float32Array(2), 8), /appears twice/);
  });
});

test('CUDA backend: mixtral fixtures (experts gathered and scattered on the GPU) give transformers\' logits within 1e-4, prefill and decode', { skip }, () => {
  for (const dir of [fixturePath('mixtral'), fixturePath('mixtral-window')]) {
    withBackend((b) => {
      const { model: cpuModel } = loadModel(dir);
      const model = createModel(cpuModel.config, cpuModel.weights, b);
      const ref = readReference(dir);
      const t = ref.inputIds.length, vocab = model.config.vocabSize;
      const prefillCache = createKvCache(model.config, t, b);
      const prefill = logitsOf(model, forwardHidden(model, ref.inputIds, prefillCache), 0, t);
      prefillCache.release();
      assert.ok(relativeError(prefill, ref.logits) < 1e-4, `${dir}: prefill relative error ${relativeError(prefill, ref.logits)}`);
      const cache = createKvCache(model.config, t, b);
      for (let i = 0; i < t; i++) {
        const row = forwardLastLogits(model, [ref.inputIds[i]!], cache);
        const err = relativeError(row, ref.logits.subarray(i * vocab, (i + 1) * vocab));
        assert.ok(err < 1e-4, `${dir}: decode step ${i} relative error ${err}`);
      }
      cache.release();
    });
  }
});
