/**
 * GPTQ on the GPU (backends/cuda/gptq-cuda.ts) against the CPU's on fresh random data:
 *   the column loop, given the CPU's factor: bit for bit the CPU's codes and scales when the layer is one
 *   block (no lazy update), float and integer scales, act-order, ragged N; past one block (the lazy update a
 *   float64 DGEMM where the serial CPU loop sums in another order) at most 1e-4 of the codes differ;
 *   the Hessian and factor (DSYRK, cuSOLVER): U within 1e-9 of the CPU's float64 factor (largest entry),
 *   the same column order and dead inputs; a Hessian that is not positive definite is the CPU's InputError;
 *   an integer scale past int32 is refused naming the layer;
 *   a GPTQ quantization of the llama fixture with the GPU engine, the calibration forward on the CPU and
 *   then on the exact CUDA backend (device activations straight to the accumulators), against the CPU's:
 *   ≥ 95% of codes equal (the CPU rounds its Hessian's batch products and its lazy update in float32, and
 *   cuBLAS sums the float layers in another order).
 * Skips without a GPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { cudaGptq, type CudaGptq } from '../../../src/backends/cuda/gptq-cuda.js';
import { createCudaBackend } from '../../../src/backends/cuda/cuda-backend.js';
import { DEFAULT_GPTQ, gptqFactor, gptqQuantizeLinear, SERIAL_GPTQ, type GptqSettings } from '../../../src/quant/methods/gptq.js';
import { InputError } from '../../../src/errors.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from '../../../src/quant/types.js';
import { quantizeModel } from '../../../src/quantize/quantize-model.js';
import { DEFAULT_GPTQ_LAYER } from '../../../src/quantize/gptq-layer.js';
import { makeRng, randomNormals, type Rng } from '../../helpers/random.js';
import { correlatedInputs, hessianOf } from '../../helpers/gptq-data.js';
import { fixturePath } from '../../helpers/paths.js';
import { codeMismatch } from '../../helpers/compare.js';
import { tempDir } from '../../io/temp-dir.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

const FS: QuantSpec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'float', alpha: { kind: 'fixed', log2: 10 } };
const IS: QuantSpec = { ...FS, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };

function withGptq(run: (g: CudaGptq) => void): void {
  const g = cudaGptq(ctxOf());
  try {
    run(g);
  } finally {
    g.dispose();
  }
}

const layerOf = (rng: Rng, n: number, k: number): FloatLinear => ({ kind: 'float', n, k, w: randomNormals(rng, n * k, 0.05) });

test('GPTQ column loop on the GPU: one block gives the CPU\'s codes and scales bit for bit (FS, IS, act-order, ragged N); several blocks differ in at most 1e-4 of the codes', { skip }, (t) => {
  withGptq((gpu) => {
    const rng = makeRng(9101);
    for (const [n, k, spec, actOrder, blockSize] of [
      [37, 128, FS, false, 128], [61, 128, IS, false, 128], [45, 96, IS, true, 128], [130, 64, FS, true, 64],
      [53, 256, IS, false, 64], [29, 192, FS, true, 48], [77, 384, IS, true, 128],
    ] as const) {
      const settings: GptqSettings = { ...DEFAULT_GPTQ, actOrder, blockSize };
      const w = layerOf(rng, n, k);
      const x = correlatedInputs(rng, 3 * k, k);
      const factor = gptqFactor(hessianOf(x, 3 * k, k), k, settings, 'test');
      const cpu = gptqQuantizeLinear(w, factor, spec, settings, 'test', SERIAL_GPTQ);
      const got = gptqQuantizeLinear(w, factor, spec, settings, 'test', gpu.columns);
      const label = `n=${n} k=${k} ${spec.scale} act-order ${actOrder} block ${blockSize}`;
      assert.equal(got.alpha?.alphaLog2, cpu.alpha?.alphaLog2, label);
      if (k <= blockSize) {
        assert.deepEqual(got.layer, cpu.layer, `${label}: one block, bit for bit`);
      } else {
        const mismatch = codeMismatch(got.layer, cpu.layer);
        t.diagnostic(`${label}: ${(mismatch * 100).toFixed(4)}% of codes differ`);
        assert.ok(mismatch <= 1e-4, `${label}: ${mismatch} of the codes differ`);
        for (let i = 0; i < got.layer.scales.length; i++) {
          const [a, b] = [got.layer.scales[i]!, cpu.layer.scales[i]!];
          assert.ok(Math.abs(a - b) <= 1e-6 * Math.abs(b), `${label}: scale ${i} ${a} vs ${b}`);
        }
      }
    }
  });
});

test('GPTQ Hessian and factor on the GPU (DSYRK, cuSOLVER) give the CPU\'s factor within 1e-9, with its column order and dead inputs', { skip }, (t) => {
  withGptq((gpu) => {
    t.diagnostic(gpu.name);
    const rng = makeRng(9201);
    for (const [k, actOrder] of [[96, false], [200, true], [1024, true]] as const) {
      const settings: GptqSettings = { ...DEFAULT_GPTQ, actOrder };
      const total = 2 * k + 37;
      const x = correlatedInputs(rng, total, k);
      for (let r = 0; r < total; r++) x[r * k + 5] = 0; // a dead input
      const acc = gpu.accumulator(k);
      for (const [from, to] of [[0, 50], [50, 50 + k], [50 + k, total]] as const) acc.add(x.subarray(from * k, to * k), to - from);
      assert.equal(acc.tokens, total);
      const got = acc.factor(settings, 'test');
      const want = gptqFactor(hessianOf(x, total, k), k, settings, 'test');
      assert.deepEqual([...got.perm], [...want.perm], `k=${k}: column order`);
      assert.deepEqual([...got.dead], [...want.dead], `k=${k}: dead inputs`);
      assert.equal(got.dead[5], 1);
      let largest = 0, worst = 0;
      for (let i = 0; i < k; i++) {
        for (let j = i; j < k; j++) {
          largest = Math.max(largest, Math.abs(want.u[i * k + j]!));
          worst = Math.max(worst, Math.abs(got.u[i * k + j]! - want.u[i * k + j]!));
        }
        for (let j = 0; j < i; j++) assert.equal(got.u[i * k + j], 0, `k=${k}: U[${i},${j}] below the diagonal`);
      }
      t.diagnostic(`k=${k}: largest |ΔU| ${(worst / largest).toExponential(2)} of the largest entry`);
      assert.ok(worst <= 1e-9 * largest, `k=${k}: U differs by ${worst} (largest entry ${largest})`);
      acc.release();
    }
  });
});

test('GPTQ on the GPU refuses what the CPU refuses: a Hessian not positive definite, an integer scale past int32, an accumulator reused', { skip }, () => {
  withGptq((gpu) => {
    const rng = makeRng(9301);
    const k = 64;
    const acc = gpu.accumulator(k);
    acc.add(correlatedInputs(rng, 16, k), 16); // rank 16 < 64, no dampening
    assert.throws(() => acc.factor({ ...DEFAULT_GPTQ, damp: 0 }, 'model.layers.3.mlp.up_proj'),
      (e: Error) => e instanceof InputError && /model\.layers\.3\.mlp\.up_proj: the GPTQ Hessian is not positive definite .*--damp/.test(e.message));
    assert.throws(() => acc.add(new Float32Array(k), 1), /after its factor was made/);
    assert.throws(() => gpu.accumulator(k).factor(DEFAULT_GPTQ, 'empty'), /empty: no calibration tokens/);
    const loud: FloatLinear = { kind: 'float', n: 4, k, w: new Float32Array(4 * k).fill(3e4) };
    const x = correlatedInputs(rng, 2 * k, k);
    const factor = gptqFactor(hessianOf(x, 2 * k, k), k, DEFAULT_GPTQ, 'test');
    assert.throws(() => gptqQuantizeLinear(loud, factor, { ...FS, scale: 'int', alpha: { kind: 'fixed', log2: 30 } }, DEFAULT_GPTQ, 'model.layers.0.mlp.down_proj', gpu.columns),
      /model\.layers\.0\.mlp\.down_proj: an integer scale of row \d+ does not fit int32/);
  });
});

test('GPTQ of the llama fixture with the GPU engine, the calibration forward on the CPU and then on the GPU: the CPU\'s layers with at least 95% of the codes equal', { skip }, (t) => {
  const calib = path.join(tempDir(), 'calib.txt');
  fs.writeFileSync(calib, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(40));
  const recipe = { method: 'gptq' as const, base: IS, overrides: {}, calibration: { file: calib, samples: 3, seqLen: 24, seed: 0 }, gptq: DEFAULT_GPTQ_LAYER };
  const dir = fixturePath('llama');
  const cpu = quantizeModel(dir, recipe);
  for (const stream of ['cpu', 'cuda'] as const) withGptq((gpu) => {
    const calibrationBackend = stream === 'cuda' ? createCudaBackend({ ctx: ctxOf(), graphs: false }) : undefined;
    let got: ReturnType<typeof quantizeModel>;
    try {
      got = quantizeModel(dir, recipe, { calibrateOn: { gptqEngine: gpu, ...(calibrationBackend ? { backend: calibrationBackend } : {}) } });
    } finally {
      calibrationBackend?.dispose();
    }
    t.diagnostic(`calibration forward on ${stream}:`);
    assert.deepEqual(got.reports.map((r) => r.name), cpu.reports.map((r) => r.name));
    got.loaded.model.weights.layers.forEach((layer, i) => {
      const want = cpu.loaded.model.weights.layers[i]!;
      for (const slot of ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const) {
        const mismatch = codeMismatch((layer as Record<typeof slot, QuantizedLinear>)[slot], (want as Record<typeof slot, QuantizedLinear>)[slot]);
        t.diagnostic(`layer ${i} ${slot}: ${(mismatch * 100).toFixed(3)}% of codes differ`);
        assert.ok(mismatch <= 0.05, `layer ${i} ${slot}: ${mismatch} of the codes differ`);
      }
    });
  });
});
