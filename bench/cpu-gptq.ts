/**
 * GPTQ's CPU cost (#25): the factor of H⁻¹ (upperCholeskyOfInverse: one reversed Cholesky and one
 * triangular inverse, n³/3 multiply-adds in float64) at each --sizes n, on a random SPD H (n + 64
 * random rows), serial, split over the CPU pool (same bits, checked) and blocked on the float32 matmul
 * (its largest difference from the serial factor), with a sampled check of
 * UᵀUH = I; and one whole GPTQ layer [--layer N,K] (W4A8 g128 IS, 256 random calibration tokens,
 * the blocked factor, the CPU matmul lazy update); and the Hessian's accumulation [--hessian K,TOKENS]
 * in batches of 512 tokens, float64 JS against the CPU matmul (hessianProductMatmul). Random data:
 * speed only.
 *
 *   node dist/bench/cpu-gptq.js [--sizes 1024,2048] [--layer 2048,2048] [--hessian 4096,1024]
 *   node dist/bench/cpu-gptq.js --blocked-sizes 4096,11008   (only the blocked factor, at a 7B's sizes)
 */
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { SERIAL_KERNELS, upperCholeskyOfInverse, type TriangularKernels } from '../src/quant/methods/cholesky.js';
import { blockedTriangularKernels, poolTriangularKernels } from '../src/backends/cpu/triangular.js';
import { DEFAULT_GPTQ, gptqFactor, gptqQuantizeLinear } from '../src/quant/methods/gptq.js';
import { HessianAccumulator, JS_HESSIAN_PRODUCT, type HessianProduct } from '../src/quant/methods/hessian.js';
import { gptqKernelsCpu, hessianProductMatmul } from '../src/quantize/gptq-products.js';
import { DEFAULT_SPEC } from '../src/quantize/recipe.js';
import { benchArgs, positiveIntTuple, positiveInts } from './args.js';
import { machineLine } from './stats.js';

const { values } = benchArgs(import.meta.url, { options: {
  sizes: { type: 'string', default: '1024,2048' }, layer: { type: 'string', default: '2048,2048' }, hessian: { type: 'string', default: '4096,1024' },
  'blocked-sizes': { type: 'string' },
} });
console.log(`# ${machineLine(cpuPool().threads)}; random data (speed only)`);

let seed = 7;
const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;

// --blocked-sizes: only the blocked factor (what GPTQ runs), up to 7B sizes, on a diagonally dominant random H
if (values['blocked-sizes'] !== undefined) {
  for (const n of positiveInts('blocked-sizes', values['blocked-sizes'])) {
    const h = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) h[i * n + j] = h[j * n + i] = rnd() * 0.01;
    for (let i = 0; i < n; i++) h[i * n + i] = n * 0.01 + 1;
    const t0 = performance.now();
    if (!upperCholeskyOfInverse(h, n, blockedTriangularKernels()).ok) throw new Error(`n ${n}: not positive definite`);
    console.log(`blocked factor of H⁻¹, n ${n}: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  }
  process.exit(0);
}

for (const n of positiveInts('sizes', values.sizes!)) {
  const t = n + 64, x = Float64Array.from({ length: t * n }, rnd), h = new Float64Array(n * n);
  for (let r = 0; r < t; r++) {
    const o = r * n;
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) h[i * n + j] += x[o + i]! * x[o + j]!;
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) h[j * n + i] = h[i * n + j]!;
  const timed = (kernels: TriangularKernels) => {
    const t0 = performance.now();
    const f = upperCholeskyOfInverse(h, n, kernels);
    if (!f.ok) throw new Error(`n ${n}: not positive definite`);
    return { u: f.u, seconds: (performance.now() - t0) / 1000 };
  };
  const serial = timed(SERIAL_KERNELS), pooled = timed(poolTriangularKernels()), blocked = timed(blockedTriangularKernels());
  let off = 0, scale = 0;
  for (let i = 0; i < n * n; i++) {
    off = Math.max(off, Math.abs(blocked.u[i]! - serial.u[i]!));
    scale = Math.max(scale, Math.abs(serial.u[i]!));
  }
  const same = serial.u.every((v, i) => v === pooled.u[i]);
  const f = pooled;
  let worst = 0;
  for (const i of [0, 1, n >> 1, n - 1]) {
    for (const j of [0, n >> 2, n - 1]) {
      let v = 0;
      for (let m = 0; m < n; m++) {
        let hinv = 0;
        for (let p = 0; p <= Math.min(i, m); p++) hinv += f.u[p * n + i]! * f.u[p * n + m]!;
        v += hinv * h[m * n + j]!;
      }
      worst = Math.max(worst, Math.abs(v - (i === j ? 1 : 0)));
    }
  }
  console.log(`factor of H⁻¹, n ${n}: ${serial.seconds.toFixed(2)} s serial, ${pooled.seconds.toFixed(2)} s on the pool (${cpuPool().threads} threads; ${same ? 'same bits' : 'DIFFERENT BITS'}); sampled |UᵀUH − I| max ${worst.toExponential(2)}; blocked on the float32 matmul ${blocked.seconds.toFixed(2)} s (${(pooled.seconds / blocked.seconds).toFixed(1)}x the pool; max |ΔU| ${(off / scale).toExponential(2)} of max |U|)`);
}

const [n, k] = positiveIntTuple('layer', values.layer!, ['n', 'k']) as [number, number];
const w = { kind: 'float' as const, n, k, w: Float32Array.from({ length: n * k }, () => rnd() * 0.05) };
const acc = new HessianAccumulator(k);
acc.add(Float32Array.from({ length: 256 * k }, rnd), 256);
const h = acc.hessian();
const t0 = performance.now();
const r = gptqQuantizeLinear(w, gptqFactor(h, k, DEFAULT_GPTQ, 'bench', blockedTriangularKernels()), DEFAULT_SPEC, DEFAULT_GPTQ, 'bench', gptqKernelsCpu());
console.log(`GPTQ layer ${n}x${k} (W4A8 g128 IS, 256 tokens, matmul lazy update): ${((performance.now() - t0) / 1000).toFixed(1)} s (α 2^${r.layer.alphaLog2})`);

const [hk, tokens] = positiveIntTuple('hessian', values.hessian!, ['k', 'tokens']) as [number, number];
const batch = Float32Array.from({ length: 512 * hk }, rnd);
const accumulate = (product: HessianProduct): number => {
  const a = new HessianAccumulator(hk, product);
  const t = performance.now();
  for (let done = 0; done < tokens; done += 512) a.add(batch, Math.min(512, tokens - done));
  return (performance.now() - t) / 1000;
};
const macs = (hk * hk * tokens) / 2;
const [js, fast] = [accumulate(JS_HESSIAN_PRODUCT), accumulate(hessianProductMatmul())];
console.log(`Hessian of ${hk} inputs over ${tokens} tokens (batches of 512): float64 JS ${js.toFixed(1)} s (${(macs / js / 1e9).toFixed(2)} GMAC/s), CPU matmul ${fast.toFixed(1)} s (${(macs / fast / 1e9).toFixed(1)} GMAC/s, ${(js / fast).toFixed(1)}x)`);
process.exit(0);
