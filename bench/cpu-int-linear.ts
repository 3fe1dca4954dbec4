/**
 * CPU quantized linear bench: y[M, N] = x[M, K] · W'[N, K]ᵀ through a layer prepared once
 * (prepareIntLinear, as a backend holds it; activation quantization included), W4A8 g128 with integer scale (IS) and float scale (FS), K = N ∈ {2048,
 * 4096}, M ∈ {1, 8, 64}: the plain-JS kernel (1 thread) vs the WASM SIMD kernel on 1 thread and on
 * the whole pool, all in one run on the same layers and inputs. Ratios: WASM 1 thread over JS,
 * WASM all threads over WASM 1 thread, and FS time over IS time (WASM, all threads).
 *
 *   npx tsc -p . && node dist/bench/cpu-int-linear.js [--quick] [--w8] [--json]
 *   INTSCALE_THREADS=4 node dist/bench/cpu-int-linear.js
 * --quick: K = N = 2048 only, shorter budgets; --w8: W8A8 layers instead of W4A8; --json: one JSON object { notes, rows }.
 */
import { prepareIntLinear, type IntLinearOptions } from '../src/backends/cpu/int-linear.js';
import { CpuPool, defaultThreadCount } from '../src/backends/cpu/pool/index.js';
import { quantizeLinear } from '../src/quant/quantize-linear.js';
import type { QuantizedLinear, QuantSpec } from '../src/quant/types.js';

import { benchArgs } from './args.js';
import { machineLine, median, benchOutput } from './stats.js';

const { values } = benchArgs(import.meta.url, {
  options: { quick: { type: 'boolean', default: false }, w8: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
});
const quick = values.quick;
const wBits = values.w8 ? 8 : 4;
const SIZES = quick ? [2048] : [2048, 4096];
const TOKENS = [1, 8, 64];
const G = 128;
const BUDGET_MS = quick ? 300 : 1000;
const MIN_REPS = 3;
const MAX_REPS = 300;

let seed = 12345;
function random(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32 - 0.5;
}

/**
 * Best (least disturbed) ms of fn over repetitions that fit the budget, after one warm-up call: on a
 * machine shared with other work the minimum is the stable figure, the median is printed beside it.
 */
const medians: number[] = [];
const bestTimes: number[] = [];
function timeIt(fn: () => void): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < MIN_REPS || (times.length < MAX_REPS && performance.now() - start < BUDGET_MS)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  medians.push(median(times));
  bestTimes.push(Math.min(...times));
  return Math.min(...times);
}

const spec = (scale: 'int' | 'float'): QuantSpec => ({ wBits, aBits: 8, groupSize: G, scale, alpha: { kind: 'safe', maxLog2: 10 } });

const threads = defaultThreadCount();
const pool = new CpuPool({ threads });
pool.waitUntilReady();
const one: IntLinearOptions = { kernel: 'wasm', pool: null };
const all: IntLinearOptions = { kernel: 'wasm', pool };
const js: IntLinearOptions = { kernel: 'js', pool: null };

const report = benchOutput(values.json);
report.say(machineLine(threads));
report.say(`W${wBits}A8 g${G}, α ≤ 2^10 (safe); times are calls of a layer prepared once (activation quantization included), best ms of the repetitions\n`);

const rows: Record<string, string | number>[] = [];
for (const size of SIZES) {
  const N = size;
  const K = size;
  const w = new Float32Array(N * K).map(() => random() * 0.05);
  const layers: Record<string, QuantizedLinear> = {
    IS: quantizeLinear({ kind: 'float', n: N, k: K, w }, spec('int')),
    FS: quantizeLinear({ kind: 'float', n: N, k: K, w }, spec('float')),
  };
  // prepared once, as a backend holds them (intLinear alone would lay the weights out on every call)
  const prepared = Object.fromEntries(Object.entries(layers).map(([name, layer]) =>
    [name, { js: prepareIntLinear(layer, { kernel: 'js' }), wasm: prepareIntLinear(layer, { kernel: 'wasm' }) }]));
  for (const M of TOKENS) {
    const x = new Float32Array(M * K).map(() => random() * 4);
    const out = new Float32Array(M * N);
    const t: Record<string, number> = {};
    for (const [name, p] of Object.entries(prepared)) {
      t[`${name} js`] = timeIt(() => p.js.run(x, M, out, js));
      t[`${name} wasm1`] = timeIt(() => p.wasm.run(x, M, out, one));
      t[`${name} wasm${threads}`] = timeIt(() => p.wasm.run(x, M, out, all));
    }
    const fix = (v: number) => Number(v.toFixed(3));
    for (const name of Object.keys(layers)) {
      const wasmAll = t[`${name} wasm${threads}`]!;
      rows.push({
        layer: `${name} N=K=${size}`,
        M,
        'js 1T ms': fix(t[`${name} js`]!),
        'wasm 1T ms': fix(t[`${name} wasm1`]!),
        [`wasm ${threads}T ms`]: fix(wasmAll),
        'js/wasm 1T': fix(t[`${name} js`]! / t[`${name} wasm1`]!),
        [`1T/${threads}T`]: fix(t[`${name} wasm1`]! / wasmAll),
        [`GMAC/s ${threads}T`]: fix((M * N * K) / (wasmAll * 1e6)),
        [`FS/IS ${threads}T`]: name === 'FS' ? fix(wasmAll / t[`IS wasm${threads}`]!) : '',
      });
    }
  }
  for (const p of Object.values(prepared)) {
    p.js.release();
    p.wasm.release();
  }
}
report.table(rows);
report.say(`median/best over all measurements: ${(median(medians.map((m, i) => m / bestTimes[i]!))).toFixed(2)} (1.00 = a quiet machine)`);
pool.close();
