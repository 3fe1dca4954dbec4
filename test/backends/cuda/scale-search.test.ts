/**
 * AWQ's grid search on the GPU (scaled-rtn.ts, scale-search.ts) against the host: the device RTN of
 * W·diag(s) gives the bytes the host's RTN + repack give (weights, scales, α, the epilogue's shift; an
 * integer scale past int32 refused with the host's message), and a session's loss equals the host loop's
 * (hostScaleSearch on the same backend) but for the order of its float64 sums. Random layers, ragged
 * rows and token counts, an all-zero group. Skips without a GPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { createCudaBackend } from '../../../src/backends/cuda/cuda-backend.js';
import { paddedRows, repackW4A8 } from '../../../src/backends/cuda/repack.js';
import { freeScaledRtnTarget, quantizeScaledW4A8, scaledRtnTarget } from '../../../src/backends/cuda/scaled-rtn.js';
import { quantizeLinearReport } from '../../../src/quant/quantize-linear.js';
import type { FloatLinear, QuantSpec } from '../../../src/quant/types.js';
import { awqScales, hostScaleSearch, scaleColumns } from '../../../src/quantize/awq.js';
import type { ScaleSearchProblem } from '../../../src/model/backend.js';
import { randomActivations, rng } from './helpers.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

const IS: QuantSpec = { wBits: 4, aBits: 8, groupSize: 128, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };
const FS: QuantSpec = { ...IS, scale: 'float' };

/** A random float layer whose rows differ in magnitude, group `zeroGroup` of row 1 all zeros. */
function randomLayer(n: number, k: number, seed: number, magnitude = 0.05, zeroGroup = -1, G = 128): FloatLinear {
  const r = rng(seed);
  const w = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    const mag = magnitude * 10 ** (r() * 2 - 1);
    for (let c = 0; c < k; c++) w[row * k + c] = (r() * 2 - 1) * mag * (r() < 0.01 ? 8 : 1);
  }
  if (zeroGroup >= 0 && n > 1) w.fill(0, k + zeroGroup * G, k + zeroGroup * G + G);
  return { kind: 'float', n, k, w };
}

/** AWQ-like column scales: awqScales of random channel means at ratio ρ. */
function columnScales(k: number, seed: number, ratio: number): Float32Array {
  const r = rng(seed);
  return awqScales(Float64Array.from({ length: k }, () => 10 ** (r() * 3 - 2)), ratio);
}

test('device RTN of W·diag(s) = the host\'s RTN and repack, byte for byte (IS safe and fixed α with the shift, FS, G 128 and 256, ragged N, a zero group)', { skip }, (t) => {
  const ctx = ctxOf();
  const cases: { n: number; k: number; spec: QuantSpec; magnitude?: number }[] = [
    { n: 200, k: 384, spec: IS },
    { n: 37, k: 512, spec: { ...FS, groupSize: 256 } },
    { n: 131, k: 256, spec: { ...IS, alpha: { kind: 'fixed', log2: 20 } }, magnitude: 0.5 }, // integer scales large enough for the shifted epilogue
    { n: 16, k: 128, spec: { ...IS, alpha: { kind: 'heuristic' } } },
  ];
  let shifted = 0;
  cases.forEach(({ n, k, spec, magnitude }, i) => {
    const w = randomLayer(n, k, 100 + i, magnitude, 1, spec.groupSize);
    const s = columnScales(k, 200 + i, 0.3 + 0.2 * i);
    const host = quantizeLinearReport(scaleColumns(w, s), spec, `case ${i}`);
    const want = repackW4A8(host.layer);
    const target = scaledRtnTarget(ctx, w.w, n, k, spec, `case ${i}`);
    const sDev = ctx.upload(s);
    try {
      const alpha = quantizeScaledW4A8(ctx, target, sDev);
      assert.equal(alpha?.alphaLog2, host.alpha?.alphaLog2, `case ${i}: α`);
      const weights = ctx.copyToHost(new Uint8Array((paddedRows(n) * k) / 2), target.layer.weights);
      assert.deepEqual(weights, want.weights, `case ${i}: weights`);
      const scales = ctx.copyToHost(spec.scale === 'int' ? new Int32Array(want.scales.length) : new Float32Array(want.scales.length), target.layer.scales);
      assert.deepEqual(scales, want.scales, `case ${i}: scales`);
      assert.deepEqual([target.layer.post, target.layer.isShift], [want.post, want.isShift], `case ${i}: epilogue`);
      if (want.isShift) shifted++;
    } finally {
      sDev.free();
      freeScaledRtnTarget(target);
    }
  });
  assert.ok(shifted >= 1, 'a case takes the shifted epilogue');
  t.diagnostic(`${cases.length} layers equal`);
});

