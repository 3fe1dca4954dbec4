/**
 * GPTQ's float64 products on the CPU backend's float32 matmul (WASM SIMD, split over the worker pool),
 * and its in-block column loop split over the pool by rows (gptqKernelsCpu); cpuGptqEngine puts them
 * together for the calibration's GPTQ method.
 *
 * The lazy block update (quant/methods/gptq.ts LazyUpdate): the
 * block's errors E [n, count] and U[i1:i2, i2:] transposed go to float32 and through matmulF32
 * (WASM SIMD, split over the worker pool), and the product is subtracted from W in float64. The
 * float32 product is what GPTQ's PyTorch code computes too; against the float64 loop it moves W by
 * float32 rounding, not the method. Scratch is kept between blocks and grown when a layer needs more,
 * in the arena (where matmulF32 runs its WASM kernel; elsewhere it would take its plain JS one).
 */
import { matmulF32, wasmKernelWhereAvailable } from '../backends/cpu/matmul.js';
import { gptqFactor, hostColumns, type GptqEngine, type GptqKernels, type LazyUpdate } from '../quant/methods/gptq.js';
import { HessianAccumulator } from '../quant/methods/hessian.js';
import { blockedTriangularKernels } from '../backends/cpu/triangular.js';
import { cpuPool } from '../backends/cpu/pool/index.js';
import { KERNEL_GPTQ_BLOCK } from '../backends/cpu/pool/kernels.js';
import type { HessianProduct } from '../quant/methods/hessian.js';
import { arenaFloat32, arenaScratchFloat32 } from '../tensor/shared.js';

/**
 * GPTQ on the CPU: Hessians summed through the matmul (hessianProductMatmul), factors by the blocked
 * triangular kernels, the column loop and lazy update by gptqKernelsCpu — all split over the pool.
 */
export function cpuGptqEngine(): GptqEngine {
  const product = hessianProductMatmul();
  const triangular = blockedTriangularKernels();
  return {
    name: 'cpu',
    accumulator: (k) => {
      const acc = new HessianAccumulator(k, product);
      return {
        add: (x, m) => acc.add(x, m),
        get tokens() { return acc.tokens; },
        factor: (settings, name) => gptqFactor(acc.hessian(name), k, settings, name, triangular),
        release: () => {},
      };
    },
    columns: hostColumns(gptqKernelsCpu()),
  };
}

/** Multiply-adds below which a share of the block's rows is not worth a thread. */
const MIN_WORK_PER_THREAD = 1 << 15;

/**
 * Step 5 of GPTQ on the CPU: the block's column loop split over the pool by rows (same bits as the
 * serial loop: each row's arithmetic is unchanged), the lazy update on the matmul (lazyUpdateMatmul).
 */
export function gptqKernelsCpu(): GptqKernels {
  return {
    blockRows: (args, rows) => {
      const count = args.i2 - args.i1;
      // per row: the in-block triangle (count² / 2) and fixing a group's scales (~G · count / 2 when pending updates apply)
      cpuPool().run(KERNEL_GPTQ_BLOCK, args, rows, { workPerRow: count * count, minWorkPerThread: MIN_WORK_PER_THREAD });
    },
    lazyUpdate: lazyUpdateMatmul(),
  };
}

export function lazyUpdateMatmul(): LazyUpdate {
  let e = arenaFloat32(0), ut = arenaFloat32(0), out = arenaFloat32(0);
  return (W, n, k, err, u, i1, i2) => {
    const count = i2 - i1, rest = k - i2;
    e = arenaScratchFloat32(e, n * count);
    ut = arenaScratchFloat32(ut, rest * count);
    out = arenaScratchFloat32(out, n * rest);
    for (let i = 0; i < n * count; i++) e[i] = err[i]!;
    for (let c = 0; c < count; c++) {
      const uc = (i1 + c) * k + i2;
      for (let j = 0; j < rest; j++) ut[j * count + c] = u[uc + j]!;
    }
    matmulF32(e, n, count, ut, rest, out, undefined, wasmKernelWhereAvailable());
    for (let r = 0; r < n; r++) {
      const wr = r * k + i2, o = r * rest;
      for (let j = 0; j < rest; j++) W[wr + j] -= out[o + j]!;
    }
  };
}

/** Floats of the Hessian product's output block (rows of xᵀx computed per matmul): 16 MB. */
const HESSIAN_BLOCK_FLOATS = 1 << 22;

/**
 * The Hessian's batch product (quant/methods/hessian.ts HessianProduct) on the matmul: x [m, k] is
 * transposed into arena scratch xt [k, m], and for each block of rows [r0, r0 + R) the product
 * xt[r0:r0+R] · xt[r0:]ᵀ (the upper part of those rows, in float32 over the batch's m tokens) is added
 * into the float64 sum. Float32 within a batch is what GPTQ's PyTorch code accumulates in throughout;
 * the float64 sum across batches keeps long calibrations from drifting. Scratch stays in the arena
 * between batches (a larger layer releases it and takes a larger block).
 */
export function hessianProductMatmul(): HessianProduct {
  let xt = arenaFloat32(0), out = arenaFloat32(0);
  return (x, m, k, sum) => {
    xt = arenaScratchFloat32(xt, k * m);
    for (let t = 0; t < m; t++) {
      const xr = t * k;
      for (let i = 0; i < k; i++) xt[i * m + t] = x[xr + i]!;
    }
    const R = Math.max(1, Math.min(k, Math.floor(HESSIAN_BLOCK_FLOATS / k)));
    out = arenaScratchFloat32(out, R * k);
    for (let r0 = 0; r0 < k; r0 += R) {
      const rows = Math.min(R, k - r0), width = k - r0;
      // out[i, j'] = Σ_t x[t, r0 + i] · x[t, r0 + j'] for i < rows, j' < width (column j = r0 + j')
      matmulF32(xt.subarray(r0 * m, (r0 + rows) * m), rows, m, xt.subarray(r0 * m, k * m), width, out, undefined, wasmKernelWhereAvailable());
      for (let i = 0; i < rows; i++) {
        const si = (r0 + i) * k + r0, oi = i * width;
        for (let j = i; j < width; j++) sum[si + j] += out[oi + j]!;
      }
    }
  };
}
