/**
 * W4A16 (weight-only, Marlin-like) linear layers on the GPU, decode shapes (M <= 64): fp16
 * activations x [M, K], int4 weights (the same repacked buffer as W4A8) dequantized in registers
 * with fp16 group scales, fp32 accumulation, y [M, N] f32 or f16. Kernel: kernels/w4a16-decode.cu.
 * Above W4A16_MAX_TOKENS rows (prefill) w4a16Gemm expands the layer to fp16 into a scratch buffer
 * (kernels/w4a16-dequant.cu: the decode kernel's weight values bit for bit) and runs cuBLAS's fp16
 * GEMM on it, as weight-only stacks do for large batches.
 */
import { addressTable, type DeviceBuffer } from './buffer.js';
import { needRouteTables } from './moe-ops.js';
import type { CudaContext } from './context.js';
import type { Cublas } from './cublas.js';
import { getKernel } from './kernel-cache.js';
import { outputBytes, outputDefines, type OutputFormat } from './output.js';
import { checkW4A8Shape, paddedRows, repackPackedW4, repackScales, type RepackW4 } from './repack.js';
import { repackPackedW4OnPool } from '../cpu/repack-pool.js';
import type { QuantizedLinear } from '../../quant/types.js';
import { f32ToF16Bits } from '../../io/dtype.js';

export interface W4A16Layer {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  /** repacked int4 weights (repack.ts repackW4), paddedRows(n) · k / 2 bytes. */
  readonly weights: DeviceBuffer;
  /** fp16 scales s16[tile][g][16]. */
  readonly scales: DeviceBuffer;
}

export interface RepackedW4A16 {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  readonly weights: Uint8Array;
  readonly scales: Uint16Array;
}

/** Repacks a 4-bit layer for W4A16: the W4A8 weight layout and its float scales rounded to fp16. */
export function repackW4A16(w: QuantizedLinear, repackWeights: RepackW4 = repackPackedW4): RepackedW4A16 {
  if (w.wBits !== 4) throw new RangeError(`repackW4A16 needs 4-bit weights (got ${w.wBits})`);
  checkW4A8Shape(w.n, w.k, w.groupSize);
  const groups = w.k / w.groupSize;
  const sc = repackScales(w.scales, w.n, groups);
  const s16 = new Uint16Array(paddedRows(w.n) * groups);
  for (let i = 0; i < sc.length; i++) s16[i] = f32ToF16Bits(sc[i]!);
  return { n: w.n, k: w.k, groupSize: w.groupSize, weights: repackWeights(w.packed, w.n, w.k), scales: s16 };
}

export function uploadW4A16(ctx: CudaContext, w: QuantizedLinear | RepackedW4A16): W4A16Layer {
  const r = 'packed' in w ? repackW4A16(w, repackPackedW4OnPool) : w;
  return { n: r.n, k: r.k, groupSize: r.groupSize, weights: ctx.upload(r.weights), scales: ctx.upload(r.scales) };
}

export function freeW4A16(layer: W4A16Layer): void {
  layer.weights.free();
  layer.scales.free();
}

export interface W4A16Config { readonly MT: number; readonly NTW: number; readonly WK: number }

/** Largest M the W4A16 decode kernel serves; above it w4a16Gemm expands the weights and runs cuBLAS. */
export const W4A16_MAX_TOKENS = 64;

/**
 * Default decode configuration, from the H100 sweep (bench/cuda-w8-sweep.ts; docs/cuda-notes.md "W8A8 and W4A16 kernels"):
 * M <= 8: NTW4 WK4 on wide layers, NTW1 WK8 otherwise; M <= 16: MT2 NTW1 WK8; MT4 above, at 33-64 rows one launch
 * per 32 rows (w4a16Linear): MT 8 spills (255 registers, 416 B) and was 1.5-1.7x slower than two MT 4 launches on all
 * four 7B shapes at 48 and 64 rows (H100, 2026-12-07, docs/bench/cuda-w8-sweep-w4a16-H100-2026-12-07.txt).
 */
export function chooseW4A16Config(M: number, n: number, _k: number): W4A16Config {
  if (M > W4A16_MAX_TOKENS) throw new RangeError(`the W4A16 decode kernel serves M <= ${W4A16_MAX_TOKENS} (got ${M}); larger M goes through w4a16Gemm`);
  const wide = n >= 16384;
  if (M <= 8) return wide ? { MT: 1, NTW: 4, WK: 4 } : { MT: 1, NTW: 1, WK: 8 };
  if (M <= 16) return { MT: 2, NTW: 1, WK: 8 };
  return { MT: 4, NTW: 1, WK: 8 };
}

/**
 * y[M, N] = x16[M, K] · (q·s16)ᵀ on ctx's stream (asynchronous), y as `out` (f32 or f16); x16 holds binary16 values.
 * M past the config's 8·MT rows runs as one launch per 8·MT rows (each reads every weight again; a row's sums are
 * the same in any launch, so the same bits as one launch of a larger MT).
 */