test('device RTN refuses an integer scale past int32 with the host\'s message', { skip }, () => {
  const ctx = ctxOf();
  const spec: QuantSpec = { ...IS, alpha: { kind: 'fixed', log2: 30 } };
  const w = randomLayer(20, 256, 7, 30);
  const s = columnScales(256, 8, 0);
  const message = (() => {
    try {
      quantizeLinearReport(scaleColumns(w, s), spec, 'big');
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  })();
  assert.match(message, /does not fit int32/);
  const target = scaledRtnTarget(ctx, w.w, 20, 256, spec, 'big');
  const sDev = ctx.upload(s);
  try {
    assert.throws(() => quantizeScaledW4A8(ctx, target, sDev), { message });
  } finally {
    sDev.free();
    freeScaledRtnTarget(target);
  }
});

test('a scale search session\'s losses = the host loop\'s on the same backend (float64 sums in another order: within 1e-12), two inputs, a bias, the decode and wgmma kernels', { skip }, (t) => {
  const backend = createCudaBackend({ ctx: ctxOf(), graphs: false });
  const k = 256;
  const bias = new Float32Array(256).map((_, i) => Math.sin(i) * 0.1);
  const problem: ScaleSearchProblem = {
    k,
    inputs: [{ rows: randomActivations(45, k, 1), t: 45 }, { rows: randomActivations(300, k, 2), t: 300 }],
    linears: [
      { w: randomLayer(130, k, 3), spec: IS, name: 'a', input: 0 },
      { w: { ...randomLayer(256, k, 4), bias }, spec: FS, name: 'b', input: 0 },
      { w: randomLayer(64, k, 5), spec: IS, name: 'c', input: 1 },
      { w: randomLayer(384, k, 6), spec: { ...FS, groupSize: 256 }, name: 'd', input: 1 },
    ],
  };
  const device = backend.scaleSearch!(problem);
  assert.ok(device !== null, 'the CUDA backend takes W4A8 specs');
  const host = hostScaleSearch(backend, problem);
  try {
    const losses: number[] = [];
    for (const ratio of [0, 0.35, 0.7]) {
      const s = columnScales(k, 9, ratio);
      const [d, h] = [device.loss(s), host.loss(s)];
      assert.ok(Number.isFinite(h) && h > 0, `host loss ${h}`);
      assert.ok(Math.abs(d - h) <= 1e-12 * h, `ρ ${ratio}: device ${d} vs host ${h}`);
      losses.push(h);
    }
    assert.ok(new Set(losses).size === 3, `the losses differ by ρ: ${losses.join(', ')}`);
    t.diagnostic(`losses ${losses.map((l) => l.toExponential(6)).join(', ')}`);
  } finally {
    device.release();
    host.release();
    backend.dispose();
  }
});

test('scaleSearch leaves specs its kernels do not take to the host loop (null)', { skip }, () => {
  const backend = createCudaBackend({ ctx: ctxOf(), graphs: false });
  try {
    const inputs = [{ rows: randomActivations(8, 256, 3), t: 8 }];
    const of = (spec: QuantSpec, k = 256): ScaleSearchProblem =>
      ({ k, inputs: k === 256 ? inputs : [{ rows: randomActivations(8, k, 3), t: 8 }], linears: [{ w: randomLayer(32, k, 1), spec, name: 'x', input: 0 }] });
    assert.equal(backend.scaleSearch!(of({ ...IS, wBits: 8 })), null);
    assert.equal(backend.scaleSearch!(of({ ...FS, aBits: 16 })), null);
    assert.equal(backend.scaleSearch!(of({ ...IS, groupSize: 64 }, 192)), null);
  } finally {
    backend.dispose();
  }
});
