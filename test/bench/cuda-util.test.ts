/** The read-floor launcher's argument checks (bench/cuda-util.ts readStream), without a GPU: a stub context that fails if launched. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readStream } from '../../bench/cuda-util.js';
import type { CudaContext } from '../../src/backends/cuda/context.js';
import type { DeviceBuffer } from '../../src/backends/cuda/buffer.js';

const ctx = { launch: () => assert.fail('launched past the checks') } as unknown as CudaContext;
const buffer = (bytes: number): DeviceBuffer => ({ bytes }) as unknown as DeviceBuffer;

test('readStream names bytes that are not a whole number of block runs, past the source, or a sink too small', () => {
  const run = 4 * 256 * 16;
  assert.throws(() => readStream(ctx, buffer(10 * run), run + 16, 4, 256, buffer(64)), /readStream: 16400 B must be a positive multiple of 16384 within src, sink/);
  assert.throws(() => readStream(ctx, buffer(10 * run), 0, 4, 256, buffer(64)), /positive multiple/);
  assert.throws(() => readStream(ctx, buffer(run), 2 * run, 4, 256, buffer(64)), /within src/);
  assert.throws(() => readStream(ctx, buffer(10 * run), 10 * run, 4, 256, buffer(36)), /sink 40 B/);
});

test('readStream overlapping the launch before takes the 4-load kernel only', () => {
  const run = 8 * 256 * 16;
  assert.throws(() => readStream(ctx, buffer(2 * run), run, 8, 256, buffer(64), true), /the overlapping read streams 4 loads a thread/);
});
