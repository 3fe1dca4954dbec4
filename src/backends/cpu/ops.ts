/**
 * The CPU backend's elementwise and attention kernels (plain loops, a prefill's rows split over the
 * pool where its arrays are shared; the matmuls, where the time goes, live in matmul.ts and int-linear.ts). Row-major float32 throughout, float64 accumulation.
 */
import type { AttentionShape, LayerKvCache } from '../../model/backend.js';
import { allShared, arenaAddress, sharedFloat32, sharedInt32 } from '../../tensor/shared.js';
import { attentionRows, decodeAttentionRows, type AttentionArgs, type DecodeAttentionArgs } from './attention-kernel.js';
import {
  attentionScratch, attentionSlotBytes, attentionWasmRows, decodeAttentionWasmRows, wasmAttentionAvailable,
  type AttentionWasmArgs, type DecodeAttentionWasmArgs,
} from './attention-wasm-kernel.js';
import { cpuPool } from './pool/index.js';
import type { KernelArgs, RowKernel } from './pool/types.js';
import { KERNEL_ATTENTION, KERNEL_ATTENTION_WASM, KERNEL_DECODE_ATTENTION, KERNEL_DECODE_ATTENTION_WASM, KERNEL_RMSNORM, KERNEL_SILU_MUL } from './pool/kernels.js';
import type { RmsnormArgs, SiluMulArgs } from './elementwise-rows.js';

/** Below this many values per thread an elementwise op runs on the calling thread (a decode step's do). */
const ELEMENTWISE_MIN_PER_THREAD = 1 << 16;

