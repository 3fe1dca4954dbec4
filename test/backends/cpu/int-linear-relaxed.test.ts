import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { intLinear, type IntLinearOptions } from '../../../src/backends/cpu/int-linear.js';
import { prepareIntLinearWasm } from '../../../src/backends/cpu/int-linear-prepared.js';
import { referenceLinear } from '../../../src/backends/cpu/int-linear-reference.js';
import { relaxedIntLinearAvailable, w4a8KernelLine } from '../../../src/backends/cpu/int-linear-wasm-kernel.js';
import { buildIntLinearRelaxedWasmModule, relaxedActivationByte } from '../../../src/backends/cpu/int-linear-wasm-module.js';
import { usesRelaxedKernel } from '../../../src/backends/cpu/int-linear-wasm.js';
import { int16ArenaAddresses, quantizeInt16Rows, type Int16ActivationArgs } from '../../../src/backends/cpu/int-activation-rows.js';
import { CpuPool } from '../../../src/backends/cpu/pool/index.js';
import { activationScale, quantizeActivation } from '../../../src/quant/activation-quant.js';
import { quantizeLinear } from '../../../src/quant/quantize-linear.js';
import type { QuantSpec } from '../../../src/quant/types.js';
import { sharedFloat32, sharedUint8, withArenaAllocation } from '../../../src/tensor/shared.js';
import { assertBitEqual } from '../../helpers/compare.js';
import { freshSeed, makeRng, randomNormals } from '../../helpers/random.js';

// The relaxed-SIMD W4 kernel (int-linear-wasm-module.ts) runs where the runtime compiles relaxed SIMD
// (Node 22 on); elsewhere these tests skip with the reason, and the int16 kernel's tests cover the layers.
const compiles = WebAssembly.validate(buildIntLinearRelaxedWasmModule(1));
const skip = process.env['INTSCALE_ARENA'] === '0' ? 'the shared arena is turned off (INTSCALE_ARENA=0)'
  : process.env['INTSCALE_RELAXED_SIMD'] === '0' ? 'relaxed SIMD turned off (INTSCALE_RELAXED_SIMD=0)'
    : !compiles ? `this runtime (Node ${process.versions.node}) does not compile relaxed SIMD (Node 22 and later do)` : false;
const pool = new CpuPool({ threads: 3 });
after(() => pool.close());
const PATHS: Record<string, IntLinearOptions> = {
  wasm: { kernel: 'wasm', pool: null },
  'wasm 3 threads': { kernel: 'wasm', pool, minMacsPerThread: 0 },
};


test('a runtime that compiles relaxed SIMD passes the self-test, so W4 layers take the relaxed kernel', { skip }, () => {
  assert.equal(relaxedIntLinearAvailable(), true);
});

test('the kernel line names the W4A8 kernel this process runs, and for the int16 one why', () => {
  const line = w4a8KernelLine();
  if (relaxedIntLinearAvailable()) assert.match(line, /relaxed SIMD \(i32x4\.relaxed_dot_i8x16_i7x16_add_s\)/);
  else if (process.env['INTSCALE_ARENA'] !== '0') assert.match(line, /int16.*(INTSCALE_RELAXED_SIMD=0|is not compiled by Node|failed its self-test on Node)/);
});

