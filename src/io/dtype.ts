/**
 * safetensors dtypes: their names, element sizes, and hand-written f16/bf16/f64 → f32 conversion
 * loops. Everything on disk is little-endian; so is every host Node runs on that we support.
 */

/** Every dtype the reader accepts (as raw bytes); float conversion only for FLOAT_DTYPES. */
export const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'I16', 'I32', 'I64', 'BOOL'] as const;
export type Dtype = (typeof DTYPES)[number];

/** dtypes readFloat32 converts to float32. */
export const FLOAT_DTYPES: readonly Dtype[] = ['F32', 'F16', 'BF16', 'F64'];

const BYTES: Record<Dtype, number> = {
  F32: 4, F16: 2, BF16: 2, F64: 8, I8: 1, U8: 1, I16: 2, I32: 4, I64: 8, BOOL: 1,
};

export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export function dtypeBytes(d: Dtype): number {
  return BYTES[d];
}

let f16Table: Float32Array | null = null;

/** All 65536 half-precision values as float32 (exact; built once, 256 KiB). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = halfBitsToNumber(h);
  f16Table = t;
  return t;
}

/** One IEEE binary16 bit pattern as a number (exact). */
export function halfBitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** out[outOffset + i] = f16(src[i]) for every i. */
export function f16ToF32(src: Uint16Array, out: Float32Array, outOffset = 0): void {
  const t = halfTable();
  const n = src.length;
  for (let i = 0; i < n; i++) out[outOffset + i] = t[src[i]!]!;
}

/** out[outOffset + i] = bf16(src[i]): the bf16 bits are the top half of the float32 bits. */
export function bf16ToF32(src: Uint16Array, out: Float32Array, outOffset = 0): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset + outOffset * 4, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
}

/** out[outOffset + i] = float32(src[i]) (round to nearest). */
export function f64ToF32(src: Float64Array, out: Float32Array, outOffset = 0): void {
  const n = src.length;
  for (let i = 0; i < n; i++) out[outOffset + i] = src[i]!;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 → IEEE binary16 bits, round to nearest even (for writing test fixtures and f16 checkpoints). */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) { r = 0; e++; if (e >= 31) return sign | 0x7c00; }
  }
  return sign | (e << 10) | r;
}

/** float32 → bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff)) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** |x| bits from the smallest normal binary16 (2^-14) up to 65520 (exclusive: it rounds to infinity). */
const F16_NORMAL_LO = 0x38800000, F16_NORMAL_HI = 0x477ff000;

/**
 * A whole float32 array as f16 bits, as f32ToF16Bits rounds each value. Values that land on a
 * normal binary16 (nearly all weights) take one integer expression: add the round-to-even bias
 * below bit 13, shift, rebias the exponent (a carry out of the mantissa steps the exponent, as it
 * should); the rest (zero, subnormals, overflow, NaN) go through f32ToF16Bits.
 */
export function f32ToF16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  if (!(src instanceof Float32Array)) {
    for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]!);
    return out;
  }
  f32ToF16Range(src, out, 0, src.length);
  return out;
}

/** out[i] = f32ToF16Bits(src[i]) for i in [start, end) (a row kernel: the CPU pool splits a long array by it). */
export function f32ToF16Range(src: Float32Array, out: Uint16Array, start: number, end: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = start; i < end; i++) {
    const b = bits[i]!;
    const a = b & 0x7fffffff;
    out[i] = a >= F16_NORMAL_LO && a < F16_NORMAL_HI
      ? ((b >>> 16) & 0x8000) | (((a + 0xfff + ((a >>> 13) & 1)) >>> 13) - (112 << 10))
      : f32ToF16Bits(src[i]!);
  }
}

/** A whole float32 array as bf16 bits. */
export function f32ToBf16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]!);
  return out;
}
