/**
 * W4A8 linear layers on the GPU: upload (repacked weights + scales), kernel choice by M, launch.
 *   M <= 16: w4a8_decode (weights streamed once, tensor cores with swapped operands)
 *   M  > 16: w4a8_mma (cp.async-pipelined mma.sync GEMM)
 *   large M on sm_90a: w4a8_wgmma_tma (warpgroup MMA, weights from registers, every operand
 *                      loaded by TMA from a producer warpgroup; the default when the driver encodes
 *                      tensor maps) or w4a8_wgmma_rs (the same MMA with cp.async and register
 *                      loads); both read the activations in fragment order (see activationOrder).
 *                      (A third, w4a8_wgmma with both operands from shared memory, lost to them at
 *                      every M and was removed: docs/cuda-notes.md.)
 * All take int8 activations xq [M, K] with per-token scales a [M] and write y [M, N] as f32 or f16
 * (OutputFormat). The decode kernel also comes with SwiGLU in its epilogue (w4a8SwigluDecode), and adding
 * into the residual with the next RMSNorm as its tail (w4a8DecodeNorm).
 */
import { addressTable, needBytes, type DeviceBuffer } from './buffer.js';
import { needRouteTables } from './moe-ops.js';
import type { CudaContext } from './context.js';
import type { KernelArg, KernelStruct } from './program.js';
import { splitKWorkspace } from './workspace.js';
import { getKernel } from './kernel-cache.js';
import { paddedRows, repackW4A8, type RepackedW4A8 } from './repack.js';
import { repackPackedW4OnPool } from '../cpu/repack-pool.js';
import { cachedTensorMapU8, hasTensorMaps } from './tensor-map.js';
import { outputBytes, outputDefines, type OutputFormat } from './output.js';
import { DECODE_SMEM, decodeSlotsLaunch, type DecodeSlots } from './decode-slots.js';
import { rowNormOutput, rowTailArgs, TAIL_COUNTER_BYTES, type RowNorm, type RowTail } from './engine-ops.js';
import type { QuantizedLinear } from '../../quant/types.js';

export interface W4A8Layer {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  readonly scale: 'int' | 'float';
  readonly post: number;
  readonly isShift: boolean;
  /** repacked int4 weights, paddedRows(n) · k / 2 bytes. */
  readonly weights: DeviceBuffer;
  /** repacked scales, paddedRows(n) · k / G values. */
  readonly scales: DeviceBuffer;
}

export function uploadW4A8(ctx: CudaContext, w: QuantizedLinear | RepackedW4A8, scale?: 'int' | 'float'): W4A8Layer {
  const r = 'packed' in w ? repackW4A8(w, scale ?? w.scale, repackPackedW4OnPool) : w;
  return {
    n: r.n, k: r.k, groupSize: r.groupSize, scale: r.scale, post: r.post, isShift: r.isShift,
    weights: ctx.upload(r.weights),
    scales: ctx.upload(r.scales),
  };
}

export function freeW4A8(layer: W4A8Layer): void {
  layer.weights.free();
  layer.scales.free();
}

/**
 * The weight-streaming decode kernel: MT token halves of 8, NTW 16-row tiles per block, WK k-warps; STAGES
 * cp.async slots a warp in shared memory instead of two register buffers, MINB blocks a SM (decode-slots.ts).
 * `overlap`: launch it with programmatic dependent launch (LaunchOptions.overlapPrevious), so it loads
 * its first weights while the kernel before it finishes.
 */
export interface DecodeConfig extends DecodeSlots {
  readonly kind: 'decode'; readonly MT: number; readonly NTW: number; readonly WK: number; readonly overlap?: boolean;
  /** add the product into y (y += x·Wᵀ, f32 output) instead of writing it: the decode engine's residual add. */
  readonly accumulate?: boolean;
}
export interface MmaConfig { readonly kind: 'mma'; readonly BM: number; readonly BN: number; readonly WM: number; readonly WN: number; readonly STAGES: number }
/**
 * The sm_90a warpgroup-MMA GEMM with the weights as the register A operand: tile (64·WGS) weight
 * rows x 128 tokens, STAGES cp.async stages of activations, MINB blocks per SM for the register cap.
 * Reads xq in fragment order (activationOrder).
 */