/** y[i, :] = x[i, :] / sqrt(mean(x[i, :]²) + eps) · weight, for m rows of weight.length (a prefill's rows over the pool). */
export function rmsnorm(x: Float32Array, m: number, weight: Float32Array, eps: number): Float32Array {
  const y = sharedFloat32(m * weight.length);
  cpuPool().runWhereShared(KERNEL_RMSNORM, { x, weight, y, eps } satisfies RmsnormArgs, m, { workPerRow: weight.length, minWorkPerThread: ELEMENTWISE_MIN_PER_THREAD });
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

/** Rows [0, rows) of an attention kernel: inline when small or when an operand is not shared, else split over the pool. */
function runAttentionRows<A extends KernelArgs>(id: string, kernel: RowKernel<A>, args: A, rows: number, workPerRow: number, shared: boolean): void {
  if (rows * workPerRow < 2 * ATTENTION_MIN_WORK_PER_THREAD || !shared) kernel(args, 0, rows);
  else cpuPool().run(id, args, rows, { workPerRow, minWorkPerThread: ATTENTION_MIN_WORK_PER_THREAD });
}

/**
 * The WASM kernel's operands when every cache lives in the arena (the CPU backend puts them there)
 * and the kernel runs here: each cache's [keys, values] byte addresses and the scratch address for
 * rows of up to `positions` positions; null otherwise (the JS kernel then runs, with the same results).
 */
function wasmOperands(caches: readonly LayerKvCache[], headDim: number, positions: number): { addresses: number[]; scratch: number; slotBytes: number } | null {
  const addresses = caches.flatMap((c) => [arenaAddress(c.keys), arenaAddress(c.values)]);
  if (addresses.some((a) => a < 0) || !wasmAttentionAvailable()) return null;
  const slotBytes = attentionSlotBytes(headDim, positions);
  const scratch = attentionScratch(cpuPool().threads, slotBytes);
  return scratch < 0 ? null : { addresses, scratch, slotBytes };
}

/**
 * Causal (optionally sliding-window) grouped-query attention with a KV cache; see Backend.attention.
 * The (token, head) rows are split across the CPU pool (attention-kernel.ts: each row's arithmetic
 * is the same in any thread), on WASM SIMD when the cache is in the arena (attention-wasm-kernel.ts,
 * bit for bit the JS kernel).
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
  const rows = m * numHeads;
  const positions = slidingWindow === null ? startPos + m : Math.min(startPos + m, slidingWindow);
  const work = 2 * positions * headDim;
  const shared = allShared(q, out, cache.keys, cache.values);
  const common = { q, out, startPos, numHeads, numKvHeads, headDim, window: slidingWindow ?? 0 };
  const wasm = shared ? wasmOperands([cache], headDim, positions) : null;
  if (wasm !== null) {
    const args: AttentionWasmArgs = { ...common, keys: wasm.addresses[0]!, values: wasm.addresses[1]!, scratch: wasm.scratch, slotBytes: wasm.slotBytes };
    runAttentionRows(KERNEL_ATTENTION_WASM, attentionWasmRows, args, rows, work, true);
  } else {
    const args: AttentionArgs = { ...common, keys: cache.keys, values: cache.values };
    runAttentionRows(KERNEL_ATTENTION, attentionRows, args, rows, work, shared);
  }
  return out;
}

/**
 * One decode step of several sequences (Backend.decodeAttention): rope of each row at its position,
 * its k and v stored in its cache, then every (sequence, head) row in one pool run (attention-
 * kernel.ts decodeAttentionRows, or its WASM twin when the caches are in the arena: each row's
 * arithmetic is the single-sequence kernel's).
 */
export function decodeAttention(q: Float32Array, k: Float32Array, v: Float32Array, positions: readonly number[], caches: readonly LayerKvCache[],
  shape: AttentionShape, invFreq: Float32Array): Float32Array {
  const { numHeads: H, numKvHeads: KVH, headDim: D, slidingWindow } = shape;
  const B = positions.length, kvDim = KVH * D;
  if (caches.length !== B) throw new RangeError(`decodeAttention: ${B} positions for ${caches.length} caches`);
  const args: Record<string, Float32Array | Int32Array | number> = {
    q, out: sharedFloat32(B * H * D), positions: sharedInt32(B), numHeads: H, numKvHeads: KVH, headDim: D, window: slidingWindow ?? 0,
  };
  let work = 0, longest = 0;
  for (let b = 0; b < B; b++) {
    const pos = positions[b]!, cache = caches[b]!;
    if (pos + 1 > cache.capacity) throw new RangeError(`KV cache holds ${cache.capacity} positions; asked for ${pos + 1}`);
    rope(q.subarray(b * H * D, (b + 1) * H * D), 1, H, D, pos, invFreq);
    rope(k.subarray(b * kvDim, (b + 1) * kvDim), 1, KVH, D, pos, invFreq);
    cache.keys.set(k.subarray(b * kvDim, (b + 1) * kvDim), pos * kvDim);
    cache.values.set(v.subarray(b * kvDim, (b + 1) * kvDim), pos * kvDim);
    (args.positions as Int32Array)[b] = pos;
    const count = slidingWindow === null ? pos + 1 : Math.min(pos + 1, slidingWindow);
    longest = Math.max(longest, count);
    work += 2 * count * D * H;
  }
  const shared = allShared(q, ...caches.flatMap((c) => [c.keys, c.values]));
  const wasm = shared ? wasmOperands(caches, D, longest) : null;
  if (wasm !== null) {
    for (let b = 0; b < B; b++) {
      args[`keys${b}`] = wasm.addresses[2 * b]!;
      args[`values${b}`] = wasm.addresses[2 * b + 1]!;
    }
    args.scratch = wasm.scratch;
    args.slotBytes = wasm.slotBytes;
    runAttentionRows(KERNEL_DECODE_ATTENTION_WASM, decodeAttentionWasmRows, args as DecodeAttentionWasmArgs, B * H, work / (B * H), true);
  } else {
    for (let b = 0; b < B; b++) {
      args[`keys${b}`] = caches[b]!.keys;
      args[`values${b}`] = caches[b]!.values;
    }
    runAttentionRows(KERNEL_DECODE_ATTENTION, decodeAttentionRows, args as DecodeAttentionArgs, B * H, work / (B * H), shared);
  }
  return args.out as Float32Array;
}

/** gate[i] = silu(gate[i]) · up[i], in place (a prefill's over the pool, in rows of 1024 values). */
export function siluMul(gate: Float32Array, up: Float32Array): void {
  const n = 1024;
  cpuPool().runWhereShared(KERNEL_SILU_MUL, { gate, up, n } satisfies SiluMulArgs, Math.ceil(gate.length / n), { workPerRow: n, minWorkPerThread: ELEMENTWISE_MIN_PER_THREAD });
}

export function addInPlace(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}

/** Rows rows[i] of x [*, dim] gathered into a fresh [rows.length, dim]; see Backend.gatherRows. */
export function gatherRows(x: Float32Array, rows: readonly number[], dim: number): Float32Array {
  const out = sharedFloat32(rows.length * dim);
  rows.forEach((r, i) => out.set(x.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

/** out[rows[i], :] += weights[i] · y[i, :] (the product rounded to float32 first, as torch does); see Backend.addScaledRows. */
export function addScaledRows(out: Float32Array, y: Float32Array, rows: readonly number[], weights: Float32Array, dim: number): void {
  rows.forEach((r, i) => {
    const w = weights[i]!;
    const o = r * dim;
    for (let c = 0; c < dim; c++) out[o + c] += Math.fround(w * y[i * dim + c]!);
  });
}
