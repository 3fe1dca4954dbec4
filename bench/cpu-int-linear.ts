/**
 * Rough single-thread speed of the CPU quantized linear kernels on a 4096×4096 layer.
 * Run: npx tsc -p . && node dist/bench/cpu-int-linear.js [M ...]
 * Prints machine, shapes, repetitions and the median time; GOPS counts 2·M·N·K operations.
 * Activation quantization is timed separately (it is not part of the A8 kernel).
 */
import os from 'node:os';
import { intLinearRows, weightOnlyLinearRows } from '../src/backends/cpu/int-linear.js';
import { quantizeActivations } from '../src/quant/activation-quant.js';
import { quantizeLinear } from '../src/quant/quantize-linear.js';
import type { QuantSpec } from '../src/quant/types.js';

const N = 4096;
const K = 4096;
const G = 128;

let seed = 12345;
function random(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32 - 0.5;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(reps: number, fn: () => void): number {
  fn(); // warm-up (JIT)
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}

const specs: Record<string, QuantSpec> = {
  'W4A8 int scale': { wBits: 4, aBits: 8, groupSize: G, scale: 'int', alpha: { kind: 'fixed', log2: 10 } },
  'W4A8 float scale': { wBits: 4, aBits: 8, groupSize: G, scale: 'float', alpha: { kind: 'fixed', log2: 10 } },
  'W4A16': { wBits: 4, aBits: 16, groupSize: G, scale: 'float', alpha: { kind: 'fixed', log2: 10 } },
};

const ms = process.argv.slice(2).map(Number);
const tokenCounts = ms.length > 0 ? ms : [1, 64];
console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'} (${os.cpus().length} cores), node ${process.version}, 1 thread`);
console.log(`layer: N=${N} K=${K} G=${G}`);

const w = new Float32Array(N * K).map(() => random() * 0.05);
const layers = Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, quantizeLinear({ kind: 'float', n: N, k: K, w }, spec)]));

for (const M of tokenCounts) {
  const x = new Float32Array(M * K).map(() => random() * 4);
  const out = new Float32Array(M * N);
  const reps = M === 1 ? 21 : 5;
  const act = quantizeActivations(x, M, K);
  const tq = time(reps, () => quantizeActivations(x, M, K, act));
  console.log(`M=${M}: activation quantization ${tq.toFixed(3)} ms (median of ${reps})`);
  for (const [name, layer] of Object.entries(layers)) {
    const t = time(reps, () => (layer.aBits === 8 ? intLinearRows(act, layer, out, 0, N) : weightOnlyLinearRows(x, M, layer, out, 0, N)));
    const gops = (2 * M * N * K) / (t * 1e6);
    console.log(`  ${name.padEnd(17)} M=${M} N=${N} K=${K}: median ${t.toFixed(2)} ms over ${reps} reps, ${gops.toFixed(2)} GOPS`);
  }
}
