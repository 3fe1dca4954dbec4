/**
 * The quantized formats every part of intscale shares (CPU kernels, CUDA kernels, checkpoints).
 *
 * A linear layer computes y = x · Wᵀ with x [M, K] and W [N, K]. Weights are quantized
 * symmetrically per group of G consecutive input channels (g = k / G, G divides K;
 * G = K is per-channel). See docs/design.md §1 for the formulas (and its glossary for the names).
 *
 * The integer weights are held in one packed format, in memory and on disk (int4-pack.ts):
 * half a byte per 4-bit weight; the GPU kernels repack them once at upload.
 */

/** Weight bit widths we quantize to. */
export type WeightBits = 4 | 8;
/** Activation bit widths: 8 = per-token dynamic int8, 16 = activations stay float (weight-only). */
export type ActivationBits = 8 | 16;
/** How group scales are stored and applied. */
export type ScaleKind = 'float' | 'int';

/** How the Integer Scale amplifier α = 2^log2 is chosen for one layer. */
export type AlphaPolicy =
  /** α = 2^log2 exactly (the paper's default is log2 = 10). */
  | { readonly kind: 'fixed'; readonly log2: number }
  /** the paper's heuristic: the smallest 2^b that makes every amplified scale of the layer ≥ 1. */
  | { readonly kind: 'heuristic' }
  /** the largest α ≤ 2^maxLog2 for which 127·|qmin|·G·Σ_g S[n,g] < 2^31 on every output channel
   *  (|qmin| = 8 for 4-bit, 128 for 8-bit weights): int32 overflow is then impossible for any input. */
  | { readonly kind: 'safe'; readonly maxLog2: number };

/** Everything that decides how one linear layer is quantized. */
export interface QuantSpec {
  readonly wBits: WeightBits;
  readonly aBits: ActivationBits;
  /** input channels per group; 0 means per-channel (one group spanning all of K). */
  readonly groupSize: number;
  readonly scale: ScaleKind;
  /** only read when scale === 'int'. */
  readonly alpha: AlphaPolicy;
}

/** A linear layer quantized to integers, ready for an exact integer kernel. */
export interface QuantizedLinear {
  readonly kind: 'quantized';
  /** output channels. */
  readonly n: number;
  /** input channels. */
  readonly k: number;
  /** input channels per group (= k when per-channel). */
  readonly groupSize: number;
  readonly wBits: WeightBits;
  readonly aBits: ActivationBits;
  /**
   * integer weights in the packed format (int4-pack.ts): 4-bit [N, K/2] bytes, two values a byte,
   * values in [-8, 7]; 8-bit [N, K] bytes, values in [-128, 127]. unpackWeights() gives int8 [N, K].
   */
  readonly packed: Uint8Array;
  readonly scale: ScaleKind;
  /**
   * Per-group float scales s[n, g], row-major [N, K/G]. For scale === 'int' this holds the scale
   * actually used, S[n, g] / α, so a float kernel and the integer kernel dequantize alike.
   */
  readonly scales: Float32Array;
  /** Integer scales S[n, g] = round(s·α) (≥ 1 for a nonzero group), [N, K/G]; only for scale === 'int'. */
  readonly intScales?: Int32Array;
  /** log2 of the amplifier α; only for scale === 'int'. */
  readonly alphaLog2?: number;
  /** optional bias [N], added in float after the integer product (see ModelConfig.bias). */
  readonly bias?: Float32Array;
}

/** A plain float linear layer, W row-major [N, K]. */
export interface FloatLinear {
  readonly kind: 'float';
  readonly n: number;
  readonly k: number;
  readonly w: Float32Array;
  readonly bias?: Float32Array;
}

export type LinearWeight = FloatLinear | QuantizedLinear;

/** Largest integer weight magnitude for a bit width: 7 for 4-bit, 127 for 8-bit. */
export function weightQmax(bits: WeightBits): number {
  return bits === 4 ? 7 : 127;
}

/** Smallest integer weight for a bit width: -8 for 4-bit, -128 for 8-bit. */
export function weightQmin(bits: WeightBits): number {
  return bits === 4 ? -8 : -128;
}
