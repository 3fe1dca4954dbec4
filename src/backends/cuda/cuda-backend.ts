/**
 * The CUDA backend: the whole forward pass on the GPU. Tensors are device buffers (views of a
 * per-pass arena, step-arena.ts); the host sees only the embedding rows going in (upload) and the
 * logits coming out (download). The KV cache lives in device memory.
 *
 *   linear      each layer uploaded when prepared (prepareLinear) in its kernel's layout (resident-linear.ts):
 *               A8 layers: act_quant (per-token int8, the k order the chosen kernel reads) → the
 *               W4A8 / W8A8 kernel; W4A16: fp16 conversion → W4A16 kernel (M ≤ 64); float: cuBLAS
 *               fp32 GEMM; bias added on the device. Layers (or M) no kernel takes run on the CPU
 *               through a host round trip; placements() says which and why.
 *               A layer's input quantized for one A8 linear is reused by the next one reading the
 *               same tensor (q/k/v, gate/up) until an in-place op or the next pass.
 *   rmsnorm, rope, attention, siluMul, addInPlace: model-ops.ts (float64 arithmetic like the CPU);
 *   addAbsColumns (AWQ's statistics): float64 column sums of |x| on the device, read back (model-ops.ts);
 *   scaleSearch (AWQ's grid search): each grid point's RTN, products and loss on the device (scale-search.ts);
 *   gatherRows, addScaledRows (a mixture of experts): the routed rows' indices and weights uploaded
 *               (computed on the host from the router's logits: such a pass is not replayed), then
 *               model-ops.ts kernels; the same bits as the CPU.
 *               the start position lives in device memory, written when a pass's differs.
 *   graphs      a pass that repeats the last one (a decode step) is replayed as one CUDA graph
 *               without running its ops' host code (pass-tape.ts); `graphs: false` runs every op.
 *
 * The integer layers give the CPU backend's output bit for bit; the other ops match it except
 * where float64 rounding differs (tests bound both).
 *
 * Assembled from named parts: openParts (context, cuBLAS, arena, tape, and the state kept between
 * ops, backend-state.ts), prepareLinear / runLinear / linearOnHost, attention, placements, disposeParts.
 */
import type { AttentionShape, Backend, LayerKvCache, PreparedLinear } from '../../model/backend.js';
import { cpuBackend } from '../cpu/cpu-backend.js';
import type { LinearWeight } from '../../quant/types.js';
import type { DeviceBuffer } from './buffer.js';
import { CudaContext } from './context.js';
import { Cublas } from './cublas.js';
import { freeResident, makeResident, type FloatPrecision, type ResidentLinear } from './resident-linear.js';
import { activationOrder, chooseW4A8Config, w4a8Linear, type W4A8Config } from './w4a8.js';
import { deviceConstants, devicePosition, quantizedInputs, scratch, type DeviceConstants, type DevicePosition, type QuantizedInputs, type Scratch } from './backend-state.js';
import { w8a8Linear } from './w8a8.js';
import { w4a16ExpandedBytes, w4a16Gemm } from './w4a16.js';
import { hasTensorMaps } from './tensor-map.js';
import { createStepArena, type ArenaMark, type StepArena } from './step-arena.js';
import { addAbsColumnsCuda, addBiasCuda, addCuda, addScaledRowsCuda, attentionCuda, attentionSplits, gatherRowsCuda, kvWriteCuda, rmsnormCuda, ropeCuda, siluMulCuda, toF16Cuda } from './model-ops.js';
import { createScaleSearch } from './scale-search.js';
import { createPassTape, type PassReplayStats, type PassTape } from './pass-tape.js';
import { cudaGraphRuntime } from './graphs.js';
import { freedBufferCount } from './buffer.js';

/** Where the linear layers a backend has seen run: GPU layers by kernel family, CPU layers with the reason. */
export interface LinearPlacements {
  readonly gpu: Readonly<Record<'w4a8' | 'w8a8' | 'w4a16' | 'f32' | 'f16', number>>;
  readonly cpu: readonly { readonly reason: string; readonly layers: number }[];
}