test('the relaxed W4 kernel equals the reference: IS and FS, groups of 32 to 256, 1 to 17 tokens, odd channel counts, bias, threads', { skip }, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  let cases = 0;
  for (const scale of ['int', 'float'] as const) {
    for (const [k, groupSize] of [[64, 32], [192, 64], [256, 128], [512, 256], [96, 32]] as const) {
      for (const m of [1, 2, 3, 4, 5, 8, 9, 17]) {
        const n = rng.int(1, 45);
        const alpha = rng.uniform() < 0.5 ? { kind: 'safe', maxLog2: 12 } as const : { kind: 'heuristic' } as const;
        const spec: QuantSpec = { wBits: 4, aBits: 8, groupSize, scale, alpha };
        const bias = rng.uniform() < 0.5 ? randomNormals(rng, n, 0.2) : undefined;
        const layer = quantizeLinear({ kind: 'float', n, k, w: randomNormals(rng, n * k, 0.04), ...(bias ? { bias } : {}) }, spec);
        const p = prepareIntLinearWasm(layer, true);
        assert.ok(usesRelaxedKernel(p), `W4 ${scale} G=${groupSize} runs on the relaxed kernel`);
        const x = randomNormals(rng, m * k, 2);
        if (m > 1) x.fill(0, k, 2 * k); // an all-zero token: its row and corrections are zeros
        for (let i = 0; i < m * k; i += 37) x[i] = 1e3 * (rng.uniform() - 0.5); // outliers: activations at ±127
        const what = `seed ${seed} W4 ${scale} M=${m} N=${n} K=${k} G=${groupSize}${bias ? ' bias' : ''}`;
        const expected = referenceLinear(x, m, layer);
        for (const [path, options] of Object.entries(PATHS)) assertBitEqual(intLinear(x, m, layer, undefined, options), expected, `${what} ${path}`);
        cases++;
      }
    }
  }
  assert.equal(cases, 2 * 5 * 8);
});

test('the relaxed activation rows: per group [−8·Σq, 0, 0, 0] then blocks of 32 int8, the even inputs then the odd', { skip }, () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [m, k, G] = [5, 256, 64];
  const gc = k / G;
  const rowBytes = gc * (16 + G);
  const x = withArenaAllocation(() => sharedFloat32(m * k));
  x.set(randomNormals(rng, m * k, 1));
  x.fill(0, 2 * k, 3 * k); // an all-zero row
  const bytes = withArenaAllocation(() => sharedUint8(m * rowBytes));
  bytes.fill(0xaa);
  const x16 = new Int16Array(bytes.buffer, bytes.byteOffset, (m * rowBytes) / 2);
  const scales = withArenaAllocation(() => sharedFloat32(m));
  const none = new Float32Array(0);
  const args: Int16ActivationArgs = {
    x, x16, scales, slots: new Int32Array(G), k, groupSize: G, groupCount: gc, groupPadded: G, rowLength: rowBytes / 2, bits: 4, relaxed: 1,
    stage: none, ...int16ArenaAddresses(x, x16, scales, none, m, k),
  };
  quantizeInt16Rows(args, 0, 2);
  quantizeInt16Rows(args, 2, m); // two calls, as two pool threads would split the rows
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let r = 0; r < m; r++) {
    const a = activationScale(x, r * k, k);
    assert.equal(scales[r], a, `seed ${seed} row ${r} scale`);
    for (let g = 0; g < gc; g++) {
      const at = r * rowBytes + g * (16 + G);
      let sum = 0;
      for (let i = 0; i < G; i++) {
        const q = a === 0 ? 0 : quantizeActivation(x[r * k + g * G + i]!, a);
        sum += q;
        const slot = at + 16 + relaxedActivationByte(i);
        assert.equal(view.getInt8(slot), q + 0, `seed ${seed} row ${r} group ${g} input ${i}`);
      }
      assert.deepEqual([0, 4, 8, 12].map((o) => view.getInt32(at + o, true)), [-8 * sum + 0, 0, 0, 0], `seed ${seed} row ${r} group ${g} correction`);
    }
  }
});

test('layers the relaxed kernel does not serve keep the int16 kernel: W8, padded groups, unproven IS', { skip }, () => {
  const rng = makeRng(freshSeed());
  const make = (wBits: 4 | 8, k: number, groupSize: number) => quantizeLinear({ kind: 'float', n: 4, k, w: randomNormals(rng, 4 * k, 0.05) },
    { wBits, aBits: 8, groupSize, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } });
  assert.equal(usesRelaxedKernel(prepareIntLinearWasm(make(8, 128, 64), true)), false, 'W8');
  assert.equal(usesRelaxedKernel(prepareIntLinearWasm(make(4, 120, 40), true)), false, 'groups of 40 (padded to 64)');
  assert.equal(usesRelaxedKernel(prepareIntLinearWasm(make(4, 128, 64), false)), false, 'IS without the overflow proof (is-checked)');
  assert.equal(usesRelaxedKernel(prepareIntLinearWasm(make(4, 128, 64), true)), true, 'W4 IS proved, groups of 64');
});
