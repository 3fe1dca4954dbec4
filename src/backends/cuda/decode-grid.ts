/**
 * Launch geometry of the decode-shaped kernels (kernels/w4a8-decode.cu, w8a8-decode.cu): which blocks
 * a launch has, in the one-block-per-unit form or the persistent one (PERSIST=1).
 */

/** The decode kernels' tiling knobs that decide the grid. */
export interface DecodeTiling {
  readonly NTW: number;
  readonly WK: number;
  /** the persistent form: this many blocks per SM, each walking its units of NTW tiles */
  readonly blocksPerSm?: number;
}

/**
 * The grid of a decode-kernel launch: one block per unit of NTW 16-row tiles, or with `blocksPerSm`
 * (the persistent form) min(units, blocksPerSm · sms) blocks walking the units. Shared by the W4A8 and
 * W8A8 decode launchers.
 */
export function decodeGrid(config: DecodeTiling, N: number, K: number, sms: number): { units: number; blocks: number; persistent: boolean } {
  const units = Math.ceil(Math.ceil(N / 16) / config.NTW);
  const per = config.blocksPerSm;
  if (per === undefined) return { units, blocks: units, persistent: false };
  if (!(Number.isInteger(per) && per >= 1)) throw new RangeError(`decode blocksPerSm must be a positive integer, got ${per}`);
  if (K / 128 < config.WK) throw new RangeError(`the persistent decode kernel needs K/128 >= WK (every warp a chunk of each unit): K=${K}, WK=${config.WK}`);
  return { units, blocks: Math.min(units, per * sms), persistent: true };
}

