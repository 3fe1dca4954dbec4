/**
 * Parsing the quantization flags of `intscale quantize` into a typed QuantRecipe:
 *   --alpha 1024 | heuristic | safe | safe:4096      (safe = the largest overflow-free α ≤ 2^10)
 *   --override down_proj=w8a8,g128,float             (any of wN, aN, gN / per-channel, int, float, alpha=…;
 *                                                     lm_head=… sets the lm_head's settings)
 *   --embedding int8 | float                         (the token embedding: int8 per row by default)
 *   --lm-head w8a8 | float                           (the lm_head: W8A8, the base's group and scale kind,
 *                                                     α ≤ 2^16 (safe), by default when activations are 8-bit)
 *   --method rtn | gptq | awq, with --calib FILE --calib-windows N --calib-seq-len L --seed S
 *   (calibration defaults to ../shared/data/wikitext-2/valid.txt beside the package when present:
 *   never the bundled test excerpt), --damp, --act-order (GPTQ), --awq-clip (AWQ), --min-expert-tokens (mixtral:
 *   an expert routed fewer calibration tokens is quantized with RTN).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { InputError } from '../errors.js';
import { EXPERT_NAMES, LINEAR_NAMES, type LinearSlot } from '../model/layout.js';
import type { CalibrationSettings } from '../quantize/calibration.js';
import { DEFAULT_AWQ } from '../quantize/awq.js';
import { DEFAULT_GPTQ_LAYER } from '../quantize/gptq-layer.js';
import { DEFAULT_LM_HEAD, DEFAULT_SPEC, type QuantMethod, type QuantRecipe } from '../quantize/recipe.js';
import type { AlphaPolicy, QuantSpec } from '../quant/types.js';
import { PACKAGE_ROOT } from './default-model.js';

/** The default calibration text: WikiText-2 validation beside the package (null when absent). */
export const DEFAULT_CALIB_FILE = path.join(PACKAGE_ROOT, '..', 'shared', 'data', 'wikitext-2', 'valid.txt');

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

type Overrides = QuantRecipe['overrides'];

/** Module short names (q_proj … down_proj, mixtral's expert w1 / w3 / w2 = gate / up / down, lm_head) to their recipe keys. */
const SLOT_BY_SHORT_NAME = new Map<string, keyof Overrides>([
  ...(Object.entries(LINEAR_NAMES) as [LinearSlot, string][]).map(([slot, name]): [string, LinearSlot] => [name.split('.').pop()!, slot]),
  ...(Object.entries(EXPERT_NAMES) as [LinearSlot, string][]).map(([slot, name]): [string, LinearSlot] => [name, slot]),
  ['lm_head', 'lmHead'],
]);

export function parseOverride(value: string, previous: Overrides = {}): Overrides {
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
  wBits: string; aBits: string; group: number; scale: string; alpha: AlphaPolicy; override: Overrides;
  /** 'w8a8' (the default) or 'float'. */
  lmHead?: string;
  /** 'int8' (the default: 8 bits per row) or 'float'. */
  embedding?: string;
  method?: string;
  calib?: string; calibWindows?: number; calibSeqLen?: number; seed?: number;
  damp?: number; actOrder?: boolean; trueSequential?: boolean; awqClip?: boolean; minExpertTokens?: number;
}

export const CALIB_DEFAULTS = { samples: 128, seqLen: 2048, seed: 0 } as const;

function calibrationFromOptions(o: QuantCliOptions, method: QuantMethod): CalibrationSettings {
  let file = o.calib;
  if (file === undefined) {
    if (!fs.existsSync(DEFAULT_CALIB_FILE)) {
      throw new InputError(`--method ${method} needs calibration text: pass --calib FILE (e.g. WikiText-2 train or valid; not the test set you evaluate on)`);
    }
    file = DEFAULT_CALIB_FILE;
  }
  return {
    file,
    samples: o.calibWindows ?? CALIB_DEFAULTS.samples,
    seqLen: o.calibSeqLen ?? CALIB_DEFAULTS.seqLen,
    seed: o.seed ?? CALIB_DEFAULTS.seed,
  };
}

/**
 * The overrides with the lm_head's default added: DEFAULT_LM_HEAD (W8A8, α ≤ 2^16) when the
 * base quantizes activations to 8 bits; kept in float with `--lm-head float` or a weight-only base.
 * An explicit `--override lm_head=…` wins over the default.
 */
function withLmHead(o: QuantCliOptions, base: QuantSpec): Overrides {
  const kind = o.lmHead ?? 'w8a8';
  if (kind !== 'w8a8' && kind !== 'float') throw new InputError(`--lm-head must be w8a8 or float; got "${kind}"`);
  if (o.override.lmHead !== undefined) {
    if (kind === 'float' && o.lmHead !== undefined) throw new InputError('--lm-head float and --override lm_head=… contradict each other: give one');
    return o.override;
  }
  if (kind === 'float' || base.aBits !== 8) return o.override;
  return { ...o.override, lmHead: DEFAULT_LM_HEAD };
}

export function recipeFromOptions(o: QuantCliOptions): QuantRecipe {
  const base: QuantSpec = {
    wBits: o.wBits === '8' ? 8 : 4,
    aBits: o.aBits === '16' ? 16 : 8,
    groupSize: o.group,
    scale: o.scale === 'float' ? 'float' : 'int',
    alpha: o.alpha,
  };
  const embedding = o.embedding ?? 'int8';
  if (embedding !== 'int8' && embedding !== 'float') throw new InputError(`--embedding must be int8 or float; got "${embedding}"`);
  const common = { base, overrides: withLmHead(o, base), embedding } as const;
  const method = (o.method ?? 'rtn') as QuantMethod;
  switch (method) {
    case 'rtn':
      return { method, ...common };
    case 'gptq':
      return {
        method, ...common, calibration: calibrationFromOptions(o, method),
        gptq: {
          ...DEFAULT_GPTQ_LAYER, damp: o.damp ?? DEFAULT_GPTQ_LAYER.damp, actOrder: o.actOrder === true, trueSequential: o.trueSequential !== false,
          minExpertTokens: o.minExpertTokens ?? DEFAULT_GPTQ_LAYER.minExpertTokens,
        },
      };
    case 'awq':
      return {
        method, ...common, calibration: calibrationFromOptions(o, method),
        awq: { ...DEFAULT_AWQ, clip: o.awqClip === true, minExpertTokens: o.minExpertTokens ?? DEFAULT_AWQ.minExpertTokens },
      };
    default:
      throw new InputError(`unknown --method ${String(method)} (rtn, gptq or awq)`);
  }
}

export const QUANT_DEFAULTS = DEFAULT_SPEC;
