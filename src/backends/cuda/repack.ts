/**
 * Offline repacking of quantized weights and scales into the layouts the CUDA kernels read
 * (documented in kernels/w4a8-decode.cu):
 *   weights: wq[tile][step][lane] 16 bytes, tile = n/16, step = k/64; word w of a lane holds
 *            row gid + (w&1)*8, mma step ks = w>>1, byte j = q[k0+tig*16+ks*8+j] | q[...+4] << 4
 *   scales:  sc[tile][g][16]; float scales are divided by 16 (the kernels see 16*q).
 * Rows are padded with zeros to a multiple of ROW_PAD (the largest block tile).
 */
import { INT32_LIMIT, maxChannelBound } from '../../quant/overflow.js';
import type { QuantizedLinear } from '../../quant/types.js';

export const ROW_PAD = 128;

export function paddedRows(n: number): number {
  return Math.ceil(n / ROW_PAD) * ROW_PAD;
}

/** Checks the shape constraints shared by the W4A8 kernels; throws RangeError naming the problem. */
export function checkW4A8Shape(n: number, k: number, groupSize: number): void {
  if (k % 128 !== 0) throw new RangeError(`CUDA W4A8 kernels need K % 128 == 0 (K = ${k})`);
  if (groupSize % 128 !== 0 || k % groupSize !== 0) {
    throw new RangeError(`CUDA W4A8 kernels need a group size that is a multiple of 128 dividing K (G = ${groupSize}, K = ${k})`);
  }
  if (n <= 0) throw new RangeError(`bad N = ${n}`);
}

/** Repacks unpacked int4 weights q [N, K] (values in [-8, 7]) into the fragment layout. */
export function repackW4(q: Int8Array, n: number, k: number): Uint8Array {
  const nPad = paddedRows(n);
  const steps = k / 64;
  const out = new Uint8Array((nPad * k) / 2);
  const tiles = Math.ceil(n / 16);
  for (let t = 0; t < tiles; t++) {
    for (let s = 0; s < steps; s++) {
      for (let lane = 0; lane < 32; lane++) {
        const gid = lane >> 2;
        const tig = lane & 3;
        const base = ((t * steps + s) * 32 + lane) * 16;
        for (let w = 0; w < 4; w++) {
          const r = t * 16 + gid + (w & 1) * 8;
          if (r >= n) continue;
          const k0 = r * k + s * 64 + tig * 16 + (w >> 1) * 8;
          for (let j = 0; j < 4; j++) {
            out[base + w * 4 + j] = (q[k0 + j]! & 0x0f) | ((q[k0 + 4 + j]! & 0x0f) << 4);
          }
        }
      }
    }
  }
  return out;
}

/** The byte pair (q[i], q[i+4]) for i = 0..3 of 8 consecutive int4 values held as nibbles 0..7 of `src`: nibble 2i ← i, 2i+1 ← 4+i. */
function interleaveNibbles(src: number): number {
  let lo = src & 0xffff, hi = src >>> 16; // spread each half's 4 nibbles to every other nibble
  lo = (lo | (lo << 8)) & 0x00ff00ff;
  hi = (hi | (hi << 8)) & 0x00ff00ff;
  return ((lo | (lo << 4)) & 0x0f0f0f0f) | (((hi | (hi << 4)) & 0x0f0f0f0f) << 4);
}

/** What repackPackedW4Rows reads and writes: the packed words [n, k/8] and the layout's words (paddedRows(n)·k/8, zero-filled). */
export interface RepackW4Args {
  readonly [name: string]: Uint32Array | number;
  readonly src: Uint32Array;
  readonly out: Uint32Array;
  readonly n: number;
  readonly k: number;
}

/**
 * Rows [r0, r1) of repackPackedW4: each 4-byte word of the layout is the word of 8 consecutive values at
 * its k0 with its nibbles interleaved, so this moves words, not values (a row kernel: the CPU pool may split rows).
 */
export function repackPackedW4Rows(a: RepackW4Args, r0: number, r1: number): void {
  const { src, out, k } = a;
  const steps = k / 64, rowWords = k / 8;
  for (let r = r0; r < r1; r++) {
    // row r is word w&1 (r%16 ≥ 8) of lanes gid = r%8 in tile r/16
    const t = r >> 4, gid = r & 7, half = (r >> 3) & 1;
    for (let s = 0; s < steps; s++) {
      const at = r * rowWords + s * 8;
      for (let tig = 0; tig < 4; tig++) {
        const base = ((t * steps + s) * 32 + gid * 4 + tig) * 4;
        out[base + half] = interleaveNibbles(src[at + tig * 2]!); // ks 0: k0 = s·64 + tig·16
        out[base + 2 + half] = interleaveNibbles(src[at + tig * 2 + 1]!); // ks 1: k0 + 8
      }
    }
  }
}

