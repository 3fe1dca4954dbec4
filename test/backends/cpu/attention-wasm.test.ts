/**
 * The WASM SIMD attention kernel (caches in the arena) against the JS row kernel: the same float32
 * outputs, and the same float64 sums before the rounding (each row's output row in its scratch slot
 * against the plain float64 arithmetic, bit for bit), on fresh random inputs: head dims 64 / 80 /
 * 128 and odd ones, odd and even position counts, GQA, sliding windows; through ops.attention and
 * ops.decodeAttention on the pool too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionRows, decodeAttentionRows } from '../../../src/backends/cpu/attention-kernel.js';
import {
  attentionScratch, attentionSlotBytes, attentionWasmRows, wasmAttentionAvailable,
} from '../../../src/backends/cpu/attention-wasm-kernel.js';
import { cpuBackend } from '../../../src/backends/cpu/cpu-backend.js';
import { attention, decodeAttention } from '../../../src/backends/cpu/ops.js';
import { arenaAddress, arenaFloat32, arenaMemory, sharedFloat32 } from '../../../src/tensor/shared.js';
import { plainAttentionRow } from '../../helpers/plain-attention.js';
import { freshSeed, makeRng, type Rng } from '../../helpers/random.js';

const skip = wasmAttentionAvailable() ? false : 'no shared wasm arena with SIMD here';

/** Normals in a fresh shared array, in the arena when asked. */
function random(rng: Rng, n: number, inArena = false): Float32Array {
  const a = inArena ? arenaFloat32(n) : sharedFloat32(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

test('the WASM attention row equals the plain float64 arithmetic bit for bit, before and after the rounding to float32 (head dims 64, 80, 128 and odd, GQA, windows)', { skip }, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const dims = [64, 80, 128, 1, 2, 3, 7, 18, 30, 37, 50, 66];
  for (let trial = 0; trial < 36; trial++) {
    const KVH = rng.int(1, 3), H = KVH * rng.int(1, 4), D = dims[trial % dims.length]!, m = rng.int(1, 3), start = rng.int(0, 45);
    const window = rng.int(0, 2) === 0 ? rng.int(1, 20) : 0;
    const capacity = start + m + rng.int(0, 3);
    const keys = random(rng, capacity * KVH * D, true), values = random(rng, capacity * KVH * D, true), q = random(rng, m * H * D);
    const positions = window > 0 ? Math.min(window, start + m) : start + m;
    const slotBytes = attentionSlotBytes(D, positions);
    const scratch = attentionScratch(1, slotBytes);
    const out = sharedFloat32(m * H * D);
    const args = {
      q, out, keys: arenaAddress(keys), values: arenaAddress(values), startPos: start, numHeads: H, numKvHeads: KVH, headDim: D, window, scratch, slotBytes,
    };
    for (let r = 0; r < m; r++) for (let h = 0; h < H; h++) {
      const row = r * H + h, pos = start + r, first = window > 0 ? Math.max(0, pos - window + 1) : 0;
      attentionWasmRows(args, row, row + 1);
      const want = plainAttentionRow(q, row * D, keys, values, Math.floor(h / (H / KVH)) * D, KVH * D, first, pos, D);
      const acc = new Float64Array(arenaMemory()!.buffer, scratch + 8 * D, D);
      const where = `seed ${seed}, trial ${trial}: H ${H}/${KVH}, D ${D}, row ${r}, head ${h}, positions ${first}..${pos}`;
      assert.deepEqual(Float64Array.from(acc), want, where);
      assert.deepEqual(out.subarray(row * D, (row + 1) * D), Float32Array.from(want), where);
    }
    const js = new Float32Array(m * H * D);
    attentionRows({ q, keys, values, out: js, startPos: start, numHeads: H, numKvHeads: KVH, headDim: D, window }, 0, m * H);
    assert.deepEqual(out, js, `seed ${seed}, trial ${trial}`);
    assert.ok(js.some((x) => x !== 0));
  }
});

for (const [H, KVH, D, start, m, window] of [[16, 16, 128, 161, 1, null], [32, 8, 80, 300, 3, null], [12, 4, 64, 230, 2, 57], [6, 2, 66, 99, 5, null]] as const) {
  test(`ops.attention with an arena cache (WASM, on the pool) equals the JS kernel bit for bit: ${H}/${KVH} heads of ${D}, ${m} new after ${start}, window ${window}`, { skip }, () => {
    const seed = freshSeed();
    const rng = makeRng(seed);
    const cache = cpuBackend.layerCache(start + m + 2, KVH * D);
    assert.ok(arenaAddress(cache.keys) >= 0 && arenaAddress(cache.values) >= 0, 'the CPU backend puts its KV caches in the arena');
    try {
      for (const a of [cache.keys, cache.values]) for (let i = 0; i < start * KVH * D; i++) a[i] = rng.normal();
      const q = random(rng, m * H * D), k = random(rng, m * KVH * D), v = random(rng, m * KVH * D);
      const got = attention(q, k, v, m, start, cache, { numHeads: H, numKvHeads: KVH, headDim: D, slidingWindow: window });
      const want = new Float32Array(m * H * D);
      attentionRows({ q, keys: cache.keys, values: cache.values, out: want, startPos: start, numHeads: H, numKvHeads: KVH, headDim: D, window: window ?? 0 }, 0, m * H);
      assert.deepEqual(got, want, `seed ${seed}`);
      assert.ok(want.some((x) => x !== 0));
    } finally {
      cpuBackend.releaseLayerCache(cache);
    }
  });
}

test('ops.decodeAttention with arena caches (WASM, on the pool) equals the JS decode kernel bit for bit (5 sequences, GQA 12/4 of 80, positions 7 to 260)', { skip }, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [H, KVH, D] = [12, 4, 80];
  const positions = [260, 7, 131, 200, 64];
  const caches = positions.map((p) => cpuBackend.layerCache(p + 1, KVH * D));
  try {
    for (const [b, c] of caches.entries()) for (const a of [c.keys, c.values]) for (let i = 0; i < positions[b]! * KVH * D; i++) a[i] = rng.normal();
    const B = positions.length;
    const q = random(rng, B * H * D), k = random(rng, B * KVH * D), v = random(rng, B * KVH * D);
    const invFreq = Float32Array.from({ length: D / 2 }, (_, i) => 10000 ** (-(2 * i) / D));
    const got = decodeAttention(q, k, v, positions, caches, { numHeads: H, numKvHeads: KVH, headDim: D, slidingWindow: null }, invFreq);
    // q was roped in place, and the caches now hold the new rows: the JS kernel reads the same inputs
    const qJs = Float32Array.from(q);
    const args: Record<string, Float32Array | Int32Array | number> = {
      q: qJs, out: new Float32Array(B * H * D), positions: Int32Array.from(positions), numHeads: H, numKvHeads: KVH, headDim: D, window: 0,
    };
    caches.forEach((c, b) => {
      args[`keys${b}`] = c.keys;
      args[`values${b}`] = c.values;
    });
    decodeAttentionRows(args as Parameters<typeof decodeAttentionRows>[0], 0, B * H);
    assert.deepEqual(got, args.out, `seed ${seed}`);
  } finally {
    caches.forEach((c) => cpuBackend.releaseLayerCache(c));
  }
});