export interface CudaBackend extends Backend<DeviceBuffer> {
  readonly ctx: CudaContext;
  placements(): LinearPlacements;
  /** What pass replay did so far (null when graphs are off or the driver has none). */
  replayStats(): PassReplayStats | null;
  /** Frees every prepared layer, constant and arena chunk (and the context when the backend opened it). KV caches are freed by their release(). */
  dispose(): void;
}

export interface CudaBackendOptions {
  /** default: a new context on GPU 0. */
  readonly ctx?: CudaContext;
  /** replay a pass that repeats the last one as a CUDA graph (default true). */
  readonly graphs?: boolean;
  /**
   * launch the W4A8 decode GEMMs (M ≤ 16) to overlap the kernel before them (programmatic dependent
   * launch: they stream their first weights while it finishes; default true).
   */
  readonly overlap?: boolean;
  /**
   * float linear layers (an unquantized model, the lm_head): 'f32' (default, cuBLAS SGEMM, never
   * TF32) or 'f16' (fp16 weights and inputs, fp32 accumulation and output: the FP16 baseline).
   */
  readonly floatPrecision?: FloatPrecision;
}

/** A linear prepared on the GPU: its resident weights, its bias on the device, a CPU preparation where it runs on the host. */
interface GpuLinear {
  readonly weight: LinearWeight;
  readonly resident: ResidentLinear;
  readonly bias: DeviceBuffer | null;
  onHost: PreparedLinear | null;
}

/** What a backend holds beside its context; each part frees what it allocated. */
interface BackendParts {
  readonly ctx: CudaContext;
  readonly ownsContext: boolean;
  readonly blas: Cublas;
  readonly arena: StepArena;
  /** records a pass's ops for replay as a CUDA graph (null: graphs off or no graph calls in the driver). */
  readonly tape: PassTape<ArenaMark> | null;
  readonly position: DevicePosition;
  readonly constants: DeviceConstants;
  readonly quantized: QuantizedInputs;
  readonly attentionScratch: Scratch;
  /** the layers prepared and not released (placements, dispose). */
  readonly live: Set<GpuLinear>;
  readonly kernels: KernelChoice;
}

/** What decides the kernels of a linear: the device's (wgmma, TMA) and the options' (overlap, float precision). */
interface KernelChoice {
  readonly wgmma: boolean;
  readonly tma: boolean;
  readonly overlap: boolean;
  readonly floatPrecision: FloatPrecision | undefined;
}

