/**
 * RTN of a column-scaled float layer on the GPU, written straight into the W4A8 kernels' layout
 * (kernels/scaled-rtn.cu has the math and layouts): Q(W·diag(s)) as quantizeLinearReport(scaleColumns(W, s))
 * then repackW4A8 give it on the host, bit for bit. The host keeps one decision: Integer Scale's α, chosen
 * by the shared amplifier (quant/amplifier.ts) from the layer's float scales read back, and the shift of the
 * epilogue from the integer scales' overflow bound (repack.ts's rule). Plus the two reductions AWQ's search
 * needs around it: X·diag(s)⁻¹ and Σ (a − b)².
 */
import { needBytes, type DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import { getKernel } from './kernel-cache.js';
import { checkW4A8Shape, integerScaleEpilogue, paddedRows } from './repack.js';
import type { W4A8Layer } from './w4a8.js';
import { chooseAlpha, type AlphaChoice } from '../../quant/amplifier.js';
import { integerGroupScale } from '../../quant/group-quant.js';
import { integerScaleOverflow, resolveGroupSize } from '../../quant/quantize-linear.js';
import type { QuantSpec } from '../../quant/types.js';

const FILE = 'scaled-rtn.cu';
/** Threads per block of every scaled-rtn.cu kernel (their __launch_bounds__). */
export const SCALED_RTN_THREADS = 256;
const THREADS = SCALED_RTN_THREADS;
/** Blocks of squared_error_parts (PARTS in scaled-rtn.cu). */
export const SQUARED_ERROR_PARTS = 1024;
/** overflow[0] before group_scales runs: larger than any group index. */
const NO_OVERFLOW = 0x7f7f7f7f;

const blocksFor = (n: number): [number] => [Math.max(1, Math.ceil(n / THREADS))];

/** Why the W4A8 kernels cannot take a spec at K input channels (null: they can). */
export function scaledRtnRefusal(spec: QuantSpec, k: number): string | null {
  if (spec.wBits !== 4 || spec.aBits !== 8) return `W${spec.wBits}A${spec.aBits} (the device RTN writes W4A8 only)`;
  try {
    checkW4A8Shape(1, k, spec.groupSize === 0 ? k : spec.groupSize);
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/**
 * One float layer [n, k] on the device and what its quantization at each grid point writes: the W4A8
 * layer (weights and scales in the kernels' layout, allocated once) and the per-group scratch.
 */
export interface ScaledRtnTarget {
  readonly n: number;
  readonly k: number;
  readonly spec: QuantSpec;
  readonly name: string;
  /** W [n, k] float32, row-major. */
  readonly w: DeviceBuffer;
  /** rewritten by every quantizeScaledW4A8 (post, isShift and scale set there). */
  readonly layer: { -readonly [P in keyof W4A8Layer]: W4A8Layer[P] };
  readonly floatScales: DeviceBuffer;
  readonly scales: DeviceBuffer;
  readonly intScales: DeviceBuffer;
  readonly overflow: DeviceBuffer;
}

/** Uploads W and allocates the layer it quantizes into (free with freeScaledRtnTarget). */
export function scaledRtnTarget(ctx: CudaContext, w: Float32Array, n: number, k: number, spec: QuantSpec, name: string): ScaledRtnTarget {
  const refusal = scaledRtnRefusal(spec, k);
  if (refusal !== null) throw new RangeError(`${name}: ${refusal}`);
  const G = resolveGroupSize(k, spec.groupSize, name);
  const groups = k / G, nPad = paddedRows(n);
  const owned: DeviceBuffer[] = [];
  const alloc = (bytes: number): DeviceBuffer => {
    const b = ctx.alloc(bytes);
    owned.push(b);
    return b;
  };
  try {
    const wDev = ctx.upload(w.subarray(0, n * k));
    owned.push(wDev);
    const layoutScales = alloc(nPad * groups * 4);
    ctx.copyToDevice(layoutScales, new Int32Array(nPad * groups)); // padded rows stay 0 (in stream order)
    return {
      n, k, spec, name, w: wDev,
      layer: { n, k, groupSize: G, scale: spec.scale, post: 1, isShift: false, weights: alloc((nPad * k) / 2), scales: layoutScales },
      floatScales: alloc(n * groups * 4), scales: alloc(n * groups * 4),
      intScales: alloc(n * groups * 4), overflow: alloc(4),
    };
  } catch (e) {
    for (const b of owned) b.free();
    throw e;
  }
}

export function freeScaledRtnTarget(t: ScaledRtnTarget): void {
  for (const b of [t.w, t.layer.weights, t.layer.scales, t.floatScales, t.scales, t.intScales, t.overflow]) b.free();
}

/**
 * target.layer = the W4A8 layer of Q(W·diag(s)) (s [k] float32 on the device), as the host's RTN and
 * repack give it; returns α's choice (Integer Scale). Reads back the float scales (α) and, for Integer
 * Scale, the integer scales (overflow check and the epilogue's shift): 8·n·k/G bytes.
 */
export function quantizeScaledW4A8(ctx: CudaContext, target: ScaledRtnTarget, s: DeviceBuffer): AlphaChoice | undefined {
  const { n, k, spec, name, layer } = target;
  const G = layer.groupSize, groups = k / G, count = n * groups;
  needBytes('scaled RTN s', s, k * 4);
  ctx.launch(getKernel(ctx, FILE, 'scaled_absmax'), [Math.ceil(count / 8)], [THREADS],
    [target.w, s, target.floatScales, { i32: k }, { i32: G }, { u64: count }, { i32: 7 }]);
  let alpha: AlphaChoice | undefined;
  if (spec.scale === 'int') {
    const floatScales = ctx.copyToHost(new Float32Array(count), target.floatScales);
    alpha = chooseAlpha({ scales: floatScales, n, groupCount: groups, groupSize: G, wBits: 4 }, spec.alpha, name);
  }
  ctx.copyToDevice(target.overflow, Int32Array.of(NO_OVERFLOW));
  ctx.launch(getKernel(ctx, FILE, 'group_scales'), blocksFor(count), [THREADS],
    [target.floatScales, target.scales, target.intScales, layer.scales, target.overflow, { i32: n }, { i32: groups }, { i32: alpha?.alphaLog2 ?? -1 }]);
  if (alpha !== undefined) {
    const overflow = ctx.copyToHost(new Int32Array(1), target.overflow)[0]!;
    if (overflow !== NO_OVERFLOW) {
      const fs = ctx.copyToHost(new Float32Array(1), target.floatScales.view(overflow * 4, 4))[0]!;
      throw integerScaleOverflow(name, integerGroupScale(fs, alpha.alphaLog2), Math.floor(overflow / groups));
    }
    const intScales = ctx.copyToHost(new Int32Array(count), target.intScales);
    const epilogue = integerScaleEpilogue(intScales, n, groups, G, alpha.alphaLog2); // repackW4A8's rule
    layer.isShift = epilogue.isShift;
    layer.post = epilogue.post;
  } else {
    layer.isShift = false;
    layer.post = 1;
  }
  const words = (paddedRows(n) * k) / 8;
  ctx.launch(getKernel(ctx, FILE, 'pack_codes'), blocksFor(words), [THREADS],
    [target.w, s, target.scales, layer.weights, { i32: n }, { i32: k }, { i32: G }, { u64: words }]);
  return alpha;
}

/** y [m, k] = x [m, k] / s [k] column by column (float32, correctly rounded). */
export function divideColumnsCuda(ctx: CudaContext, x: DeviceBuffer, s: DeviceBuffer, y: DeviceBuffer, m: number, k: number): void {
  needBytes('divide columns x', x, m * k * 4);
  needBytes('divide columns y', y, m * k * 4);
  needBytes('divide columns s', s, k * 4);
  ctx.launch(getKernel(ctx, FILE, 'divide_columns'), blocksFor(m * k), [THREADS], [x, s, y, { i32: k }, { u64: m * k }]);
}

/** Σ (a[i] − b[i])² over `count` floats, in float64 (the device's partial sums added here in order); waits for the stream. */
export function squaredErrorCuda(ctx: CudaContext, a: DeviceBuffer, b: DeviceBuffer, count: number, parts: DeviceBuffer): number {
  needBytes('squared error a', a, count * 4);
  needBytes('squared error b', b, count * 4);
  needBytes('squared error parts', parts, SQUARED_ERROR_PARTS * 8);
  ctx.launch(getKernel(ctx, FILE, 'squared_error_parts'), [SQUARED_ERROR_PARTS], [THREADS], [a, b, parts, { u64: count }]);
  const host = ctx.copyToHost(new Float64Array(SQUARED_ERROR_PARTS), parts);
  let sum = 0;
  for (const p of host) sum += p;
  return sum;
}
