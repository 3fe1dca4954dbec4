import assert from 'node:assert/strict';
import { packWeights } from '../../src/quant/int4-pack.js';
import { test } from 'node:test';
import { channelBounds, groupAccumulatorBound, proveNoOverflow } from '../../src/quant/overflow.js';
import type { QuantizedLinear } from '../../src/quant/types.js';

function layerWith(intScales: number[], n: number, k: number, groupSize: number, wBits: 4 | 8): QuantizedLinear {
  return {
    kind: 'quantized', n, k, groupSize, wBits, aBits: 8,
    packed: packWeights(new Int8Array(n * k).fill(wBits === 4 ? -8 : -128), n, k, wBits),
    scale: 'int',
    scales: new Float32Array(intScales.map((s) => s / 1024)),
    intScales: new Int32Array(intScales),
    alphaLog2: 10,
  };
}

test('bound = 127·|qmin|·G·Σ_g S per channel; safe iff < 2^31', () => {
  assert.equal(groupAccumulatorBound(128, 4), 127 * 8 * 128);
  assert.equal(groupAccumulatorBound(128, 8), 127 * 128 * 128);
  // 127·8·32 = 32512; 32512 · 66052 = 2147482624 < 2^31 ≤ 32512 · 66053
  const justSafe = layerWith([33026, 33026, 1, 2], 2, 64, 32, 4);
  assert.deepEqual([...channelBounds(justSafe.intScales!, 2, 2, 32, 4)], [2147482624, 97536]);
  assert.deepEqual(proveNoOverflow(justSafe), { maxBound: 2147482624, worstChannel: 0, limit: 2 ** 31, safe: true });
  const justUnsafe = layerWith([1, 2, 33026, 33027], 2, 64, 32, 4);
  assert.deepEqual(proveNoOverflow(justUnsafe), { maxBound: 32512 * 66053, worstChannel: 1, limit: 2 ** 31, safe: false });
});

test('huge bounds beyond 2^53 still compare correctly', () => {
  const big = layerWith([2 ** 31 - 1, 2 ** 31 - 1], 1, 8192, 4096, 8);
  const proof = proveNoOverflow(big);
  assert.equal(proof.safe, false);
  assert.ok(proof.maxBound > 2 ** 53);
});

test('float-scale layers bound only the per-group accumulator', () => {
  const layer: QuantizedLinear = { ...layerWith([1, 1], 1, 64, 32, 4), scale: 'float' };
  assert.deepEqual(proveNoOverflow(layer), { maxBound: 32512, worstChannel: 0, limit: 2 ** 31, safe: true });
});
