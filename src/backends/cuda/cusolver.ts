/**
 * cuSOLVER (dense) through koffi: only the Cholesky factorization and the inverse from it, in float64,
 * on a stream — what GPTQ's factor needs on the GPU (gptq-cuda.ts). A missing library is a
 * CudaUnavailableError (the caller factors on the host instead).
 *
 * Row-major callers: a symmetric matrix reads the same in both orders, and cuSOLVER's column-major
 * LOWER triangle is the row-major upper one, so `potrf` leaves L with A = L·Lᵀ in column-major terms,
 * i.e. Lᵀ — an upper factor U with A = Uᵀ·U — in the row-major upper triangle.
 */
import { loadCudaLibrary, requiredFunctions, type NativeFunction } from './libs.js';
import type { CudaContext } from './context.js';
import type { DeviceBuffer } from './buffer.js';

/** cublasFillMode_t LOWER (column-major), the row-major upper triangle. */
const FILL_LOWER = 0;

const SIGS: Record<string, [string[], string]> = {
  create: [['cusolverDnCreate'], 'int $NAME(_Out_ uint64_t *handle)'],
  destroy: [['cusolverDnDestroy'], 'int $NAME(void *handle)'],
  setStream: [['cusolverDnSetStream'], 'int $NAME(void *handle, void *stream)'],
  potrfSize: [['cusolverDnDpotrf_bufferSize'], 'int $NAME(void *h, int uplo, int n, uint64_t A, int lda, _Out_ int *lwork)'],
  potrf: [['cusolverDnDpotrf'], 'int $NAME(void *h, int uplo, int n, uint64_t A, int lda, uint64_t work, int lwork, uint64_t info)'],
  potriSize: [['cusolverDnDpotri_bufferSize'], 'int $NAME(void *h, int uplo, int n, uint64_t A, int lda, _Out_ int *lwork)'],
  potri: [['cusolverDnDpotri'], 'int $NAME(void *h, int uplo, int n, uint64_t A, int lda, uint64_t work, int lwork, uint64_t info)'],
};

export class CusolverError extends Error {
  constructor(call: string, code: number) {
    super(`${call} failed: cusolverStatus ${code}`);
    this.name = 'CusolverError';
  }
}

/** A cuSOLVER dense handle on ctx's stream; destroy() releases it. */
export class Cusolver {
  private readonly f: Record<string, NativeFunction>;
  private handle: bigint;
  private readonly info: DeviceBuffer;

  constructor(private readonly ctx: CudaContext) {
    const f = requiredFunctions(loadCudaLibrary('cusolver'), SIGS, (names) => `libcusolver exports none of ${names.join(', ')}`);
    this.f = f;
    const h = new BigUint64Array(1);
    this.check('cusolverDnCreate', f.create!(h) as number);
    this.handle = h[0]!;
    this.check('cusolverDnSetStream', f.setStream!(this.handle, ctx.stream) as number);
    this.info = ctx.alloc(4);
  }

  private check(call: string, code: number): void {
    if (code !== 0) throw new CusolverError(call, code);
  }

  /** Runs potrf or potri on a [n, n] float64 matrix in place; returns cuSOLVER's info (0, or the failing order). */
  private run(which: 'potrf' | 'potri', a: DeviceBuffer, n: number): number {
    const lwork = new Int32Array(1);
    const size = which === 'potrf' ? this.f.potrfSize! : this.f.potriSize!;
    this.check(`cusolverDnD${which}_bufferSize(n=${n})`, size(this.handle, FILL_LOWER, n, a.address, n, lwork) as number);
    const work = this.ctx.alloc(Math.max(8, lwork[0]! * 8));
    try {
      this.check(`cusolverDnD${which}(n=${n})`, this.f[which]!(this.handle, FILL_LOWER, n, a.address, n, work.address, lwork[0]!, this.info.address) as number);
      this.ctx.synchronize();
      return this.info.download(new Int32Array(1))[0]!;
    } finally {
      work.free();
    }
  }

  /**
   * The row-major upper Cholesky factor of a symmetric positive definite A [n, n], in place (A = Uᵀ·U;
   * the strictly lower triangle keeps what it held). Returns 0, or i > 0 when the leading minor of order
   * i is not positive definite.
   */
  choleskyUpper(a: DeviceBuffer, n: number): number {
    return this.run('potrf', a, n);
  }

  /** A⁻¹'s upper triangle (row-major) from choleskyUpper's factor of A, in place; 0 or cuSOLVER's info. */
  inverseFromCholesky(a: DeviceBuffer, n: number): number {
    return this.run('potri', a, n);
  }

  destroy(): void {
    if (this.handle !== 0n) {
      this.check('cusolverDnDestroy', this.f.destroy!(this.handle) as number);
      this.handle = 0n;
      this.info.free();
    }
  }
}
