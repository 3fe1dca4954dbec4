/**
 * Choosing the Integer Scale amplifier α = 2^b of one layer from its float group scales s[n,g].
 *
 *   fixed:     b = log2 as given.
 *   heuristic: the paper's Listing 1 — the smallest b ≥ 0 with s·2^b ≥ 1 for every nonzero s,
 *              i.e. b = max(0, ceil(-log2(min nonzero s))).
 *   safe:      the largest b ≤ maxLog2 with 127·|qmin|·G·Σ_g S_b[n,g] < 2^31 on every channel n,
 *              S_b = max(1, roundHalfEven(s·2^b)) recomputed at each candidate b (the bound grows
 *              with b). If even b = 0 fails the layer cannot be made overflow-safe: InputError.
 */
import { InputError } from '../errors.js';
import { integerGroupScale } from './group-quant.js';
import { INT32_LIMIT, maxChannelBound } from './overflow.js';
import type { AlphaPolicy, WeightBits } from './types.js';

/** Float scales of one layer, row-major [n, groupCount]. */
export interface LayerScales {
  readonly scales: ArrayLike<number>;
  readonly n: number;
  readonly groupCount: number;
  readonly groupSize: number;
  readonly wBits: WeightBits;
}

export interface AlphaChoice {
  readonly policy: AlphaPolicy;
  /** the chosen b, α = 2^b. */
  readonly alphaLog2: number;
  /** the b the policy asked for: fixed log2, the heuristic's b, or safe's maxLog2. */
  readonly requestedLog2: number;
  /** true when the policy chose a smaller α than requested (safe policy, to avoid overflow). */
  readonly lowered: boolean;
}

/** S = max(1, roundHalfEven(s·2^b)) for every scale (0 for zero scales), as float64 (may exceed int32). */
export function amplifiedScales(scales: ArrayLike<number>, alphaLog2: number): Float64Array {
  const out = new Float64Array(scales.length);
  for (let i = 0; i < scales.length; i++) out[i] = integerGroupScale(scales[i]!, alphaLog2);
  return out;
}

/** The paper's heuristic: smallest b ≥ 0 with min nonzero s · 2^b ≥ 1 (0 when all scales are 0). */
export function heuristicAlphaLog2(scales: ArrayLike<number>): number {
  let minScale = Infinity;
  for (let i = 0; i < scales.length; i++) {
    const s = scales[i]!;
    if (s > 0 && s < minScale) minScale = s;
  }
  if (minScale === Infinity) return 0;
  let b = Math.max(0, Math.ceil(-Math.log2(minScale)));
  // guard against log2 rounding: settle on the exact smallest b.
  while (minScale * 2 ** b < 1) b++;
  while (b > 0 && minScale * 2 ** (b - 1) >= 1) b--;
  return b;
}

/** True when 127·|qmin|·G·Σ_g S_b[n,g] < 2^31 for every channel. */
export function isOverflowSafe(layer: LayerScales, alphaLog2: number): boolean {
  const S = amplifiedScales(layer.scales, alphaLog2);
  return maxChannelBound(S, layer.n, layer.groupCount, layer.groupSize, layer.wBits).maxBound < INT32_LIMIT;
}

/** The largest b in [0, maxLog2] that is overflow-safe; InputError when none is. */
export function safeAlphaLog2(layer: LayerScales, maxLog2: number, name = 'layer'): number {
  for (let b = maxLog2; b >= 0; b--) if (isOverflowSafe(layer, b)) return b;
  const S = amplifiedScales(layer.scales, 0);
  const { maxBound, worstChannel } = maxChannelBound(S, layer.n, layer.groupCount, layer.groupSize, layer.wBits);
  throw new InputError(
    `${name} cannot be made overflow-safe with integer scales: even at α = 1 output channel ${worstChannel} ` +
      `has worst-case |Σ_g acc·S| = 127·${layer.wBits === 4 ? 8 : 128}·${layer.groupSize}·Σ_g S = ${maxBound} ≥ 2^31 ` +
      `(weights too large for ${layer.wBits}-bit groups of ${layer.groupSize}); use float scales or smaller groups for it.`,
    { tensor: name },
  );
}

/** Applies a policy to one layer's float scales. */
export function chooseAlpha(layer: LayerScales, policy: AlphaPolicy, name?: string): AlphaChoice {
  switch (policy.kind) {
    case 'fixed':
      checkLog2(policy.log2, 'fixed amplifier log2');
      return { policy, alphaLog2: policy.log2, requestedLog2: policy.log2, lowered: false };
    case 'heuristic': {
      const b = heuristicAlphaLog2(layer.scales);
      return { policy, alphaLog2: b, requestedLog2: b, lowered: false };
    }
    case 'safe': {
      checkLog2(policy.maxLog2, 'safe amplifier maxLog2');
      const b = safeAlphaLog2(layer, policy.maxLog2, name);
      return { policy, alphaLog2: b, requestedLog2: policy.maxLog2, lowered: b < policy.maxLog2 };
    }
  }
}

function checkLog2(b: number, what: string): void {
  if (!Number.isInteger(b) || b < 0 || b > 30) {
    throw new InputError(`${what} must be an integer in [0, 30], got ${b}`);
  }
}
