/**
 * Row kernels of the CPU backend's elementwise ops (ops.ts), so the pool can split a prefill's rows:
 * the same per-element code on any thread, so the same bits.
 */
export interface RmsnormArgs {
  readonly [name: string]: Float32Array | number;
  readonly x: Float32Array;
  readonly weight: Float32Array;
  readonly y: Float32Array;
  readonly eps: number;
}

/** y[i, :] = x[i, :] / sqrt(mean(x[i, :]²) + eps) · weight for rows [r0, r1). */
export function rmsnormRows(a: RmsnormArgs, r0: number, r1: number): void {
  const { x, weight, y, eps } = a;
  const dim = weight.length;
  for (let r = r0; r < r1; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i]! * x[o + i]!;
    const inv = Math.fround(1 / Math.sqrt(Math.fround(ss / dim) + eps));
    for (let i = 0; i < dim; i++) y[o + i] = weight[i]! * Math.fround(x[o + i]! * inv);
  }
}

export interface SiluMulArgs {
  readonly [name: string]: Float32Array | number;
  readonly gate: Float32Array;
  readonly up: Float32Array;
  /** values per row (the last row may be shorter) */
  readonly n: number;
}

/** gate[i] = silu(gate[i]) · up[i] for i in rows [r0, r1) of n values. */
export function siluMulRows(a: SiluMulArgs, r0: number, r1: number): void {
  const { gate, up, n } = a;
  const end = Math.min(gate.length, r1 * n);
  for (let i = r0 * n; i < end; i++) {
    const g = gate[i]!;
    gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}
