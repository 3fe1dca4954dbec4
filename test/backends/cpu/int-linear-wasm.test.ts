import assert from 'node:assert/strict';
import { packWeights } from '../../../src/quant/int4-pack.js';
import { after, test } from 'node:test';
import { intLinear, prepareIntLinear, type IntLinearOptions } from '../../../src/backends/cpu/int-linear.js';
import { prepareIntLinearWasm, releaseIntLinearWasm } from '../../../src/backends/cpu/int-linear-prepared.js';
import { arenaAddress, sharedFloat32, withArenaAllocation } from '../../../src/tensor/shared.js';
import { referenceLinear } from '../../../src/backends/cpu/int-linear-reference.js';
import { wasmIntLinearAvailable } from '../../../src/backends/cpu/int-linear-wasm-kernel.js';
import { CpuPool } from '../../../src/backends/cpu/pool/index.js';
import { quantizeLinear } from '../../../src/quant/quantize-linear.js';
import type { QuantizedLinear, QuantSpec, WeightBits } from '../../../src/quant/types.js';
import { assertBitEqual } from '../../helpers/compare.js';
import { freshSeed, makeRng, randomNormals } from '../../helpers/random.js';

const skip = process.env['INTSCALE_ARENA'] === '0' ? 'the shared arena is turned off (INTSCALE_ARENA=0)' : false;
const pool = new CpuPool({ threads: 3 });
after(() => pool.close());
const PATHS: Record<string, IntLinearOptions> = {
  wasm: { kernel: 'wasm', pool: null },
  'wasm 3 threads': { kernel: 'wasm', pool, minMacsPerThread: 0 },
};


test('the WASM SIMD kernel is available (shared arena + SIMD) and layers are prepared into the arena', { skip }, () => {
  assert.ok(wasmIntLinearAvailable());
  const rng = makeRng(freshSeed());
  const w = quantizeLinear({ kind: 'float', n: 4, k: 64, w: randomNormals(rng, 256, 0.05) }, { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } });
  const p = prepareIntLinearWasm(w, true);
  assert.ok(p.wAddress > 0 && p.scAddress > 0);
  assert.equal(p.mode, 'is');
  assert.equal(p.weights.length, 4 * 64 / 2);
  assert.equal(prepareIntLinearWasm(w, false).mode, 'is-checked', 'the mode follows the proof the backend passes');
});

test('WASM and threaded paths equal the reference on padded groups, odd shapes, both bit widths and scales, bias', { skip }, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  let cases = 0;
  for (const wBits of [4, 8] as WeightBits[]) {
    for (const scale of ['int', 'float'] as const) {
      for (const [k, groupSize] of [[200, 40], [72, 24], [100, 0], [320, 160], [48, 16], [8, 8]] as const) {
        for (const m of [1, 2, 5, 9]) {
          const n = rng.int(1, 41);
          const alpha = rng.uniform() < 0.5 ? { kind: 'safe', maxLog2: 12 } as const : { kind: 'heuristic' } as const;
          const spec: QuantSpec = { wBits, aBits: 8, groupSize, scale, alpha };
          const w = randomNormals(rng, n * k, 0.04);
          const bias = rng.uniform() < 0.5 ? randomNormals(rng, n, 0.2) : undefined;
          const layer = quantizeLinear({ kind: 'float', n, k, w, ...(bias ? { bias } : {}) }, spec);
          const x = randomNormals(rng, m * k, 2);
          if (rng.uniform() < 0.2) x.fill(0, 0, k); // an all-zero token
          const what = `seed ${seed} W${wBits} ${scale} M=${m} N=${n} K=${k} G=${groupSize}${bias ? ' bias' : ''}`;
          let expected: Float32Array | Error;
          try {
            expected = referenceLinear(x, m, layer);
          } catch (e) {
            expected = e as Error;
          }
          for (const [path, options] of Object.entries(PATHS)) {
            if (expected instanceof Error) assert.throws(() => intLinear(x, m, layer, undefined, options), { message: expected.message }, `${what} ${path}`);
            else assertBitEqual(intLinear(x, m, layer, undefined, options), expected, `${what} ${path}`);
          }
          cases++;
        }
      }
    }
  }
  assert.equal(cases, 2 * 2 * 6 * 4);
});

