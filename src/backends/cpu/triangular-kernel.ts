/**
 * The row kernels of backends/cpu/triangular.ts (registered in pool/kernels.ts, run in any thread):
 * rows of one Cholesky column, and blocks of columns of a lower-triangular inverse.
 */
import { choleskyColumn, invertLowerColumns } from '../../quant/methods/cholesky.js';
import type { RowKernel } from './pool/types.js';

export interface CholeskyColumnArgs {
  readonly [name: string]: Float64Array | number;
  readonly a: Float64Array;
  readonly l: Float64Array;
  readonly n: number;
  readonly j: number;
  readonly ljj: number;
}

/** Rows j + 1 + [rowStart, rowEnd) of column j. */
export const choleskyColumnRows: RowKernel<CholeskyColumnArgs> = (x, rowStart, rowEnd) =>
  choleskyColumn(x.a, x.l, x.n, x.j, x.ljj, x.j + 1 + rowStart, x.j + 1 + rowEnd);

export interface InvertLowerArgs {
  readonly [name: string]: Float64Array | number;
  readonly l: Float64Array;
  readonly inv: Float64Array;
  readonly n: number;
  readonly block: number;
}

/** Column blocks [rowStart, rowEnd) of L⁻¹, `block` columns each. */
export const invertLowerBlockRows: RowKernel<InvertLowerArgs> = (x, rowStart, rowEnd) => {
  for (let b = rowStart; b < rowEnd; b++) invertLowerColumns(x.l, x.inv, x.n, b * x.block, Math.min(x.n, (b + 1) * x.block));
};