export function w4a16Linear(
  ctx: CudaContext,
  layer: W4A16Layer,
  x16: DeviceBuffer,
  y: DeviceBuffer,
  M: number,
  config: W4A16Config = chooseW4A16Config(M, layer.n, layer.k),
  out: OutputFormat = 'f32',
): void {
  const { n: N, k: K } = layer;
  if (x16.bytes < M * K * 2 || y.bytes < M * N * outputBytes(out)) throw new RangeError(`w4a16Linear: buffers too small for M=${M}, N=${N}, K=${K} (${out} output)`);
  const fn = getKernel(ctx, 'w4a16-decode.cu', 'w4a16_decode', { GROUP: layer.groupSize, MT: config.MT, NTW: config.NTW, WK: config.WK, ...outputDefines(out) });
  const blocks = Math.ceil(Math.ceil(N / 16) / config.NTW);
  if (blocks * config.NTW * 16 > paddedRows(N)) throw new RangeError('decode tiles exceed the padded rows');
  const rows = 8 * config.MT, yRow = N * outputBytes(out);
  for (let r0 = 0; r0 < M; r0 += rows) {
    const m = Math.min(rows, M - r0);
    const [xs, ys] = r0 === 0 ? [x16, y] : [x16.view(r0 * K * 2, m * K * 2), y.view(r0 * yRow, m * yRow)];
    ctx.launch(fn, [blocks], [config.WK * 32], [layer.weights, layer.scales, xs, ys, { i32: m }, { i32: N }, { i32: K }]);
  }
}

/** Bytes of the fp16 scratch w4a16Gemm expands a layer into ([n, k] binary16). */
export const w4a16ExpandedBytes = (layer: W4A16Layer): number => layer.n * layer.k * 2;

/** w16 [n, k] (binary16, row-major) = fp16(q · s16) of every weight, on ctx's stream (w4a16-dequant.cu). */
export function w4a16Expand(ctx: CudaContext, layer: W4A16Layer, w16: DeviceBuffer): void {
  if (w16.bytes < w4a16ExpandedBytes(layer)) throw new RangeError(`w4a16Expand: a scratch of ${w16.bytes} bytes for a [${layer.n}, ${layer.k}] fp16 layer (${w4a16ExpandedBytes(layer)} bytes)`);
  const fn = getKernel(ctx, 'w4a16-dequant.cu', 'w4a16_dequant', { GROUP: layer.groupSize });
  const units = (paddedRows(layer.n) / 16) * (layer.k / 64) * 32;
  ctx.launch(fn, [Math.ceil(units / 256)], [256], [layer.weights, layer.scales, w16, { i32: layer.n }, { i32: layer.k }, { u64: units }]);
}

/**
 * y [M, N] f32 = x16 [M, K] · (q·s16)ᵀ for any M: the decode kernel up to W4A16_MAX_TOKENS rows, above
 * it the layer expanded into `scratch` (w4a16ExpandedBytes) and cuBLAS's fp16 GEMM with f32 sums.
 */
export function w4a16Gemm(ctx: CudaContext, blas: Cublas, layer: W4A16Layer, x16: DeviceBuffer, y: DeviceBuffer, M: number, scratch: () => DeviceBuffer): void {
  if (M <= W4A16_MAX_TOKENS) {
    w4a16Linear(ctx, layer, x16, y, M);
    return;
  }
  const { n: N, k: K } = layer;
  if (x16.bytes < M * K * 2 || y.bytes < M * N * 4) throw new RangeError(`w4a16Gemm: buffers too small for M=${M}, N=${N}, K=${K}`);
  const w16 = scratch();
  w4a16Expand(ctx, layer, w16);
  const [ya, xa, wa] = [y.address, x16.address, w16.address];
  ctx.onStream(() => blas.gemmF16F32(ya, xa, wa, M, N, K));
}

/** Device tables of a mixture of experts' W4A16 layers (one per expert, equal shapes): their weights' and scales' addresses. */
export interface W4A16ExpertTable {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  readonly experts: number;
  readonly weights: DeviceBuffer;
  readonly scales: DeviceBuffer;
}

export function w4a16ExpertTable(ctx: CudaContext, layers: readonly W4A16Layer[]): W4A16ExpertTable {
  const l0 = layers[0]!;
  const other = layers.find((l) => l.n !== l0.n || l.k !== l0.k || l.groupSize !== l0.groupSize);
  if (other) throw new RangeError(`grouped W4A16 experts must share shape and group size: [${l0.n}, ${l0.k}] G ${l0.groupSize} vs [${other.n}, ${other.k}] G ${other.groupSize}`);
  return {
    n: l0.n, k: l0.k, groupSize: l0.groupSize, experts: layers.length,
    weights: ctx.upload(addressTable(layers.map((l) => l.weights))),
    scales: ctx.upload(addressTable(layers.map((l) => l.scales))),
  };
}

export function freeW4A16ExpertTable(t: W4A16ExpertTable): void {
  t.weights.free();
  t.scales.free();
}

/** Grouped experts (w4a16_decode_experts), as w4a8ExpertsLinear (`typical` included): x16 rows (binary16) by expert, y f32. */
export function w4a16ExpertsLinear(ctx: CudaContext, t: W4A16ExpertTable, route: { offsets: DeviceBuffer; active: DeviceBuffer }, x16: DeviceBuffer,
  y: DeviceBuffer, rows: number, m: number, typical = m): void {
  const { n: N, k: K } = t;
  if (x16.bytes < rows * K * 2 || y.bytes < rows * N * 4) throw new RangeError(`w4a16ExpertsLinear: buffers too small for ${rows} rows, N=${N}, K=${K}`);
  needRouteTables('w4a16ExpertsLinear', route, t.experts);
  const c = chooseW4A16Config(Math.min(typical, m, W4A16_MAX_TOKENS), N, K);
  const fn = getKernel(ctx, 'w4a16-decode.cu', 'w4a16_decode_experts', { GROUP: t.groupSize, MT: c.MT, NTW: c.NTW, WK: c.WK, ...outputDefines('f32') });
  const chunks = Math.ceil(m / (8 * c.MT));
  ctx.launch(fn, [Math.ceil(Math.ceil(N / 16) / c.NTW), Math.min(rows, t.experts), chunks], [c.WK * 32], [t.weights, t.scales, route.offsets, route.active, x16, y, { i32: N }, { i32: K }]);
}
