/**
 * AWQ with its calibration on the GPU (the stream on the exact CUDA backend, AWQ's column statistics
 * summed there, its grid search's W4A8 products by the CUDA kernels) against AWQ on the CPU, on the
 * embedded model (its widths are what the W4A8 kernels take): the same layers but for codes moved by the
 * float rounding of the forward pass and the float references (cuBLAS vs the CPU's sums), at most 1% of
 * a layer's codes. Skips without a GPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { createCudaBackend } from '../../../src/backends/cuda/cuda-backend.js';
import type { QuantizedLinear } from '../../../src/quant/types.js';
import { DEFAULT_AWQ } from '../../../src/quantize/awq.js';
import { quantizeModel } from '../../../src/quantize/quantize-model.js';
import { DEFAULT_SPEC } from '../../../src/quantize/recipe.js';
import { DEFAULT_MODEL_DIR } from '../../../src/cli/default-model.js';
import { codeMismatch } from '../../helpers/compare.js';
import { tempDir } from '../../io/temp-dir.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

test('AWQ of the embedded model with its calibration on the GPU: the CPU\'s layers but for at most 1% of the codes', { skip }, (t) => {
  const calib = path.join(tempDir(), 'calib.txt');
  fs.writeFileSync(calib, 'The game began development in 2010 , carrying over a large portion of the work done on Valkyria Chronicles II . '.repeat(40));
  const recipe = { method: 'awq' as const, base: DEFAULT_SPEC, overrides: {}, calibration: { file: calib, samples: 4, seqLen: 64, seed: 0 }, awq: { ...DEFAULT_AWQ, grid: 10 } };
  const cpu = quantizeModel(DEFAULT_MODEL_DIR, recipe);
  const backend = createCudaBackend({ ctx: ctxOf(), graphs: false });
  let gpu: ReturnType<typeof quantizeModel>;
  try {
    gpu = quantizeModel(DEFAULT_MODEL_DIR, recipe, { calibrateOn: { backend } });
  } finally {
    backend.dispose();
  }
  assert.deepEqual(gpu.reports.map((r) => r.name), cpu.reports.map((r) => r.name));
  let worst = 0;
  gpu.loaded.model.weights.layers.forEach((layer, i) => {
    const want = cpu.loaded.model.weights.layers[i]!;
    for (const slot of ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const) {
      const mismatch = codeMismatch((layer as Record<typeof slot, QuantizedLinear>)[slot], (want as Record<typeof slot, QuantizedLinear>)[slot]);
      worst = Math.max(worst, mismatch);
      assert.ok(mismatch <= 0.01, `layer ${i} ${slot}: ${mismatch} of the codes differ`);
    }
  });
  t.diagnostic(`largest share of codes differing in a linear: ${(worst * 100).toFixed(3)}%`);
});