/** A backend on `ctx` (default: a new context on GPU 0; throws CudaUnavailableError without a GPU). */
export function createCudaBackend(options: CudaBackendOptions = {}): CudaBackend {
  const p = openParts(options);
  const { ctx, arena, quantized, tape } = p;
  return {
    name: 'cuda',
    ctx,
    startPass: () => startPass(p),
    upload: (x) => {
      const t = step(tape, ['upload', x.byteLength], () => arena.alloc(x.byteLength));
      ctx.copyToDevice(t, x);
      return t;
    },
    download: (x, first, rows, dim) => {
      tape?.endPass(['download', x.ptr, first, rows, dim], freedBufferCount());
      const host = downloadRows(ctx, x, first, rows, dim);
      ctx.queue.observeWith(null); // the pass is over: work outside passes is not recorded
      return host;
    },
    rows: (x, first, rows, dim) => x.view(first * dim * 4, rows * dim * 4),
    layerCache: (capacity, kvDim) => allocLayerCache(ctx, capacity, kvDim),
    releaseLayerCache: (cache) => {
      ctx.synchronize();
      cache.keys.free();
      cache.values.free();
    },
    prepareLinear: (w) => prepareLinear(p, w),
    rmsnorm: (x, m, weight, eps) => step(tape, ['rmsnorm', x.ptr, m, weight, eps], () => {
      const y = arena.alloc(m * weight.length * 4);
      rmsnormCuda(ctx, x, p.constants.of(weight), y, m, weight.length, eps);
      return y;
    }),
    rope: (x, m, heads, headDim, startPos, invFreq) => {
      const at = p.position.at(startPos);
      step(tape, ['rope', x.ptr, m, heads, headDim, invFreq], () => {
        quantized.clear();
        ropeCuda(ctx, x, p.constants.of(invFreq), m, heads, headDim, at);
      });
    },
    attention: (q, k, v, m, startPos, cache, shape) => attention(p, q, k, v, m, startPos, cache, shape),
    siluMul: (gate, up) => step(tape, ['siluMul', gate.ptr, gate.bytes, up.ptr], () => {
      quantized.clear();
      siluMulCuda(ctx, gate, up, gate.bytes / 4);
    }),
    addInPlace: (a, b) => step(tape, ['add', a.ptr, a.bytes, b.ptr], () => {
      quantized.clear();
      addCuda(ctx, a, b, a.bytes / 4);
    }),
    gatherRows: (x, rows, dim) => {
      const xRows = Math.floor(x.bytes / (dim * 4));
      const index = uploadRowIndex(p, 'gatherRows', rows, xRows, false);
      const y = arena.alloc(Math.max(1, rows.length) * dim * 4);
      if (rows.length > 0) gatherRowsCuda(ctx, x, xRows, index, rows.length, y, dim);
      return y;
    },
    addScaledRows: (out, y, rows, weights, dim) => {
      if (weights.length < rows.length) throw new RangeError(`addScaledRows: ${weights.length} weights for ${rows.length} rows`);
      const outRows = Math.floor(out.bytes / (dim * 4));
      const index = uploadRowIndex(p, 'addScaledRows', rows, outRows, true);
      const w = arena.alloc(Math.max(1, rows.length) * 4);
      ctx.copyToDevice(w, weights.subarray(0, rows.length));
      quantized.clear();
      if (rows.length > 0) addScaledRowsCuda(ctx, out, outRows, y, index, w, rows.length, dim);
    },
    addAbsColumns: (x, m, k, sums) => addAbsColumnsCuda(ctx, x, m, k, sums),
    // the references are the fp32 linears' products: an fp16 backend leaves its searches to the host loop
    scaleSearch: (problem) => (p.kernels.floatPrecision === 'f16' ? null : createScaleSearch({ ctx, blas: p.blas, chooseConfig: (m, n, k) => w4a8ConfigFor(p, m, n, k) }, problem)),
    placements: () => placements(p.live),
    replayStats: () => tape?.stats() ?? null,
    dispose: () => disposeParts(p),
  };
}

/** The context (opened when not given), cuBLAS, the pass arena and tape, and the scratch and caches of the ops. */
function openParts(options: CudaBackendOptions): BackendParts {
  const ownsContext = options.ctx === undefined;
  const ctx = options.ctx ?? new CudaContext(0);
  const blas = new Cublas(ctx.stream);
  const arena = createStepArena(ctx);
  const runtime = options.graphs === false ? null : cudaGraphRuntime(ctx);
  const tape = runtime ? createPassTape(runtime, arena) : null;
  const wgmma = ctx.arch === 'sm_90a';
  return {
    ctx, ownsContext, blas, arena, tape,
    position: devicePosition(ctx),
    constants: deviceConstants(ctx),
    quantized: quantizedInputs(ctx, arena),
    attentionScratch: scratch(ctx),
    live: new Set(),
    kernels: { wgmma, tma: wgmma && hasTensorMaps(ctx), overlap: options.overlap !== false, floatPrecision: options.floatPrecision },
  };
}

/** One op of a pass: recorded, or replayed when it repeats the last pass's (see pass-tape.ts); run at once without a tape. */
function step<R>(tape: PassTape<ArenaMark> | null, args: readonly unknown[], run: () => R): R {
  return tape ? tape.step(args, run) : run();
}

/** A pass begins: the arena and the quantized inputs are reclaimed, the tape observes the stream. */
function startPass(p: BackendParts): void {
  p.arena.reset();
  p.quantized.clear();
  if (p.tape) {
    p.tape.startPass(freedBufferCount(), p.arena.mark());
    p.ctx.queue.observeWith(p.tape);
  }
}

/**
 * rows as an int32 buffer on the device, each checked to lie in [0, limit) (and distinct when a
 * scatter writes them): the kernels index with them unchecked. Host data in the pass: it will not replay.
 */
