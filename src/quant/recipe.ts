/**
 * A quantization recipe for a whole model: one QuantSpec for every decoder linear layer, with
 * per-layer overrides by module name (e.g. the paper's LLaMA-3 recipe keeps down_proj at W8A8).
 * The lm_head and the embeddings stay in float, as GPTQ, AWQ and the paper keep them.
 */
import type { LinearSlot } from '../model/layout.js';
import type { QuantSpec } from './types.js';

export type QuantMethod = 'rtn';

export interface QuantRecipe {
  readonly method: QuantMethod;
  readonly base: QuantSpec;
  /** specs replacing `base` for some of the seven linear slots of every layer. */
  readonly overrides: Partial<Record<LinearSlot, Partial<QuantSpec>>>;
}

/** The default: W4A8, groups of 128, integer scales, α the largest overflow-safe ≤ 2^10. */
export const DEFAULT_SPEC: QuantSpec = {
  wBits: 4,
  aBits: 8,
  groupSize: 128,
  scale: 'int',
  alpha: { kind: 'safe', maxLog2: 10 },
};

export function specFor(recipe: QuantRecipe, slot: LinearSlot): QuantSpec {
  return { ...recipe.base, ...recipe.overrides[slot] };
}

/** A short human label: "W4A8 g128 IS α≤2^10 (safe)". */
export function describeSpec(s: QuantSpec): string {
  const group = s.groupSize === 0 ? 'per-channel' : `g${s.groupSize}`;
  const bits = `W${s.wBits}A${s.aBits}`;
  if (s.aBits === 16) return `${bits} ${group}`;
  if (s.scale === 'float') return `${bits} ${group} FS`;
  const a = s.alpha;
  const alpha = a.kind === 'fixed' ? `α=2^${a.log2}` : a.kind === 'safe' ? `α≤2^${a.maxLog2} (safe)` : 'α heuristic';
  return `${bits} ${group} IS ${alpha}`;
}
