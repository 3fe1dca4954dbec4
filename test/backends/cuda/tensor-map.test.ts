/**
 * The tensor-map cache (tensor-map.ts) on a stub context: a map is memoized by what it describes, is never freed
 * for being old (a graph captured early may still name it), and is freed once the memory it describes has been
 * freed, after the context is synchronized. Runs without a GPU (the driver's encoder is a stub).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import type { DriverApi } from '../../../src/backends/cuda/driver.js';
import { cachedTensorMapU8, type ByteTensor } from '../../../src/backends/cuda/tensor-map.js';

interface StubMap { bytes: number; freed: boolean; freedAfterSync: boolean; free(): void }

const api = { fn: { cuMemFree: () => 0, cuTensorMapEncodeTiled: () => 0 }, check: () => {} } as unknown as DriverApi;

function stubContext(): { ctx: CudaContext; maps: StubMap[]; syncs: () => number } {
  const maps: StubMap[] = [];
  let syncs = 0;
  const upload = (bytes: Uint8Array): StubMap => {
    const m: StubMap = {
      bytes: bytes.byteLength, freed: false, freedAfterSync: false,
      free() { m.freed = true; m.freedAfterSync = syncs > 0; },
    };
    maps.push(m);
    return m;
  };
  return { ctx: { api, upload, synchronize: () => { syncs++; } } as unknown as CudaContext, maps, syncs: () => syncs };
}

/** A map over the first `rows` rows of 256-byte rows. */
const rowsMap = (rows: number): ByteTensor => ({ dims: [256, rows], strides: [256], box: [128, 32], swizzle: 'sw128' });

test('tensor-map cache: memoized by the memory a map describes, whatever buffer object asks', () => {
  const { ctx, maps } = stubContext();
  const a = new DeviceBuffer(api, 1 << 20, 256 * 4096);
  const first = cachedTensorMapU8(ctx, a, rowsMap(64));
  assert.equal(cachedTensorMapU8(ctx, a, rowsMap(64)), first, 'the same map for the same request');
  assert.equal(cachedTensorMapU8(ctx, new DeviceBuffer(api, 1 << 20, 256 * 4096), rowsMap(64)), first, 'and for another buffer at the same memory');
  assert.notEqual(cachedTensorMapU8(ctx, a, rowsMap(65)), first, 'other dims, another map');
  assert.equal(maps.length, 2);
  assert.equal(maps[0]!.bytes, 128, 'a CUtensorMap is 128 bytes');
});

test('tensor-map cache: maps of live memory are never freed, however many and however old', () => {
  const { ctx, maps } = stubContext();
  const live = new DeviceBuffer(api, 1 << 24, 256 * 4096);
  const oldest = cachedTensorMapU8(ctx, live, rowsMap(1));
  for (let rows = 2; rows <= 3000; rows++) cachedTensorMapU8(ctx, live, rowsMap(rows));
  assert.equal(maps.length, 3000);
  assert.ok(maps.every((m) => !m.freed), 'no map freed while its memory lives (a graph captured with the oldest may still run)');
  assert.equal(cachedTensorMapU8(ctx, live, rowsMap(1)), oldest, 'the oldest map still memoized');
});

test('tensor-map cache: maps of freed memory are freed when the cache grows, after a synchronize', () => {
  const { ctx, maps, syncs } = stubContext();
  const parent = new DeviceBuffer(api, 1 << 24, 256 * 4096);
  const gone = new DeviceBuffer(api, 1 << 26, 256 * 64);
  const reused = new DeviceBuffer(api, 1 << 27, 256 * 64);
  const live = new DeviceBuffer(api, 1 << 28, 256 * 4096);
  const overView = cachedTensorMapU8(ctx, parent.view(0, 256 * 16), rowsMap(16)) as unknown as StubMap;
  const overGone = cachedTensorMapU8(ctx, gone, rowsMap(64)) as unknown as StubMap;
  const overReused = cachedTensorMapU8(ctx, reused, rowsMap(64)) as unknown as StubMap;
  parent.free();
  gone.free();
  reused.free();
  const again = new DeviceBuffer(api, 1 << 27, 256 * 64); // allocated where `reused` was
  assert.equal(cachedTensorMapU8(ctx, again, rowsMap(64)), overReused as unknown as DeviceBuffer, 'the map of reused memory is found again');
  assert.equal(syncs(), 0);
  for (let rows = 1; rows <= 1100; rows++) cachedTensorMapU8(ctx, live, rowsMap(rows));
  assert.ok(overView.freed && overGone.freed, 'maps whose memory was freed (a view of a freed buffer included) are freed');
  assert.ok(overView.freedAfterSync && overGone.freedAfterSync, 'after the context was synchronized (a queued kernel may read them)');
  assert.ok(!overReused.freed, 'the map asked again for memory allocated anew is kept');
  assert.equal(maps.filter((m) => m.freed).length, 2, 'maps of live memory are kept');
});
