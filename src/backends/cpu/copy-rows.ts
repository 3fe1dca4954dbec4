/** The row kernel of copy-pool.ts: dst rows [r0, r1) of n floats = src's. */
export interface CopyRowsArgs {
  readonly [name: string]: Float32Array | number;
  readonly src: Float32Array;
  readonly dst: Float32Array;
  readonly n: number;
}

export function copyRowsRange(a: CopyRowsArgs, r0: number, r1: number): void {
  a.dst.set(a.src.subarray(r0 * a.n, r1 * a.n), r0 * a.n);
}