export interface WgmmaRsConfig { readonly kind: 'wgmma-rs'; readonly WGS: 1 | 2; readonly STAGES: number; readonly MINB: number }
/**
 * The register-A warpgroup-MMA GEMM fed by TMA from a producer warpgroup (w4a8-wgmma-tma.cu): tile 128
 * weight rows x 128 tokens, STAGES stages of activations + weights + scales. Needs sm_90a and a
 * driver with cuTensorMapEncodeTiled; reads xq in fragment order (activationOrder). `blocks`: how
 * many blocks share the tiles — 'tiles' (the default) one per tile, 'sms' one per SM (persistent:
 * each block loops over tiles, its producer running into the next tile while it stores), or a
 * number (at most one per tile). `KS` (default 1): split each tile's K into KS ranges, one work item
 * each (for grids with fewer tiles than SMs); partial totals meet in a per-context workspace
 * (workspace.ts) and the last warp to arrive adds them in a fixed order, so integer totals stay exact.
 */
export interface WgmmaTmaConfig {
  readonly kind: 'wgmma-tma'; readonly STAGES: number; readonly blocks?: 'tiles' | 'sms' | number; readonly KS?: number;
  /** tokens a tile (default 128): 64 or 32 for a few rows (m64n64 / m64n32 MMAs, less of the tile's work wasted). */
  readonly BT?: 32 | 64 | 128;
}
export type W4A8Config = DecodeConfig | MmaConfig | WgmmaRsConfig | WgmmaTmaConfig;

/** Order of k inside each 64-k block in which a kernel reads the activations xq. */
export type ActivationOrder = 'natural' | 'fragment';
export function activationOrder(config: W4A8Config): ActivationOrder {
  return config.kind === 'wgmma-rs' || config.kind === 'wgmma-tma' ? 'fragment' : 'natural';
}

/*
 * Launch facts of the W4A8 kernels, written once here from the #defines of their .cu files (names as
 * there); test/backends/cuda/launch-facts.test.ts evaluates the .cu's #defines and compares.
 */

/** act-quant.cu: one block of THREADS per token row (__launch_bounds__). */
export const ACT_QUANT = { THREADS: 256 } as const;

/** w4a8-mma.cu: BM x BN blocks of WM·WN warps; dynamic shared memory SMEM_BYTES. */
export function mmaLaunch(c: MmaConfig): { threads: number; sharedBytes: number } {
  const A_U4 = c.BM * 8, B_U4 = (c.BN / 16) * 64; // uint4 per stage
  return { threads: c.WM * c.WN * 32, sharedBytes: c.STAGES * (A_U4 + B_U4) * 16 };
}

/** w4a8-wgmma-rs.cu: BT tokens x BW = 64·WGS weight rows per block, THREADS = 128·WGS. */
export const WGMMA_RS = { BT: 128, X_BYTES: 128 * 128, BW: (wgs: number): number => 64 * wgs, THREADS: (wgs: number): number => 128 * wgs } as const;

/** Dynamic shared memory of the register-A wgmma kernel (SMEM_BYTES in w4a8-wgmma-rs.cu). */
export function wgmmaRsSharedBytes(stages: number): number {
  return 1024 + stages * WGMMA_RS.X_BYTES + stages * 16;
}

/**
 * w4a8-wgmma-tma.cu: BT tokens (the default; WgmmaTmaConfig.BT) x BW weight rows per work item, CONSUMERS threads in 8
 * consumer warps plus a producer warpgroup (THREADS), stages of X_BYTES (BT·128) + W_BYTES + S_BYTES rounded up to 1 KiB
 * (STAGE_BYTES), 8 output slots of OUT_SLOT; a split-K partial is BT/2 x 32 4-byte totals per warp (tmaPartialBytes).
 */
export const WGMMA_TMA = {
  BT: 128, BW: 128, CONSUMERS: 256, THREADS: 384, X_BYTES: 128 * 128, W_BYTES: 8 * 1024, S_BYTES: 8 * 64, OUT_SLOT: 8192,
  CONSUMER_WARPS: 8,
} as const;

/** The TMA kernel's tiles at M rows of an N-row layer: BT tokens by BW weight rows each. */
const tmaTiles = (M: number, N: number, BT: number): number => Math.ceil(M / BT) * Math.ceil(N / WGMMA_TMA.BW);

/** A consumer warp's split-K partial of the TMA kernel at BT tokens a tile: BT/2 totals a lane. */
export const tmaPartialBytes = (BT: number): number => (BT / 2) * 32 * 4;

