/**
 * w4a8SplitKNeed: the split-K workspace a W4A8 launch takes (workspace.ts grows to it, keeping what it replaces for the
 * graphs captured before). Runs without a GPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import { chooseW4A8Config, tmaPartialBytes, w4a8SplitKNeed, type W4A8Layer } from '../../../src/backends/cuda/w4a8.js';

const layer = (n: number, k: number): W4A8Layer => ({ n, k, groupSize: 128, scale: 'int', post: 1, isShift: false, weights: {} as DeviceBuffer, scales: {} as DeviceBuffer });

test('w4a8SplitKNeed: none without a K split; a counter a consumer warp of each tile and KS partials of each with one', () => {
  const down = layer(4096, 11008);
  assert.equal(w4a8SplitKNeed(down, 8, { kind: 'decode', MT: 1, NTW: 1, WK: 16 }), null);
  assert.equal(w4a8SplitKNeed(down, 64, { kind: 'wgmma-tma', STAGES: 4 }), null);
  assert.equal(w4a8SplitKNeed(down, 64, { kind: 'wgmma-tma', STAGES: 4, KS: 1 }), null);
  // 64 rows: one token tile x 32 weight tiles, 8 consumer warps each
  assert.deepEqual(w4a8SplitKNeed(down, 64, { kind: 'wgmma-tma', STAGES: 4, KS: 4 }), { counters: 256, partialBytes: 4 * 256 * 64 * 32 * 4 });
  assert.deepEqual(w4a8SplitKNeed(down, 200, { kind: 'wgmma-tma', STAGES: 4, KS: 2 }), { counters: 512, partialBytes: 2 * 512 * 64 * 32 * 4 });
  // 32-token tiles: 200 rows are 7 token tiles, and a partial is 16 totals a lane
  assert.equal(tmaPartialBytes(32), 16 * 32 * 4);
  assert.deepEqual(w4a8SplitKNeed(down, 200, { kind: 'wgmma-tma', STAGES: 4, KS: 2, BT: 32 }), { counters: 7 * 32 * 8, partialBytes: 2 * 7 * 32 * 8 * tmaPartialBytes(32) });
});

test('the chooser\'s split-K launches need more counters at a prefill of 129-256 rows than at a 33-64-row decode step (why the workspace keeps the buffers it replaces: a step captured before names them)', () => {
  const down = layer(4096, 11008);
  const need = (m: number) => w4a8SplitKNeed(down, m, chooseW4A8Config(m, down.n, down.k, true, true, 132));
  assert.equal(need(32), null, 'the decode kernel at 32 rows');
  const [step, prefill] = [need(64), need(200)];
  assert.ok(step !== null && prefill !== null, 'split K at 64 and 200 rows on 132 SMs');
  assert.ok(prefill.counters > step.counters, `${prefill.counters} counters at 200 rows, ${step.counters} at 64`);
});
