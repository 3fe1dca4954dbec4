/**
 * W8A8 linear layers on the GPU: 8-bit weights (natural row-major [Npad, K] int8, no repacking
 * beyond zero row padding) with integer or float group scales, int8 activations.
 *   M <= 32 (or no sm_90a): w8a8_decode (weights streamed once, swapped-operand mma.sync)
 *   larger M on sm_90a:     w8a8_wgmma (both operands cp.async'd straight into swizzled smem)
 * Both take xq [M, K] int8 with per-token scales a [M] and write y [M, N] f32 or f16 (OutputFormat).
 * Integer scales use the plain epilogue (T += acc·S in int32): the layer must satisfy
 * 127·128·G·max_n Σ_g S[n,g] < 2^31, which the CPU quantizer's 'safe' α policy guarantees;
 * upload refuses a layer that does not.
 */
import { INT32_LIMIT, maxChannelBound } from '../../quant/overflow.js';
import { unpackWeights } from '../../quant/int4-pack.js';
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import { getKernel } from './kernel-cache.js';
import { DECODE_SMEM, decodeSlotsLaunch, type DecodeSlots } from './decode-slots.js';
import { outputBytes, outputDefines, type OutputFormat } from './output.js';
import { paddedRows, repackScales } from './repack.js';
import type { QuantizedLinear } from '../../quant/types.js';

export interface W8A8Layer {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  readonly scale: 'int' | 'float';
  /** 2^-b (IS) or 1 (FS). */
  readonly post: number;
  /** int8 weights [paddedRows(n), k]. */
  readonly weights: DeviceBuffer;
  /** scales sc[tile][g][16], int32 S or f32 s. */
  readonly scales: DeviceBuffer;
}

export interface RepackedW8A8 {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  readonly scale: 'int' | 'float';
  readonly weights: Int8Array;
  readonly scales: Int32Array | Float32Array;
  readonly post: number;
}

/** Checks the shape constraints of the W8A8 kernels; throws RangeError naming the problem. */
export function checkW8A8Shape(n: number, k: number, groupSize: number): void {
  if (k % 128 !== 0) throw new RangeError(`CUDA W8A8 kernels need K % 128 == 0 (K = ${k})`);
  if (groupSize % 128 !== 0 || k % groupSize !== 0) {
    throw new RangeError(`CUDA W8A8 kernels need a group size that is a multiple of 128 dividing K (G = ${groupSize}, K = ${k})`);
  }
  if (n <= 0) throw new RangeError(`bad N = ${n}`);
}

/** Repacks an 8-bit QuantizedLinear ('int' needs intScales and an overflow-safe layer). */
export function repackW8A8(w: QuantizedLinear, scale: 'int' | 'float' = w.scale): RepackedW8A8 {
  if (w.wBits !== 8) throw new RangeError(`repackW8A8 needs 8-bit weights (got ${w.wBits})`);
  checkW8A8Shape(w.n, w.k, w.groupSize);
  const groups = w.k / w.groupSize;
  const weights = new Int8Array(paddedRows(w.n) * w.k);
  weights.set(unpackWeights(w));
  if (scale === 'int') {
    if (!w.intScales || w.alphaLog2 === undefined) throw new RangeError('integer-scale epilogue needs intScales and alphaLog2');
    const bound = maxChannelBound(w.intScales, w.n, groups, w.groupSize, 8).maxBound;
    if (bound >= INT32_LIMIT) {
      throw new RangeError(`W8A8 integer-scale layer may overflow int32: 127·128·G·max Σ_g S = ${bound} ≥ 2^31 (quantize it with the 'safe' α policy)`);
    }
    return { n: w.n, k: w.k, groupSize: w.groupSize, scale, weights, scales: repackScales(w.intScales, w.n, groups), post: 2 ** -w.alphaLog2 };
  }
  return { n: w.n, k: w.k, groupSize: w.groupSize, scale, weights, scales: repackScales(w.scales, w.n, groups), post: 1 };
}

export function uploadW8A8(ctx: CudaContext, w: QuantizedLinear | RepackedW8A8, scale?: 'int' | 'float'): W8A8Layer {
  const r = 'packed' in w ? repackW8A8(w, scale ?? w.scale) : w;
  return { n: r.n, k: r.k, groupSize: r.groupSize, scale: r.scale, post: r.post, weights: ctx.upload(r.weights), scales: ctx.upload(r.scales) };
}

export function freeW8A8(layer: W8A8Layer): void {
  layer.weights.free();
  layer.scales.free();
}

/** The weight-streaming decode kernel (w8a8-decode.cu): as W4A8's DecodeConfig, STAGES / MINB included (decode-slots.ts). */
export interface W8DecodeConfig extends DecodeSlots { readonly kind: 'decode'; readonly MT: number; readonly NTW: number; readonly WK: number }
/** Tile (64·WGS) x 128, WGS warpgroups, STAGES cp.async stages; PIPE: two accumulators (w8a8-wgmma.cu). */
export interface W8WgmmaConfig { readonly kind: 'wgmma'; readonly WGS: 1 | 2; readonly STAGES: number; readonly PIPE?: boolean }
export type W8A8Config = W8DecodeConfig | W8WgmmaConfig;

