/**
 * Variants of the W4A8 / W8A8 decode kernels at M <= 8 rows as a bench flag (cuda-sweep, cuda-engine-step):
 * `--decode default,16:2:3,8:4:6,16:0:1:2`, each `WK:STAGES:MINB[:PREW]` (k-warps, cp.async slots a warp with 0 for the
 * register pipeline, blocks a SM the registers must allow, chunks a warp loads before its wait) or `default` (the
 * chooser's own config).
 */
import type { W4A8Config } from '../src/backends/cuda/w4a8.js';
import type { W8A8Config } from '../src/backends/cuda/w8a8.js';
import { BenchArgumentError } from './args.js';

export interface DecodeVariant {
  readonly label: string;
  /** null: the chooser's config as it is. */
  readonly set: { readonly WK: number; readonly STAGES: number; readonly MINB: number; readonly PREW: number } | null;
}

/** `--flag default|WK:STAGES:MINB[:PREW][,…]`; a malformed entry is a BenchArgumentError naming the flag. */
export function decodeVariants(flag: string, text: string): DecodeVariant[] {
  return text.split(',').map((v) => {
    if (v === 'default') return { label: 'default', set: null };
    const parts = v.split(':').map(Number);
    const [WK, STAGES, MINB, PREW = 1] = parts;
    const ok = (parts.length === 3 || parts.length === 4) && [4, 8, 16, 32].includes(WK!) && Number.isInteger(STAGES) && STAGES! >= 0 && STAGES! <= 8
      && Number.isInteger(MINB) && MINB! >= 1 && Number.isInteger(PREW) && PREW >= 1 && PREW <= Math.max(2, STAGES!);
    if (!ok) throw new BenchArgumentError(`--${flag} takes default or WK:STAGES:MINB[:PREW] (WK 4, 8, 16 or 32; STAGES 0-8; MINB ≥ 1; PREW 1..max(2, STAGES)), or a list of them; got '${v}'`);
    return {
      label: `WK${WK} ${STAGES === 0 ? 'registers' : `${STAGES} smem slots`} MINB${MINB}${PREW > 1 ? ` PREW${PREW}` : ''}`,
      // PREW always set (1 where not given), so a variant does not inherit the chooser's
      set: { WK: WK!, STAGES: STAGES!, MINB: MINB!, PREW },
    };
  });
}

/** `config` (W4A8 or W8A8) with the variant applied where it is the decode kernel at MT token halves (default one: M <= 8). */
export function withDecodeVariant<C extends W4A8Config | W8A8Config>(config: C, v: DecodeVariant, MT = 1): C {
  return v.set !== null && config.kind === 'decode' && config.MT === MT ? { ...config, ...v.set } : config;
}
