/**
 * cuBLAS through koffi: only what the baselines and the model's float layers need, a handle bound
 * to a stream and cublasGemmEx with fp16 inputs/outputs and fp32 accumulation (as PyTorch's fp16
 * matmul does), int8 inputs and int32 outputs with int32 accumulation (the dense INT8 GEMM, through
 * cuBLASLt's IMMA kernels), or fp32 throughout (no TF32: the float layers of a quantized model);
 * and float64 DSYRK / DGEMM for GPTQ on the GPU (gptq-cuda.ts).
 */
import { loadCudaLibrary, requiredFunctions, type NativeFunction } from './libs.js';

export class CublasError extends Error {
  constructor(call: string, code: number) {
    super(`${call} failed: cublasStatus ${code}${STATUS[code] ? ` (${STATUS[code]})` : ''}`);
    this.name = 'CublasError';
  }
}

const STATUS: Record<number, string> = {
  1: 'NOT_INITIALIZED',
  3: 'ALLOC_FAILED',
  7: 'INVALID_VALUE',
  8: 'ARCH_MISMATCH',
  11: 'MAPPING_ERROR',
  13: 'EXECUTION_FAILED',
  14: 'INTERNAL_ERROR',
  15: 'NOT_SUPPORTED',
};

const CUBLAS_OP_N = 0;
const CUBLAS_OP_T = 1;
const CUDA_R_32F = 0;
const CUDA_R_16F = 2;
const CUDA_R_8I = 3;
const CUDA_R_32I = 10;
const CUBLAS_COMPUTE_32F = 68;
const CUBLAS_COMPUTE_32F_PEDANTIC = 69;
const CUBLAS_COMPUTE_32I = 72;
const CUBLAS_GEMM_DEFAULT = -1;
/** cublasFillMode_t; column-major LOWER is the row-major upper triangle. */
const CUBLAS_FILL_MODE_LOWER = 0;

const SIGS: Record<string, [string[], string]> = {
  create: [['cublasCreate_v2'], 'int $NAME(_Out_ uint64_t *handle)'],
  destroy: [['cublasDestroy_v2'], 'int $NAME(void *handle)'],
  setStream: [['cublasSetStream_v2'], 'int $NAME(void *handle, void *stream)'],
  getVersion: [['cublasGetVersion_v2'], 'int $NAME(void *handle, _Out_ int *v)'],
  gemmEx: [
    ['cublasGemmEx'],
    'int $NAME(void *h, int transa, int transb, int m, int n, int k, const void *alpha, uint64_t A, int atype, int lda, uint64_t B, int btype, int ldb, const void *beta, uint64_t C, int ctype, int ldc, int computeType, int algo)',
  ],
  gemmBatchedEx: [
    ['cublasGemmBatchedEx'],
    'int $NAME(void *h, int transa, int transb, int m, int n, int k, const void *alpha, uint64_t A, int atype, int lda, uint64_t B, int btype, int ldb, const void *beta, uint64_t C, int ctype, int ldc, int batchCount, int computeType, int algo)',
  ],
  dsyrk: [['cublasDsyrk_v2'], 'int $NAME(void *h, int uplo, int trans, int n, int k, const double *alpha, uint64_t A, int lda, const double *beta, uint64_t C, int ldc)'],
  dgemm: [
    ['cublasDgemm_v2'],
    'int $NAME(void *h, int transa, int transb, int m, int n, int k, const double *alpha, uint64_t A, int lda, uint64_t B, int ldb, const double *beta, uint64_t C, int ldc)',
  ],
};

/** A cuBLAS handle on one stream; destroy() releases it. */
export class Cublas {
  private readonly f: Record<string, NativeFunction>;
  private handle: bigint;
  private readonly one = new Float32Array([1]);
  private readonly zero = new Float32Array([0]);
  private readonly oneI = new Int32Array([1]);
  private readonly zeroI = new Int32Array([0]);
  private readonly oneF64 = new Float64Array([1]);
  private readonly minusOneF64 = new Float64Array([-1]);

  constructor(stream: bigint) {
    const f = requiredFunctions(loadCudaLibrary('cublas'), SIGS, (names) => `libcublas exports none of ${names.join(', ')}`);
    this.f = f;
    const h = new BigUint64Array(1);
    this.check('cublasCreate', f.create!(h) as number);
    this.handle = h[0]!;
    this.check('cublasSetStream', f.setStream!(this.handle, stream) as number);
  }

  private check(call: string, code: number): void {
    if (code !== 0) throw new CublasError(call, code);
  }

  version(): number {
    const v = new Int32Array(1);
    this.check('cublasGetVersion', this.f.getVersion!(this.handle, v) as number);
    return v[0]!;
  }

  /**
   * Y[M,N] = X[M,K] · W[N,K]ᵀ, all fp16 row-major, fp32 accumulation. In cuBLAS's column-major
   * terms: Yᵀ (N×M) = op_T(W as K×N) · Xᵀ (K×M).
   */
  gemmF16(y: number, x: number, w: number, M: number, N: number, K: number): void {
    checkDims('gemmF16', M, N, K);
    this.check(
      `cublasGemmEx(fp16, M=${M} N=${N} K=${K})`,
      this.f.gemmEx!(this.handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, this.one, w, CUDA_R_16F, K, x, CUDA_R_16F, K, this.zero, y, CUDA_R_16F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) as number,
    );
  }

