/**
 * GPTQ with its matrices on the GPU (issue 25): the method of quant/methods/gptq.ts, float64 throughout,
 * as a GptqEngine the calibration's GPTQ layer method (quantize/gptq-layer.ts) runs on.
 *
 *   Hessian   S += Xᵀ·X per batch of calibration rows: the rows (on the device already when the
 *             calibration stream runs on the CUDA backend, else uploaded) widen to float64 (to_f64)
 *             and one DSYRK adds them (the CPU sums float32 batch products into float64:
 *             here the products are exact, so the two differ by the CPU's float32 rounding only).
 *   factor    H = (2/T)·S mirrored (hessian_finish), its diagonal to the host for the plan (dead inputs,
 *             act-order, λ: factorPlan, shared with the CPU), the dampened permuted matrix (permute_damp),
 *             then cuSOLVER: Cholesky, inverse, Cholesky again = U with H⁻¹ = UᵀU (cusolver.ts). Without
 *             cuSOLVER the dampened matrix goes to the host and the CPU factors it.
 *   columns   W (float64, permuted) and U stay on the device; per block of columns gptq_block (one warp a
 *             row: the CPU block kernel's arithmetic, operation for operation) then the lazy update as one
 *             DGEMM; codes and scales come back once at the end.
 * Given the same U, a layer of one block (K ≤ the block size) gets the CPU's codes and scales bit for bit;
 * past one block the DGEMM's float64 sums differ from the CPU's float32 lazy update in rounding only.
 */
import type { CudaContext } from './context.js';
import type { DeviceBuffer } from './buffer.js';
import { Cublas } from './cublas.js';
import { Cusolver } from './cusolver.js';
import { CudaUnavailableError } from './libs.js';
import { getKernel } from './kernel-cache.js';
import type { KernelArg } from './program.js';
import { sharedFloat64 } from '../../tensor/shared.js';
import { upperCholeskyOfInverse } from '../../quant/methods/cholesky.js';
import { blockedTriangularKernels } from '../cpu/triangular.js';
import {
  columnPlan, columnsResult, factorPlan, intScaleOverflow, notPositiveDefinite,
  type GptqAccumulator, type GptqColumns, type GptqEngine, type GptqFactor, type GptqSettings,
} from '../../quant/methods/gptq.js';
import { InputError } from '../../errors.js';

/** Threads of the element-wise kernels; rows of gptq_block per block of 256 threads. */
const THREADS = 256;
const BLOCK_ROWS = 8;

/** Its accumulators take host rows (uploaded) or device rows (a calibration stream on the CUDA backend: no copy). */
export interface CudaGptq extends GptqEngine<Float32Array | DeviceBuffer> {
  /** whether the factor runs on cuSOLVER (else on the host). */
  readonly deviceFactor: boolean;
  dispose(): void;
}