/** Dynamic shared memory of the TMA-fed kernel (SMEM_BYTES in w4a8-wgmma-tma.cu) at BT tokens a tile. */
export function wgmmaTmaSharedBytes(stages: number, BT: number = WGMMA_TMA.BT): number {
  const { W_BYTES, S_BYTES, OUT_SLOT } = WGMMA_TMA;
  const STAGE_BYTES = Math.ceil((BT * 128 + W_BYTES + S_BYTES) / 1024) * 1024;
  return 1024 + stages * STAGE_BYTES + 8 * OUT_SLOT + stages * 16;
}


/**
 * The default kernel and tile configuration for M tokens on an [N, K] layer, picked from H100
 * sweeps (bench/cuda-sweep.ts; docs/cuda-notes.md, "Register-A wgmma kernel"; M <= 8: one tile and
 * 16 k-warps per block on every shape since the decode kernel loads scales with the weights,
 * "Third session"): the weight-streaming decode kernel wins up to
 * M = 32 everywhere and up to M = 64 when N is small; above M = 64 the register-A wgmma GEMM
 * (sm_90a only, fragment-order activations; `wgmma` = false falls back to the mma.sync GEMM).
 * With TMA, from M = 33 the TMA-fed kernel (from M = 65 on non-wide layers with K <= 4096, where the
 * decode kernel is level at M = 64), its K split KS times when its tiles do not fill the `sms` SMs
 * (KS = min(4, sms / tiles)): same-run A/B on the H100, "Seventh session, continued".
 */
export function chooseW4A8Config(M: number, n: number, k: number, wgmma = true, tma = wgmma, sms = 132): W4A8Config {
  const wide = n >= 16384;
  // PREW 2: a warp's second chunk of weights also loaded before the wait (at K = 4096 and WK 16 all of a resident
  // block's weights): engine step -0.8% at 1 row and at 8, bit-identical (H100, docs/cuda-notes.md, 29th session)
  if (M <= 8) return { kind: 'decode', MT: 1, NTW: 1, WK: k >= 2048 ? 16 : 8, PREW: 2 };
  if (M <= 16) return wide ? { kind: 'decode', MT: 2, NTW: 2, WK: 8 } : { kind: 'decode', MT: 2, NTW: 2, WK: k >= 2048 ? 16 : 8 };
  // MINB 2 caps the registers at 128, two blocks a SM: left to itself ptxas took 130-136 after the slot
  // pipeline's changes, one block a SM, and batch 32 decoded 12% slower on an H100 (docs/cuda-notes.md, 26th session)
  // On the wide layers (gate/up) four k-warps a block, four blocks a SM (the same 16 warps, 127 registers; each warp 8 of
  // K = 4096's chunks instead of 4): 4096·22016 at 32 rows 29.89 -> 26.51 µs, bit-identical; on q/k/v level (18.94 ->
  // 18.66), on o and down slower (0.87-0.90x), so those keep WK 8 (H100, docs/cuda-notes.md, 38th session)
  if (M <= 32) return wide ? { kind: 'decode', MT: 4, NTW: 1, WK: 4, MINB: 4 } : { kind: 'decode', MT: 4, NTW: 1, WK: 8, MINB: 2 };
  // M = 64 on 4096²: decode 15.9-16.2 µs vs TMA split-K 4 16.4-16.5 µs (two same-run measurements)
  if (M <= 64 && !wide && k <= 4096) return { kind: 'decode', MT: 8, NTW: 1, WK: 8 };
  if (wgmma && tma) {
    // split-K A/B (M = 64-512): 4096² M = 128 21.0 -> 16.8 µs (KS 4), 11008·4096 M = 128 43.0 -> 24.4 µs,
    // M = 256 43.1 -> 30.8 µs (KS 2); KS past sms / tiles was slower everywhere; at M = 64 the TMA kernel
    // beat the mma 64x64 GEMM on 4096·22016 (52.1 -> 40.5 µs) and the decode kernel on 11008·4096 (30.5 -> 23.7)
    // One block per SM looping over the tiles beat one block per tile by 1-12% at M = 2048-4096, IS and
    // FS, f32 and f16 output (H100, docs/cuda-notes.md "Sixth session"); below 132 tiles the two are the same.
    return tmaConfig(M, n, k, sms);
  }
  if (M <= 64) return wide ? { kind: 'mma', BM: 64, BN: 64, WM: 2, WN: 2, STAGES: 4 } : { kind: 'decode', MT: 8, NTW: 1, WK: 8 };
  if (!wgmma) return { kind: 'mma', BM: 128, BN: 128, WM: 2, WN: 4, STAGES: 4 };
  // register-A wgmma (H100, docs/cuda-notes.md "Register-A wgmma kernel"): beat the shared-memory-operand
  // wgmma kernel at every M >= 128 on all three shapes (1.10-1.18x cuBLAS FP16 at M = 4096); fed by
  // TMA it is faster again at every M >= 256 and level at M = 128 ("Fifth session").
  return { kind: 'wgmma-rs', WGS: 2, STAGES: 4, MINB: 1 };
}

