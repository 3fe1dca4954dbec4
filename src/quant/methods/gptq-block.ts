/**
 * GPTQ's column loop inside one block (quant/methods/gptq.ts step 5), as a row kernel: rows are
 * independent once U is known, so rows [rowStart, rowEnd) each walk the block's columns i1 … i2−1:
 *   (position i first of its group g: fix row r's scale of g from its current values, pending
 *    in-block updates added for columns past the block)
 *   q = Q(W[r, i]),  e = (W[r, i] − q·s) / U[i, i],  E[r, i − i1] = e,
 *   W[r, j] −= e · U[i, j]   for i < j < i2.
 * Each row's arithmetic is the serial loop's, in its order: the bits do not depend on the split.
 * Layout: W [n, k] float64 in the permuted column order (row-major), U [k, k] upper, E [n, i2 − i1];
 * q [n, k] int8 in the original column order, scales / intScales [n, k/G]. The arrays are shared
 * (SharedArrayBuffer) so the CPU pool's workers can run it (backends/cpu/pool/kernels.ts).
 */
import { chooseGroupScale, floatScaler, integerScaler, quantizeValue } from '../group-quant.js';
import type { WeightBits } from '../types.js';

export interface GptqBlockArgs {
  readonly [name: string]: Float64Array | Float32Array | Int32Array | Int8Array | number | undefined;
  readonly W: Float64Array;
  readonly u: Float64Array;
  readonly err: Float64Array;
  readonly q: Int8Array;
  readonly scales: Float32Array;
  /** Integer Scale's S per group (absent for float scales). */
  readonly intScales: Int32Array | undefined;
  /** perm[i] = original column at position i; position is its inverse. */
  readonly perm: Int32Array;
  readonly position: Int32Array;
  /** groupAt[i] = g where position i is the first of group g to come up, else −1. */
  readonly groupAt: Int32Array;
  readonly k: number;
  readonly i1: number;
  readonly i2: number;
  readonly groupSize: number;
  readonly bits: WeightBits;
  /** log2 α of Integer Scale; −1 for float scales. */
  readonly alphaLog2: number;
  /** [1]: set to 1 + a row whose integer scale does not fit int32 (the caller throws, naming the layer). */
  readonly overflow: Int32Array;
}

export function gptqBlockRows(a: GptqBlockArgs, rowStart: number, rowEnd: number): void {
  const { W, u, err, q, scales, intScales, perm, position, groupAt, k, i1, i2, groupSize: G, bits } = a;
  const scaler = a.alphaLog2 < 0 ? floatScaler : integerScaler(a.alphaLog2);
  const groupCount = k / G;
  const count = i2 - i1;
  for (let r = rowStart; r < rowEnd; r++) {
    const wr = r * k, er = r * count, sr = r * groupCount;
    for (let i = i1; i < i2; i++) {
      const g = Math.floor(perm[i]! / G);
      if (groupAt[i]! >= 0) {
        // row r's scale of group g from the current values of its columns
        let absMax = 0;
        for (let t = 0; t < G; t++) {
          const p = position[g * G + t]!;
          let v = W[wr + p]!;
          if (p >= i2) for (let c = i1; c < i; c++) v -= err[er + (c - i1)]! * u[c * k + p]!;
          absMax = Math.max(absMax, Math.abs(v));
        }
        const chosen = chooseGroupScale(scaler, absMax, bits);
        scales[sr + g] = chosen.scale;
        if (intScales) {
          const S = chosen.intScale!;
          if (S > 2 ** 31 - 1) a.overflow[0] = r + 1;
          else intScales[sr + g] = S;
        }
      }
      const ui = i * k;
      const s = scales[sr + g]!;
      const value = W[wr + i]!;
      const qv = quantizeValue(value, s, bits);
      q[wr + perm[i]!] = qv;
      const e = (value - Math.fround(qv * s)) / u[ui + i]!;
      err[er + (i - i1)] = e;
      if (e !== 0) for (let j = i + 1; j < i2; j++) W[wr + j] -= e * u[ui + j]!;
    }
  }
}