function uploadRowIndex(p: BackendParts, op: string, rows: readonly number[], limit: number, distinct: boolean): DeviceBuffer {
  p.tape?.hostRoundTrip();
  const index = Int32Array.from(rows);
  index.forEach((r, i) => {
    if (!(r >= 0 && r < limit) || r !== rows[i]) throw new RangeError(`${op}: row ${rows[i]} outside [0, ${limit})`);
  });
  if (distinct && new Set(index).size !== index.length) throw new RangeError(`${op}: a row appears twice`);
  const buf = p.arena.alloc(Math.max(1, index.length) * 4);
  p.ctx.copyToDevice(buf, index);
  return buf;
}

/** Rows [first, first + rows) of x [*, dim] on the host (waits for the stream). */
function downloadRows(ctx: CudaContext, x: DeviceBuffer, first: number, rows: number, dim: number): Float32Array {
  return ctx.copyToHost(new Float32Array(rows * dim), x.view(first * dim * 4, rows * dim * 4));
}

/** Keys and values of one layer's KV cache in device memory. */
function allocLayerCache(ctx: CudaContext, capacity: number, kvDim: number): LayerKvCache<DeviceBuffer> {
  const keys = ctx.alloc(capacity * kvDim * 4);
  try {
    return { keys, values: ctx.alloc(capacity * kvDim * 4), capacity };
  } catch (e) {
    keys.free();
    throw e;
  }
}

/** Uploads w in its kernel's layout (and its bias) and returns the handle that runs and releases it. */
function prepareLinear(p: BackendParts, w: LinearWeight): PreparedLinear<DeviceBuffer> {
  const g = uploadLinear(p.ctx, w, p.kernels.floatPrecision);
  p.live.add(g);
  const handle: PreparedLinear<DeviceBuffer> = {
    weight: w,
    get copiedBytes() {
      return g.onHost?.copiedBytes ?? 0; // the layer's GPU form lives in device memory
    },
    run: (x, m) => {
      if (!p.live.has(g)) throw new Error('linear: this layer was released');
      if (x.bytes < m * w.k * 4) throw new RangeError(`linear: x holds ${x.bytes / 4} values, need m·K = ${m}·${w.k}`);
      return step(p.tape, ['linear', x.ptr, m, handle], () => runLinear(p, x, m, g));
    },
    release: () => {
      if (!p.live.delete(g)) return;
      p.ctx.synchronize(); // queued launches may still read the weights
      freeGpuLinear(g);
    },
  };
  return handle;
}

/** w resident on the GPU (or the reason it is not) and its bias on the device. */
function uploadLinear(ctx: CudaContext, w: LinearWeight, floatPrecision: FloatPrecision | undefined): GpuLinear {
  const resident = makeResident(ctx, w, floatPrecision);
  let bias: DeviceBuffer | null = null;
  try {
    if (w.bias) bias = ctx.upload(w.bias.subarray(0, w.n));
  } catch (e) {
    freeResident(resident);
    throw e;
  }
  // weights went up with synchronous copies on the legacy stream: let them land before our stream reads them
  ctx.landUploads();
  return { weight: w, resident, bias, onHost: null };
}

function freeGpuLinear(g: GpuLinear): void {
  freeResident(g.resident);
  g.bias?.free();
  g.onHost?.release();
  g.onHost = null;
}

/** The W4A8 kernel this backend's linears take for m rows of a [n, k] layer (the device's wgmma and TMA). */
function w4a8ConfigFor(p: BackendParts, m: number, n: number, k: number): W4A8Config {
  return chooseW4A8Config(m, n, k, p.kernels.wgmma, p.kernels.tma, p.ctx.info.multiprocessors);
}

