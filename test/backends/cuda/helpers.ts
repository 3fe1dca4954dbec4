/** Random quantized layers and activations for the CUDA tests (never zeros). */
import { packWeights } from '../../../src/quant/int4-pack.js';
import type { QuantizedLinear } from '../../../src/quant/types.js';

/** xorshift32, deterministic per seed. */
export function rng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** A random integer-scale layer of wBits-bit weights: q in [-2^(wBits-1), 2^(wBits-1)), S in [sLo, sHi], α = 2^alphaLog2, scales = S/α. */
function randomIntScaleLayer(wBits: 4 | 8, n: number, k: number, g: number, seed: number, sLo: number, sHi: number, alphaLog2: number): QuantizedLinear {
  const r = rng(seed);
  const q = new Int8Array(n * k);
  for (let i = 0; i < q.length; i++) q[i] = Math.floor(r() * 2 ** wBits) - 2 ** (wBits - 1);
  const groups = k / g;
  const intScales = new Int32Array(n * groups);
  const scales = new Float32Array(n * groups);
  for (let i = 0; i < intScales.length; i++) {
    intScales[i] = sLo + Math.floor(r() * (sHi - sLo + 1));
    scales[i] = intScales[i]! / 2 ** alphaLog2;
  }
  return { kind: 'quantized', n, k, groupSize: g, wBits, aBits: 8, packed: packWeights(q, n, k, wBits), scale: 'int', scales, intScales, alphaLog2 };
}

/** A random 4-bit integer-scale layer: q in [-8, 7], S in [sLo, sHi], α = 2^alphaLog2, scales = S/α. */
export function randomW4Layer(n: number, k: number, g: number, seed: number, sLo = 1, sHi = 300, alphaLog2 = 10): QuantizedLinear {
  return randomIntScaleLayer(4, n, k, g, seed, sLo, sHi, alphaLog2);
}

/** A random 8-bit integer-scale layer: q in [-128, 127], S in [sLo, sHi], α = 2^alphaLog2, scales = S/α. */
export function randomW8Layer(n: number, k: number, g: number, seed: number, sLo = 1, sHi = 100, alphaLog2 = 10): QuantizedLinear {
  return randomIntScaleLayer(8, n, k, g, seed, sLo, sHi, alphaLog2);
}

/** The same layer with float scales (random, not tied to integers). */
export function withFloatScales(w: QuantizedLinear, seed: number): QuantizedLinear {
  const r = rng(seed);
  const scales = new Float32Array(w.scales.length);
  for (let i = 0; i < scales.length; i++) scales[i] = Math.fround(0.001 + r() * 0.05);
  return { ...w, scale: 'float', scales, intScales: undefined, alphaLog2: undefined };
}

/** Random activations with per-row magnitudes that differ by orders of magnitude, some outliers. */
export function randomActivations(m: number, k: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(m * k);
  for (let row = 0; row < m; row++) {
    const mag = 10 ** (r() * 4 - 2);
    for (let i = 0; i < k; i++) x[row * k + i] = (r() * 2 - 1) * mag * (r() < 0.01 ? 20 : 1);
  }
  return x;
}
