/**
 * Tensor maps (tensor-map.ts) without a GPU (the driver's encoder is a stub that writes what it was asked into the
 * map's bytes): a map is a 128-byte kernel argument passed by value, memoized by what it
 * describes, the memo bounded; and packKernelArguments (program.ts) places such a struct where the kernel's compiled
 * parameter layout puts its `.param .align 64 .b8 name[128]` (and refuses to guess it without the layout).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import koffi from 'koffi';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import type { DriverApi } from '../../../src/backends/cuda/driver.js';
import { packKernelArguments } from '../../../src/backends/cuda/program.js';
import { cachedTensorMapU8, type ByteTensor } from '../../../src/backends/cuda/tensor-map.js';

/** A context whose encoder writes the global address and the first dimension into the map and counts its calls. */
function stubContext(): { ctx: CudaContext; encodes: () => number } {
  let encodes = 0;
  const encode = (map: bigint, _type: number, _rank: number, address: bigint, dims: BigUint64Array): number => {
    encodes++;
    koffi.encode(map as never, 0, 'uint64_t', address);
    koffi.encode(map as never, 8, 'uint64_t', dims[1] ?? 0n);
    return 0;
  };
  const api = { fn: { cuMemFree: () => 0, cuTensorMapEncodeTiled: encode }, check: (call: string, code: number) => assert.equal(code, 0, call) } as unknown as DriverApi;
  return { ctx: { api } as unknown as CudaContext, encodes: () => encodes };
}

/** A map over the first `rows` rows of 256-byte rows. */
const rowsMap = (rows: number): ByteTensor => ({ dims: [256, rows], strides: [256], box: [128, 32], swizzle: 'sw128' });
const fields = (bytes: Uint8Array): [bigint, bigint] => {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [v.getBigUint64(0, true), v.getBigUint64(8, true)];
};

test('tensor maps: 128 bytes by value, holding what the encoder wrote', () => {
  const { ctx } = stubContext();
  const map = cachedTensorMapU8(ctx, new DeviceBuffer(ctx.api, 1 << 20, 256 * 4096), rowsMap(64));
  assert.equal(map.struct.byteLength, 128);
  assert.deepEqual(fields(map.struct), [1n << 20n, 64n], 'the encoded bytes, copied out of the aligned scratch');
});

test('tensor maps: memoized by the memory and shape they describe, the memo bounded', () => {
  const { ctx, encodes } = stubContext();
  const a = new DeviceBuffer(ctx.api, 1 << 20, 256 * 4096);
  const first = cachedTensorMapU8(ctx, a, rowsMap(64));
  assert.equal(cachedTensorMapU8(ctx, a, rowsMap(64)), first, 'the same map for the same request');
  assert.equal(cachedTensorMapU8(ctx, new DeviceBuffer(ctx.api, 1 << 20, 256 * 4096), rowsMap(64)), first, 'and for another buffer at the same memory');
  assert.notEqual(cachedTensorMapU8(ctx, a, rowsMap(65)), first, 'other dims, another map');
  assert.equal(encodes(), 2);
  for (let rows = 1; rows <= 3000; rows++) cachedTensorMapU8(ctx, a, rowsMap(rows));
  const before = encodes();
  const again = cachedTensorMapU8(ctx, a, rowsMap(64)); // dropped long ago: encoded anew, the same bytes
  assert.equal(encodes(), before + 1, 'the least recently asked for were dropped');
  assert.deepEqual(fields(again.struct), fields(first.struct));
  cachedTensorMapU8(ctx, a, rowsMap(3000));
  assert.equal(encodes(), before + 1, 'the most recent kept');
});

test('packKernelArguments: at the kernel\'s own offsets (w4a8_wgmma_tma\'s, as ptxas lays them out for sm_90), sizes checked', () => {
  const map = (fill: number) => ({ struct: new Uint8Array(128).fill(fill) });
  // w4a8_wgmma_tma(TmaMap x, w, s, float* a, out_t* y, int M, N, K, float post, TmaMap ymap, int y_by_tma, tot_t* ws, int* cnt):
  // the cubin's parameter info (EIATTR_KPARAM_INFO) puts the first map at 48, so that it is 64-byte aligned in the
  // constant bank, whose parameters start at byte 0x210
  const offsets = [48, 176, 304, 432, 440, 448, 452, 456, 460, 496, 624, 632, 640];
  const sizes = [128, 128, 128, 8, 8, 4, 4, 4, 4, 128, 4, 8, 8];
  const layout = offsets.map((offset, i) => ({ offset, size: sizes[i]! }));
  const args = [map(1), map(2), map(3), { u64: 0xa0 }, { u64: 0xb0 }, { i32: 7 }, { i32: 8 }, { i32: 9 }, { f32: 0.5 }, map(4), { i32: 1 }, { u64: 0xc0 }, { u64: 0xd0 }];
  const view = new DataView(new ArrayBuffer(4096));
  assert.equal(packKernelArguments(view, args, layout), 648);
  const at = (off: number) => view.getUint8(off);
  assert.deepEqual([at(47), at(48), at(175), at(176), at(304), at(431)], [0, 1, 1, 2, 3, 3], 'the three maps from 48');
  assert.deepEqual([view.getBigUint64(432, true), view.getBigUint64(440, true)], [0xa0n, 0xb0n]);
  assert.deepEqual([view.getInt32(448, true), view.getInt32(452, true), view.getInt32(456, true), view.getFloat32(460, true)], [7, 8, 9, 0.5]);
  assert.deepEqual([at(496), at(623), view.getInt32(624, true)], [4, 4, 1], 'ymap at 496, the flag after it');
  assert.deepEqual([view.getBigUint64(632, true), view.getBigUint64(640, true)], [0xc0n, 0xd0n]);
  assert.throws(() => packKernelArguments(view, [map(1), { i32: 1 }], [{ offset: 0, size: 128 }, { offset: 128, size: 8 }]), /argument 1 is 4 bytes, its parameter is 8/);
  assert.throws(() => packKernelArguments(view, [map(1), { i32: 1 }], [{ offset: 0, size: 128 }]), /argument 1 .* does not exist/);
});

test('packKernelArguments: without a layout, each argument at its natural alignment, and no struct', () => {
  const view = new DataView(new ArrayBuffer(64));
  assert.equal(packKernelArguments(view, [{ i32: 3 }, { u64: 5 }, { f32: 1.5 }, { f64: 2.5 }]), 32);
  assert.deepEqual([view.getInt32(0, true), view.getBigUint64(8, true), view.getFloat32(16, true), view.getFloat64(24, true)], [3, 5n, 1.5, 2.5]);
  assert.throws(() => packKernelArguments(view, [{ i32: 1 }, { struct: new Uint8Array(128) }]), /argument 1 is a struct: it needs the kernel's parameter layout/);
  assert.throws(() => packKernelArguments(new DataView(new ArrayBuffer(8)), [{ i32: 1 }, { u64: 2 }]), /parameter buffer/);
});
