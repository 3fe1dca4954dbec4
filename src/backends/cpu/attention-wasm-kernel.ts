/**
 * The CPU attention row kernel on WASM SIMD, for KV caches in the arena (the CPU backend allocates
 * them there): the rows and the arithmetic of attention-kernel.ts, bit for bit. Per row, q·K and
 * P·V run in the module of attention-wasm-module.ts (float64 lanes, each output's operation order
 * unchanged); the softmax between them (max, Math.exp, the sum, p = e / sum) stays in JS, as in
 * attendRow, in increasing position order.
 *
 * Scratch: each thread works in its own slot of an arena block the main thread allocates before
 * a run (`attentionScratch`), indexed by pool/thread-slot.ts; a slot holds, in float64, the query
 * row [D], the output row [D] and the scores [positions].
 */
import { arenaAddress, arenaMemory, releaseArenaBlock, sharedFloat64, withArenaAllocation } from '../../tensor/shared.js';
import { buildAttentionWasmModule } from './attention-wasm-module.js';
import { visitAttentionRows, type AttentionRowShape, type DecodeAttentionArgs } from './attention-kernel.js';
import { threadSlot } from './pool/thread-slot.js';
import { instantiateOnArena } from './wasm-instance.js';
import type { KernelArgs } from './pool/types.js';

type Qk = (qd: number, k: number, stride: number, count: number, d: number, scale: number, scores: number) => void;
type Pv = (p: number, v: number, stride: number, count: number, d: number, acc: number) => void;
interface AttentionFns {
  readonly qk: Qk;
  readonly pv: Pv;
}

let fns: AttentionFns | null | undefined;

function attentionFns(): AttentionFns | null {
  if (fns === undefined) fns = instantiateOnArena<AttentionFns>(buildAttentionWasmModule);
  return fns;
}

/** Whether the WASM attention kernel can run in this thread (shared arena + SIMD). */
export function wasmAttentionAvailable(): boolean {
  return attentionFns() !== null;
}

/** Float64 values of one slot: query row [D], output row [D], scores [positions]. */
export const attentionSlotBytes = (headDim: number, positions: number): number => Math.ceil((2 * headDim + positions) / 2) * 16;

let scratchBlock: Float64Array | undefined;

/**
 * Byte address of `slots` slots of slotBytes each in the arena (main thread, before a run; the
 * block is kept and grown by doubling), or -1 when the arena cannot hold it.
 */
export function attentionScratch(slots: number, slotBytes: number): number {
  const length = (slots * slotBytes) / 8;
  if (scratchBlock === undefined || scratchBlock.length < length) {
    if (scratchBlock !== undefined) releaseArenaBlock(scratchBlock);
    const grown = Math.max(length, 2 * (scratchBlock?.length ?? 0));
    scratchBlock = withArenaAllocation(() => sharedFloat64(grown));
  }
  return arenaAddress(scratchBlock);
}

interface Slot {
  /** the slot's float64 values */
  readonly f: Float64Array;
  /** its byte address */
  readonly at: number;
}

function slotOf(scratch: number, slotBytes: number): Slot {
  const at = scratch + threadSlot() * slotBytes;
  return { f: new Float64Array(arenaMemory()!.buffer, at, slotBytes / 8), at };
}

/**
 * One row (attention-kernel.ts attendRow's arithmetic): out[qo .. qo+D) from q[qo ..], the key rows
 * at k + t·stride and the value rows at v + t·stride (arena byte addresses of position 0 of this
 * row's KV head) for t ∈ [first, pos].
 */
function attendRowWasm(x: AttentionFns, s: Slot, q: Float32Array, qo: number, k: number, v: number, stride: number,
  first: number, pos: number, D: number, out: Float32Array): void {
  const { f, at } = s;
  const acc = at + 8 * D, p = at + 16 * D, s0 = 2 * D;
  const count = pos - first + 1;
  for (let i = 0; i < D; i++) f[i] = q[qo + i]!;
  x.qk(at, k + first * stride, stride, count, D, 1 / Math.sqrt(D), p);
  let max = -Infinity;
  for (let u = s0; u < s0 + count; u++) if (f[u]! > max) max = f[u]!;
  let sum = 0;
  for (let u = s0; u < s0 + count; u++) {
    const e = Math.exp(f[u]! - max);
    f[u] = e;
    sum += e;
  }
  for (let u = s0; u < s0 + count; u++) f[u] = f[u]! / sum;
  f.fill(0, D, 2 * D);
  x.pv(p, v + first * stride, stride, count, D, acc);
  for (let j = 0; j < D; j++) out[qo + j] = f[D + j]!;
}

function kernelFns(): AttentionFns {
  const x = attentionFns();
  if (x === null) throw new Error('the WASM SIMD attention kernel is not available in this thread');
  return x;
}

/** attention-kernel.ts AttentionArgs with the caches as arena byte addresses, and the scratch. */
export interface AttentionWasmArgs extends KernelArgs, AttentionRowShape {
  readonly q: Float32Array;
  readonly out: Float32Array;
  readonly keys: number;
  readonly values: number;
  readonly startPos: number;
  readonly scratch: number;
  readonly slotBytes: number;
}

/** attentionRows on WASM: row = (token r, head h). */
export function attentionWasmRows(a: AttentionWasmArgs, rowStart: number, rowEnd: number): void {
  const x = kernelFns();
  const { q, out, keys, values, startPos, numKvHeads: KVH, headDim: D } = a;
  const s = slotOf(a.scratch, a.slotBytes);
  visitAttentionRows(a, rowStart, rowEnd, (r) => startPos + r,
    (row, _r, kvo, first, pos) => attendRowWasm(x, s, q, row * D, keys + 4 * kvo, values + 4 * kvo, 4 * KVH * D, first, pos, D, out));
}

/** decodeAttentionRows on WASM: row = (sequence b, head h), caches at keys${b} / values${b} (arena byte addresses). */
export type DecodeAttentionWasmArgs = DecodeAttentionArgs & { readonly scratch: number; readonly slotBytes: number };

export function decodeAttentionWasmRows(a: DecodeAttentionWasmArgs, rowStart: number, rowEnd: number): void {
  const x = kernelFns();
  const { q, out, positions, numKvHeads: KVH, headDim: D } = a;
  const s = slotOf(a.scratch, a.slotBytes);
  visitAttentionRows(a, rowStart, rowEnd, (b) => positions[b]!, (row, b, kvo, first, pos) =>
    attendRowWasm(x, s, q, row * D, (a[`keys${b}`] as number) + 4 * kvo, (a[`values${b}`] as number) + 4 * kvo, 4 * KVH * D, first, pos, D, out));
}
