/**
 * A mixture-of-experts MLP (mixtral) in the CUDA decode engine: h += Σ_{e in top-k} w_e · down_e(
 * silu(gate_e·x) ⊙ up_e·x), x = RMSNorm(h), routed as transformers does (moe.cu's header). Each
 * expert's gate/up is one stacked GEMM [2F, d]; the router stays float32, its logits summed in one
 * order at any batch size (moe_router), so a sequence is routed alone as in a batch.
 *
 * A decode step (one CUDA graph, no host wait) routes on the device and runs every expert at once:
 *   rmsnorm_to (f32 for the router, the experts' form) → moe_router → moe_route → moe_gather
 *   → grouped gate/up → silu_mul_rows → quantize_rows → grouped down → moe_combine (h += …)
 * where "grouped" is one launch for all experts: W4A8 / W4A16 experts the decode kernels' experts
 * entry (w4a8_decode_experts, w4a16_decode_experts: blocks only for the experts rows picked, rows
 * compact by expert); float experts one batched cuBLAS GEMM, of one row per pick when the picks are
 * fewer than the experts (only the picked experts' weights are read), else of every expert with m
 * rows each (padded; rows no token picked are computed and ignored).
 * A prefill pass routes on the device, reads the experts' row counts back (one wait per layer) and
 * runs each picked expert as its own GEMM with the kernel the engine picks for that many rows
 * (the wgmma kernels, cuBLAS), as a dense layer would.
 */