/**
 * The TMA kernel as the chooser sets it at M rows of an [n, k] layer with BT tokens a tile: one block a SM looping
 * over the tiles, K split in up to 4 where the tiles leave SMs idle (KS ≤ sms / tiles).
 */
export function tmaConfig(M: number, n: number, k: number, sms: number, BT: 32 | 64 | 128 = WGMMA_TMA.BT): WgmmaTmaConfig {
  const KS = Math.max(1, Math.min(4, k / 128, Math.floor(sms / tmaTiles(M, n, BT))));
  return { kind: 'wgmma-tma', STAGES: 4, blocks: 'sms', ...(KS > 1 ? { KS } : {}), ...(BT !== WGMMA_TMA.BT ? { BT } : {}) };
}

/**
 * y[M, N] = dequant(xq, a) · W'ᵀ on ctx's stream (asynchronous), y as `out` (f32 or f16). xq must be
 * in the k order of activationOrder(config) (quantizeActivationsCuda(..., activationOrder(config))
 * writes it so).
 */
export function w4a8Linear(
  ctx: CudaContext,
  layer: W4A8Layer,
  xq: DeviceBuffer,
  a: DeviceBuffer,
  y: DeviceBuffer,
  M: number,
  config: W4A8Config = chooseW4A8Config(M, layer.n, layer.k, ctx.arch === 'sm_90a', hasTensorMaps(ctx), ctx.info.multiprocessors),
  out: OutputFormat = 'f32',
): void {
  const { n: N, k: K } = layer;
  if (xq.bytes < M * K || a.bytes < M * 4 || y.bytes < M * N * outputBytes(out)) throw new RangeError(`w4a8Linear: buffers too small for M=${M}, N=${N}, K=${K} (${out} output)`);
  const common = layerDefines(layer, out);
  const args = [layer.weights, layer.scales, xq, a, y, { i32: M }, { i32: N }, { i32: K }, { f32: layer.post }] as const;
  if (config.kind.startsWith('wgmma') && !ctx.arch.startsWith('sm_90')) throw new RangeError(`the wgmma kernel needs sm_90a (device is ${ctx.arch})`);
  if (config.kind === 'decode') {
    if (config.accumulate && out !== 'f32') throw new RangeError('an accumulating decode GEMM writes f32');
    launchDecode(ctx, layer, M, config, 'w4a8_decode', out, config.accumulate ? { ACCUMULATE: 1 } : {}, args);
  } else if (config.kind === 'wgmma-tma') {
    const BT = config.BT ?? WGMMA_TMA.BT;
    if (![32, 64, 128].includes(BT)) throw new RangeError(`wgmma-tma BT (tokens a tile) must be 32, 64 or 128, got ${BT}`);
    const smem = wgmmaTmaSharedBytes(config.STAGES, BT);
    if (smem > ctx.info.maxSharedPerBlockOptin) throw new RangeError(`wgmma-tma with ${config.STAGES} stages needs ${smem} B of shared memory, the device allows ${ctx.info.maxSharedPerBlockOptin}`);
    const ks = config.KS ?? 1;
    if (!Number.isInteger(ks) || ks < 1 || ks > K / 128) throw new RangeError(`wgmma-tma KS (K splits) must be an integer in 1..${K / 128} for K=${K}, got ${ks}`);
    const tiles = tmaTiles(M, N, BT);
    const blocks = tmaBlocks(ctx, config, tiles * ks);
    const fn = getKernel(ctx, 'w4a8-wgmma-tma.cu', 'w4a8_wgmma_tma', { ...common, STAGES: config.STAGES, ...(ks > 1 ? { KS: ks } : {}), ...(BT !== WGMMA_TMA.BT ? { BT } : {}) }, smem);
    const maps = w4a8TensorMaps(ctx, layer, xq, y, M, outputBytes(out), BT);
    // split-K: per tile and consumer warp one counter and a BT/2 x 32 partial of 4-byte totals per split
    const need = w4a8SplitKNeed(layer, M, config);
    const [ws, cnt] = need !== null ? splitKWorkspace(ctx, need.counters, need.partialBytes) : [{ u64: 0 }, { u64: 0 }];
    ctx.launch(fn, [blocks], [WGMMA_TMA.THREADS], [maps.x, maps.w, maps.s, a, y, { i32: M }, { i32: N }, { i32: K }, { f32: layer.post }, maps.y ?? maps.x, { i32: maps.y ? 1 : 0 }, ws, cnt], smem);
  } else if (config.kind === 'wgmma-rs') {
    const smem = wgmmaRsSharedBytes(config.STAGES);
    const fn = getKernel(ctx, 'w4a8-wgmma-rs.cu', 'w4a8_wgmma_rs', { ...common, WGS: config.WGS, STAGES: config.STAGES, MINB: config.MINB }, smem);
    ctx.launch(fn, [Math.ceil(M / WGMMA_RS.BT), Math.ceil(N / WGMMA_RS.BW(config.WGS))], [WGMMA_RS.THREADS(config.WGS)], args, smem);
  } else {
    if (paddedRows(N) % config.BN !== 0) throw new RangeError(`BN=${config.BN} does not divide the padded rows`);
    const { threads, sharedBytes: smem } = mmaLaunch(config);
    const fn = getKernel(ctx, 'w4a8-mma.cu', 'w4a8_mma', { ...common, BM: config.BM, BN: config.BN, WM: config.WM, WN: config.WN, STAGES: config.STAGES }, smem);
    ctx.launch(fn, [Math.ceil(M / config.BM), Math.ceil(N / config.BN)], [threads], args, smem);
  }
}

