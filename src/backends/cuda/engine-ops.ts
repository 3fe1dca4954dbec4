/**
 * Launchers of the decode engine's small ops (kernels/engine-ops.cu; the math and layouts are in
 * its header). All asynchronous on ctx's stream; sizes are checked against the buffers so a wrong
 * shape is a RangeError naming it, not a stray write. Rows are described in device memory
 * (`rows`: token, position, KV slot per row), the KV caches through the slot table `kv`.
 */
import { needBytes, type DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import { getKernel } from './kernel-cache.js';
import type { KernelArg, LaunchOptions } from './program.js';

const FILE = 'engine-ops.cu';

/** How a row is written for the linear that reads it next (FORM in engine-ops.cu). */
export type RowForm = 'int8' | 'int8-fragment' | 'f16' | 'f32';
const FORM_CODE: Record<RowForm, number> = { 'int8': 0, 'int8-fragment': 1, 'f16': 2, 'f32': 3 };
/** Bytes of one value of a row form. */
export const FORM_BYTES: Record<RowForm, number> = { 'int8': 1, 'int8-fragment': 1, 'f16': 2, 'f32': 4 };

/** Where a row form goes: the values, and the per-row scales of the int8 forms. */
export interface RowOutput {
  readonly form: RowForm;
  readonly values: DeviceBuffer;
  readonly scales: DeviceBuffer;
}

/** Largest head dimension the attention kernels take (D_MAX), most position splits (MAX_SPLITS). */
export const ENGINE_MAX_HEAD_DIM = 256;
export const ENGINE_MAX_SPLITS = 64;
const TILE = 32;
/** Bytes of one row descriptor (token, position, slot, unused: int32 each). */
export const ROW_BYTES = 16;


/** Threads of the row kernels, and the longest row they hold in registers (ROW_THREADS · 4 · ROW_VEC in engine-ops.cu). */
const ROW_THREADS = 1024;
export const ENGINE_MAX_ROW = ROW_THREADS * 4 * 8;

function checkOutput(what: string, out: RowOutput, m: number, k: number): void {
  if (k % 4 !== 0) throw new RangeError(`${what}: rows are written four values at a time; the length must be divisible by 4, got ${k}`);
  if (out.form === 'int8-fragment' && k % 64 !== 0) throw new RangeError(`${what}: fragment-order rows need a length divisible by 64, got ${k}`);
  needBytes(`${what} output`, out.values, m * k * FORM_BYTES[out.form]);
  needBytes(`${what} scales`, out.scales, m * 4);
}

const outputArgs = (out: RowOutput) => [out.values, out.scales] as const;

/** h [m, dim] = the embedding rows of the rows' tokens (E [vocab, dim] on the device). */
export function embedRowsCuda(ctx: CudaContext, embedding: DeviceBuffer, rows: DeviceBuffer, h: DeviceBuffer, m: number, dim: number): void {
  needBytes('embed rows', rows, m * ROW_BYTES);
  gatherRows(ctx, 'embed', embedding, rows, ROW_BYTES / 4, h, m, dim);
}

/** out [m, dim] = the rows of x [·, dim] listed in `picks` (int32 [m]): the rows whose logits a prefill returns. */
export function pickRowsCuda(ctx: CudaContext, x: DeviceBuffer, picks: DeviceBuffer, out: DeviceBuffer, m: number, dim: number): void {
  needBytes('pick rows', picks, m * 4);
  gatherRows(ctx, 'pick', x, picks, 1, out, m, dim);
}

function gatherRows(ctx: CudaContext, what: string, table: DeviceBuffer, index: DeviceBuffer, stride: number, out: DeviceBuffer, m: number, dim: number): void {
  needBytes(`${what} output`, out, m * dim * 4);
  if (dim % 4 !== 0) throw new RangeError(`${what} rows: the hidden size must be divisible by 4, got ${dim}`);
  ctx.launch(getKernel(ctx, FILE, 'gather_rows'), [m], [256], [table, index, { i32: stride }, out, { i32: dim }]);
}

/** An RMSNorm of the residual into the row the next linear reads: its weight [dim], where the row goes, eps. */
export interface RowNorm {
  readonly weight: DeviceBuffer;
  readonly out: RowOutput;
  readonly eps: number;
}

/** Checks a row output of m rows of k values; returns its kernel arguments: values, scales, form code. */
export function rowOutputArgs(what: string, out: RowOutput, m: number, k: number): [DeviceBuffer, DeviceBuffer, { i32: number }] {
  checkOutput(what, out, m, k);
  return [...outputArgs(out), { i32: FORM_CODE[out.form] }];
}

/** Bytes of a kernel tail's two arrival counters (tail_rows in common.cuh), zero before and after each launch. */
export const TAIL_COUNTER_BYTES = 8;

/** A kernel tail that writes the rows for the next linear: where they go, and its arrival counters. */
export interface RowTail {
  readonly out: RowOutput;
  readonly arrivals: DeviceBuffer;
}

/**
 * The kernel arguments of an optional row tail of m rows of k values (next, next_scales, form, arrivals):
 * checked, or null pointers (no tail: the kernel writes no row).
 */
export function rowTailArgs(what: string, tail: RowTail | null, m: number, k: number): KernelArg[] {
  if (tail === null) return [{ u64: 0 }, { u64: 0 }, { i32: 0 }, { u64: 0 }];
  needBytes(`${what} arrivals`, tail.arrivals, TAIL_COUNTER_BYTES);
  return [...rowOutputArgs(what, tail.out, m, k), tail.arrivals];
}

/** Checks a row norm of m rows of `dim` values; returns its output's kernel arguments (rowOutputArgs). */
export function rowNormOutput(what: string, norm: RowNorm, m: number, dim: number): [DeviceBuffer, DeviceBuffer, { i32: number }] {
  needBytes(`${what} weight`, norm.weight, dim * 4);
  if (dim > ENGINE_MAX_ROW) throw new RangeError(`${what}: rows up to ${ENGINE_MAX_ROW} values, got ${dim}`);
  return rowOutputArgs(what, norm.out, m, dim);
}

/**
 * RMSNorm of x [m, dim] with weight, written as `out` (its form) for the next linear. `launch.overlapPrevious`: launched
 * to overlap the kernel before (the kernel waits for it before it reads or writes; the engine's overlapSmallOps).
 */
export function rmsnormToCuda(ctx: CudaContext, x: DeviceBuffer, weight: DeviceBuffer, out: RowOutput, m: number, dim: number, eps: number,
  launch: LaunchOptions = {}): void {
  needBytes('rmsnorm x', x, m * dim * 4);
  const [values, scales, form] = rowNormOutput('rmsnorm', { weight, out, eps }, m, dim);
  ctx.launch(getKernel(ctx, FILE, 'rmsnorm_to'), [m], [ROW_THREADS], [x, weight, values, scales, { i32: dim }, { f32: eps }, form], 0, launch);
}

/**
 * Where SwiGLU's g and u [m, F] are: column ranges of GEMM outputs (row stride ld), or one stacked
 * gate/up output [m, 2F] with its rows interleaved in blocks of 8 (quant/concat.ts; row stride ld).
 */
export type GateUpRows =
  | { readonly interleaved: false; readonly g: DeviceBuffer; readonly u: DeviceBuffer; readonly ld: number }
  | { readonly interleaved: true; readonly y: DeviceBuffer; readonly ld: number };

/** silu(g) · u [m, F], written as `out` (through `scratch`). */
export function siluMulToCuda(ctx: CudaContext, rows: GateUpRows, out: RowOutput, m: number, F: number, scratch: RowScratch): void {
  const [g, u] = rows.interleaved ? [rows.y, rows.y] : [rows.g, rows.u];
  const span = rows.interleaved ? 2 * F : F;
  needBytes('silu g', g, ((m - 1) * rows.ld + span) * 4);
  needBytes('silu u', u, ((m - 1) * rows.ld + span) * 4);
  checkOutput('silu', out, m, F);
  if (rows.interleaved && F % 8 !== 0) throw new RangeError(`silu: gate/up interleaved by 8 need F divisible by 8, got ${F}`);
  const blocks = Math.ceil(F / 1024);
  needBytes('silu row scratch', scratch.values, m * F * 4);
  needBytes('silu block maxima', scratch.amax, m * blocks * 4);
  if (rows.ld % 4 !== 0 || ((u.ptr - g.ptr) / 4) % 4 !== 0) throw new RangeError('silu: g and u rows must start 16-byte aligned (ld and their offset divisible by 4)');
  ctx.launch(getKernel(ctx, FILE, 'silu_mul_rows'), [m, blocks], [256], [g, u, { i32: rows.ld }, { i32: F }, scratch.values, scratch.amax, { i32: rows.interleaved ? 1 : 0 }]);
  quantizeRowsCuda(ctx, scratch, blocks, out, m, F);
}

/**
 * Row scratch for the multi-block producers of rows up to `k` values (attention's H·D, SwiGLU's F),
 * `rows` rows: the values, and the partial maxima (a head's, a block of 1024's, or the SwiGLU GEMM
 * epilogue's one per 16-row tile of gate/up: k/8).
 */
export function rowScratchBytes(rows: number, k: number, numHeads: number): { values: number; amax: number } {
  return { values: rows * k * 4, amax: rows * Math.max(numHeads, Math.ceil(k / 8)) * 4 };
}

/** The attention shape and where a layer's KV caches are found. */
export interface EngineAttention {
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** 0 = full causal attention. */
  readonly window: number;
  /** the slot table and this layer's index among numLayers. */
  readonly kv: DeviceBuffer;
  readonly layer: number;
  readonly numLayers: number;
}

function checkHeads(a: EngineAttention): void {
  const { numHeads: H, numKvHeads: KVH, headDim: D } = a;
  if (D > ENGINE_MAX_HEAD_DIM || D % 2 !== 0) throw new RangeError(`the engine's attention takes even head dimensions up to ${ENGINE_MAX_HEAD_DIM}, got ${D}`);
  if (H % KVH !== 0) throw new RangeError(`${H} query heads do not split evenly over ${KVH} kv heads`);
}

/** Rotary embedding of q (in place) and k, and k, v stored in the rows' KV caches at their positions. */
export function ropeKvWriteCuda(ctx: CudaContext, q: DeviceBuffer, ldq: number, k: DeviceBuffer, v: DeviceBuffer, ldkv: number,
  invFreq: DeviceBuffer, rows: DeviceBuffer, m: number, a: EngineAttention): void {
  checkHeads(a);
  const { numHeads: H, numKvHeads: KVH, headDim: D } = a;
  needBytes('rope q', q, ((m - 1) * ldq + H * D) * 4);
  needBytes('rope k', k, ((m - 1) * ldkv + KVH * D) * 4);
  needBytes('rope v', v, ((m - 1) * ldkv + KVH * D) * 4);
  needBytes('rope invFreq', invFreq, (D / 2) * 4);
  needBytes('rope rows', rows, m * ROW_BYTES);
  ctx.launch(getKernel(ctx, FILE, 'rope_kv_write'), [m, H + KVH], [Math.max(32, D / 2)],
    [q, { i32: ldq }, k, v, { i32: ldkv }, invFreq, rows, a.kv, { i32: a.layer }, { i32: a.numLayers }, { i32: H }, { i32: KVH }, { i32: D }]);
}

/**
 * The split of attention over `positions` (the largest position + 1 any row may have; a bound, so
 * that one split serves every step of a captured graph) for m rows within `budget` bytes of partials.
 */
export function engineSplits(positions: number, m: number, numHeads: number, headDim: number, budget = 32 << 20): { splits: number; chunk: number; partBytes: number } {
  const perSplit = m * numHeads * (headDim + 2) * 4;
  const splits = Math.max(1, Math.min(Math.ceil(positions / TILE), ENGINE_MAX_SPLITS, Math.floor(budget / perSplit)));
  return { splits, chunk: Math.ceil(positions / splits), partBytes: splits * perSplit };
}

/**
 * Where a producer spread over several blocks a row leaves it for quantize_rows: the f32 values
 * [rows, K] and each row's partial maxima of |y| [rows, P].
 */
export interface RowScratch {
  readonly values: DeviceBuffer;
  readonly amax: DeviceBuffer;
}

/**
 * Rows left in a RowScratch for the GEMM that reads them to quantize itself (the engine's quantizeInGemm,
 * w4a8DecodeRows): their f32 values [m, K] and P partial maxima of |y| a row, instead of a quantize_rows launch.
 */
export interface PendingRows {
  readonly pending: RowScratch;
  readonly P: number;
}

/**
 * A decode step's new keys and values, not yet rotated or stored: attention rotates q and them itself
 * and stores them in the rows' caches (rope_kv_write's work folded in). Only where each row is its
 * sequence's one new position (a decode step), so no row reads another's new position.
 */
export interface FreshKv {
  readonly k: DeviceBuffer;
  readonly v: DeviceBuffer;
  /** row stride of k and v (elements). */
  readonly ld: number;
  readonly invFreq: DeviceBuffer;
}

/**
 * How attention_split spreads over a row's positions: `splits` blocks of `chunk` positions (engineSplits), and the
 * bytes a lane loads at a time: 4 (attention_split: a warp a position, lanes over pairs of halves; the default) or
 * 16 (attention_split_v8: D/8 lanes a position, 8 halves a lane; D a multiple of 8, D/8 a power of two).
 */
export interface AttentionSplit {
  readonly splits: number;
  readonly chunk: number;
  readonly loads?: 4 | 16;
  /**
   * The merge folded into the split kernel (the engine's mergeInAttention): counters, mergeCounterBytes(m, H) of device
   * memory, zero before the launch (the kernel leaves them zero); the last split block of each (row, head) merges it,
   * and no attention_merge launches. Absent: attention_merge.
   */
  readonly merged?: DeviceBuffer;
}

/** Bytes of the merge fold's counters for m rows of H heads (AttentionSplit.merged). */
export const mergeCounterBytes = (m: number, H: number): number => m * H * 4;

/** Whether attention_split_v8 takes head dimension D: 8 halves a lane, D/8 lanes (a power of two, at most a warp) a position. */
export const wideLoadsFit = (D: number): boolean => D % 8 === 0 && D / 8 <= 32 && ((D / 8) & (D / 8 - 1)) === 0;

/**
 * Who writes attention's rows for the o projection (the same bytes each way): a quantize_rows launch ('launch'), the
 * merge's last blocks (`tail`: TAIL_COUNTER_BYTES of device memory, zero before and after; one block a row), or nobody
 * here ('reader': the GEMM that reads them quantizes the row scratch itself, PendingRows with P = the heads).
 */
export type AttentionRowsBy = 'launch' | 'reader' | { readonly tail: DeviceBuffer };

/** How attentionToCuda runs beyond its split: the decode fold's new keys (`fresh`), who writes the rows, how it launches. */
export interface AttentionRun {
  readonly fresh?: FreshKv;
  /** default 'launch'. */
  readonly rowsBy?: AttentionRowsBy;
  /** its kernels launched to overlap the kernel before (the engine's overlapSmallOps). */
  readonly launch?: LaunchOptions;
}

/**
 * Attention of q [m, H·D] (row stride ldq) over the rows' KV caches, written as `out` for the o projection (through
 * `scratch`; run.rowsBy says who writes it). q rotated and the rows' keys stored already (ropeKvWriteCuda), or, with
 * run.fresh, both done here. With split.merged the split kernel merges each head in its last block (the same y and
 * maxima as attention_merge).
 */
export function attentionToCuda(ctx: CudaContext, q: DeviceBuffer, ldq: number, rows: DeviceBuffer, m: number, a: EngineAttention,
  split: AttentionSplit, part: DeviceBuffer, scratch: RowScratch, out: RowOutput, run: AttentionRun = {}): void {
  const { fresh, rowsBy = 'launch', launch = {} } = run;
  checkHeads(a);
  const { numHeads: H, numKvHeads: KVH, headDim: D } = a;
  const { splits: S, chunk } = split;
  if (S > ENGINE_MAX_SPLITS) throw new RangeError(`attention: ${S} splits, the merge takes at most ${ENGINE_MAX_SPLITS}`);
  const loads = split.loads ?? 4;
  if (loads === 16 && !wideLoadsFit(D)) throw new RangeError(`attention: 16-byte loads need the head dimension a multiple of 8 with D/8 a power of two up to 32, got ${D}`);
  needBytes('attention q', q, ((m - 1) * ldq + H * D) * 4);
  if (fresh !== undefined) {
    needBytes('attention new k', fresh.k, ((m - 1) * fresh.ld + KVH * D) * 4);
    needBytes('attention new v', fresh.v, ((m - 1) * fresh.ld + KVH * D) * 4);
    needBytes('attention invFreq', fresh.invFreq, (D / 2) * 4);
  }
  needBytes('attention rows', rows, m * ROW_BYTES);
  needBytes('attention partials', part, m * H * S * (D + 2) * 4);
  needBytes('attention row scratch', scratch.values, m * H * D * 4);
  needBytes('attention head maxima', scratch.amax, m * H * 4);
  checkOutput('attention', out, m, H * D);
  const none = { u64: 0 }; // a null pointer: no fresh keys (the cache holds them), no tail, no merge fold
  const merged = split.merged;
  if (merged !== undefined) {
    needBytes('attention merge counters', merged, mergeCounterBytes(m, H));
    if (typeof rowsBy === 'object') throw new RangeError('attention: the merge fold writes no rows; it takes no quantize tail');
  }
  ctx.launch(getKernel(ctx, FILE, loads === 16 ? 'attention_split_v8' : 'attention_split', merged !== undefined ? { MERGE_FOLD: 1 } : {}), [m, H, S], [128],
    [q, { i32: ldq }, part, rows, a.kv, { i32: a.layer }, { i32: a.numLayers }, { i32: H }, { i32: KVH }, { i32: D }, { i32: a.window }, { i32: chunk },
      fresh?.k ?? none, fresh?.v ?? none, { i32: fresh?.ld ?? 0 }, fresh?.invFreq ?? none,
      ...(merged !== undefined ? [scratch.values, scratch.amax, merged] : [none, none, none])], 0, launch);
  if (merged === undefined) {
    const tail = rowTailArgs('attention', typeof rowsBy === 'object' ? { out, arrivals: rowsBy.tail } : null, m, H * D);
    ctx.launch(getKernel(ctx, FILE, 'attention_merge'), [m, H], [128],
      [part, scratch.values, scratch.amax, rows, { i32: H }, { i32: D }, { i32: S }, { i32: chunk }, { i32: a.window }, ...tail], 0, launch);
  }
  if (rowsBy === 'launch') quantizeRowsCuda(ctx, scratch, H, out, m, H * D, launch);
}

/** scratch's rows [m, K] written as `out`, their scales from the P partial maxima per row (`launch`: as rmsnormToCuda's). */
export function quantizeRowsCuda(ctx: CudaContext, scratch: RowScratch, P: number, out: RowOutput, m: number, K: number, launch: LaunchOptions = {}): void {
  needBytes('quantize rows values', scratch.values, m * K * 4);
  needBytes('quantize rows maxima', scratch.amax, m * P * 4);
  ctx.launch(getKernel(ctx, FILE, 'quantize_rows'), [m, Math.ceil(K / 1024)], [256],
    [scratch.values, scratch.amax, { i32: P }, { i32: K }, ...rowOutputArgs('quantize rows', out, m, K)], 0, launch);
}

/** out [m] (int32) = each row's argmax over x [m, n] (the first index of the largest value): greedy sampling on the device. */
export function argmaxRowsCuda(ctx: CudaContext, x: DeviceBuffer, out: DeviceBuffer, m: number, n: number): void {
  needBytes('argmax x', x, m * n * 4);
  needBytes('argmax out', out, m * 4);
  ctx.launch(getKernel(ctx, FILE, 'argmax_rows'), [m], [1024], [x, { i32: n }, out]);
}
