/**
 * cpuBackend.prepareLinear: a layer is prepared once into the kernels' form; arrays in the arena
 * are read in place, others copied into it once and given back on release; runs are the kernels'.
 * A full arena leaves layers on the JS kernels (same results) with one warning a process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

test('a full arena: layers prepared without room run on the JS kernels, the same results, with one INTSCALE_ARENA_FULL warning a process', { skip }, () => {
  // in a child process: filling the arena (virtual memory, never touched) would starve this one's tests
  const src = (file: string) => JSON.stringify(new URL(`../../../src/${file}`, import.meta.url).href);
  const script = `
    import { cpuBackend } from ${src('backends/cpu/cpu-backend.js')};
    import { quantizeLinear } from ${src('quant/quantize-linear.js')};
    import { arenaFloat32, arenaAddress, sharedFloat32 } from ${src('tensor/shared.js')};
    const warnings = [];
    process.on('warning', (w) => warnings.push(w.code + ': ' + w.message));
    const k = 64, n = 48, m = 2;
    const w = sharedFloat32(n * k).map((_, i) => Math.sin(i));
    const x = sharedFloat32(m * k).map((_, i) => Math.cos(i));
    const spec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };
    const q = quantizeLinear({ kind: 'float', n, k, w }, spec);
    const before = [cpuBackend.prepareLinear({ kind: 'float', n, k, w }).run(x, m), cpuBackend.prepareLinear(q).run(x, m)];
    for (let size = 2 ** 28; size >= 2 ** 8; size /= 2) while (arenaAddress(arenaFloat32(size)) >= 0); // down to 1 KiB: no 12 KiB copy fits after
    const after = [cpuBackend.prepareLinear({ kind: 'float', n, k, w }), cpuBackend.prepareLinear(q)];
    const runs = after.map((p) => p.run(x, m));
    setImmediate(() => console.log(JSON.stringify({ warnings, copied: after.map((p) => p.copiedBytes), same: runs.map((r, i) => r.every((v, j) => Math.abs(v - before[i][j]) <= 1e-5 * (1 + Math.abs(v)))) })));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { warnings: string[]; copied: number[]; same: boolean[] };
  assert.deepEqual(out.same, [true, true], 'the JS kernels give the WASM kernels\' results');
  assert.equal(out.copied[0], 0, 'the float layer found no room for its arena copy');
  assert.equal(out.warnings.length, 1, out.warnings.join('\n'));
  assert.match(out.warnings[0]!, /^INTSCALE_ARENA_FULL: the WASM arena \(at most 4 GiB, shared by every model and KV cache in this process\) is full: a 48×64 float layer/);
});