/**
 * SwiGLU in the decode kernel's epilogue (w4a8_decode_swiglu): `layer` is gate/up stacked with its rows
 * interleaved in blocks of 8 (concat.ts; N = 2F), y [M, F] f32 = silu(gate)·up of the outputs
 * w4a8Linear would write with the same config, amax [M, P] each block's max |y| per token. Returns P
 * (the blocks) for quantize_rows; with `tail` the grid's last blocks (one a row) write the rows as
 * quantize_rows would, into tail.out (`tail.arrivals`: TAIL_COUNTER_BYTES of device memory, zero before the launch and after).
 */
export function w4a8SwigluDecode(ctx: CudaContext, layer: W4A8Layer, xq: DeviceBuffer, a: DeviceBuffer, y: DeviceBuffer, amax: DeviceBuffer,
  M: number, config: DecodeConfig, tail: RowTail | null = null): number {
  const { n: N, k: K } = layer;
  if (N % 16 !== 0) throw new RangeError(`w4a8SwigluDecode: gate/up interleaved by 8 needs N divisible by 16, got ${N}`);
  if (config.accumulate) throw new RangeError('the SwiGLU epilogue writes its rows; it does not accumulate');
  const blocks = decodeBlocks(N, config);
  needBytes('swiglu xq', xq, M * K);
  needBytes('swiglu a', a, M * 4);
  needBytes('swiglu y', y, M * (N / 2) * 4);
  needBytes('swiglu block maxima', amax, M * blocks * 4);
  return launchDecode(ctx, layer, M, config, 'w4a8_decode_swiglu', 'f32', {},
    [layer.weights, layer.scales, xq, a, y, amax, { i32: M }, { i32: N }, { i32: K }, { f32: layer.post }, ...rowTailArgs('swiglu tail', tail, M, N / 2)]);
}

/**
 * The decode GEMM quantizing its own input rows (w4a8_decode_rows): y [M, N] = or += (config.accumulate) the rows
 * quantizeRowsCuda would write from `rows` (f32 values [M, K] and P partial maxima a row, as attention_merge and the
 * SwiGLU epilogue leave them) · W'ᵀ, f32, without that launch: each block quantizes the M rows into its shared memory
 * after the wait (the same bytes and scales, so the same outputs as quantizeRowsCuda then w4a8Linear with `config`).
 * The register pipeline only (no STAGES); M·K bytes of dynamic shared memory a block.
 */
export function w4a8DecodeRows(ctx: CudaContext, layer: W4A8Layer, rows: { readonly values: DeviceBuffer; readonly amax: DeviceBuffer }, P: number,
  y: DeviceBuffer, M: number, config: DecodeConfig): void {
  const { n: N, k: K } = layer;
  if ((config.STAGES ?? 0) > 0) throw new RangeError(`a decode GEMM quantizing its rows takes the register pipeline, got STAGES=${config.STAGES}`);
  if (!Number.isInteger(P) || P < 1) throw new RangeError(`decode rows: P (partial maxima a row) must be a positive integer, got ${P}`);
  needBytes('decode rows values', rows.values, M * K * 4);
  needBytes('decode rows maxima', rows.amax, M * P * 4);
  needBytes('decode rows y', y, M * N * 4);
  launchDecode(ctx, layer, M, config, 'w4a8_decode_rows', 'f32', config.accumulate ? { ACCUMULATE: 1 } : {},
    [layer.weights, layer.scales, rows.values, rows.amax, { i32: P }, y, { i32: M }, { i32: N }, { i32: K }, { f32: layer.post }], M * K);
}

