/**
 * 4-bit weight packing for checkpoints and GPU upload.
 *
 * Layout: row-major [N, K/2] bytes; byte (n, j) holds elements k = 2j (low nibble, bits 0-3)
 * and k = 2j + 1 (high nibble, bits 4-7) of row n. Nibbles are 4-bit two's complement, so
 * -8 → 0x8, -1 → 0xF, 7 → 0x7. K must be even.
 */
import { InputError } from '../errors.js';

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
  const out = new Uint8Array((n * k) / 2);
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