/** y [m, N] = x [m, K] · Wᵀ (+ bias) with the layer's kernel, or on the CPU where no kernel takes it. */
function runLinear(p: BackendParts, x: DeviceBuffer, m: number, g: GpuLinear): DeviceBuffer {
  const { ctx, arena, blas } = p;
  const { n, k } = g.weight;
  const r = g.resident;
  const y = arena.alloc(m * n * 4);
  if (r.kind === 'cpu') {
    linearOnHost(p, x, m, g, y);
    return y;
  }
  if (r.kind === 'f32') {
    const [ya, xa, wa] = [y.address, x.address, r.w.address];
    ctx.onStream(() => blas.gemmF32(ya, xa, wa, m, n, k));
  } else if (r.kind === 'f16') {
    const x16 = arena.alloc(m * k * 2);
    toF16Cuda(ctx, x, x16, m * k);
    const [ya, xa, wa] = [y.address, x16.address, r.w.address];
    ctx.onStream(() => blas.gemmF16F32(ya, xa, wa, m, n, k));
  } else if (r.kind === 'w4a16') {
    const x16 = arena.alloc(m * k * 2);
    toF16Cuda(ctx, x, x16, m * k);
    w4a16Gemm(ctx, blas, r.layer, x16, y, m, () => arena.alloc(w4a16ExpandedBytes(r.layer)));
  } else if (r.kind === 'w4a8') {
    const chosen = w4a8ConfigFor(p, m, n, k);
    const config = chosen.kind === 'decode' && p.kernels.overlap ? { ...chosen, overlap: true } : chosen;
    const [xq, a] = p.quantized.of(x, m, k, activationOrder(config));
    w4a8Linear(ctx, r.layer, xq, a, y, m, config);
  } else {
    const [xq, a] = p.quantized.of(x, m, k, 'natural');
    w8a8Linear(ctx, r.layer, xq, a, y, m);
  }
  if (g.bias) addBiasCuda(ctx, y, g.bias, m, n);
  return y;
}

/** The layer on the CPU: x copied to the host, y copied back in stream order (the pass will not replay). */
function linearOnHost(p: BackendParts, x: DeviceBuffer, m: number, g: GpuLinear, y: DeviceBuffer): void {
  p.tape?.hostRoundTrip();
  g.onHost ??= cpuBackend.prepareLinear(g.weight);
  p.ctx.copyToDevice(y, g.onHost.run(downloadRows(p.ctx, x, 0, m, g.weight.k), m));
}

/** Writes k, v into the cache at startPos, then attends q over it (split over positions, partials in the scratch). */
function attention(p: BackendParts, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, m: number, startPos: number,
  cache: LayerKvCache<DeviceBuffer>, shape: AttentionShape): DeviceBuffer {
  const { ctx, arena } = p;
  const { numHeads, numKvHeads, headDim, slidingWindow } = shape;
  if (startPos + m > cache.capacity) throw new RangeError(`KV cache holds ${cache.capacity} positions; asked for ${startPos + m}`);
  const at = p.position.at(startPos);
  return step(p.tape, ['attention', q.ptr, k.ptr, v.ptr, m, cache, numHeads, numKvHeads, headDim, slidingWindow], () => {
    kvWriteCuda(ctx, k, v, cache.keys, cache.values, at, startPos, m, numKvHeads * headDim);
    const out = arena.alloc(m * numHeads * headDim * 4);
    const { partBytes } = attentionSplits(cache.capacity, m, numHeads, headDim);
    const part = p.attentionScratch.atLeast(partBytes);
    const launch = { m, startPos, position: at, capacity: cache.capacity, numHeads, numKvHeads, headDim, window: slidingWindow ?? 0 };
    attentionCuda(ctx, q, cache.keys, cache.values, out, launch, part);
    return out;
  });
}

/** GPU layers by kernel family, CPU layers by reason. */
function placements(live: ReadonlySet<GpuLinear>): LinearPlacements {
  const gpu = { w4a8: 0, w8a8: 0, w4a16: 0, f32: 0, f16: 0 };
  const cpu = new Map<string, number>();
  for (const { resident: r } of live) {
    if (r.kind === 'cpu') cpu.set(r.reason, (cpu.get(r.reason) ?? 0) + 1);
    else gpu[r.kind]++;
  }
  return { gpu, cpu: [...cpu].map(([reason, layers]) => ({ reason, layers })) };
}

/** Frees every part (prepared layers, constants, scratch, arena, cuBLAS) and the context when the backend opened it. */
function disposeParts(p: BackendParts): void {
  const { ctx } = p;
  ctx.queue.observeWith(null);
  p.tape?.dispose();
  ctx.synchronize();
  p.position.free();
  p.attentionScratch.free();
  for (const g of p.live) freeGpuLinear(g);
  p.live.clear();
  p.constants.free();
  p.arena.dispose();
  p.blas.destroy();
  if (p.ownsContext) ctx.release();
}