/** Whether a decode config's blocks can run the norm tail: its WK·32 threads play rmsnorm_to's 1024 (row-form.cuh). */
export const normTailFits = (config: DecodeConfig): boolean => 1024 % (config.WK * 32) === 0;

/**
 * The residual add with the next RMSNorm as its tail (w4a8_decode_norm): y [M, N] += x·Wᵀ as w4a8Linear
 * with an accumulating decode config, then the grid's last blocks (one a row) write RMSNorm(y) as `norm`
 * says (the bytes rmsnormToCuda writes). `arrivals`: TAIL_COUNTER_BYTES of device memory, zero before the launch (the
 * kernel leaves them zero). `norm.out` may be the buffers xq and a themselves.
 */
export function w4a8DecodeNorm(ctx: CudaContext, layer: W4A8Layer, xq: DeviceBuffer, a: DeviceBuffer, y: DeviceBuffer, M: number,
  config: DecodeConfig, norm: RowNorm, arrivals: DeviceBuffer): void {
  const { n: N, k: K } = layer;
  if (!config.accumulate) throw new RangeError('w4a8DecodeNorm adds into the residual: its config must accumulate');
  if (!normTailFits(config)) throw new RangeError(`the norm tail takes WK dividing 32, got ${config.WK}`);
  needBytes('decode norm xq', xq, M * K);
  needBytes('decode norm a', a, M * 4);
  needBytes('decode norm y', y, M * N * 4);
  needBytes('decode norm arrivals', arrivals, TAIL_COUNTER_BYTES);
  const [values, scales, form] = rowNormOutput('decode norm', norm, M, N);
  launchDecode(ctx, layer, M, config, 'w4a8_decode_norm', 'f32', { ACCUMULATE: 1 },
    [layer.weights, layer.scales, xq, a, y, { i32: M }, { i32: N }, { i32: K }, { f32: layer.post }, norm.weight, values, scales, { f32: norm.eps }, form, arrivals]);
}

/** The compile-time defines every W4A8 kernel takes from its layer and output format. */
function layerDefines(layer: W4A8Layer, out: OutputFormat): Record<string, number> {
  return { GROUP: layer.groupSize, SCALE_INT: layer.scale === 'int' ? 1 : 0, IS_SHIFT: layer.isShift ? 1 : 0, ...outputDefines(out) };
}

/** Blocks of a decode-kernel launch: NTW 16-row tiles each. */
const decodeBlocks = (N: number, config: DecodeConfig): number => Math.ceil(Math.ceil(N / 16) / config.NTW);

/**
 * Launches a decode-kernel entry of w4a8-decode.cu (one block per NTW tiles, WK warps) with the layer's, the config's and `extra` defines,
 * and `rowBytes` of dynamic shared memory for the entry's own rows (w4a8_decode_rows); returns the blocks.
 */
function launchDecode(ctx: CudaContext, layer: W4A8Layer, M: number, config: DecodeConfig, entry: string, out: OutputFormat, extra: Record<string, number>,
  args: readonly KernelArg[], rowBytes = 0): number {
  if (M > 8 * config.MT) throw new RangeError(`decode config MT=${config.MT} serves M <= ${8 * config.MT}, got ${M}`);
  const blocks = decodeBlocks(layer.n, config);
  if (blocks * config.NTW * 16 > paddedRows(layer.n)) throw new RangeError('decode tiles exceed the padded rows');
  const slots = decodeSlotsLaunch(ctx, M, layer.k, config, DECODE_SMEM.W4_TILE);
  const { defines } = slots, smem = slots.smem + rowBytes;
  if (rowBytes > 0 && smem + slots.reductionBytes > ctx.info.maxSharedPerBlockOptin) {
    throw new RangeError(`a decode GEMM quantizing ${M} rows of K=${layer.k} needs ${smem + slots.reductionBytes} B of shared memory, the device allows ${ctx.info.maxSharedPerBlockOptin}`);
  }
  const fn = getKernel(ctx, 'w4a8-decode.cu', entry, { ...layerDefines(layer, out), MT: config.MT, NTW: config.NTW, WK: config.WK, ...defines, ...extra }, smem);
  ctx.launch(fn, [blocks], [config.WK * 32], args, smem, { overlapPrevious: config.overlap === true });
  return blocks;
}

