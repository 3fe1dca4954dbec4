/**
 * The CPU backend's elementwise and attention kernels (plain loops; the matmuls, where the time
 * goes, live in matmul.ts and int-linear.ts). Row-major float32 throughout, float64 accumulation.
 */
import type { AttentionShape, LayerKvCache } from '../../model/backend.js';
import { allShared, sharedFloat32 } from '../../tensor/shared.js';
import { attentionRows, type AttentionArgs } from './attention-kernel.js';
import { cpuPool } from './pool/index.js';
import { KERNEL_ATTENTION } from './pool/kernels.js';

/** y[i, :] = x[i, :] / sqrt(mean(x[i, :]²) + eps) · weight, for m rows of weight.length. */
export function rmsnorm(x: Float32Array, m: number, weight: Float32Array, eps: number): Float32Array {
  const dim = weight.length;
  const y = sharedFloat32(m * dim);
  for (let r = 0; r < m; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const inv = Math.fround(1 / Math.sqrt(Math.fround(ss / dim) + eps));
    for (let i = 0; i < dim; i++) y[o + i] = weight[i] * Math.fround(x[o + i] * inv);
  }
  return y;
}

/** Rotary embedding in place, half-split layout; see Backend.rope. */
export function rope(x: Float32Array, m: number, heads: number, headDim: number, startPos: number, invFreq: Float32Array): void {
  const half = headDim / 2;
  const cos = new Float32Array(half);
  const sin = new Float32Array(half);
  for (let r = 0; r < m; r++) {
    const pos = startPos + r;
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(pos * invFreq[i]);
      cos[i] = Math.cos(angle);
      sin[i] = Math.sin(angle);
    }
    for (let h = 0; h < heads; h++) {
      const o = (r * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[o + i];
        const b = x[o + i + half];
        x[o + i] = a * cos[i] - b * sin[i];
        x[o + i + half] = b * cos[i] + a * sin[i];
      }
    }
  }
}

/** Below this many multiply-adds per thread (2 per position per head dimension) attention runs inline. */
const ATTENTION_MIN_WORK_PER_THREAD = 1 << 17;

/**
 * Causal (optionally sliding-window) grouped-query attention with a KV cache; see Backend.attention.
 * The (token, head) rows are split across the CPU pool (attention-kernel.ts: each row's arithmetic
 * is the same in any thread).
 */
export function attention(q: Float32Array, k: Float32Array, v: Float32Array, m: number, startPos: number,
  cache: LayerKvCache, shape: AttentionShape): Float32Array {
  const { numHeads, numKvHeads, headDim, slidingWindow } = shape;
  const kvDim = numKvHeads * headDim;
  if (startPos + m > cache.capacity) {
    throw new RangeError(`KV cache holds ${cache.capacity} positions; asked for ${startPos + m}`);
  }
  cache.keys.set(k.subarray(0, m * kvDim), startPos * kvDim);
  cache.values.set(v.subarray(0, m * kvDim), startPos * kvDim);
  const out = sharedFloat32(m * numHeads * headDim);
  const args: AttentionArgs = {
    q, keys: cache.keys, values: cache.values, out, startPos, numHeads, numKvHeads, headDim, window: slidingWindow ?? 0,
  };
  const rows = m * numHeads;
  const positions = slidingWindow === null ? startPos + m : Math.min(startPos + m, slidingWindow);
  const work = 2 * positions * headDim;
  if (rows * work < 2 * ATTENTION_MIN_WORK_PER_THREAD || !allShared(q, cache.keys, cache.values)) attentionRows(args, 0, rows);
  else cpuPool().run(KERNEL_ATTENTION, args, rows, { workPerRow: work, minWorkPerThread: ATTENTION_MIN_WORK_PER_THREAD });
  return out;
}

/** One decode step of several sequences (Backend.decodeAttention): rope and attention row by row. */
export function decodeAttention(q: Float32Array, k: Float32Array, v: Float32Array, positions: readonly number[], caches: readonly LayerKvCache[],
  shape: AttentionShape, invFreq: Float32Array): Float32Array {
  const { numHeads: H, numKvHeads: KVH, headDim: D } = shape;
  if (caches.length !== positions.length) throw new RangeError(`decodeAttention: ${positions.length} positions for ${caches.length} caches`);
  const out = sharedFloat32(positions.length * H * D);
  for (let r = 0; r < positions.length; r++) {
    const qr = q.subarray(r * H * D, (r + 1) * H * D);
    const kr = k.subarray(r * KVH * D, (r + 1) * KVH * D);
    rope(qr, 1, H, D, positions[r]!, invFreq);
    rope(kr, 1, KVH, D, positions[r]!, invFreq);
    out.set(attention(qr, kr, v.subarray(r * KVH * D, (r + 1) * KVH * D), 1, positions[r]!, caches[r]!, shape), r * H * D);
  }
  return out;
}

/** gate[i] = silu(gate[i]) · up[i], in place. */
export function siluMul(gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

export function addInPlace(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}
