/**
 * L2 prefetch of the weights a decode step reads next. A decode step alternates bandwidth-bound
 * GEMMs with latency-bound small ops (norms, rope, attention, SwiGLU) during which DRAM sits idle;
 * after each GEMM the engine launches l2_prefetch (engine_ops.cu) for the weights of the GEMM after
 * it, plus `ahead` bytes beyond, so they stream into L2 while the small ops run.
 *
 * The plan is cyclic over a step's GEMM stages s = 0 .. S−1 (a stage: the linears launched at one
 * point, e.g. q, k, v; weights then scales of each): with B[s] the byte offset where stage s starts in
 * that order (each buffer counted rounded down to 16 bytes) and total = B[S], the prefetch issued
 * after stage s covers [B[s+1] + ahead, B[s+2] + ahead) modulo total. Over a step the windows tile
 * the cycle exactly once, so every weight byte is asked for once per step, `ahead` bytes before the
 * stage that reads it would have (with ahead = 0: the whole next stage, right after the one before
 * it is launched). Pieces are (address, bytes) pairs, 16-byte aligned and sized (cp.async.bulk's rule).
 */

/** A device range: the address (16-byte aligned) and its length in bytes. */
export interface Piece {
  readonly address: number;
  readonly bytes: number;
}

export interface PrefetchPlan {
  /** every stage's pieces, one after another: [address, bytes] pairs (the table l2_prefetch reads). */
  readonly table: BigUint64Array;
  /** pieces [first, end) of the table to prefetch after stage s. */
  readonly after: readonly (readonly [first: number, end: number])[];
  /** bytes prefetched per step (the cycle). */
  readonly total: number;
}

/** Plans the windows for `stages` (each a list of device ranges in read order) and `ahead` extra bytes. */
export function planL2Prefetch(stages: readonly (readonly Piece[])[], ahead: number): PrefetchPlan {
  if (!Number.isInteger(ahead) || ahead < 0) throw new RangeError(`prefetch lookahead must be a non-negative integer of bytes, got ${ahead}`);
  const ranges = stages.map((s) => s.map((p) => ({ address: p.address, bytes: p.bytes & ~15 })).filter((p) => p.bytes > 0));
  for (const r of ranges.flat()) if (r.address % 16 !== 0) throw new RangeError(`prefetch ranges must be 16-byte aligned, got address ${r.address}`);
  const starts: number[] = [0];
  for (const s of ranges) starts.push(starts[starts.length - 1]! + s.reduce((t, p) => t + p.bytes, 0));
  const total = starts[ranges.length]!;
  const flat = ranges.flat();
  const at: number[] = [0]; // byte offset of flat[i] in the cycle
  for (const p of flat) at.push(at[at.length - 1]! + p.bytes);
  const S = ranges.length;
  const shift = ahead - (ahead % 16);

  /** Pieces covering [from, to) of one cycle (0 ≤ from ≤ to ≤ total). */
  const cover = (from: number, to: number, out: Piece[]): void => {
    for (let i = 0; i < flat.length && from < to; i++) {
      const lo = Math.max(from, at[i]!), hi = Math.min(to, at[i + 1]!);
      if (lo < hi) out.push({ address: flat[i]!.address + (lo - at[i]!), bytes: hi - lo });
    }
  };
  const pieces: Piece[] = [];
  const after: [number, number][] = [];
  for (let s = 0; s < S; s++) {
    const first = pieces.length;
    if (total > 0) {
      const begin = starts[(s + 1) % S]!, length = starts[((s + 1) % S) + 1]! - begin;
      const lo = (begin + shift) % total;
      const hi = lo + length;
      cover(lo, Math.min(hi, total), pieces);
      if (hi > total) cover(0, hi - total, pieces);
    }
    after.push([first, pieces.length]);
  }
  const table = new BigUint64Array(2 * pieces.length);
  pieces.forEach((p, i) => {
    table[2 * i] = BigInt(p.address);
    table[2 * i + 1] = BigInt(p.bytes);
  });
  return { table, after, total };
}