/**
 * The split-K workspace (workspace.ts) a launch with `config` at M rows takes: a counter a consumer warp of each tile and
 * KS partials of each (wgmma-tma with KS > 1); null for none.
 */
export function w4a8SplitKNeed(layer: W4A8Layer, M: number, config: W4A8Config): { counters: number; partialBytes: number } | null {
  if (config.kind !== 'wgmma-tma' || (config.KS ?? 1) === 1) return null;
  const BT = config.BT ?? WGMMA_TMA.BT;
  const warps = tmaTiles(M, layer.n, BT) * WGMMA_TMA.CONSUMER_WARPS;
  return { counters: warps, partialBytes: config.KS! * warps * tmaPartialBytes(BT) };
}

/** Blocks of a wgmma-tma launch: a 1-D grid over its work items (the ceil(M/BT)·ceil(N/128) tiles times KS), see WgmmaTmaConfig. */
function tmaBlocks(ctx: CudaContext, config: WgmmaTmaConfig, items: number): number {
  const want = config.blocks ?? 'tiles';
  if (typeof want === 'number' && !(Number.isInteger(want) && want >= 1)) throw new RangeError(`wgmma-tma blocks must be a positive integer, 'tiles' or 'sms', got ${want}`);
  return Math.min(items, want === 'tiles' ? items : want === 'sms' ? ctx.info.multiprocessors : want);
}

/**
 * The TMA maps of w4a8_wgmma_tma (layouts in its header): xq as [rows][K] bytes with every whole
 * row the buffer holds (rows past M are read but only feed outputs that are never stored, so one
 * map serves every M), weights as [tiles][K/32][256 B], scales as [tiles][K/G][64 B], and y as
 * [M][N*B bytes] (B = 4 for f32, 2 for f16; a warp's 16 columns are one 64- or 32-byte swizzled box
 * row) when N*B % 16 == 0 (TMA rows are multiples of 16 bytes; else none: direct stores, and the kernel's
 * ymap parameter, unread, is given x's map).
 */
function w4a8TensorMaps(ctx: CudaContext, layer: W4A8Layer, xq: DeviceBuffer, y: DeviceBuffer, M: number, B: number, BT: number): { x: KernelStruct; w: KernelStruct; s: KernelStruct; y: KernelStruct | null } {
  const { n: N, k: K, groupSize: G } = layer;
  const tiles = paddedRows(N) / 16;
  return {
    x: cachedTensorMapU8(ctx, xq, { dims: [K, Math.floor(xq.bytes / K)], strides: [K], box: [128, BT], swizzle: 'sw128' }),
    w: cachedTensorMapU8(ctx, layer.weights, { dims: [256, K / 32, tiles], strides: [256, K * 8], box: [256, 4, 8], swizzle: 'none' }),
    s: cachedTensorMapU8(ctx, layer.scales, { dims: [64, K / G, tiles], strides: [64, (K / G) * 64], box: [64, 1, 8], swizzle: 'none' }),
    y: (N * B) % 16 === 0 ? cachedTensorMapU8(ctx, y, { dims: [N * B, M], strides: [N * B], box: [16 * B, BT], swizzle: B === 4 ? 'sw64' : 'sw32' }) : null,
  };
}

/**
 * Per-token int8 quantization of x [M, K] f32 into xq [M, K] and a [M] (bit-exact with the CPU),
 * xq in the k order the consuming kernel reads (activationOrder; 'fragment' needs K % 64 == 0).
 */
export function quantizeActivationsCuda(ctx: CudaContext, x: DeviceBuffer, xq: DeviceBuffer, a: DeviceBuffer, M: number, K: number, order: ActivationOrder = 'natural'): void {
  if (K % 4 !== 0) throw new RangeError(`act_quant needs K % 4 == 0 (K = ${K})`);
  if (order === 'fragment' && K % 64 !== 0) throw new RangeError(`fragment-order activations need K % 64 == 0 (K = ${K})`);
  const fn = getKernel(ctx, 'act-quant.cu', 'act_quant');
  ctx.launch(fn, [M], [ACT_QUANT.THREADS], [x, xq, a, { i32: K }, { i32: order === 'fragment' ? 1 : 0 }]);
}

