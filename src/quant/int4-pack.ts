/**
 * The one packed format of a quantized layer's integer weights, in memory and on disk (like
 * ggml's block structs: defined here once, with its reference pack/unpack beside it):
 *
 *   W4: row-major [N, K/2] bytes; byte (n, j) holds elements k = 2j (low nibble, bits 0-3)
 *       and k = 2j + 1 (high nibble, bits 4-7) of row n. Nibbles are 4-bit two's complement, so
 *       -8 → 0x8, -1 → 0xF, 7 → 0x7. K must be even.
 *   W8: row-major [N, K] bytes, each the int8 value (two's complement).
 *
 * A layer is held in this form only (QuantizedLinear.packed): half a byte per 4-bit weight. The
 * CPU's WASM kernel reads it in place (16 bytes = 32 W4 or 16 W8 inputs, see
 * int-linear-wasm-module.ts); the GPU kernels repack it once at upload.
 */
import { InputError } from '../errors.js';
import { sharedInt8, sharedUint8 } from '../tensor/shared.js';
import type { QuantizedLinear, WeightBits } from './types.js';

function checkShape(n: number, k: number, what: string): void {
  if (!Number.isInteger(n) || !Number.isInteger(k) || n < 0 || k < 0) {
    throw new InputError(`${what}: bad shape [${n}, ${k}]`);
  }
  if (k % 2 !== 0) throw new InputError(`${what}: K = ${k} is odd; 4-bit packing needs an even K`);
}

/** Packs int4 values q [n, k] (each in [-8, 7]) into bytes [n, k/2]. */
export function packInt4(q: Int8Array, n: number, k: number): Uint8Array {
  checkShape(n, k, 'packInt4');
  if (q.length !== n * k) throw new InputError(`packInt4: ${q.length} values for shape [${n}, ${k}]`);
  const out = sharedUint8((n * k) / 2);
  for (let i = 0, j = 0; i < q.length; i += 2, j++) {
    const lo = q[i]!;
    const hi = q[i + 1]!;
    if (lo < -8 || lo > 7 || hi < -8 || hi > 7) {
      const bad = lo < -8 || lo > 7 ? i : i + 1;
      throw new InputError(`packInt4: value ${q[bad]} at row ${Math.floor(bad / k)}, column ${bad % k} is outside [-8, 7]`);
    }
    out[j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
  }
  return out;
}

/** Unpacks bytes [n, k/2] into int4 values [n, k] (into out when given). */
export function unpackInt4(packed: Uint8Array, n: number, k: number, out?: Int8Array): Int8Array {
  checkShape(n, k, 'unpackInt4');
  if (packed.length !== (n * k) / 2) {
    throw new InputError(`unpackInt4: ${packed.length} bytes for shape [${n}, ${k}], need ${(n * k) / 2}`);
  }
  const q = out ?? new Int8Array(n * k);
  for (let j = 0, i = 0; j < packed.length; j++, i += 2) {
    const b = packed[j]!;
    q[i] = ((b & 0x0f) << 28) >> 28; // sign-extend the low nibble
    q[i + 1] = (b << 24) >> 28; // sign-extend the high nibble
  }
  return q;
}

/** q [n, k] (in the clamp range of `bits`) in the packed format, in shared memory (the arena inside withArenaAllocation). */
export function packWeights(q: Int8Array, n: number, k: number, bits: WeightBits): Uint8Array {
  if (bits === 4) return packInt4(q, n, k);
  if (q.length !== n * k) throw new InputError(`packWeights: ${q.length} values for shape [${n}, ${k}]`);
  const out = sharedUint8(n * k);
  out.set(new Uint8Array(q.buffer, q.byteOffset, n * k));
  return out;
}

/** Bytes the packed weights of an [n, k] layer take. */
export function packedBytes(n: number, k: number, bits: WeightBits): number {
  return bits === 4 ? (n * k) / 2 : n * k;
}

/** The layer's integer weights unpacked to int8 [N, K] (a fresh array, for references and repacks). */
export function unpackWeights(w: Pick<QuantizedLinear, 'packed' | 'n' | 'k' | 'wBits'>): Int8Array {
  if (w.wBits === 4) return unpackInt4(w.packed, w.n, w.k, sharedInt8(w.n * w.k));
  const q = sharedInt8(w.n * w.k);
  q.set(new Int8Array(w.packed.buffer, w.packed.byteOffset, w.n * w.k));
  return q;
}

/** Row n of the layer's integer weights unpacked into out[0 .. K) (int8). */
export function unpackRow(w: Pick<QuantizedLinear, 'packed' | 'k' | 'wBits'>, n: number, out: Int8Array): Int8Array {
  const K = w.k;
  if (w.wBits === 4) return unpackInt4(w.packed.subarray((n * K) / 2, ((n + 1) * K) / 2), 1, K, out.subarray(0, K));
  out.set(new Int8Array(w.packed.buffer, w.packed.byteOffset + n * K, K));
  return out;
}

/** The int8 weight of row n, column k (4-bit: sign-extended nibble). */
export function weightAt(w: Pick<QuantizedLinear, 'packed' | 'k' | 'wBits'>, n: number, k: number): number {
  if (w.wBits === 8) return (w.packed[n * w.k + k]! << 24) >> 24;
  const b = w.packed[(n * w.k + k) >> 1]!;
  return k % 2 === 0 ? ((b & 0x0f) << 28) >> 28 : (b << 24) >> 28;
}
