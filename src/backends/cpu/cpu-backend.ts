/**
 * The CPU backend: float matmuls split over the worker pool, exact integer kernels for
 * quantized layers (the true integer path, not fake quantization), plain loops for the rest.
 */
import type { Backend } from '../../model/backend.js';
import type { LinearWeight } from '../../quant/types.js';
import { sharedFloat32 } from '../../tensor/shared.js';
import { intLinear } from './int-linear.js';
import { matmulF32 } from './matmul.js';
import { addInPlace, attention, rmsnorm, rope, siluMul } from './ops.js';

function linear(x: Float32Array, m: number, w: LinearWeight): Float32Array {
  if (w.kind === 'quantized') return intLinear(x, m, w, sharedFloat32(m * w.n));
  const out = sharedFloat32(m * w.n);
  matmulF32(x, m, w.k, w.w, w.n, out, w.bias);
  return out;
}

const rows = (x: Float32Array, first: number, count: number, dim: number): Float32Array => x.subarray(first * dim, (first + count) * dim);

export const cpuBackend: Backend = {
  name: 'cpu',
  startPass: () => {},
  upload: (x) => x,
  download: rows,
  rows,
  layerCache: (capacity, kvDim) => ({ keys: sharedFloat32(capacity * kvDim), values: sharedFloat32(capacity * kvDim), capacity }),
  releaseLayerCache: () => {},
  linear, rmsnorm, rope, attention, siluMul, addInPlace,
};
