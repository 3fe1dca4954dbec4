/**
 * A quantization recipe for a whole model: the method (RTN, or GPTQ / AWQ with their calibration
 * and settings), one QuantSpec for every decoder linear layer, with per-layer overrides by module
 * name (e.g. the paper's LLaMA-3 recipe keeps down_proj at W8A8).
 * The lm_head and the embedding stay in float unless the recipe says otherwise (`intscale quantize`
 * puts both in 8 bits by default).
 * Every method ends in the same group quantizer (group-quant.ts); `scale` picks float or Integer Scale.
 */
import type { LinearSlot } from '../model/layout.js';
import type { CalibrationSettings } from './calibration.js';
import type { AwqSettings } from './awq.js';
import type { GptqLayerSettings } from './gptq-layer.js';
import type { QuantSpec } from '../quant/types.js';

export type QuantMethod = 'rtn' | 'gptq' | 'awq';

interface RecipeBase {
  readonly base: QuantSpec;
  /**
   * specs replacing `base` for some of the seven linear slots of every layer, and for the lm_head
   * (`lmHead`: quantized only when given, with base's settings under it; else kept in float).
   */
  readonly overrides: Partial<Record<LinearSlot | 'lmHead', Partial<QuantSpec>>>;
  /**
   * 'int8': the token embedding stored in 8 bits per row (EMBEDDING_SPEC; a row lookup, no matmul),
   * unless the float lm_head is tied to it; absent or 'float': kept in float.
   */
  readonly embedding?: 'int8' | 'float';
}

export type QuantRecipe =
  | (RecipeBase & { readonly method: 'rtn' })
  | (RecipeBase & { readonly method: 'gptq'; readonly calibration: CalibrationSettings; readonly gptq: GptqLayerSettings })
  | (RecipeBase & { readonly method: 'awq'; readonly calibration: CalibrationSettings; readonly awq: AwqSettings });

/** The default: W4A8, groups of 128, integer scales, α the largest overflow-safe ≤ 2^10. */
export const DEFAULT_SPEC: QuantSpec = {
  wBits: 4,
  aBits: 8,
  groupSize: 128,
  scale: 'int',
  alpha: { kind: 'safe', maxLog2: 10 },
};

/**
 * The lm_head's settings when `intscale quantize` puts it in 8 bits (its default): W8A8 with the
 * base's group and scale kind, α the largest overflow-safe ≤ 2^16. Not the body's 2^10: 8-bit weight
 * scales are ~16× smaller than 4-bit ones, and s·2^10 rounded to an integer then keeps only a few
 * bits (embedded model, WikiText-2 24×512: α ≤ 2^10 moves perplexity 59.083 → 58.331, α ≤ 2^16 to
 * 59.099 beside float scales' 59.101; docs/accuracy.md).
 */
export const DEFAULT_LM_HEAD: Partial<QuantSpec> = { wBits: 8, aBits: 8, alpha: { kind: 'safe', maxLog2: 16 } };

/** What `intscale quantize` writes with no flags: RTN of DEFAULT_SPEC, a W8A8 lm_head, an 8-bit embedding table. */
export const DEFAULT_RTN_RECIPE: QuantRecipe = { method: 'rtn', base: DEFAULT_SPEC, overrides: { lmHead: DEFAULT_LM_HEAD }, embedding: 'int8' };

/** The 8-bit embedding: int8 per row with one float scale a row (max|row| / 127); weight-only. */
export const EMBEDDING_SPEC: QuantSpec = { wBits: 8, aBits: 16, groupSize: 0, scale: 'float', alpha: { kind: 'fixed', log2: 0 } };

export function specFor(recipe: QuantRecipe, slot: LinearSlot): QuantSpec {
  return { ...recipe.base, ...recipe.overrides[slot] };
}

/** The lm_head's spec, or null when it stays in float (the default, as GPTQ, AWQ and the paper keep it). */
export function lmHeadSpec(recipe: QuantRecipe): QuantSpec | null {
  const o = recipe.overrides.lmHead;
  return o === undefined ? null : { ...recipe.base, ...o };
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

/** The method with its settings, e.g. "GPTQ (damp 0.01, block 128, act-order) on 128×2048 tokens of valid.txt". */
export function describeMethod(r: QuantRecipe): string {
  if (r.method === 'rtn') return 'RTN';
  const c = r.calibration;
  const calib = `${c.samples}×${c.seqLen} tokens of ${c.file} (seed ${c.seed})`;
  if (r.method === 'gptq') {
    const g = r.gptq;
    return `GPTQ (damp ${g.damp}, block ${g.blockSize}${g.actOrder ? ', act-order' : ''}${g.trueSequential ? ', true-sequential' : ''}) on ${calib}`;
  }
  const a = r.awq;
  return `AWQ (grid ${a.grid}, ${a.searchTokens} search tokens${a.clip ? ', clip' : ''}) on ${calib}`;
}
