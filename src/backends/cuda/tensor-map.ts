/**
 * TMA descriptors (CUtensorMap) for the Hopper kernels' cp.async.bulk.tensor loads, encoded by the
 * driver (cuTensorMapEncodeTiled) and uploaded to device memory (cuMemAlloc is 256-byte aligned); the
 * kernel takes the map's global address (PTX accepts a tensor map in .param, .const or .global space).
 */
import koffi from 'koffi';
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';

/** CUtensorMap is 128 opaque bytes, 64-byte aligned. */
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
 * Returns the map in a new device buffer (the caller frees it).
 */
export function tensorMapU8(ctx: CudaContext, buffer: DeviceBuffer, t: ByteTensor): DeviceBuffer {
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
    return ctx.upload(new Uint8Array(koffi.view(raw as never, MAP_BYTES + MAP_ALIGN), pad, MAP_BYTES).slice());
  } finally {
    koffi.free(raw as never);
  }
}

/** Whether this driver can encode tensor maps (the TMA kernels need it). */
export function hasTensorMaps(ctx: CudaContext): boolean {
  return ctx.api.fn.cuTensorMapEncodeTiled !== undefined;
}

/**
 * Maps a context keeps before it looks for ones to free; after a look, twice what is left (so a context
 * whose live buffers need more maps pays for the look once per doubling, not once per map).
 */
const SWEEP_AT = 1024;

interface CachedMap {
  readonly map: DeviceBuffer;
  /** The buffer the map was last asked for over: the map may be freed once this memory is. */
  described: DeviceBuffer;
}

interface MapCache {
  readonly entries: Map<string, CachedMap>;
  sweepAt: number;
}

const caches = new WeakMap<CudaContext, MapCache>();

/**
 * tensorMapU8, memoized per context by the map's content (address, size, dims, strides, box, swizzle):
 * a map describes memory, not a buffer object, so an entry stays right for any buffer later
 * allocated at the same address.
 *
 * A map lives as long as the memory it describes: a kernel, a recorded pass or a captured CUDA graph
 * holds the map's address, and nothing says when the last of them is gone, but any of them that
 * still ran after that memory was freed would read freed memory anyway. So a map is freed only once
 * the buffer it was last asked for has been freed (checked when the cache grows past SWEEP_AT, after
 * synchronizing the context, since a queued kernel may still read it); a map is never freed for being
 * old, which could let a graph captured early name a map since freed and reused.
 */
export function cachedTensorMapU8(ctx: CudaContext, buffer: DeviceBuffer, t: ByteTensor): DeviceBuffer {
  let cache = caches.get(ctx);
  if (!cache) caches.set(ctx, (cache = { entries: new Map(), sweepAt: SWEEP_AT }));
  const key = `${buffer.address}|${buffer.bytes}|${t.dims}|${t.strides}|${t.box}|${t.swizzle}`;
  const hit = cache.entries.get(key);
  if (hit) {
    hit.described = buffer;
    return hit.map;
  }
  const map = tensorMapU8(ctx, buffer, t);
  cache.entries.set(key, { map, described: buffer });
  if (cache.entries.size > cache.sweepAt) sweepTensorMaps(ctx, cache);
  return map;
}

/** Frees the maps whose memory has been freed; the next look comes at twice the maps left (at least SWEEP_AT). */
function sweepTensorMaps(ctx: CudaContext, cache: MapCache): void {
  const dead = [...cache.entries].filter(([, e]) => e.described.isFreed);
  if (dead.length > 0) ctx.synchronize();
  for (const [key, e] of dead) {
    e.map.free();
    cache.entries.delete(key);
  }
  cache.sweepAt = Math.max(SWEEP_AT, 2 * cache.entries.size);
}