import { InputError } from '../../errors.js';
import type { ModelConfig } from '../../model/config.js';
import type { MoeLinears } from '../../model/layer-linears.js';
import type { LinearWeight } from '../../quant/types.js';
import { addressTable, type DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import type { Cublas } from './cublas.js';
import { FORM_BYTES, rmsnormToCuda, rowScratchBytes, siluMulToCuda, type GateUpRows, type RowForm, type RowOutput, type RowScratch } from './engine-ops.js';
import type { EngineLinear, LinearGroup } from './engine-linear.js';
import { toF16Cuda } from './model-ops.js';
import { MOE_MAX_EXPERTS, moeCombineCuda, moeGatherCuda, moePointersCuda, moeRouteCuda, moeRouterCuda, type MoeRoute, type PickLayout } from './moe-ops.js';
import { freeW4A8ExpertTable, quantizeActivationsCuda, w4a8ExpertsLinear, w4a8ExpertTable, type W4A8ExpertTable } from './w4a8.js';
import { freeW4A16ExpertTable, w4a16ExpertsLinear, w4a16ExpertTable, type W4A16ExpertTable } from './w4a16.js';

/** One expert: gate/up stacked [2F, d], down [d, F]. */
export interface EngineExpert {
  readonly gateUp: EngineLinear;
  readonly down: EngineLinear;
}

/** The grouped launches' tables: the kernels' for quantized experts, the weights' addresses (u64 [E]) for float ones. */
export type ExpertTables =
  | { readonly kind: 'w4a8'; readonly gateUp: W4A8ExpertTable; readonly down: W4A8ExpertTable }
  | { readonly kind: 'w4a16'; readonly gateUp: W4A16ExpertTable; readonly down: W4A16ExpertTable }
  | { readonly kind: 'f16' | 'f32'; readonly gateUp: DeviceBuffer; readonly down: DeviceBuffer };

export interface EngineMoe {
  readonly router: EngineLinear;
  readonly experts: readonly EngineExpert[];
  readonly tables: ExpertTables;
}

/** How the engine uploads a linear (engine-weights.ts): one, or a group stacked where the formats allow; the router in float32. */
export interface LinearUploader {
  linear(w: LinearWeight, name: string, precision?: 'f32'): EngineLinear;
  group(ws: readonly LinearWeight[], name: string): LinearGroup;
  track(buffer: DeviceBuffer): DeviceBuffer;
}

/** Uploads a layer's router and experts; an InputError when the experts are not all one kind the grouped launches run. */
export function uploadEngineMoe(ctx: CudaContext, moe: MoeLinears<LinearWeight>, name: string, up: LinearUploader): EngineMoe {
  if (moe.experts.length > MOE_MAX_EXPERTS) throw new InputError(`the CUDA engine routes at most ${MOE_MAX_EXPERTS} experts a layer; ${name} has ${moe.experts.length}`);
  const router = up.linear(moe.router, `${name} router`, 'f32');
  const experts = moe.experts.map((e, i): EngineExpert => {
    const what = `${name} expert ${i}`;
    if (e.gate.bias || e.up.bias || e.down.bias) throw new InputError(`the CUDA engine runs experts without biases; ${what} has one`);
    const g = up.group([e.gate, e.up], `${what} gate/up`);
    if (!g.stacked) throw new InputError(`the CUDA engine runs an expert's gate and up as one GEMM; ${what}'s formats differ`);
    return { gateUp: g.linears[0]!, down: up.linear(e.down, `${what} down`) };
  });
  const kinds = [...new Set(experts.flatMap((e) => [e.gateUp.resident.kind, e.down.resident.kind]))];
  const kind = kinds[0]!;
  if (kinds.length > 1 || kind === 'w8a8') {
    throw new InputError(`the CUDA engine runs a mixture of experts whose experts are all W4A8, all W4A16 or all float; ${name}'s are ${kinds.join(', ').toUpperCase()}`);
  }
  const residents = (part: keyof EngineExpert) => experts.map((e) => e[part].resident);
  const w4a8 = (part: keyof EngineExpert) => residents(part).map((r) => (r.kind === 'w4a8' ? r.layer : unreachable()));
  const w4a16 = (part: keyof EngineExpert) => residents(part).map((r) => (r.kind === 'w4a16' ? r.layer : unreachable()));
  const addresses = (part: keyof EngineExpert) =>
    up.track(ctx.upload(addressTable(residents(part).map((r) => (r.kind === 'f16' || r.kind === 'f32' ? r.w : unreachable())))));
  let tables: ExpertTables;
  try {
    if (kind === 'w4a8') tables = { kind, gateUp: w4a8ExpertTable(ctx, w4a8('gateUp')), down: w4a8ExpertTable(ctx, w4a8('down')) };
    else if (kind === 'w4a16') tables = { kind, gateUp: w4a16ExpertTable(ctx, w4a16('gateUp')), down: w4a16ExpertTable(ctx, w4a16('down')) };
    else tables = { kind, gateUp: addresses('gateUp'), down: addresses('down') };
  } catch (e) {
    if (e instanceof RangeError) throw new InputError(`${name}: ${e.message}`);
    throw e;
  }
  return { router, experts, tables };
}

const unreachable = (): never => {
  throw new Error('experts of one kind were checked above');
};

export function freeExpertTables(t: ExpertTables): void {
  if (t.kind === 'w4a8') [t.gateUp, t.down].forEach(freeW4A8ExpertTable);
  else if (t.kind === 'w4a16') [t.gateUp, t.down].forEach(freeW4A16ExpertTable);
  // float tables are tracked with the engine's buffers
}

/** The row form the grouped launches read for experts of a kind. */
const GROUPED_FORM: Record<ExpertTables['kind'], RowForm> = { w4a8: 'int8', w4a16: 'f16', f16: 'f16', f32: 'f32' };

/** What the MoE layer borrows from its engine: its linear launcher and the form a linear reads at m rows. */
export interface MoeHost {
  runLinear(l: EngineLinear, input: RowOutput, y: DeviceBuffer, m: number): void;
  formFor(l: EngineLinear, m: number): RowForm;
}

export interface MoeRunner {
  /** h [m, d] += the layer's MoE MLP of RMSNorm(h; norm); `decode`: a decode step (graph-safe, no host wait) or a prefill pass. */
  run(moe: EngineMoe, norm: DeviceBuffer, h: DeviceBuffer, m: number, decode: boolean): void;
  free(): void;
}

/**
 * The buffers of a model's MoE layers, for passes of at most `maxRows` rows and decode steps of at
 * most `decodeRows` (shared by every layer: they run one after another).
 */
export function createMoeRunner(ctx: CudaContext, blas: Cublas, c: ModelConfig, maxRows: number, decodeRows: number, host: MoeHost): MoeRunner {
  const { numExperts: E, topK: k } = c.moe!;
  const d = c.hiddenSize, F = c.intermediateSize;
  const picks = maxRows * k;
  // rows of the experts' buffers: every pick (compact, pairs) or E·m (padded) in a decode step
  const rows = Math.max(picks, E * Math.min(decodeRows, maxRows));
  const owned: DeviceBuffer[] = [];
  const alloc = (bytes: number): DeviceBuffer => {
    const b = ctx.alloc(Math.max(bytes, 16));
    owned.push(b);
    return b;
  };
  let route: MoeRoute, scratch: RowScratch, xf: RowOutput, xn: RowOutput, xe: RowOutput, gu: DeviceBuffer, dn: RowOutput, ye: DeviceBuffer, logits: DeviceBuffer;
  let ptrs: { a: DeviceBuffer; b: DeviceBuffer; c: DeviceBuffer };
  try {
    route = { pickExpert: alloc(picks * 4), pickWeight: alloc(picks * 4), pickRow: alloc(picks * 4), offsets: alloc((E + 1) * 4), active: alloc(E * 4) };
    logits = alloc(maxRows * E * 4);
    xf = { form: 'f32', values: alloc(maxRows * d * 4), scales: alloc(maxRows * 4) };
    xn = { form: 'f32', values: alloc(maxRows * d * 4), scales: alloc(maxRows * 4) };
    xe = { form: 'f32', values: alloc(rows * d * 4), scales: alloc(rows * 4) };
    gu = alloc(rows * 2 * F * 4);
    dn = { form: 'f32', values: alloc(rows * F * 4), scales: alloc(rows * 4) };
    ye = alloc(rows * d * 4);
    const scratchBytes = rowScratchBytes(rows, F, 0);
    scratch = { values: alloc(scratchBytes.values), amax: alloc(scratchBytes.amax) };
    ptrs = { a: alloc(E * 8), b: alloc(E * 8), c: alloc(E * 8) };
  } catch (e) {
    for (const b of owned) b.free();
    throw e;
  }
  /** gate | up of each row in gu, for silu_mul_rows. */
  const guRows: GateUpRows = { interleaved: false, g: gu, u: gu.view(F * 4, gu.bytes - F * 4), ld: 2 * F };
  const as = (o: RowOutput, form: RowForm): RowOutput => ({ ...o, form });

  /** The float experts' batched GEMM: y_i = x_i · W_iᵀ for `count` products of mRows rows (pairs: W of pick i's expert). */
  const batched = (table: DeviceBuffer, x: DeviceBuffer, y: DeviceBuffer, count: number, mRows: number, n: number, kk: number, byPick: boolean, inputs: 'f16' | 'f32'): void => {
    moePointersCuda(ctx, table, route, count, byPick, x, mRows * kk * FORM_BYTES[inputs], y, mRows * n * 4, ptrs);
    const [ya, xa, wa] = [ptrs.c.address, ptrs.b.address, ptrs.a.address];
    ctx.onStream(() => blas.gemmBatchedF32Out(ya, xa, wa, mRows, n, kk, count, inputs));
  };

  const decodeStep = (moe: EngineMoe, norm: DeviceBuffer, h: DeviceBuffer, m: number): void => {
    const t = moe.tables;
    const form = GROUPED_FORM[t.kind];
    const float = t.kind === 'f16' || t.kind === 'f32';
    const layout: PickLayout = !float ? 'compact' : m * k < E ? 'pairs' : 'padded';
    const R = layout === 'padded' ? E * m : m * k;
    // rows a grouped block takes: half again an even share of the picks (more rows take more blocks)
    const typical = Math.min(m, Math.ceil((1.5 * m * k) / E));
    moeRouteCuda(ctx, logits, m, E, k, layout, m, route);
    if (form !== 'f32') rmsnormToCuda(ctx, h, norm, as(xn, form), m, d, c.rmsNormEps);
    const src = form === 'f32' ? xf : xn;
    const int8 = form === 'int8';
    moeGatherCuda(ctx, src.values, int8 ? src.scales : null, route, m, k, d * FORM_BYTES[form], xe.values, int8 ? xe.scales : null, R);
    const downForm = as(dn, form);
    if (t.kind === 'w4a8') w4a8ExpertsLinear(ctx, t.gateUp, route, xe.values, xe.scales, gu, R, m, typical);
    else if (t.kind === 'w4a16') w4a16ExpertsLinear(ctx, t.gateUp, route, xe.values, gu, R, m, typical);
    else batched(t.gateUp, xe.values, gu, layout === 'pairs' ? R : E, layout === 'pairs' ? 1 : m, 2 * F, d, layout === 'pairs', t.kind);
    siluMulToCuda(ctx, guRows, downForm, R, F, scratch);
    if (t.kind === 'w4a8') w4a8ExpertsLinear(ctx, t.down, route, dn.values, dn.scales, ye, R, m, typical);
    else if (t.kind === 'w4a16') w4a16ExpertsLinear(ctx, t.down, route, dn.values, ye, R, m, typical);
    else batched(t.down, dn.values, ye, layout === 'pairs' ? R : E, layout === 'pairs' ? 1 : m, d, F, layout === 'pairs', t.kind);
    moeCombineCuda(ctx, h, ye, R, route, m, k, d);
  };

  /** The n rows of x (f32 [n, d]) in the form `form`: x itself for f32, else written into `out` from its start. */
  const formRows = (x: DeviceBuffer, n: number, form: RowForm, out: RowOutput): RowOutput => {
    if (form === 'f32') return { form, values: x, scales: out.scales };
    if (form === 'f16') toF16Cuda(ctx, x, out.values, n * d);
    else quantizeActivationsCuda(ctx, x, out.values, out.scales, n, d, form === 'int8-fragment' ? 'fragment' : 'natural');
    return as(out, form);
  };

  const prefillPass = (moe: EngineMoe, h: DeviceBuffer, m: number): void => {
    moeRouteCuda(ctx, logits, m, E, k, 'compact', m, route);
    moeGatherCuda(ctx, xf.values, null, route, m, k, d * 4, xe.values, null, m * k);
    const offsets = ctx.copyToHost(new Int32Array(E + 1), route.offsets); // waits for the stream
    moe.experts.forEach((expert, e) => {
      const [at, n] = [offsets[e]!, offsets[e + 1]! - offsets[e]!];
      if (n === 0) return;
      const x = formRows(xe.values.view(at * d * 4, n * d * 4), n, host.formFor(expert.gateUp, n), xn);
      host.runLinear(expert.gateUp, x, gu, n);
      const downIn = as(dn, host.formFor(expert.down, n));
      siluMulToCuda(ctx, guRows, downIn, n, F, scratch);
      host.runLinear(expert.down, downIn, ye.view(at * d * 4, n * d * 4), n);
    });
    moeCombineCuda(ctx, h, ye, m * k, route, m, k, d);
  };

  return {
    run(moe, norm, h, m, decode) {
      if (m > maxRows || (decode && m > decodeRows)) throw new RangeError(`moe: ${m} rows, the layer's buffers hold ${decode ? Math.min(decodeRows, maxRows) : maxRows}`);
      rmsnormToCuda(ctx, h, norm, xf, m, d, c.rmsNormEps);
      const r = moe.router.resident;
      if (r.kind !== 'f32') throw new Error(`moe: the router is ${r.kind}, float32 expected`);
      moeRouterCuda(ctx, xf.values, r.w, logits, m, d, E);
      if (decode) decodeStep(moe, norm, h, m);
      else prefillPass(moe, h, m);
    },
    free() {
      for (const b of owned.splice(0)) b.free();
    },
  };
}
