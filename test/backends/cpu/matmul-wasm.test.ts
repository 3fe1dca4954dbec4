import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { matmulF32 } from '../../../src/backends/cpu/matmul.js';
import { buildMatmulF32WasmModule } from '../../../src/backends/cpu/matmul-f32-wasm-module.js';
import { CpuPool } from '../../../src/backends/cpu/pool/index.js';
import { seededRandom } from '../../../src/tensor/random.js';
import { arenaAddress, arenaMemory, sharedFloat32, sharedInt8, toSharedFloat32, withArenaAllocation } from '../../../src/tensor/shared.js';

/** seeded, so failures reproduce. */
const rng = seededRandom;

/** length floats in the arena. */
function arenaFloats(length: number): Float32Array {
  return withArenaAllocation(() => sharedFloat32(length));
}

function fillRandom<T extends Float32Array>(a: T, next: () => number): T {
  for (let i = 0; i < a.length; i++) a[i] = next() * 2 - 1;
  return a;
}

/** Largest |out − ref| / Σ_k |x·w| over all outputs, ref in float64. */
function maxRelativeError(x: Float32Array, m: number, k: number, w: Float32Array, n: number, out: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let ref = 0;
      let scale = 0;
      for (let t = 0; t < k; t++) {
        const p = x[i * k + t]! * w[j * k + t]!;
        ref += p;
        scale += Math.abs(p);
      }
      worst = Math.max(worst, Math.abs(out[i * n + j]! - ref) / scale);
    }
  }
  return worst;
}

describe('matmulF32, WASM SIMD kernel', () => {
  const pool = new CpuPool({ threads: 2 });
  pool.waitUntilReady();
  after(() => pool.close());

  it('emits a module that validates', () => {
    assert.ok(WebAssembly.validate(buildMatmulF32WasmModule(65536)));
  });

  it('covers every K mod 4 tail, N mod 4 edge and odd M', () => {
    const next = rng(2024);
    for (const k of [1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 66]) {
      for (const [m, n] of [[1, 1], [2, 3], [3, 4], [5, 7], [4, 9]] as const) {
        const x = fillRandom(arenaFloats(m * k), next);
        const w = fillRandom(arenaFloats(n * k), next);
        const out = arenaFloats(m * n).fill(Number.NaN);
        matmulF32(x, m, k, w, n, out, undefined, { pool: null, kernel: 'wasm' });
        const err = maxRelativeError(x, m, k, w, n, out);
        assert.ok(err <= 1e-6, `M=${m} K=${k} N=${n}: relative error ${err}`);
      }
    }
  });

  it('stays within 1e-5 of float64 at K = 4096 with f32 accumulation, across threads', () => {
    const next = rng(77);
    const [m, k, n] = [3, 4096, 37];
    const x = fillRandom(arenaFloats(m * k), next);
    const w = fillRandom(arenaFloats(n * k), next);
    const out = arenaFloats(m * n).fill(Number.NaN);
    matmulF32(x, m, k, w, n, out, undefined, { pool, kernel: 'wasm' });
    const err = maxRelativeError(x, m, k, w, n, out);
    assert.ok(err <= 1e-5, `relative error ${err}`);
  });

  it('stages x and out that are not in the arena, and adds the bias', () => {
    const next = rng(5);
    const [m, k, n] = [3, 130, 301];
    const x = fillRandom(new Float32Array(m * k), next);
    const w = fillRandom(arenaFloats(n * k), next);
    const bias = fillRandom(new Float32Array(n), next);
    const out = new Float32Array(m * n).fill(Number.NaN);
    const reference = new Float32Array(m * n);
    matmulF32(x, m, k, w, n, out, bias, { pool, kernel: 'wasm' });
    matmulF32(x, m, k, Float32Array.from(w), n, reference, bias, { pool: null, kernel: 'js' });
    for (let i = 0; i < m * n; i++) assert.ok(Math.abs(out[i]! - reference[i]!) <= 1e-4, `out[${i}] = ${out[i]} vs ${reference[i]}`);
  });

  it("refuses kernel 'wasm' for a W outside the arena", () => {
    for (const w of [new Float32Array(8).fill(1), sharedFloat32(8).fill(1)]) {
      assert.throws(() => matmulF32(sharedFloat32(4), 1, 4, w, 2, sharedFloat32(2), undefined, { kernel: 'wasm' }), /arena/);
    }
  });
});

describe('shared arena allocations', () => {
  it('inside withArenaAllocation hands out zeroed, 16-byte aligned, disjoint views of one shared wasm memory', () => {
    const memory = arenaMemory();
    assert.ok(memory !== null);
    const [a, b, c] = withArenaAllocation(() => [sharedFloat32(13), sharedInt8(7), sharedFloat32(100_000)] as const); // c grows it
    for (const v of [a, b, c]) {
      assert.ok(v.buffer instanceof SharedArrayBuffer);
      assert.equal(arenaAddress(v) % 16, 0);
      assert.ok(v.every((e) => e === 0));
    }
    a.fill(1.5);
    b.fill(-3);
    c.fill(2.5);
    assert.ok(a.every((e) => e === 1.5) && b.every((e) => e === -3) && c.every((e) => e === 2.5));
    assert.ok(arenaAddress(b) >= arenaAddress(a) + a.byteLength);
    assert.ok(arenaAddress(c) >= arenaAddress(b) + b.byteLength);
    const view = new Float32Array(memory.buffer, arenaAddress(c), c.length);
    assert.equal(view[99_999], 2.5);
  });

  it('recognises views into the arena and nothing else', () => {
    const a = arenaFloats(10);
    assert.equal(arenaAddress(a.subarray(3)), arenaAddress(a) + 12);
    assert.equal(arenaAddress(new Float32Array(new SharedArrayBuffer(16))), -1);
    assert.equal(arenaAddress(new Float32Array(4)), -1);
    const copied = withArenaAllocation(() => toSharedFloat32(Float32Array.of(1, 2, 3)));
    assert.ok(arenaAddress(copied) >= 0);
    assert.deepEqual(Array.from(copied), [1, 2, 3]);
  });

  it('outside withArenaAllocation gives each array a SharedArrayBuffer of its own', () => {
    const a = sharedFloat32(5);
    assert.ok(a.buffer instanceof SharedArrayBuffer);
    assert.equal(a.buffer.byteLength, 20);
    assert.equal(arenaAddress(a), -1);
    assert.throws(() => withArenaAllocation(() => {
      throw new Error('boom');
    }), /boom/);
    assert.equal(arenaAddress(sharedFloat32(3)), -1, 'the scope ends even when fn throws');
  });
});
