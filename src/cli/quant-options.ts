/**
 * Parsing the quantization flags of `intscale quantize` into a typed QuantRecipe:
 *   --alpha 1024 | heuristic | safe | safe:4096      (safe = the largest overflow-free α ≤ 2^10)
 *   --override down_proj=w8a8,g128,float             (any of wN, aN, gN / per-channel, int, float, alpha=…)
 */
import { InvalidArgumentError } from 'commander';
import { LINEAR_NAMES, type LinearSlot } from '../model/layout.js';
import { DEFAULT_SPEC, type QuantRecipe } from '../quant/recipe.js';
import type { AlphaPolicy, QuantSpec } from '../quant/types.js';

export function parseAlpha(value: string): AlphaPolicy {
  if (value === 'heuristic') return { kind: 'heuristic' };
  const safe = /^safe(?::(\d+))?$/.exec(value);
  if (safe) return { kind: 'safe', maxLog2: safe[1] === undefined ? 10 : powerOfTwoLog2(safe[1], value) };
  return { kind: 'fixed', log2: powerOfTwoLog2(value, value) };
}

function powerOfTwoLog2(n: string, whole: string): number {
  const v = Number(n);
  const b = Math.log2(v);
  if (!Number.isInteger(b) || b < 0 || b > 30) {
    throw new InvalidArgumentError(`α must be a power of two from 1 to 2^30, "heuristic", "safe" or "safe:<power of two>"; got "${whole}"`);
  }
  return b;
}

/** Module short names (q_proj … down_proj) to their slots. */
const SLOT_BY_SHORT_NAME = new Map<string, LinearSlot>(
  (Object.entries(LINEAR_NAMES) as [LinearSlot, string][]).map(([slot, name]) => [name.split('.').pop()!, slot]),
);

export function parseOverride(value: string, previous: Partial<Record<LinearSlot, Partial<QuantSpec>>> = {}): Partial<Record<LinearSlot, Partial<QuantSpec>>> {
  const eq = value.indexOf('=');
  const module = value.slice(0, eq);
  const slot = SLOT_BY_SHORT_NAME.get(module);
  if (eq < 0 || slot === undefined) {
    throw new InvalidArgumentError(`expected <module>=<settings> with module one of ${[...SLOT_BY_SHORT_NAME.keys()].join(', ')}; got "${value}"`);
  }
  const spec: { -readonly [K in keyof QuantSpec]?: QuantSpec[K] } = {};
  for (const token of value.slice(eq + 1).toLowerCase().split(',')) {
    const wa = /^w(4|8)(?:a(8|16))?$/.exec(token);
    const g = /^g(\d+)$/.exec(token);
    if (wa) {
      spec.wBits = Number(wa[1]) as 4 | 8;
      if (wa[2] !== undefined) spec.aBits = Number(wa[2]) as 8 | 16;
    } else if (/^a(8|16)$/.test(token)) spec.aBits = Number(token.slice(1)) as 8 | 16;
    else if (g) spec.groupSize = Number(g[1]);
    else if (token === 'per-channel') spec.groupSize = 0;
    else if (token === 'int' || token === 'float') spec.scale = token;
    else if (token.startsWith('alpha=')) spec.alpha = parseAlpha(token.slice(6));
    else throw new InvalidArgumentError(`unknown setting "${token}" in "${value}" (use wN, aN, wNaN, gN, per-channel, int, float, alpha=…)`);
  }
  return { ...previous, [slot]: spec };
}

export interface QuantCliOptions {
  wBits: string; aBits: string; group: number; scale: string; alpha: AlphaPolicy; override: Partial<Record<LinearSlot, Partial<QuantSpec>>>;
}

export function recipeFromOptions(o: QuantCliOptions): QuantRecipe {
  const base: QuantSpec = {
    wBits: o.wBits === '8' ? 8 : 4,
    aBits: o.aBits === '16' ? 16 : 8,
    groupSize: o.group,
    scale: o.scale === 'float' ? 'float' : 'int',
    alpha: o.alpha,
  };
  return { method: 'rtn', base, overrides: o.override };
}

export const QUANT_DEFAULTS = DEFAULT_SPEC;