  /** Y[M,N] (fp32) = X[M,K] · W[N,K]ᵀ (both fp16), row-major, fp32 accumulation: the FP16 model path. */
  gemmF16F32(y: number, x: number, w: number, M: number, N: number, K: number): void {
    checkDims('gemmF16F32', M, N, K);
    this.check(
      `cublasGemmEx(fp16 → fp32, M=${M} N=${N} K=${K})`,
      this.f.gemmEx!(this.handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, this.one, w, CUDA_R_16F, K, x, CUDA_R_16F, K, this.zero, y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) as number,
    );
  }

  /**
   * `batch` products Y_i[M,N] (fp32) = X_i[M,K] · W_i[N,K]ᵀ, row-major, their addresses in the device
   * arrays ys, xs, ws (one 64-bit address per product): fp16 inputs with fp32 sums (gemmF16F32's call),
   * or fp32 throughout (gemmF32's). The mixture-of-experts' float experts in a decode step (engine-moe.ts).
   */
  gemmBatchedF32Out(ys: number, xs: number, ws: number, M: number, N: number, K: number, batch: number, inputs: 'f16' | 'f32'): void {
    checkDims('gemmBatchedF32Out', M, N, K);
    const [type, compute] = inputs === 'f16' ? [CUDA_R_16F, CUBLAS_COMPUTE_32F] : [CUDA_R_32F, CUBLAS_COMPUTE_32F_PEDANTIC];
    this.check(
      `cublasGemmBatchedEx(${inputs} → fp32, M=${M} N=${N} K=${K}, batch ${batch})`,
      this.f.gemmBatchedEx!(this.handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, this.one, ws, type, K, xs, type, K, this.zero, ys, CUDA_R_32F, N, batch, compute, CUBLAS_GEMM_DEFAULT) as number,
    );
  }

  /** Y[M,N] = X[M,K] · W[N,K]ᵀ, all fp32 row-major, fp32 products and sums (pedantic: never TF32). */
  gemmF32(y: number, x: number, w: number, M: number, N: number, K: number): void {
    checkDims('gemmF32', M, N, K);
    this.check(
      `cublasGemmEx(fp32, M=${M} N=${N} K=${K})`,
      this.f.gemmEx!(this.handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, this.one, w, CUDA_R_32F, K, x, CUDA_R_32F, K, this.zero, y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT) as number,
    );
  }

  /**
   * Y[M,N] (int32) = X[M,K] (int8) · W[N,K]ᵀ (int8), row-major, exact int32 accumulation: the same
   * "TN" call as gemmF16, the layout cuBLAS's int8 tensor-core kernels take. cuBLAS refuses some
   * sizes (NOT_SUPPORTED) that the IMMA kernels cannot serve; the error names the call and sizes.
   */
  gemmI8(y: number, x: number, w: number, M: number, N: number, K: number): void {
    checkDims('gemmI8', M, N, K);
    this.check(
      `cublasGemmEx(int8, M=${M} N=${N} K=${K})`,
      this.f.gemmEx!(this.handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, this.oneI, w, CUDA_R_8I, K, x, CUDA_R_8I, K, this.zeroI, y, CUDA_R_32I, N, CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT) as number,
    );
  }

  /**
   * S[k, k] += Xᵀ·X for X [m, k] float64 row-major, S's upper triangle (row-major; the lower is not
   * touched): one DSYRK. Float64 products and sums (GPTQ's Hessian, gptq-cuda.ts).
   */
  gramAddF64(s: number, x: number, m: number, k: number): void {
    checkDims('gramAddF64', m, k, k);
    // column-major: X is k × m (ld k); C = X·Xᵀ (k × k), its lower triangle = the row-major upper
    this.check(`cublasDsyrk(m=${m} k=${k})`, this.f.dsyrk!(this.handle, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, k, m, this.oneF64, x, k, this.oneF64, s, k) as number);
  }

  /**
   * GPTQ's lazy block update in float64 (row-major): W[:, i2:] −= E · U[i1:i2, i2:], W [n, k], E [n, i2 − i1],
   * U [k, k]. One DGEMM: column-major, W[:, i2:]ᵀ (rest × n, ld k) −= U[i1:i2, i2:]ᵀ (rest × count, ld k) · Eᵀ.
   */
  lazyUpdateF64(w: number, n: number, k: number, e: number, u: number, i1: number, i2: number): void {
    const count = i2 - i1, rest = k - i2;
    checkDims('lazyUpdateF64', n, count, rest);
    this.check(
      `cublasDgemm(GPTQ lazy update n=${n} k=${k} block ${i1}..${i2})`,
      this.f.dgemm!(this.handle, CUBLAS_OP_N, CUBLAS_OP_N, rest, n, count, this.minusOneF64, u + (i1 * k + i2) * 8, k, e, count, this.oneF64, w + i2 * 8, k) as number,
    );
  }

  destroy(): void {
    if (this.handle !== 0n) {
      this.check('cublasDestroy', this.f.destroy!(this.handle) as number);
      this.handle = 0n;
    }
  }
}

function checkDims(call: string, M: number, N: number, K: number): void {
  for (const [name, v] of [['M', M], ['N', N], ['K', K]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) throw new RangeError(`Cublas.${call}: ${name} must be a positive 32-bit integer, got ${v}`);
  }
}
