/**
 * GPU correctness of the cuBLAS baselines (src/backends/cuda/cublas.ts) on fresh random inputs,
 * ragged sizes, outputs poisoned before each call:
 *   gemmI8: int32 Y = X·Wᵀ bit for bit against an exact CPU product;
 *   gemmF16: within 2^-10 of Σ|x·w| of a float64 product of the same fp16 inputs (fp32 accumulation,
 *   fp16 output rounding);
 * and (no GPU needed beyond the handle) the size checks' messages. Skips with the reason when no
 * CUDA driver or GPU is present (CI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import { Cublas, CublasError } from '../../../src/backends/cuda/cublas.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { f16ToF32, f32ToF16 } from '../../../src/io/dtype.js';
import { rng } from './helpers.js';
import { runPoisoned } from './gpu-checks.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

/** [M, N, K]: one token, ragged M and N, K a multiple of 4 (IMMA rows), one large enough for tensor-core tiles. */
const SHAPES: [number, number, number][] = [[1, 64, 256], [5, 24, 64], [37, 100, 260], [130, 72, 1024], [16, 4096, 512], [300, 260, 128]];

function randomI8(count: number, seed: number): Int8Array {
  const r = rng(seed);
  const v = new Int8Array(count);
  for (let i = 0; i < count; i++) v[i] = Math.floor(r() * 256) - 128;
  return v;
}

/** Runs `call(blas, x, w)` on uploaded x and w with a fresh cuBLAS handle, freeing both after. */
function withCublas<T>(x: ArrayBufferView, w: ArrayBufferView, call: (blas: Cublas, x: number, w: number) => T): T {
  const ctx = ctxOf();
  const blas = new Cublas(ctx.stream);
  const dx = ctx.upload(x), dw = ctx.upload(w);
  try {
    return call(blas, dx.address, dw.address);
  } finally {
    dx.free(); dw.free();
    blas.destroy();
  }
}

test('cuBLAS INT8 GEMM (gemmI8) is bit-exact against the CPU product', { skip }, () => {
  let seed = 9101;
  for (const [M, N, K] of SHAPES) {
    const x = randomI8(M * K, seed++), w = randomI8(N * K, seed++);
    // int32 outputs read back through the f32 poison run: same 4 bytes each, viewed as int32
    const raw = withCublas(x, w, (b, dx, dw) => runPoisoned(ctxOf(), M * N, (dy) => b.gemmI8(dy.address, dx, dw, M, N, K)));
    const got = new Int32Array(raw.buffer, raw.byteOffset, M * N);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let want = 0;
        for (let k = 0; k < K; k++) want += x[m * K + k]! * w[n * K + k]!;
        if (got[m * N + n] !== want) assert.fail(`gemmI8 M=${M} N=${N} K=${K}: y[${m},${n}] = ${got[m * N + n]}, want ${want}`);
      }
    }
  }
});

test('cuBLAS FP16 GEMM (gemmF16) matches a float64 product of its fp16 inputs', { skip }, () => {
  let seed = 9201;
  for (const [M, N, K] of SHAPES) {
    const r = rng(seed++);
    const x16 = f32ToF16(Float32Array.from({ length: M * K }, () => r() * 2 - 1));
    const w16 = f32ToF16(Float32Array.from({ length: N * K }, () => (r() * 2 - 1) * 0.05));
    const x = new Float32Array(M * K), w = new Float32Array(N * K);
    f16ToF32(x16, x);
    f16ToF32(w16, w);
    const got = withCublas(x16, w16, (b, dx, dw) => runPoisoned(ctxOf(), M * N, (dy) => b.gemmF16(dy.address, dx, dw, M, N, K), 'f16'));
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let want = 0, mag = 0;
        for (let k = 0; k < K; k++) {
          want += x[m * K + k]! * w[n * K + k]!;
          mag += Math.abs(x[m * K + k]! * w[n * K + k]!);
        }
        const g = got[m * N + n]!;
        if (!(Math.abs(g - want) <= 2 ** -10 * mag)) assert.fail(`gemmF16 M=${M} N=${N} K=${K}: y[${m},${n}] = ${g}, want ${want} (±${2 ** -10 * mag})`);
      }
    }
  }
});

test('cuBLAS calls reject non-positive or fractional sizes by name', { skip }, () => {
  const blas = new Cublas(ctxOf().stream);
  try {
    assert.throws(() => blas.gemmI8(0, 0, 0, 0, 8, 8), /gemmI8: M must be a positive 32-bit integer, got 0/);
    assert.throws(() => blas.gemmF16(0, 0, 0, 4, 2.5, 8), /gemmF16: N must be a positive 32-bit integer, got 2.5/);
    assert.ok(new CublasError('cublasGemmEx(int8, M=1 N=2 K=3)', 15).message.includes('NOT_SUPPORTED'));
  } finally {
    blas.destroy();
  }
});