/** Device tables of a mixture of experts' W4A8 layers (one per expert, equal shapes): their weights', scales' addresses and output factors. */
export interface W4A8ExpertTable {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  readonly scale: 'int' | 'float';
  readonly experts: number;
  /** u64 [experts] weight addresses, u64 [experts] scale addresses, f32 [experts] output factors 2^-b (for IS_SHIFT = 1). */
  readonly weights: DeviceBuffer;
  readonly scales: DeviceBuffer;
  readonly posts: DeviceBuffer;
}

/** The tables of `layers` (a mixture's experts, one linear each); a RangeError when their shapes or formats differ. */
export function w4a8ExpertTable(ctx: CudaContext, layers: readonly W4A8Layer[]): W4A8ExpertTable {
  const l0 = layers[0]!;
  const other = layers.find((l) => l.n !== l0.n || l.k !== l0.k || l.groupSize !== l0.groupSize || l.scale !== l0.scale);
  if (other) throw new RangeError(`grouped W4A8 experts must share shape and format: [${l0.n}, ${l0.k}] G ${l0.groupSize} ${l0.scale} vs [${other.n}, ${other.k}] G ${other.groupSize} ${other.scale}`);
  return {
    n: l0.n, k: l0.k, groupSize: l0.groupSize, scale: l0.scale, experts: layers.length,
    weights: ctx.upload(addressTable(layers.map((l) => l.weights))),
    scales: ctx.upload(addressTable(layers.map((l) => l.scales))),
    // the experts kernel always shifts (exact for every layer that does not overflow), so a layer whose post assumed no shift gets 16× it
    posts: ctx.upload(Float32Array.from(layers, (l) => (l.isShift ? l.post : l.post * 16))),
  };
}

export function freeW4A8ExpertTable(t: W4A8ExpertTable): void {
  t.weights.free();
  t.scales.free();
  t.posts.free();
}

/** The decode kernel's configuration for blocks of up to `m` rows of one expert [n, k]: the dense chooser's where it picks the decode kernel. */
export function expertDecodeConfig(m: number, n: number, k: number): DecodeConfig {
  const c = chooseW4A8Config(Math.min(m, 64), n, k, false, false);
  return c.kind === 'decode' ? c : { kind: 'decode', MT: 8, NTW: 1, WK: 8 };
}

/**
 * Grouped experts (w4a8_decode_experts): for each expert e, y rows [offsets[e], offsets[e+1]) =
 * its rows of xq (int8, natural order) · W_eᵀ, f32. `rows` rows in all (m tokens' picks), at most m
 * of them one expert's; blocks for min(E, rows) experts, the list `active` (moe_route) naming them.
 * A block takes the rows of `typical` (the kernel's MT), so an expert with more rows takes several
 * blocks per tile (its weights then come again from L2) and one with fewer computes fewer empty rows.
 */
export function w4a8ExpertsLinear(ctx: CudaContext, t: W4A8ExpertTable, route: { offsets: DeviceBuffer; active: DeviceBuffer }, xq: DeviceBuffer, a: DeviceBuffer,
  y: DeviceBuffer, rows: number, m: number, typical = m): void {
  const { n: N, k: K } = t;
  if (xq.bytes < rows * K || a.bytes < rows * 4 || y.bytes < rows * N * 4) throw new RangeError(`w4a8ExpertsLinear: buffers too small for ${rows} rows, N=${N}, K=${K}`);
  needRouteTables('w4a8ExpertsLinear', route, t.experts);
  const c = expertDecodeConfig(Math.min(typical, m), N, K);
  // the config's MINB (and STAGES, were a chooser to give them) as launchDecode passes them
  const { smem, defines } = decodeSlotsLaunch(ctx, 8 * c.MT, K, c, DECODE_SMEM.W4_TILE);
  const fn = getKernel(ctx, 'w4a8-decode.cu', 'w4a8_decode_experts', { GROUP: t.groupSize, SCALE_INT: t.scale === 'int' ? 1 : 0, IS_SHIFT: 1, ...outputDefines('f32'), MT: c.MT, NTW: c.NTW, WK: c.WK, ...defines }, smem);
  const chunks = Math.ceil(m / (8 * c.MT));
  ctx.launch(fn, [Math.ceil(N / 16 / c.NTW), Math.min(rows, t.experts), chunks], [c.WK * 32],
    [t.weights, t.scales, t.posts, route.offsets, route.active, xq, a, y, { i32: N }, { i32: K }], smem);
}
