/**
 * One decode-step attention call alone (ops.attention: the cache write, then every head's row on the
 * pool), as a decode step makes it: 1 new token at position --pos, over --layers distinct caches
 * taken in turn (16 by default, so that, as in a step, the keys and values come from memory, not
 * from the cache of the previous call). The caches come from the CPU backend (cpuBackend.layerCache),
 * so the bench times whatever kernel a build runs for them; --js puts them outside the arena, which
 * forces the JS row kernel in builds that have the WASM one.
 *
 *   npx tsc -p . && node dist/bench/cpu-attention.js [--heads 16] [--kv-heads 16] [--dim 128] [--pos 160]
 *     [--layers 16] [--rounds 200] [--js] [--q-scale 1]
 * --q-scale s multiplies the query (s ≫ 1: peaked softmaxes, most weights tiny or subnormal, as with random weights).
 * Prints the median µs a call (over rounds; each round times all layers once) and its quartiles.
 */
import { cpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { attention } from '../src/backends/cpu/ops.js';
import { defaultThreadCount } from '../src/backends/cpu/pool/index.js';
import type { LayerKvCache } from '../src/model/backend.js';
import { sharedFloat32 } from '../src/tensor/shared.js';
import { benchArgs, positiveNumber } from './args.js';
import { machineLine, median, percentile } from './stats.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    heads: { type: 'string', default: '16' }, 'kv-heads': { type: 'string', default: '16' }, dim: { type: 'string', default: '128' },
    pos: { type: 'string', default: '160' }, layers: { type: 'string', default: '16' }, rounds: { type: 'string', default: '200' },
    js: { type: 'boolean', default: false }, 'q-scale': { type: 'string', default: '1' },
  },
});
const [H, KVH, D, pos, L, rounds] = [values.heads, values['kv-heads'], values.dim, values.pos, values.layers, values.rounds].map(Number) as
  [number, number, number, number, number, number];

let seed = 12345;
const random = (n: number, into = sharedFloat32(n)): Float32Array => {
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    into[i] = seed / 2 ** 32 - 0.5;
  }
  return into;
};
const kvDim = KVH * D;
const caches: LayerKvCache[] = Array.from({ length: L }, () => {
  const c = values.js ? { keys: sharedFloat32((pos + 1) * kvDim), values: sharedFloat32((pos + 1) * kvDim), capacity: pos + 1 } : cpuBackend.layerCache(pos + 1, kvDim);
  random(c.keys.length, c.keys);
  random(c.values.length, c.values);
  return c;
});
const q = random(H * D), k = random(kvDim), v = random(kvDim);
for (let i = 0; i < q.length; i++) q[i] *= positiveNumber('q-scale', values['q-scale']!);
const shape = { numHeads: H, numKvHeads: KVH, headDim: D, slidingWindow: null };

let check = 0;
const perCall: number[] = [];
for (let r = 0; r < rounds + 5; r++) {
  const t0 = performance.now();
  for (const c of caches) check += attention(q, k, v, 1, pos, c, shape)[0]!;
  if (r >= 5) perCall.push((1000 * (performance.now() - t0)) / L);
}
const sorted = [...perCall].sort((a, b) => a - b);
console.log(machineLine(defaultThreadCount()));
console.log(`attention: ${H}/${KVH} heads of ${D}, 1 token at position ${pos}, ${L} caches in turn, ${rounds} rounds, query ×${values['q-scale']}${values.js ? ', caches outside the arena (--js)' : ''}`);
console.log(`µs a call: median ${median(perCall).toFixed(1)} (quartiles ${percentile(sorted, 0.25).toFixed(1)} .. ${percentile(sorted, 0.75).toFixed(1)}); check ${check.toPrecision(8)}`);
