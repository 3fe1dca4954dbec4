/**
 * Launchers of the mixture-of-experts kernels (kernels/moe.cu: the math and layouts are in its header)
 * for the decode engine's MoE layers (engine-moe.ts). All asynchronous on ctx's stream; sizes are
 * checked against the buffers, so a wrong shape is a RangeError naming it.
 */
import { needBytes, type DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import { getKernel } from './kernel-cache.js';

const FILE = 'moe.cu';
/** Most experts the kernels take (MAX_EXPERTS in moe.cu). */
export const MOE_MAX_EXPERTS = 64;

/** Where a pick's row goes in the experts' buffers (MODE in moe.cu). */
export type PickLayout = 'compact' | 'padded' | 'pairs';
const LAYOUT_CODE: Record<PickLayout, number> = { compact: 0, padded: 1, pairs: 2 };

/** The routing of m rows: each row's k picks (expert, weight, row in the experts' buffers), the experts' offsets and active list. */
export interface MoeRoute {
  readonly pickExpert: DeviceBuffer;
  readonly pickWeight: DeviceBuffer;
  readonly pickRow: DeviceBuffer;
  readonly offsets: DeviceBuffer;
  readonly active: DeviceBuffer;
}

/** Throws a RangeError naming `what` when the routing tables (moe_route's offsets [E + 1], active [E]) hold fewer than `experts`. */
export function needRouteTables(what: string, route: { readonly offsets: DeviceBuffer; readonly active: DeviceBuffer }, experts: number): void {
  needBytes(`${what} offsets`, route.offsets, (experts + 1) * 4);
  needBytes(`${what} active`, route.active, experts * 4);
}

/** logits [m, E] = x [m, d] · wᵀ (w [E, d], float32), in an order that does not depend on m (moe_router). */
export function moeRouterCuda(ctx: CudaContext, x: DeviceBuffer, w: DeviceBuffer, logits: DeviceBuffer, m: number, d: number, E: number): void {
  needBytes('moe router x', x, m * d * 4);
  needBytes('moe router weights', w, E * d * 4);
  needBytes('moe router logits', logits, m * E * 4);
  ctx.launch(getKernel(ctx, FILE, 'moe_router'), [m, Math.ceil(E / 8)], [256], [x, w, logits, { i32: d }, { i32: E }]);
}

/** Routes m rows by their router logits [m, E] (top k of the softmax, renormalised); `cap` is the padded layout's rows per expert. */
export function moeRouteCuda(ctx: CudaContext, logits: DeviceBuffer, m: number, E: number, k: number, layout: PickLayout, cap: number, route: MoeRoute): void {
  if (E > MOE_MAX_EXPERTS || k < 1 || k > E) throw new RangeError(`moe route: ${E} experts, top ${k} (the kernels take up to ${MOE_MAX_EXPERTS} experts, 1 ≤ k ≤ E)`);
  needBytes('moe route logits', logits, m * E * 4);
  for (const b of [route.pickExpert, route.pickWeight, route.pickRow]) needBytes('moe route picks', b, m * k * 4);
  needRouteTables('moe route', route, E);
  ctx.launch(getKernel(ctx, FILE, 'moe_route'), [1], [1024],
    [logits, { i32: m }, { i32: E }, { i32: k }, { i32: LAYOUT_CODE[layout] }, { i32: cap }, route.pickExpert, route.pickWeight, route.pickRow, route.offsets, route.active]);
}

/** out row pickRow[p] = x row p / k (rowBytes each, a multiple of 4), for the m·k picks; with scales, the int8 rows' scales too. */
export function moeGatherCuda(ctx: CudaContext, x: DeviceBuffer, scales: DeviceBuffer | null, route: MoeRoute, m: number, k: number, rowBytes: number,
  out: DeviceBuffer, outScales: DeviceBuffer | null, outRows: number): void {
  if (rowBytes % 4 !== 0) throw new RangeError(`moe gather: rows of ${rowBytes} B, a multiple of 4 needed`);
  needBytes('moe gather x', x, m * rowBytes);
  needBytes('moe gather out', out, outRows * rowBytes);
  if (scales && outScales) needBytes('moe gather scales', outScales, outRows * 4);
  ctx.launch(getKernel(ctx, FILE, 'moe_gather'), [m * k], [256],
    [x, scales ?? { u64: 0 }, route.pickRow, { i32: k }, { i32: rowBytes / 4 }, out, outScales ?? { u64: 0 }]);
}

/** h [m, d] += Σ of each row's picks (in expert order) weight · y [pickRow, d]. */
export function moeCombineCuda(ctx: CudaContext, h: DeviceBuffer, y: DeviceBuffer, yRows: number, route: MoeRoute, m: number, k: number, d: number): void {
  needBytes('moe combine h', h, m * d * 4);
  needBytes('moe combine y', y, yRows * d * 4);
  ctx.launch(getKernel(ctx, FILE, 'moe_combine'), [m], [256], [h, y, route.pickExpert, route.pickWeight, route.pickRow, { i32: k }, { i32: d }]);
}

/** The three pointer arrays of `count` batched GEMMs: a[i] = table[pick i's expert] (byPick) or table[i]; b[i] = x + i·xStride, c[i] = y + i·yStride. */
export function moePointersCuda(ctx: CudaContext, table: DeviceBuffer, route: MoeRoute, count: number, byPick: boolean, x: DeviceBuffer, xStride: number,
  y: DeviceBuffer, yStride: number, arrays: { a: DeviceBuffer; b: DeviceBuffer; c: DeviceBuffer }): void {
  for (const b of [arrays.a, arrays.b, arrays.c]) needBytes('moe pointers', b, count * 8);
  needBytes('moe pointers x', x, count * xStride);
  needBytes('moe pointers y', y, count * yStride);
  ctx.launch(getKernel(ctx, FILE, 'moe_pointers'), [Math.ceil(count / 256)], [256],
    [table, route.pickExpert, { i32: count }, { i32: byPick ? 1 : 0 }, { u64: x.address }, { u64: xStride }, { u64: y.address }, { u64: yStride }, arrays.a, arrays.b, arrays.c]);
}
