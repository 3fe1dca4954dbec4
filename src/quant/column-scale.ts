/**
 * W·diag(s) by rows (AWQ's scaled weights, quantize/awq.ts): out[r, c] = fround(w[r, c] · s[c]) for rows
 * [r0, r1) of W [n, k]: a row kernel, so the CPU pool may split a layer's rows with the same bits.
 */
export interface ColumnScaleArgs {
  readonly [name: string]: Float32Array | number;
  readonly w: Float32Array;
  readonly s: Float32Array;
  readonly out: Float32Array;
  readonly k: number;
}

export function scaleColumnsRows(a: ColumnScaleArgs, r0: number, r1: number): void {
  const { w, s, out, k } = a;
  for (let r = r0; r < r1; r++) {
    const o = r * k;
    for (let c = 0; c < k; c++) out[o + c] = w[o + c]! * s[c]!;
  }
}
