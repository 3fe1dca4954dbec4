/**
 * Types shared by the worker pool, its workers and the kernels they run.
 *
 * A row kernel computes rows [rowStart, rowEnd) of some output; the pool splits a row range
 * across threads and calls the same kernel in each thread with the same args. Typed arrays in
 * args must be backed by a SharedArrayBuffer (see src/tensor/shared.ts): they are passed to the
 * workers by structured clone, which shares SAB memory but would copy anything else.
 */

/** Typed arrays a kernel may read or write. */
export type KernelArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;

/** One argument of a kernel: a (shared) typed array, a number, or absent. */
export type KernelArg = KernelArray | number | boolean | undefined;

/** The arguments of a kernel, by name. */
export type KernelArgs = { readonly [name: string]: KernelArg };

/** Computes rows [rowStart, rowEnd) of its output; must not allocate per call in hot loops. */
export type RowKernel<A extends KernelArgs = KernelArgs> = (args: A, rowStart: number, rowEnd: number) => void;
