/**
 * The decode kernels' shared-memory pipeline (decode_pipeline_async in kernels/decode.cuh; w4a8-decode.cu,
 * w8a8-decode.cu): STAGES cp.async slots a warp instead of two register buffers, and MINB blocks a SM for the
 * register cap. Its dynamic shared memory and defines, checked against the device, for both launchers.
 */
import type { CudaContext } from './context.js';

/**
 * The pipeline's knobs of a decode config: STAGES slots a warp (absent or 0: the register pipeline), MINB blocks a SM,
 * PREW the chunks a warp loads before it waits for the kernel before (absent: 1; up to 2 in registers, STAGES in slots),
 * XREG 1 (with STAGES) the activations kept in registers, one chunk ahead, only weights and scales in the slots
 * (DecodeSlotX in decode.cuh; absent: 0, the rows' k ranges in shared memory).
 */
export interface DecodeSlots {
  readonly STAGES?: number;
  readonly MINB?: number;
  readonly PREW?: number;
  readonly XREG?: 0 | 1;
}

/**
 * decode.cuh's layout: a tile's part of a slot is its chunk's weight bytes (W4 1 KB, W8 2 KB) then SCALE_BYTES of
 * scales; a warp's activation rows are X_PAD bytes longer than its k range.
 */
export const DECODE_SMEM = { W4_TILE: 1024, W8_TILE: 2048, SCALE_BYTES: 64, X_PAD: 64 } as const;

/**
 * Dynamic shared memory of a decode launch at M rows on K (decode_smem in decode.cuh): with STAGES, per warp its
 * k range of the M rows (the most chunks a warp takes, ceil(K/128 / WK), ·128 + X_PAD bytes a row; none with XREG)
 * and STAGES slots of NTW tiles of `tileBytes` + SCALE_BYTES; 0 for the register pipeline.
 */
export function decodeSharedBytes(M: number, K: number, config: DecodeSlots & { readonly WK: number; readonly NTW: number }, tileBytes: number): number {
  const stages = config.STAGES ?? 0;
  if (stages === 0) return 0;
  const rows = config.XREG === 1 ? 0 : M;
  const mostChunks = Math.ceil(K / 128 / config.WK);
  return config.WK * (rows * (mostChunks * 128 + DECODE_SMEM.X_PAD) + stages * config.NTW * (tileBytes + DECODE_SMEM.SCALE_BYTES));
}

/** Static shared memory of a decode launch's cross-warp reduction: red[WK][NTW·MT·4][32] of 4-byte totals (decode_reduce). */
const decodeReductionBytes = (c: { readonly WK: number; readonly NTW: number; readonly MT: number }): number => c.WK * c.NTW * c.MT * 4 * 32 * 4;

/**
 * The dynamic shared memory, the static reduction's bytes and the extra defines of a decode launch (none for the default register pipeline, so
 * its kernels keep their cache keys); a bad STAGES, MINB, PREW or XREG, or more shared memory than the device gives a block
 * (with the static reduction, decodeReductionBytes), is a RangeError naming it.
 */
export function decodeSlotsLaunch(ctx: CudaContext, M: number, K: number, config: DecodeSlots & { readonly WK: number; readonly NTW: number; readonly MT: number },
  tileBytes: number): { smem: number; reductionBytes: number; defines: Record<string, number> } {
  const reductionBytes = decodeReductionBytes(config);
  const stages = config.STAGES ?? 0, minBlocks = config.MINB ?? 1;
  if (!Number.isInteger(stages) || stages < 0 || stages > 8) throw new RangeError(`decode STAGES must be an integer in 0..8, got ${stages}`);
  if (!Number.isInteger(minBlocks) || minBlocks < 1 || minBlocks * config.WK * 32 > 2048) throw new RangeError(`decode MINB must be an integer in 1..${2048 / (config.WK * 32)} at WK=${config.WK}, got ${minBlocks}`);
  const early = config.PREW ?? 1, mostEarly = Math.max(2, stages);
  if (!Number.isInteger(early) || early < 1 || early > mostEarly) throw new RangeError(`decode PREW must be an integer in 1..${mostEarly} with STAGES=${stages}, got ${early}`);
  const xreg = config.XREG ?? 0;
  if (xreg !== 0 && xreg !== 1) throw new RangeError(`decode XREG must be 0 or 1, got ${String(xreg)}`);
  if (xreg === 1 && stages === 0) throw new RangeError('decode XREG=1 keeps the activations in registers beside STAGES slots of weights: give STAGES > 0');
  const smem = decodeSharedBytes(M, K, config, tileBytes);
  if (smem + reductionBytes > ctx.info.maxSharedPerBlockOptin) throw new RangeError(`decode STAGES=${stages} at M=${M}, K=${K}, WK=${config.WK} needs ${smem + reductionBytes} B of shared memory, the device allows ${ctx.info.maxSharedPerBlockOptin}`);
  return { smem, reductionBytes, defines: { ...(stages > 0 ? { STAGES: stages } : {}), ...(minBlocks > 1 ? { MINB: minBlocks } : {}), ...(early > 1 ? { PREW: early } : {}), ...(xreg === 1 ? { XREG: 1 } : {}) } };
}