test('a prefill-sized product on 3 threads (the activations\' quantization and the result\'s copy split over the pool by rows, shared x and out) equals the reference', { skip }, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [m, k, n] = [70, 512, 2101];
  for (const wBits of [4, 8] as WeightBits[]) {
    const spec: QuantSpec = { wBits, aBits: 8, groupSize: 128, scale: 'int', alpha: { kind: 'safe', maxLog2: 12 } };
    const layer = quantizeLinear({ kind: 'float', n, k, w: randomNormals(rng, n * k, 0.04) }, spec);
    const x = sharedFloat32(m * k);
    x.set(randomNormals(rng, m * k, 2));
    x.fill(0, 3 * k, 4 * k); // an all-zero token
    const out = sharedFloat32(m * n);
    intLinear(x, m, layer, out, { kernel: 'wasm', pool });
    assertBitEqual(out, referenceLinear(x, m, layer), `seed ${seed} W${wBits} M=${m} N=${n} K=${k}`);
  }
});

test('a prepared layer runs many times bit for bit; an arena layer is read in place; a released copy is reused, not leaked', { skip }, () => {
  const rng = makeRng(freshSeed());
  const spec: QuantSpec = { wBits: 4, aBits: 8, groupSize: 64, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };
  const make = () => quantizeLinear({ kind: 'float', n: 64, k: 256, w: randomNormals(rng, 64 * 256, 0.05) }, spec);
  const x = randomNormals(rng, 3 * 256, 1);
  const layer = make();
  const prepared = prepareIntLinear(layer);
  assert.equal(prepared.kernel, 'wasm');
  const expected = referenceLinear(x, 3, layer);
  for (let call = 0; call < 5; call++) assertBitEqual(prepared.run(x, 3, undefined, { pool, minMacsPerThread: 0 }), expected, `call ${call}`);
  prepared.release();

  // a layer outside the arena is copied in once; releasing the copy gives its blocks to the next layer of the same shape
  const first = prepareIntLinearWasm(make(), true);
  assert.ok(!first.inPlace && first.wAddress > 0);
  releaseIntLinearWasm(first);
  const second = prepareIntLinearWasm(make(), true);
  assert.equal(second.wAddress, first.wAddress, 'the released weight block is reused');
  assert.equal(second.scAddress, first.scAddress, 'the released scale block is reused');
  releaseIntLinearWasm(second);

  // a layer made in the arena (as the loader reads a checkpoint) is read where it is
  const inArena = withArenaAllocation(make);
  const p = prepareIntLinearWasm(inArena, true);
  assert.ok(p.inPlace);
  assert.equal(p.wAddress, arenaAddress(inArena.packed));
});

test('an unproven layer overflowing on several outputs throws the reference error (first token, then channel), also threaded', { skip }, () => {
  const n = 6;
  const k = 64;
  const S = Int32Array.from({ length: n * 2 }, (_, i) => (Math.floor(i / 2) % 3 === 1 ? 40000 : 3));
  const layer: QuantizedLinear = {
    kind: 'quantized', n, k, groupSize: 32, wBits: 4, aBits: 8, packed: packWeights(new Int8Array(n * k).fill(-8), n, k, 4), scale: 'int',
    scales: Float32Array.from(S, (s) => s / 1024), intScales: S, alphaLog2: 10,
  };
  // token 0 is mild (no overflow), tokens 1 and 2 are extreme: the first overflow is (1, 1)
  const x = new Float32Array(3 * k);
  for (let i = 0; i < k; i++) x[i] = i % 2 === 0 ? 1 : -1;
  x.fill(-3, k);
  assert.throws(() => referenceLinear(x, 3, layer), /token 1, output channel 1:/);
  let message = '';
  try {
    referenceLinear(x, 3, layer);
  } catch (e) {
    message = (e as Error).message;
  }
  for (const [path, options] of Object.entries(PATHS)) {
    assert.throws(() => intLinear(x, 3, layer, undefined, options), (e: unknown) => e instanceof RangeError && e.message === message, path);
  }
});
