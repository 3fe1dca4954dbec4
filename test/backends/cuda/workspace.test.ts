/**
 * The split-K workspace (workspace.ts) on a stub context: it grows to what a launch asks, at least doubling, zero-fills
 * new counters, and keeps (never frees) the buffers it replaces, which graphs captured before still name; bad sizes
 * are named. Runs without a GPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { splitKWorkspace } from '../../../src/backends/cuda/workspace.js';

interface StubBuffer { bytes: number; filled: number | null; freed: boolean }

function stubContext(): { ctx: CudaContext; buffers: StubBuffer[] } {
  const buffers: StubBuffer[] = [];
  const alloc = (bytes: number): StubBuffer => {
    const b: StubBuffer & { fill(v: number): void; free(): void } = {
      bytes, filled: null, freed: false,
      fill(v: number) { b.filled = v; },
      free() { b.freed = true; },
    };
    buffers.push(b);
    return b;
  };
  return { ctx: { alloc, landUploads: () => {}, synchronize: () => {} } as unknown as CudaContext, buffers };
}

test('split-K workspace: grows to at least twice its size, zero-fills new counters, and keeps the buffers it replaces', () => {
  const { ctx, buffers } = stubContext();
  const take = (counters: number, bytes: number): StubBuffer[] => splitKWorkspace(ctx, counters, bytes) as unknown as StubBuffer[];
  const [p1, c1] = take(10, 1000);
  assert.deepEqual([p1!.bytes, c1!.bytes, c1!.filled], [1000, 40, 0], 'first sizes as asked; counters zeroed');
  assert.deepEqual(take(5, 600), [p1, c1], 'a smaller need keeps the buffers');
  const [p2, c2] = take(12, 1500);
  assert.deepEqual([p2!.bytes, c2!.bytes, c2!.filled], [2000, 80, 0], 'grown to twice the old size where that is more than asked');
  const [p3] = take(12, 5000);
  assert.equal(p3!.bytes, 5000, 'grown to the need where it is more than twice the old size');
  assert.equal(buffers.length, 5);
  assert.ok(buffers.every((b) => !b.freed), 'no buffer freed: graphs captured before a growth still name the old ones');
});

test('split-K workspace: sizes that are not positive integers are named', () => {
  const { ctx } = stubContext();
  for (const [counters, bytes] of [[0, 10], [4, 0], [1.5, 10], [4, -1]]) {
    assert.throws(() => splitKWorkspace(ctx, counters!, bytes!), new RegExp(`split-K workspace needs positive integer sizes, got ${counters} counters and ${bytes} B`));
  }
});
