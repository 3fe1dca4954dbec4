/**
 * The integer kernels' activation quantization in WASM SIMD (int-activation-wasm-module.ts) against its
 * JS rows (quantizeInt16RowsJs, itself quantizeActivations in the kernel's layout): bit for bit on random
 * rows, rows whose quotients fall exactly on halves (round half to even), an all-zero row, a row with a
 * NaN, W4's slot order and W8's input order; rows outside the arena staged into it; a padded layout
 * takes the JS rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { int16ArenaAddresses, int16RowsInWasm, quantizeInt16Rows, quantizeInt16RowsJs, type Int16ActivationArgs } from '../../../src/backends/cpu/int-activation-rows.js';
import { activationSlot } from '../../../src/backends/cpu/int-linear-wasm-module.js';
import { arenaAddress, sharedFloat32, sharedUint8, withArenaAllocation } from '../../../src/tensor/shared.js';
import { freshSeed, makeRng } from '../../helpers/random.js';

const skip = process.env['INTSCALE_ARENA'] === '0' ? 'the shared arena is turned off (INTSCALE_ARENA=0)' : false;

/** x [m, k] in the arena: random rows, then a row of exact halves, an all-zero row and a row with a NaN. */
function activations(seed: number, m: number, k: number): Float32Array {
  const rng = makeRng(seed);
  const x = withArenaAllocation(() => sharedFloat32(m * k));
  for (let i = 0; i < x.length; i++) x[i] = 3 * rng.normal();
  // max |x| = 127 · 0.25 gives a = 0.25 exactly: x = (n + 0.5) · 0.25 lands on a half
  const halves = (m - 3) * k;
  for (let i = 0; i < k; i++) x[halves + i] = i === 0 ? 31.75 : ((i % 255) - 127 + 0.5) * 0.25 * (i % 2 === 0 ? 1 : -1);
  x.fill(0, (m - 2) * k, (m - 1) * k);
  x[(m - 1) * k + 5] = Number.NaN;
  return x;
}

function args(x: Float32Array, m: number, k: number, bits: 4 | 8, G: number, Gp: number): Int16ActivationArgs {
  const rowLength = Math.ceil(((k / G) * Gp) / 8) * 8;
  const slots = Int32Array.from({ length: G }, (_, i) => activationSlot(bits, i));
  const bytes = withArenaAllocation(() => sharedUint8(2 * m * rowLength));
  const x16 = new Int16Array(bytes.buffer, bytes.byteOffset, m * rowLength);
  x16.fill(-1); // padding must be left as it is, like the JS rows leave it
  const scales = withArenaAllocation(() => sharedFloat32(m));
  const none = new Float32Array(0);
  return { x, x16, scales, slots, k, groupSize: G, groupCount: k / G, groupPadded: Gp, rowLength, bits, relaxed: 0, stage: none, ...int16ArenaAddresses(x, x16, scales, none, m, k) };
}

/** The args with a stage, and the arena addresses the calling thread takes with it. */
function withStage(a: Int16ActivationArgs, m: number, stage: Float32Array): Int16ActivationArgs {
  return { ...a, stage, ...int16ArenaAddresses(a.x, a.x16, a.scales, stage, m, a.k) };
}

test('the activations\' int16 rows in WASM SIMD equal the JS rows bit for bit (W4 slot order, W8 order; halves, zero and NaN rows; any row range)', { skip }, () => {
  const seed = freshSeed();
  for (const [bits, G, k] of [[4, 128, 512], [4, 32, 96], [8, 64, 320], [8, 16, 48]] as const) {
    const m = 9;
    const x = activations(seed, m, k);
    assert.ok(arenaAddress(x) >= 0, 'x in the arena');
    const want = args(x, m, k, bits, G, G);
    quantizeInt16RowsJs(want, 0, m);
    const got = args(x, m, k, bits, G, G);
    assert.ok(int16RowsInWasm(got), `W${bits} G ${G}: the WASM rows run`);
    quantizeInt16Rows(got, 0, 4);
    quantizeInt16Rows(got, 4, m); // two calls, as two pool threads would split the rows
    assert.deepEqual(got.scales, want.scales, `W${bits} G ${G} k ${k}: scales (seed ${seed})`);
    assert.deepEqual(got.x16, want.x16, `W${bits} G ${G} k ${k}: int16 rows (seed ${seed})`);
    const halves = Array.from(want.x16.subarray((m - 3) * want.rowLength, (m - 2) * want.rowLength));
    assert.ok(halves.some((q) => q % 2 === 0 && q !== 0), 'the halves row rounds some values to even codes');
  }
});

test('rows outside the arena are staged into it (each call its rows) and give the same bits', { skip }, () => {
  const [m, k, G] = [7, 256, 128];
  const inArena = activations(freshSeed(), m, k);
  const x = sharedFloat32(m * k); // a fresh op output: shared, outside the arena
  x.set(inArena);
  assert.ok(arenaAddress(x) < 0);
  const want = args(inArena, m, k, 4, G, G);
  quantizeInt16RowsJs(want, 0, m);
  const stage = withArenaAllocation(() => sharedFloat32(m * k));
  const got = withStage(args(x, m, k, 4, G, G), m, stage);
  assert.ok(int16RowsInWasm(got) && got.staged === 1);
  quantizeInt16Rows(got, 0, 3);
  quantizeInt16Rows(got, 3, m);
  assert.deepEqual(got.x16, want.x16);
  assert.deepEqual(got.scales, want.scales);
  assert.deepEqual(stage, inArena, 'the stage holds the rows');
});

test('a padded group layout (G = 48 for W4: Gp 64) takes the JS rows, with the same result', { skip }, () => {
  const [m, k, G] = [3, 96, 48];
  const x = activations(freshSeed(), m, k);
  const want = args(x, m, k, 4, G, 64);
  quantizeInt16RowsJs(want, 0, m);
  const got = args(x, m, k, 4, G, 64);
  assert.equal(int16RowsInWasm(got), false);
  quantizeInt16Rows(got, 0, m);
  assert.deepEqual(got.x16, want.x16);
});