/**
 * Launch facts of w8a8-wgmma.cu, written once here from its #defines (names as there;
 * test/backends/cuda/launch-facts.test.ts compares): BM = 64·WGS tokens x BN weight rows per block,
 * THREADS = 128·WGS.
 */
export const W8_WGMMA = { BN: 128, BM: (wgs: number): number => 64 * wgs, THREADS: (wgs: number): number => 128 * wgs } as const;

/** Dynamic shared memory of w8a8_wgmma (SMEM_BYTES in w8a8-wgmma.cu: per stage A, B and the scales). */
export function w8a8WgmmaSharedBytes(wgs: number, stages: number): number {
  const A_BYTES = W8_WGMMA.BM(wgs) * 128, B_BYTES = W8_WGMMA.BN * 128, SC_BYTES = W8_WGMMA.BN * 4;
  return 1024 + stages * (A_BYTES + B_BYTES + SC_BYTES);
}

/**
 * Default kernel for M tokens on an [N, K] 8-bit layer, from the H100 sweep (bench/cuda-w8-sweep.ts;
 * docs/cuda-notes.md "W8A8 and W4A16 kernels"): decode MT1 NTW1 WK8 up to M = 8 and MT2 NTW1
 * WK8 up to 16 (best or within 1% on all three shapes), decode MT4 up to 32 (not swept), the
 * wgmma GEMM above (64x128 tiles, 3 stages, 3 blocks per SM: best or within 3% at M >= 128).
 */
export function chooseW8A8Config(M: number, _n: number, _k: number, wgmma = true): W8A8Config {
  if (M <= 8) return { kind: 'decode', MT: 1, NTW: 1, WK: 8 };
  if (M <= 16) return { kind: 'decode', MT: 2, NTW: 1, WK: 8 };
  if (M <= 32 || (!wgmma && M <= 64)) return { kind: 'decode', MT: M <= 32 ? 4 : 8, NTW: 1, WK: 8 };
  if (!wgmma) throw new RangeError(`W8A8 for M = ${M} > 64 needs the sm_90a wgmma kernel`);
  return { kind: 'wgmma', WGS: 1, STAGES: 3 };
}

/** y[M, N] = dequant(xq, a) · W'ᵀ on ctx's stream (asynchronous), y as `out` (f32 or f16). */
export function w8a8Linear(
  ctx: CudaContext,
  layer: W8A8Layer,
  xq: DeviceBuffer,
  a: DeviceBuffer,
  y: DeviceBuffer,
  M: number,
  config: W8A8Config = chooseW8A8Config(M, layer.n, layer.k, ctx.arch === 'sm_90a'),
  out: OutputFormat = 'f32',
): void {
  const { n: N, k: K } = layer;
  if (xq.bytes < M * K || a.bytes < M * 4 || y.bytes < M * N * outputBytes(out)) throw new RangeError(`w8a8Linear: buffers too small for M=${M}, N=${N}, K=${K} (${out} output)`);
  const common = { GROUP: layer.groupSize, SCALE_INT: layer.scale === 'int' ? 1 : 0, ...outputDefines(out) };
  const args = [layer.weights, layer.scales, xq, a, y, { i32: M }, { i32: N }, { i32: K }, { f32: layer.post }] as const;
  if (config.kind === 'decode') {
    if (M > 8 * config.MT) throw new RangeError(`decode config MT=${config.MT} serves M <= ${8 * config.MT}, got ${M}`);
    const { smem, defines } = decodeSlotsLaunch(ctx, M, K, config, DECODE_SMEM.W8_TILE);
    const fn = getKernel(ctx, 'w8a8-decode.cu', 'w8a8_decode', { ...common, MT: config.MT, NTW: config.NTW, WK: config.WK, ...defines }, smem);
    const blocks = Math.ceil(Math.ceil(N / 16) / config.NTW);
    if (blocks * config.NTW * 16 > paddedRows(N)) throw new RangeError('decode tiles exceed the padded rows');
    ctx.launch(fn, [blocks], [config.WK * 32], args, smem);
  } else {
    if (!ctx.arch.startsWith('sm_90')) throw new RangeError(`the wgmma kernel needs sm_90a (device is ${ctx.arch})`);
    const smem = w8a8WgmmaSharedBytes(config.WGS, config.STAGES);
    if (config.PIPE && config.STAGES < 3) throw new RangeError('the PIPE variant needs STAGES >= 3');
    const fn = getKernel(ctx, 'w8a8-wgmma.cu', 'w8a8_wgmma', { ...common, WGS: config.WGS, STAGES: config.STAGES, PIPE: config.PIPE ? 1 : 0 }, smem);
    ctx.launch(fn, [Math.ceil(M / W8_WGMMA.BM(config.WGS)), Math.ceil(N / W8_WGMMA.BN)], [W8_WGMMA.THREADS(config.WGS)], args, smem);
  }
}
