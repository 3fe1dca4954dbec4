/**
 * Element type of a GPU linear layer's output y [M, N]: f32, or IEEE half (f16) — the f32 result
 * rounded to nearest even in the kernel's epilogue (common.cuh, OUT_F16), so an f16 output is
 * bit for bit f32ToF16Bits of the f32 one.
 */
export type OutputFormat = 'f32' | 'f16';

export function outputBytes(out: OutputFormat): number {
  return out === 'f16' ? 2 : 4;
}

/** The kernel define that selects the format. */
export function outputDefines(out: OutputFormat): { OUT_F16: number } {
  return { OUT_F16: out === 'f16' ? 1 : 0 };
}
