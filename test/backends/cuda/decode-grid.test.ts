/**
 * The decode kernels' launch geometry (src/backends/cuda/decode-grid.ts), on the CPU: one block per
 * unit of NTW tiles, or the persistent grid and the conditions it needs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeGrid } from '../../../src/backends/cuda/decode-grid.js';

test('one block per unit of NTW 16-row tiles, ragged N rounded up', () => {
  assert.deepEqual(decodeGrid({ NTW: 1, WK: 16 }, 4096, 4096, 132), { units: 256, blocks: 256, persistent: false });
  assert.deepEqual(decodeGrid({ NTW: 2, WK: 8 }, 4999, 1280, 132), { units: 157, blocks: 157, persistent: false });
});

test('the persistent grid: blocksPerSm blocks a SM, never more blocks than units', () => {
  assert.deepEqual(decodeGrid({ NTW: 1, WK: 16, blocksPerSm: 2 }, 12288, 4096, 132), { units: 768, blocks: 264, persistent: true });
  assert.deepEqual(decodeGrid({ NTW: 4, WK: 8, blocksPerSm: 2 }, 1000, 1024, 132), { units: 16, blocks: 16, persistent: true });
});

test('the persistent grid refuses a K with fewer 128-k chunks than warps, and a bad blocksPerSm, by name', () => {
  assert.throws(() => decodeGrid({ NTW: 1, WK: 16, blocksPerSm: 1 }, 4096, 1024, 132), /K\/128 >= WK.*K=1024, WK=16/);
  assert.throws(() => decodeGrid({ NTW: 1, WK: 8, blocksPerSm: 0 }, 4096, 4096, 132), /blocksPerSm must be a positive integer, got 0/);
  assert.throws(() => decodeGrid({ NTW: 1, WK: 8, blocksPerSm: 1.5 }, 4096, 4096, 132), /got 1\.5/);
});
