/**
 * Variants of the W4A8 / W8A8 decode kernels at M <= 8 rows as a bench flag (cuda-sweep, cuda-engine-step):
 * `--decode default,16:2:3,8:4:6,16:0:1:2,8:4:2:4:1,tma32`, each `WK:STAGES:MINB[:PREW[:XREG]]` (k-warps, cp.async slots a warp
 * with 0 for the register pipeline, blocks a SM the registers must allow, chunks a warp loads before its wait, 1 to keep
 * the activations in registers beside the slots), `tma32` / `tma64`
 * (W4A8 only: the TMA wgmma kernel with 32 or 64 tokens a tile instead, set as the chooser sets it, tmaConfig) or
 * `default` (the chooser's own config).
 */
import { tmaConfig, type W4A8Config } from '../src/backends/cuda/w4a8.js';
import type { W8A8Config } from '../src/backends/cuda/w8a8.js';
import { BenchArgumentError } from './args.js';

export interface DecodeVariant {
  readonly label: string;
  /** null: the chooser's config as it is (or, with tmaBT, the TMA kernel). */
  readonly set: { readonly WK: number; readonly STAGES: number; readonly MINB: number; readonly PREW: number; readonly XREG: 0 | 1 } | null;
  /** The TMA kernel's tokens a tile in place of the decode kernel. */
  readonly tmaBT?: 32 | 64;
}

/** The layer a W4A8 config is for, which a TMA variant needs to set its K split. */
export interface VariantShape { readonly m: number; readonly n: number; readonly k: number; readonly sms: number }

/** `--flag default|WK:STAGES:MINB[:PREW[:XREG]][,…]`; a malformed entry is a BenchArgumentError naming the flag. */
export function decodeVariants(flag: string, text: string): DecodeVariant[] {
  return text.split(',').map((v) => {
    if (v === 'default') return { label: 'default', set: null };
    if (v === 'tma32' || v === 'tma64') return { label: `TMA wgmma, ${v.slice(3)} tokens a tile`, set: null, tmaBT: v === 'tma32' ? 32 : 64 };
    const parts = v.split(':').map(Number);
    const [WK, STAGES, MINB, PREW = 1, XREG = 0] = parts;
    const ok = parts.length >= 3 && parts.length <= 5 && (XREG === 0 || (XREG === 1 && STAGES! > 0)) && [4, 8, 16, 32].includes(WK!) && Number.isInteger(STAGES) && STAGES! >= 0 && STAGES! <= 8
      && Number.isInteger(MINB) && MINB! >= 1 && Number.isInteger(PREW) && PREW >= 1 && PREW <= Math.max(2, STAGES!);
    if (!ok) throw new BenchArgumentError(`--${flag} takes default, tma32, tma64 or WK:STAGES:MINB[:PREW[:XREG]] (WK 4, 8, 16 or 32; STAGES 0-8; MINB ≥ 1; PREW 1..max(2, STAGES); XREG 0, or 1 with STAGES > 0), or a list of them; got '${v}'`);
    return {
      label: `WK${WK} ${STAGES === 0 ? 'registers' : `${STAGES} smem slots`} MINB${MINB}${PREW > 1 ? ` PREW${PREW}` : ''}${XREG === 1 ? ' x in registers' : ''}`,
      // PREW and XREG always set (1 and 0 where not given), so a variant does not inherit the chooser's
      set: { WK: WK!, STAGES: STAGES!, MINB: MINB!, PREW, XREG: XREG === 1 ? 1 : 0 },
    };
  });
}

/**
 * `config` (W4A8 or W8A8) with the variant applied where it is the decode kernel at MT token halves (default one: M <= 8);
 * a TMA variant needs the W4A8 layer's `shape`.
 */
export function withDecodeVariant<C extends W4A8Config | W8A8Config>(config: C, v: DecodeVariant, MT = 1, shape?: VariantShape): C {
  if (config.kind !== 'decode' || config.MT !== MT) return config;
  if (v.tmaBT !== undefined) {
    if (shape === undefined) throw new BenchArgumentError(`the ${v.label} variant is for W4A8 layers of a known shape`);
    return tmaConfig(shape.m, shape.n, shape.k, shape.sms, v.tmaBT) as C;
  }
  return v.set !== null ? { ...config, ...v.set } : config;
}
