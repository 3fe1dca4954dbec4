/**
 * cpuBackend.prepareLinear: a layer is prepared once into the kernels' form; arrays in the arena
 * are read in place, others copied into it once and given back on release; runs are the kernels'.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuBackend } from '../../../src/backends/cpu/cpu-backend.js';
import { referenceLinear } from '../../../src/backends/cpu/int-linear-reference.js';
import { matmulF32 } from '../../../src/backends/cpu/matmul.js';
import { quantizeLinear } from '../../../src/quant/quantize-linear.js';
import type { FloatLinear, QuantSpec } from '../../../src/quant/types.js';
import { arenaFloat32, releaseArenaBlock, sharedFloat32, withArenaAllocation } from '../../../src/tensor/shared.js';
import { freshSeed, makeRng, randomNormals } from '../../helpers/random.js';

const skip = process.env['INTSCALE_ARENA'] === '0' ? 'the shared arena is turned off (INTSCALE_ARENA=0)' : false;
const SPEC: QuantSpec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };

test('a float layer in the arena is read in place; one outside is copied in once and its block reused after release', { skip }, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [n, k, m] = [24, 40, 3];
  const values = randomNormals(rng, n * k, 0.1);
  const inArena = arenaFloat32(n * k);
  inArena.set(values);
  const x = sharedFloat32(m * k);
  x.set(randomNormals(rng, m * k));
  const expected = sharedFloat32(m * n);
  matmulF32(x, m, k, inArena, n, expected, undefined, { pool: null });

  const own = cpuBackend.prepareLinear({ kind: 'float', n, k, w: inArena });
  assert.equal(own.copiedBytes, 0);
  assert.deepEqual(own.run(x, m), expected, `seed ${seed}`);

  const outside: FloatLinear = { kind: 'float', n, k, w: Float32Array.from(values) };
  const copied = cpuBackend.prepareLinear(outside);
  assert.equal(copied.copiedBytes, n * k * 4);
  assert.deepEqual(copied.run(x, m), expected, `seed ${seed}: the copy runs the same kernel`);
  copied.release();
  assert.equal(copied.copiedBytes, 0, 'released');
});

test('a block given back to the arena is the next allocation of its size, zero-filled', { skip }, () => {
  const a = arenaFloat32(1000);
  a.fill(7);
  releaseArenaBlock(a);
  const b = arenaFloat32(1000);
  assert.equal(b.byteOffset, a.byteOffset);
  assert.ok(b.every((v) => v === 0));
  assert.notEqual(arenaFloat32(1000).byteOffset, b.byteOffset, 'a block is handed out once');
});

test('a released block serves a smaller allocation up to 1.5x smaller and comes back whole; KV caches of varying lengths reuse the arena instead of growing it', { skip }, () => {
  const big = arenaFloat32(1200);
  releaseArenaBlock(big);
  const small = arenaFloat32(1000); // 1.2x smaller: reuses the 1200 block
  assert.equal(small.byteOffset, big.byteOffset);
  assert.ok(small.every((v) => v === 0));
  assert.notEqual(arenaFloat32(1200).byteOffset, big.byteOffset, 'taken: a new 1200 block');
  releaseArenaBlock(small);
  assert.equal(arenaFloat32(1200).byteOffset, big.byteOffset, 'given back with its whole size');
  const tiny = arenaFloat32(100);
  releaseArenaBlock(tiny);
  const bigger = arenaFloat32(500);
  assert.notEqual(bigger.byteOffset, tiny.byteOffset, 'a block too small is never handed out');
  // a server's sequences: caches of 20 different lengths opened and released in turn
  const kvDim = 64;
  const lengths = Array.from({ length: 40 }, (_, i) => 300 + ((i * 37) % 20) * 10);
  const first = cpuBackend.layerCache(lengths[0]!, kvDim);
  cpuBackend.releaseLayerCache!(first);
  const offsets = new Set<number>();
  for (const n of lengths) {
    const c = cpuBackend.layerCache(n, kvDim);
    offsets.add((c.keys as Float32Array).byteOffset);
    cpuBackend.releaseLayerCache!(c);
  }
  // exact-size reuse alone gives each of the 20 lengths its own key block (20 offsets); with the slack a few pairs serve all
  assert.ok(offsets.size <= 8, `${offsets.size} distinct key blocks for 40 caches of 20 lengths (300-490 positions)`);
});

test('a quantized layer outside the arena is copied once; the prepared run equals the reference on every call', { skip }, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [n, k] = [20, 96];
  const layer = quantizeLinear({ kind: 'float', n, k, w: randomNormals(rng, n * k, 0.05), bias: randomNormals(rng, n) }, SPEC);
  const prepared = cpuBackend.prepareLinear(layer);
  assert.ok(prepared.copiedBytes >= n * k / 2, 'packed weights, scales and bias copied into the arena');
  for (const m of [1, 4, 7]) {
    const x = sharedFloat32(m * k);
    x.set(randomNormals(rng, m * k));
    assert.deepEqual(prepared.run(x, m), referenceLinear(x, m, layer), `seed ${seed}, m = ${m}`);
  }
  prepared.release();
  const inArena = withArenaAllocation(() => quantizeLinear({ kind: 'float', n, k, w: randomNormals(rng, n * k, 0.05) }, SPEC));
  const own = cpuBackend.prepareLinear(inArena);
  assert.equal(own.copiedBytes, 0, 'a layer made in the arena (as the loader reads one) is read in place');
});