export function cudaGptq(ctx: CudaContext): CudaGptq {
  const blas = new Cublas(ctx.stream);
  let solver: Cusolver | null = null;
  try {
    solver = new Cusolver(ctx);
  } catch (e) {
    if (!(e instanceof CudaUnavailableError)) throw e;
  }
  const launch = (kernel: string, grid: [number, number?], args: readonly KernelArg[], block = THREADS): void =>
    ctx.launch(getKernel(ctx, 'gptq.cu', kernel), grid, [block], args);
  /** grid of a row-wise kernel over [rows, cols]: x over the columns, y one row each. */
  const rowsGrid = (rows: number, cols: number): [number, number] => {
    if (rows > 65535) throw new RangeError(`GPTQ on the GPU: ${rows} rows exceed a grid's 65535`);
    return [Math.min(Math.ceil(cols / THREADS), 64), rows];
  };
  const elementsGrid = (n: number): [number] => [Math.max(1, Math.min(Math.ceil(n / THREADS), 8192))];

  const accumulator = (k: number): GptqAccumulator<Float32Array | DeviceBuffer> => {
    let sum: DeviceBuffer | null = ctx.alloc(k * k * 8);
    sum.fill(0);
    ctx.landUploads();
    let rows32: DeviceBuffer | null = null, rows64: DeviceBuffer | null = null, capacity = 0;
    let tokens = 0;
    const release = () => {
      if (sum === null) return;
      ctx.synchronize(); // a DSYRK may still read them
      for (const b of [sum, rows32, rows64]) b?.free();
      sum = rows32 = rows64 = null;
    };
    return {
      get tokens() { return tokens; },
      add(x, m) {
        if (sum === null) throw new Error('GPTQ accumulator used after its factor was made');
        const have = x instanceof Float32Array ? x.length : x.bytes / 4;
        if (have < m * k) throw new RangeError(`Hessian of ${k} inputs: ${have} values for ${m} rows`);
        // staging about to be rewritten by a host copy, or freed, may still be read by the previous batch's kernels
        if (x instanceof Float32Array || m > capacity) ctx.synchronize();
        if (m > capacity) {
          rows32?.free();
          rows64?.free();
          rows32 = ctx.alloc(m * k * 4);
          rows64 = ctx.alloc(m * k * 8);
          capacity = m;
        }
        let rows = x as DeviceBuffer;
        if (x instanceof Float32Array) {
          rows32!.upload(x.subarray(0, m * k));
          ctx.landUploads();
          rows = rows32!;
        }
        launch('to_f64', elementsGrid(m * k), [rows, rows64!, { u64: m * k }]);
        const [s, r] = [sum.address, rows64!.address];
        ctx.onStream(() => blas.gramAddF64(s, r, m, k));
        tokens += m;
      },
      factor(settings, name) {
        if (sum === null) throw new Error('GPTQ accumulator used after its factor was made');
        if (tokens === 0) throw new InputError(`${name}: no calibration tokens reached this layer`, { tensor: name });
        try {
          return factorOnDevice(sum, k, 2 / tokens, settings, name);
        } finally {
          release();
        }
      },
      release,
    };
  };

  /** Steps 1–4 from the sum S (consumed): see the header. */
  const factorOnDevice = (sum: DeviceBuffer, k: number, f: number, settings: GptqSettings, name: string): GptqFactor => {
    launch('hessian_finish', rowsGrid(k, k), [sum, sum, { i32: k }, { f64: f }]);
    const diagonal = ctx.alloc(k * 8);
    const perm = ctx.alloc(k * 4);
    const h = ctx.alloc(k * k * 8);
    try {
      launch('take_diagonal', elementsGrid(k), [sum, diagonal, { i32: k }]);
      ctx.synchronize();
      const plan = factorPlan(diagonal.download(new Float64Array(k)), settings, name);
      diagonal.upload(plan.diag);
      perm.upload(plan.perm);
      ctx.landUploads();
      launch('permute_damp', rowsGrid(k, k), [sum, h, perm, diagonal, { f64: plan.lambda }, { i32: k }]);
      ctx.synchronize();
      const u = sharedFloat64(k * k);
      if (solver === null) {
        // no cuSOLVER: the CPU factors the dampened matrix
        const r = upperCholeskyOfInverse(h.download(new Float64Array(k * k)), k, blockedTriangularKernels());
        if (!r.ok) throw notPositiveDefinite(name, settings, plan.perm[r.column]!, `with pivot ${r.pivot.toExponential(3)}`);
        u.set(r.u);
      } else {
        for (const step of ['cholesky', 'inverse', 'cholesky of the inverse'] as const) {
          const info = step === 'inverse' ? solver.inverseFromCholesky(h, k) : solver.choleskyUpper(h, k);
          if (info > 0) throw notPositiveDefinite(name, settings, plan.perm[info - 1]!, `(cuSOLVER, ${step})`);
          if (info < 0) throw new Error(`${name}: cuSOLVER refused argument ${-info} of the ${step}`);
        }
        launch('zero_below', rowsGrid(k, k), [h, { i32: k }]);
        ctx.synchronize();
        h.download(u);
      }
      return { k, settings, perm: plan.perm, dead: plan.dead, u };
    } finally {
      diagonal.free();
      perm.free();
      h.free();
    }
  };

  const columns: GptqColumns = (w, factor, spec, G, scaler, settings, name) => {
    const { n, k } = w;
    const groupCount = k / G;
    const B = settings.blockSize;
    const { position, groupAt } = columnPlan(factor.perm, G);
    const owned: DeviceBuffer[] = [];
    const up = (a: ArrayBufferView): DeviceBuffer => {
      const b = ctx.upload(a);
      owned.push(b);
      return b;
    };
    const alloc = (bytes: number): DeviceBuffer => {
      const b = ctx.alloc(Math.max(4, bytes));
      owned.push(b);
      return b;
    };
    try {
      const w32 = up(w.w.subarray(0, n * k));
      const dPerm = up(factor.perm), dDead = up(factor.dead), dPosition = up(position), dGroupAt = up(groupAt);
      const U = up(factor.u);
      const W = alloc(n * k * 8);
      const q = alloc(n * k), scales = alloc(n * groupCount * 4);
      const intScales = alloc(scaler.kind === 'int' ? n * groupCount * 4 : 4);
      const err = alloc(n * Math.min(B, k) * 8);
      const overflow = alloc(4);
      overflow.fill(0);
      ctx.landUploads();
      const alphaLog2 = scaler.kind === 'int' ? scaler.alphaLog2 : -1;
      launch('permute_weights', rowsGrid(n, k), [w32, W, dPerm, dDead, { i32: k }]);
      for (let i1 = 0; i1 < k; i1 += B) {
        const i2 = Math.min(i1 + B, k);
        launch('gptq_block', [Math.ceil(n / BLOCK_ROWS)], [W, U, err, q, scales, intScales, dPerm, dPosition, dGroupAt,
          { i32: n }, { i32: k }, { i32: i1 }, { i32: i2 }, { i32: G }, { i32: spec.wBits }, { i32: alphaLog2 }, overflow], BLOCK_ROWS * 32);
        const [wa, ea, ua] = [W.address, err.address, U.address];
        if (i2 < k) ctx.onStream(() => blas.lazyUpdateF64(wa, n, k, ea, ua, i1, i2));
      }
      ctx.synchronize();
      const bad = overflow.download(new Int32Array(1))[0]!;
      if (bad !== 0) throw intScaleOverflow(name, bad - 1);
      return columnsResult(w, spec, G, scaler, q.download(new Int8Array(n * k)), scales.download(new Float32Array(n * groupCount)),
        scaler.kind === 'int' ? intScales.download(new Int32Array(n * groupCount)) : undefined);
    } finally {
      for (const b of owned) b.free();
    }
  };

  return {
    name: `cuda (${ctx.info.name}${solver ? ', cuSOLVER factor' : ', factor on the host: no cuSOLVER'})`,
    deviceFactor: solver !== null,
    accumulator,
    columns,
    dispose() {
      solver?.destroy();
      blas.destroy();
    },
  };
}
