/**
 * GPTQ's lazy block update (quant/methods/gptq.ts LazyUpdate) on the CPU backend's matmul: the
 * block's errors E [n, count] and U[i1:i2, i2:] transposed go to float32 and through matmulF32
 * (WASM SIMD, split over the worker pool), and the product is subtracted from W in float64. The
 * float32 product is what GPTQ's PyTorch code computes too; against the float64 loop it moves W by
 * float32 rounding, not the method. Scratch is kept between blocks and grown when a layer needs more.
 */
import { matmulF32 } from '../backends/cpu/matmul.js';
import type { LazyUpdate } from '../quant/methods/gptq.js';
import { sharedFloat32 } from '../tensor/shared.js';

export function lazyUpdateMatmul(): LazyUpdate {
  let e = sharedFloat32(0), ut = sharedFloat32(0), out = sharedFloat32(0);
  const room = (a: Float32Array, length: number): Float32Array => (a.length >= length ? a : sharedFloat32(length));
  return (W, n, k, err, u, i1, i2) => {
    const count = i2 - i1, rest = k - i2;
    e = room(e, n * count);
    ut = room(ut, rest * count);
    out = room(out, n * rest);
    for (let i = 0; i < n * count; i++) e[i] = err[i]!;
    for (let c = 0; c < count; c++) {
      const uc = (i1 + c) * k + i2;
      for (let j = 0; j < rest; j++) ut[j * count + c] = u[uc + j]!;
    }
    matmulF32(e, n, count, ut, rest, out);
    for (let r = 0; r < n; r++) {
      const wr = r * k + i2, o = r * rest;
      for (let j = 0; j < rest; j++) W[wr + j] -= out[o + j]!;
    }
  };
}
