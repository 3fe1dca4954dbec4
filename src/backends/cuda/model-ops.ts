/**
 * Launchers of the model's small GPU ops (kernels/model-ops.cu, kernels/attention.cu): RMSNorm,
 * rotary embedding, attention over a KV cache, SwiGLU, residual add, bias add, the fp16
 * conversion of W4A16 activations, and a mixture of experts' gather and weighted scatter of rows. All asynchronous on ctx's stream; sizes are checked against the
 * buffers so a wrong shape is a RangeError naming it, not a stray write.
 *
 * Rope, attention and the KV-cache write read the start position from `position`, a device int32
 * (the kernels read it when they run, so a captured graph serves every position); `startPos`
 * passed beside it is that same value on the host, for the bounds checks.
 */
import { needBytes, type DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import { getKernel } from './kernel-cache.js';

/** Threads per block of the model-ops.cu kernels and kv_write in attention.cu (their __launch_bounds__). */
export const MODEL_OPS_THREADS = 256;
const OPS = 'model-ops.cu';

/** Grid of one thread per element for n elements. */
const blocksFor = (n: number): [number] => [Math.max(1, Math.ceil(n / MODEL_OPS_THREADS))];

export function rmsnormCuda(ctx: CudaContext, x: DeviceBuffer, weight: DeviceBuffer, y: DeviceBuffer, m: number, dim: number, eps: number): void {
  needBytes('rmsnorm x', x, m * dim * 4);
  needBytes('rmsnorm y', y, m * dim * 4);
  needBytes('rmsnorm weight', weight, dim * 4);
  ctx.launch(getKernel(ctx, OPS, 'rmsnorm'), [m], [MODEL_OPS_THREADS], [x, weight, y, { i32: dim }, { f64: eps }]);
}

/** Rotary embedding in place on x [m][heads][headDim], row r at position *position + r. */
export function ropeCuda(ctx: CudaContext, x: DeviceBuffer, invFreq: DeviceBuffer, m: number, heads: number, headDim: number, position: DeviceBuffer): void {
  if (headDim % 2 !== 0) throw new RangeError(`rope needs an even head dimension, got ${headDim}`);
  needBytes('rope x', x, m * heads * headDim * 4);
  needBytes('rope invFreq', invFreq, (headDim / 2) * 4);
  needBytes('rope position', position, 4);
  const n = (m * heads * headDim) / 2;
  ctx.launch(getKernel(ctx, OPS, 'rope'), blocksFor(n), [MODEL_OPS_THREADS], [x, invFreq, { i32: m }, { i32: heads }, { i32: headDim }, position]);
}

/** keys/values rows [startPos, startPos + m) = k, v [m][kvDim] (startPos = *position). */
export function kvWriteCuda(ctx: CudaContext, k: DeviceBuffer, v: DeviceBuffer, keys: DeviceBuffer, values: DeviceBuffer,
  position: DeviceBuffer, startPos: number, m: number, kvDim: number): void {
  needBytes('kv_write k', k, m * kvDim * 4);
  needBytes('kv_write v', v, m * kvDim * 4);
  needBytes('kv_write keys', keys, (startPos + m) * kvDim * 4);
  needBytes('kv_write values', values, (startPos + m) * kvDim * 4);
  needBytes('kv_write position', position, 4);
  ctx.launch(getKernel(ctx, 'attention.cu', 'kv_write'), blocksFor(m * kvDim), [MODEL_OPS_THREADS], [k, v, keys, values, position, { u64: kvDim }, { u64: m * kvDim }]);
}

/*
 * Launch facts of attention.cu, written once here from its #defines (test/backends/cuda/launch-facts.test.ts
 * compares): the largest head dimension (D_MAX), most position splits (MAX_SPLITS), positions per
 * split at least (one TILE), threads per block (THREADS).
 */
export const ATTENTION_MAX_HEAD_DIM = 256;
export const ATTENTION_MAX_SPLITS = 256;
export const ATTENTION_TILE = 32;
export const ATTENTION_THREADS = 128;
/** Most bytes of float64 partials one attention call may use (prefill over a long cache splits less). */
const ATTENTION_PART_BUDGET = 64 << 20;

export interface AttentionLaunch {
  readonly m: number;
  /** the start position on the host (bounds checks) and in device memory (what the kernels read). */
  readonly startPos: number;
  readonly position: DeviceBuffer;
  /** positions the cache holds: the split over positions depends on it, never on the position. */
  readonly capacity: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** 0 = full causal attention. */
  readonly window: number;
}

/** The split of attention over a cache of `capacity` positions for m rows: `splits` blocks of `chunk` positions, `partBytes` of partials. */
export function attentionSplits(capacity: number, m: number, numHeads: number, headDim: number): { splits: number; chunk: number; partBytes: number } {
  const perSplit = m * numHeads * (headDim + 2) * 8;
  const splits = Math.max(1, Math.min(Math.ceil(capacity / ATTENTION_TILE), ATTENTION_MAX_SPLITS, Math.floor(ATTENTION_PART_BUDGET / perSplit)));
  return { splits, chunk: Math.ceil(capacity / splits), partBytes: splits * perSplit };
}

/**
 * out [m][H][D] = attention of q [m][H][D] over cache rows 0 .. startPos + m − 1 (already written),
 * startPos = *position; `part` holds attentionSplits(...).partBytes of partials.
 */
export function attentionCuda(ctx: CudaContext, q: DeviceBuffer, keys: DeviceBuffer, values: DeviceBuffer, out: DeviceBuffer, a: AttentionLaunch, part: DeviceBuffer): void {
  const { m, startPos, capacity, numHeads: H, numKvHeads: KVH, headDim: D } = a;
  if (D > ATTENTION_MAX_HEAD_DIM) throw new RangeError(`the CUDA attention kernel takes head dimensions up to ${ATTENTION_MAX_HEAD_DIM}, got ${D}`);
  if (H % KVH !== 0) throw new RangeError(`${H} query heads do not split evenly over ${KVH} kv heads`);
  if (startPos + m > capacity) throw new RangeError(`attention: positions up to ${startPos + m} in a cache of ${capacity}`);
  needBytes('attention q', q, m * H * D * 4);
  needBytes('attention out', out, m * H * D * 4);
  needBytes('attention keys', keys, capacity * KVH * D * 4);
  needBytes('attention values', values, capacity * KVH * D * 4);
  needBytes('attention position', a.position, 4);
  const { splits, chunk, partBytes } = attentionSplits(capacity, m, H, D);
  needBytes('attention partials', part, partBytes);
  ctx.launch(getKernel(ctx, 'attention.cu', 'attention_part'), [m, H, splits], [ATTENTION_THREADS],
    [q, keys, values, part, a.position, { i32: H }, { i32: KVH }, { i32: D }, { i32: a.window }, { i32: chunk }]);
  ctx.launch(getKernel(ctx, 'attention.cu', 'attention_combine'), [m, H], [ATTENTION_THREADS], [part, out, { i32: H }, { i32: D }, { i32: splits }]);
}

/** gate = silu(gate) · up over n elements, in place. */
export function siluMulCuda(ctx: CudaContext, gate: DeviceBuffer, up: DeviceBuffer, n: number): void {
  needBytes('siluMul gate', gate, n * 4);
  needBytes('siluMul up', up, n * 4);
  ctx.launch(getKernel(ctx, OPS, 'silu_mul'), blocksFor(n), [MODEL_OPS_THREADS], [gate, up, { u64: n }]);
}

/** a += b over n elements. */
export function addCuda(ctx: CudaContext, a: DeviceBuffer, b: DeviceBuffer, n: number): void {
  needBytes('add a', a, n * 4);
  needBytes('add b', b, n * 4);
  ctx.launch(getKernel(ctx, OPS, 'add'), blocksFor(n), [MODEL_OPS_THREADS], [a, b, { u64: n }]);
}

/** y[r, j] += bias[j] for y [m, N]. */
export function addBiasCuda(ctx: CudaContext, y: DeviceBuffer, bias: DeviceBuffer, m: number, N: number): void {
  needBytes('bias y', y, m * N * 4);
  needBytes('bias', bias, N * 4);
  ctx.launch(getKernel(ctx, OPS, 'add_bias'), blocksFor(m * N), [MODEL_OPS_THREADS], [y, bias, { i32: N }, { u64: m * N }]);
}

/** x16 = binary16(x) (round to nearest even) over n elements. */
export function toF16Cuda(ctx: CudaContext, x: DeviceBuffer, x16: DeviceBuffer, n: number): void {
  needBytes('to_f16 x', x, n * 4);
  needBytes('to_f16 out', x16, n * 2);
  ctx.launch(getKernel(ctx, OPS, 'to_f16'), blocksFor(n), [MODEL_OPS_THREADS], [x, x16, { u64: n }]);
}

/** y [count, dim] = rows rows[i] of x [*, dim]; `rows` an int32 [count] on the device, each < xRows. */
export function gatherRowsCuda(ctx: CudaContext, x: DeviceBuffer, xRows: number, rows: DeviceBuffer, count: number, y: DeviceBuffer, dim: number): void {
  needBytes('gather x', x, xRows * dim * 4);
  needBytes('gather rows', rows, count * 4);
  needBytes('gather y', y, count * dim * 4);
  ctx.launch(getKernel(ctx, OPS, 'gather_rows'), blocksFor(count * dim), [MODEL_OPS_THREADS], [x, rows, y, { i32: dim }, { u64: count * dim }]);
}

/** out[rows[i], :] += f32(weights[i] · y[i, :]) for i < count (rows distinct, each < outRows); rows int32, weights f32 on the device. */
export function addScaledRowsCuda(ctx: CudaContext, out: DeviceBuffer, outRows: number, y: DeviceBuffer, rows: DeviceBuffer, weights: DeviceBuffer,
  count: number, dim: number): void {
  needBytes('scatter out', out, outRows * dim * 4);
  needBytes('scatter y', y, count * dim * 4);
  needBytes('scatter rows', rows, count * 4);
  needBytes('scatter weights', weights, count * 4);
  ctx.launch(getKernel(ctx, OPS, 'add_scaled_rows'), blocksFor(count * dim), [MODEL_OPS_THREADS], [out, y, rows, weights, { i32: dim }, { u64: count * dim }]);
}

/** sums[j] += |x[i, j]| over the m rows of x [m, k] in order, float64 (add_abs_columns); waits for the stream to read them back. */
export function addAbsColumnsCuda(ctx: CudaContext, x: DeviceBuffer, m: number, k: number, sums: Float64Array): void {
  needBytes('abs columns x', x, m * k * 4);
  if (sums.length < k) throw new RangeError(`abs columns: ${sums.length} sums for ${k} columns`);
  const s = ctx.upload(sums.subarray(0, k));
  try {
    ctx.launch(getKernel(ctx, OPS, 'add_abs_columns'), [Math.ceil(k / MODEL_OPS_THREADS)], [MODEL_OPS_THREADS], [x, s, { i32: m }, { i32: k }]);
    ctx.copyToHost(sums.subarray(0, k), s);
  } finally {
    s.free();
  }
}
