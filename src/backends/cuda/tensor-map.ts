/**
 * TMA descriptors (CUtensorMap) for the Hopper kernels' cp.async.bulk.tensor loads and stores, encoded by
 * the driver (cuTensorMapEncodeTiled) on the host and passed to the kernel by value, as a
 * `const __grid_constant__ TmaMap` parameter (128 bytes, 64-byte aligned): the launch copies it, and a
 * captured CUDA graph keeps its own copy, so a map has no lifetime of its own to manage.
 */
import koffi from 'koffi';
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import type { KernelStruct } from './program.js';

/** CUtensorMap is 128 opaque bytes, 64-byte aligned (the encoder writes into aligned host memory; the kernel's parameter is aligned by ptxas). */
const MAP_BYTES = 128;
const MAP_ALIGN = 64;

/**
 * Shared-memory layout of a box: dense, or swizzled with span S = 32, 64 or 128 bytes (the box is at
 * most S wide; 16-byte chunk c at byte address A is stored at chunk c ^ ((A / 128) mod S/16), the
 * 128-byte one being the K-major wgmma operand layout).
 */
export type TmaSwizzle = 'none' | 'sw32' | 'sw64' | 'sw128';
const SWIZZLE_CODE: Record<TmaSwizzle, number> = { none: 0 /* CU_TENSOR_MAP_SWIZZLE_NONE */, sw32: 1 /* CU_TENSOR_MAP_SWIZZLE_32B */, sw64: 2 /* CU_TENSOR_MAP_SWIZZLE_64B */, sw128: 3 /* CU_TENSOR_MAP_SWIZZLE_128B */ };

export interface ByteTensor {
  /** Extent of each dimension, innermost first; dimension 0 is in bytes and contiguous. */
  readonly dims: readonly number[];
  /** Byte stride of dimensions 1.. (multiples of 16). */
  readonly strides: readonly number[];
  /** Box loaded by one copy, innermost first (≤ 256 per dimension; dimension 0 a multiple of 16 bytes). */
  readonly box: readonly number[];
  readonly swizzle: TmaSwizzle;
}

/**
 * A map over the uint8 tensor `t` at `buffer`; elements past the end of any dimension read as zeros.
 * Returns the map as a kernel argument (by value).
 */
export function tensorMapU8(ctx: CudaContext, buffer: DeviceBuffer, t: ByteTensor): KernelStruct {
  const encode = ctx.api.fn.cuTensorMapEncodeTiled;
  if (!encode) throw new RangeError('this CUDA driver has no cuTensorMapEncodeTiled (needs CUDA 12 or newer)');
  const rank = t.dims.length;
  if (rank < 1 || rank > 5 || t.strides.length !== rank - 1 || t.box.length !== rank) throw new RangeError(`tensor map needs 1-5 dims with rank-1 strides and a box per dim, got dims ${t.dims} strides ${t.strides} box ${t.box}`);
  if (t.strides.some((s) => s % 16 !== 0)) throw new RangeError(`TMA strides must be multiples of 16 bytes, got ${t.strides}`);
  if ((t.box[0] ?? 0) % 16 !== 0 || t.box.some((b) => b < 1 || b > 256)) throw new RangeError(`TMA box ${t.box} must be 1-256 per dim with a multiple of 16 bytes innermost`);
  const span = { none: Infinity, sw32: 32, sw64: 64, sw128: 128 }[t.swizzle];
  if ((t.box[0] ?? 0) > span) throw new RangeError(`the ${t.swizzle} swizzle takes boxes at most ${span} bytes wide, got ${t.box[0]}`);
  const last = t.dims.reduce((end, d, i) => end + (d - 1) * (i === 0 ? 1 : (t.strides[i - 1] ?? 0)), 1);
  if (last > buffer.bytes) throw new RangeError(`tensor map dims ${t.dims} strides ${t.strides} reach byte ${last} of a ${buffer.bytes} B buffer`);
  const raw = koffi.alloc('uint8_t', MAP_BYTES + MAP_ALIGN) as unknown as bigint;
  try {
    const base = koffi.address(raw);
    const pad = Number((BigInt(MAP_ALIGN) - (base % BigInt(MAP_ALIGN))) % BigInt(MAP_ALIGN));
    const code = encode(
      base + BigInt(pad),
      0 /* CU_TENSOR_MAP_DATA_TYPE_UINT8 */,
      rank,
      BigInt(buffer.address),
      new BigUint64Array(t.dims.map(BigInt)),
      new BigUint64Array(t.strides.map(BigInt)),
      new Uint32Array(t.box),
      new Uint32Array(rank).fill(1),
      0 /* CU_TENSOR_MAP_INTERLEAVE_NONE */,
      SWIZZLE_CODE[t.swizzle],
      3 /* CU_TENSOR_MAP_L2_PROMOTION_L2_256B */,
      0 /* CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE: zeros */,
    ) as number;
    ctx.api.check(`cuTensorMapEncodeTiled(dims ${t.dims}, strides ${t.strides}, box ${t.box})`, code);
    return { struct: new Uint8Array(koffi.view(raw as never, MAP_BYTES + MAP_ALIGN), pad, MAP_BYTES).slice() };
  } finally {
    koffi.free(raw as never);
  }
}

/** Whether this driver can encode tensor maps and place them among a kernel's parameters (the TMA kernels need both). */
export function hasTensorMaps(ctx: CudaContext): boolean {
  return ctx.api.fn.cuTensorMapEncodeTiled !== undefined && ctx.api.fn.cuFuncGetParamInfo !== undefined;
}

/** Maps a context memoizes; past this the least recently asked for is dropped (re-encoded if asked again). */
const MEMO_MAPS = 1024;

const memos = new WeakMap<CudaContext, Map<string, KernelStruct>>();

/**
 * tensorMapU8, memoized per context by the map's content (address, size, dims, strides, box, swizzle), so a
 * launch repeated over the same memory does not call the encoder again. A map is passed by value, so
 * dropping one from the memo never affects a launch or graph that used it.
 */
export function cachedTensorMapU8(ctx: CudaContext, buffer: DeviceBuffer, t: ByteTensor): KernelStruct {
  let memo = memos.get(ctx);
  if (!memo) memos.set(ctx, (memo = new Map()));
  const key = `${buffer.address}|${buffer.bytes}|${t.dims}|${t.strides}|${t.box}|${t.swizzle}`;
  let map = memo.get(key);
  if (map) memo.delete(key); // re-inserted below: the Map's order is recency
  else map = tensorMapU8(ctx, buffer, t);
  memo.set(key, map);
  if (memo.size > MEMO_MAPS) memo.delete(memo.keys().next().value!);
  return map;
}