/** The arguments of repackPackedW4Rows for a packed [n, k] layer, the output in `out` (a fresh array when absent). */
export function repackW4Args(packed: Uint8Array, n: number, k: number, out: Uint32Array<ArrayBufferLike> = new Uint32Array((paddedRows(n) * k) / 8)): RepackW4Args {
  if (k % 64 !== 0) throw new RangeError(`repackPackedW4 needs K % 64 == 0 (K = ${k})`);
  if (packed.length < (n * k) / 2) throw new RangeError(`repackPackedW4: ${packed.length} packed bytes for [${n}, ${k}]`);
  if (out.length < (paddedRows(n) * k) / 8) throw new RangeError(`repackPackedW4: an output of ${out.length} words for [${n}, ${k}]`);
  // the source's words, copied once when its offset is not 4-aligned
  const src = packed.byteOffset % 4 === 0 ? new Uint32Array(packed.buffer, packed.byteOffset, (n * k) / 8) : new Uint32Array(packed.slice(0, (n * k) / 2).buffer);
  return { src, out, n, k };
}

/**
 * repackW4 from the packed int4 format (quant/int4-pack.ts: [N, K] row-major, two values a byte,
 * the even index in the low nibble) without unpacking, on this thread. The same bytes as
 * repackW4(unpackWeights(...)) (test/backends/cuda/repack.test.ts).
 */
export function repackPackedW4(packed: Uint8Array, n: number, k: number): Uint8Array {
  const args = repackW4Args(packed, n, k);
  repackPackedW4Rows(args, 0, n);
  return new Uint8Array(args.out.buffer);
}

/** Repacks per-group scales [N, NG] into [tile][g][16]; `divide` (16 for float scales) is applied exactly. */
export function repackScales<T extends Int32Array | Float32Array>(scales: T, n: number, groups: number, divide = 1): T {
  const nPad = paddedRows(n);
  const out = (scales instanceof Int32Array ? new Int32Array(nPad * groups) : new Float32Array(nPad * groups)) as T;
  for (let r = 0; r < n; r++) {
    const t = r >> 4;
    for (let g = 0; g < groups; g++) out[(t * groups + g) * 16 + (r & 15)] = scales[r * groups + g]! / divide;
  }
  return out;
}

/** How the packed weights become the layout: repackPackedW4 on this thread, or split over the CPU pool (cpu/repack-pool.ts). */
export type RepackW4 = (packed: Uint8Array, n: number, k: number) => Uint8Array;

/** Everything the host prepares for one W4A8 layer, before upload. */
export interface RepackedW4A8 {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  readonly scale: 'int' | 'float';
  readonly weights: Uint8Array;
  readonly scales: Int32Array | Float32Array;
  /** 2^-b (IS with shift), 2^-(b+4) (IS without shift) or 1 (FS). */
  readonly post: number;
  readonly isShift: boolean;
}

/**
 * Repacks a 4-bit QuantizedLinear. `scale` picks the epilogue: 'int' needs intScales; 'float'
 * uses `scales` (for an integer-scale layer those are S/α, so both paths compute the same layer).
 */
export function repackW4A8(w: QuantizedLinear, scale: 'int' | 'float' = w.scale, repackWeights: RepackW4 = repackPackedW4): RepackedW4A8 {
  if (w.wBits !== 4) throw new RangeError(`repackW4A8 needs 4-bit weights (got ${w.wBits})`);
  checkW4A8Shape(w.n, w.k, w.groupSize);
  const groups = w.k / w.groupSize;
  const weights = repackWeights(w.packed, w.n, w.k);
  if (scale === 'int') {
    if (!w.intScales || w.alphaLog2 === undefined) throw new RangeError('integer-scale epilogue needs intScales and alphaLog2');
    return {
      n: w.n, k: w.k, groupSize: w.groupSize, scale, weights,
      scales: repackScales(w.intScales, w.n, groups),
      ...integerScaleEpilogue(w.intScales, w.n, groups, w.groupSize, w.alphaLog2),
    };
  }
  return { n: w.n, k: w.k, groupSize: w.groupSize, scale, weights, scales: repackScales(w.scales, w.n, groups, 16), post: 1, isShift: false };
}

/**
 * The integer-scale epilogue of a W4 layer with integer scales S [n, groups] and α = 2^alphaLog2: the
 * kernels pre-multiply by 16 unless that could overflow (the bound of quant/overflow.ts, 16 times), and
 * the output factor removes α (and the 16 when pre-multiplied).
 */
export function integerScaleEpilogue(intScales: ArrayLike<number>, n: number, groups: number, groupSize: number, alphaLog2: number): { post: number; isShift: boolean } {
  const isShift = 16 * maxChannelBound(intScales, n, groups, groupSize, 4).maxBound >= INT32_LIMIT;
  return { post: 2 ** -(alphaLog2 + (isShift ? 0 : 4)), isShift };
}

/**
 * Host copy of act_quant's fragment order (w4a8-wgmma-rs.cu): inside each 64-k block, the 4-byte
 * unit p = tig·4 + ks·2 + h of natural order moves to unit ks·8 + h·4 + tig. K % 64 == 0.
 */
export function toFragmentOrder(xq: Int8Array, m: number, k: number): Int8Array {
  if (k % 64 !== 0) throw new RangeError(`fragment order needs K % 64 == 0 (K = ${k})`);
  const out = new Int8Array(m * k);
  for (let row = 0; row < m; row++) {
    for (let u = 0; u < k / 4; u++) {
      const p = u & 15;
      const dst = (u & ~15) | (((p >> 1) & 1) << 3) | ((p & 1) << 2) | (p >> 2);
      for (let j = 0; j < 4; j++) out[row * k + dst * 4 + j] = xq[row * k + u * 4 + j]!;
    }
  }
  return out;
}
