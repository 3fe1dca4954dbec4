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
 *               the start position lives in device memory, written when a pass's differs.
 *   graphs      a pass that repeats the last one (a decode step) is replayed as one CUDA graph
 *               without running its ops' host code (pass-tape.ts); `graphs: false` runs every op.
 *
 * The integer layers give the CPU backend's output bit for bit; the other ops match it except
 * where float64 rounding differs (tests bound both).
 */
import type { AttentionShape, Backend, LayerKvCache, PreparedLinear } from '../../model/backend.js';
import { cpuBackend } from '../cpu/cpu-backend.js';
import type { LinearWeight } from '../../quant/types.js';
import type { DeviceBuffer } from './buffer.js';
import { CudaContext } from './context.js';
import { Cublas } from './cublas.js';
import { freeResident, makeResident, type FloatPrecision, type ResidentLinear } from './resident-linear.js';
import { activationOrder, chooseW4A8Config, quantizeActivationsCuda, w4a8Linear } from './w4a8.js';
import { w8a8Linear } from './w8a8.js';
import { W4A16_MAX_TOKENS, w4a16Linear } from './w4a16.js';
import { hasTensorMaps } from './tensor-map.js';
import { createStepArena } from './step-arena.js';
import { addBiasCuda, addCuda, attentionCuda, attentionSplits, kvWriteCuda, rmsnormCuda, ropeCuda, siluMulCuda, toF16Cuda } from './model-ops.js';
import { createPassTape, type PassReplayStats } from './pass-tape.js';
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

function freeGpuLinear(g: GpuLinear): void {
  freeResident(g.resident);
  g.bias?.free();
  g.onHost?.release();
  g.onHost = null;
}

/** A backend on `ctx` (default: a new context on GPU 0; throws CudaUnavailableError without a GPU). */
export function createCudaBackend(options: CudaBackendOptions = {}): CudaBackend {
  const ownsContext = options.ctx === undefined;
  const ctx = options.ctx ?? new CudaContext(0);
  const blas = new Cublas(ctx.stream);
  const arena = createStepArena(ctx);
  const runtime = options.graphs === false ? null : cudaGraphRuntime(ctx);
  const tape = runtime ? createPassTape(runtime, arena) : null;
  /** One op of a pass: recorded, or replayed when it repeats the last pass's (see pass-tape.ts). */
  const step = <R>(args: readonly unknown[], run: () => R): R => (tape ? tape.step(args, run) : run());
  const position = ctx.alloc(4);
  let positionValue = -1;
  /** Scratch for attention's partials (float64), reused by every layer, grown on demand. */
  let attentionPart: DeviceBuffer | null = null;
  /** Device copies of quantized activations: `${address}|${m}|${k}|${order}` → [xq, a]; cleared by any in-place op and each pass. */
  const quantized = new Map<string, [DeviceBuffer, DeviceBuffer]>();
  /** the layers prepared and not released (placements, dispose). */
  const live = new Set<GpuLinear>();
  const constants = new Map<Float32Array, DeviceBuffer>();
  const wgmma = ctx.arch === 'sm_90a';
  const tma = wgmma && hasTensorMaps(ctx);
  const overlap = options.overlap !== false;

  /** A device copy of a host array the model keeps (norm weights, rotary frequencies), made once. */
  const constant = (a: Float32Array): DeviceBuffer => {
    let d = constants.get(a);
    if (!d) {
      d = ctx.alloc(a.byteLength);
      ctx.copyToDevice(d, a);
      constants.set(a, d);
    }
    return d;
  };

  const download = (x: DeviceBuffer, first: number, rows: number, dim: number): Float32Array =>
    ctx.copyToHost(new Float32Array(rows * dim), x.view(first * dim * 4, rows * dim * 4));

  /** The start position the kernels read, written (in stream order) when it changes. */
  const positionAt = (startPos: number): DeviceBuffer => {
    if (startPos !== positionValue) {
      ctx.copyToDevice(position, Int32Array.of(startPos));
      positionValue = startPos;
    }
    return position;
  };

  /** x [m, k] quantized per token (int8 in `order`, scales a), once per tensor until it changes. */
  const quantizedInput = (x: DeviceBuffer, m: number, k: number, order: 'natural' | 'fragment'): [DeviceBuffer, DeviceBuffer] => {
    const key = `${x.address}|${m}|${k}|${order}`;
    let q = quantized.get(key);
    if (!q) {
      q = [arena.alloc(m * k), arena.alloc(m * 4)];
      quantizeActivationsCuda(ctx, x, q[0], q[1], m, k, order);
      quantized.set(key, q);
    }
    return q;
  };

  const linearOnHost = (x: DeviceBuffer, m: number, g: GpuLinear, y: DeviceBuffer): void => {
    tape?.hostRoundTrip();
    g.onHost ??= cpuBackend.prepareLinear(g.weight);
    ctx.copyToDevice(y, g.onHost.run(download(x, 0, m, g.weight.k), m));
  };

  const prepareLinear = (w: LinearWeight): PreparedLinear<DeviceBuffer> => {
    const resident = makeResident(ctx, w, options.floatPrecision);
    let bias: DeviceBuffer | null = null;
    try {
      if (w.bias) bias = ctx.upload(w.bias.subarray(0, w.n));
    } catch (e) {
      freeResident(resident);
      throw e;
    }
    // weights went up with synchronous copies on the legacy stream: let them land before our stream reads them
    ctx.api.check('cuCtxSynchronize', ctx.api.fn.cuCtxSynchronize!() as number);
    const g: GpuLinear = { weight: w, resident, bias, onHost: null };
    live.add(g);
    const handle: PreparedLinear<DeviceBuffer> = {
      weight: w,
      get copiedBytes() {
        return g.onHost?.copiedBytes ?? 0; // the layer's GPU form lives in device memory
      },
      run: (x, m) => {
        if (!live.has(g)) throw new Error('linear: this layer was released');
        if (x.bytes < m * w.k * 4) throw new RangeError(`linear: x holds ${x.bytes / 4} values, need m·K = ${m}·${w.k}`);
        return step(['linear', x.ptr, m, handle], () => linearNow(x, m, g));
      },
      release: () => {
        if (!live.delete(g)) return;
        ctx.synchronize(); // queued launches may still read the weights
        freeGpuLinear(g);
      },
    };
    return handle;
  };

  const linearNow = (x: DeviceBuffer, m: number, g: GpuLinear): DeviceBuffer => {
    const { n, k } = g.weight;
    const r = g.resident;
    const y = arena.alloc(m * n * 4);
    if (r.kind === 'cpu' || (r.kind === 'w4a16' && m > W4A16_MAX_TOKENS)) {
      linearOnHost(x, m, g, y);
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
      w4a16Linear(ctx, r.layer, x16, y, m);
    } else if (r.kind === 'w4a8') {
      const chosen = chooseW4A8Config(m, n, k, wgmma, tma, ctx.info.multiprocessors);
      const config = chosen.kind === 'decode' && overlap ? { ...chosen, overlap } : chosen;
      const [xq, a] = quantizedInput(x, m, k, activationOrder(config));
      w4a8Linear(ctx, r.layer, xq, a, y, m, config);
    } else {
      const [xq, a] = quantizedInput(x, m, k, 'natural');
      w8a8Linear(ctx, r.layer, xq, a, y, m);
    }
    if (g.bias) addBiasCuda(ctx, y, g.bias, m, n);
    return y;
  };

  const attention = (q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, m: number, startPos: number,
    cache: LayerKvCache<DeviceBuffer>, shape: AttentionShape): DeviceBuffer => {
    const { numHeads, numKvHeads, headDim, slidingWindow } = shape;
    if (startPos + m > cache.capacity) throw new RangeError(`KV cache holds ${cache.capacity} positions; asked for ${startPos + m}`);
    const at = positionAt(startPos);
    return step(['attention', q.ptr, k.ptr, v.ptr, m, cache, numHeads, numKvHeads, headDim, slidingWindow], () => {
      kvWriteCuda(ctx, k, v, cache.keys, cache.values, at, startPos, m, numKvHeads * headDim);
      const out = arena.alloc(m * numHeads * headDim * 4);
      const { partBytes } = attentionSplits(cache.capacity, m, numHeads, headDim);
      if (!attentionPart || attentionPart.bytes < partBytes) {
        if (attentionPart) {
          ctx.synchronize(); // queued launches may still read the old scratch
          attentionPart.free();
        }
        attentionPart = ctx.alloc(partBytes);
      }
      const launch = { m, startPos, position: at, capacity: cache.capacity, numHeads, numKvHeads, headDim, window: slidingWindow ?? 0 };
      attentionCuda(ctx, q, cache.keys, cache.values, out, launch, attentionPart);
      return out;
    });
  };

  const placements = (): LinearPlacements => {
    const gpu = { w4a8: 0, w8a8: 0, w4a16: 0, f32: 0, f16: 0 };
    const cpu = new Map<string, number>();
    for (const { resident: r } of live) {
      if (r.kind === 'cpu') cpu.set(r.reason, (cpu.get(r.reason) ?? 0) + 1);
      else gpu[r.kind]++;
    }
    return { gpu, cpu: [...cpu].map(([reason, layers]) => ({ reason, layers })) };
  };

  const dispose = (): void => {
    ctx.queue.observeWith(null);
    tape?.dispose();
    ctx.synchronize();
    position.free();
    attentionPart?.free();
    for (const g of live) freeGpuLinear(g);
    live.clear();
    for (const d of constants.values()) d.free();
    constants.clear();
    arena.dispose();
    blas.destroy();
    if (ownsContext) ctx.release();
  };

  return {
    name: 'cuda',
    ctx,
    startPass: () => {
      arena.reset();
      quantized.clear();
      if (tape) {
        tape.startPass(freedBufferCount(), arena.mark());
        ctx.queue.observeWith(tape);
      }
    },
    upload: (x) => {
      const t = step(['upload', x.byteLength], () => arena.alloc(x.byteLength));
      ctx.copyToDevice(t, x);
      return t;
    },
    download: (x, first, rows, dim) => {
      tape?.endPass(['download', x.ptr, first, rows, dim], freedBufferCount());
      const host = download(x, first, rows, dim);
      ctx.queue.observeWith(null); // the pass is over: work outside passes is not recorded
      return host;
    },
    rows: (x, first, rows, dim) => x.view(first * dim * 4, rows * dim * 4),
    layerCache: (capacity, kvDim) => {
      const keys = ctx.alloc(capacity * kvDim * 4);
      try {
        return { keys, values: ctx.alloc(capacity * kvDim * 4), capacity };
      } catch (e) {
        keys.free();
        throw e;
      }
    },
    releaseLayerCache: (cache) => {
      ctx.synchronize();
      cache.keys.free();
      cache.values.free();
    },
    prepareLinear,
    rmsnorm: (x, m, weight, eps) => step(['rmsnorm', x.ptr, m, weight, eps], () => {
      const y = arena.alloc(m * weight.length * 4);
      rmsnormCuda(ctx, x, constant(weight), y, m, weight.length, eps);
      return y;
    }),
    rope: (x, m, heads, headDim, startPos, invFreq) => {
      const at = positionAt(startPos);
      step(['rope', x.ptr, m, heads, headDim, invFreq], () => {
        quantized.clear();
        ropeCuda(ctx, x, constant(invFreq), m, heads, headDim, at);
      });
    },
    attention,
    siluMul: (gate, up) => step(['siluMul', gate.ptr, gate.bytes, up.ptr], () => {
      quantized.clear();
      siluMulCuda(ctx, gate, up, gate.bytes / 4);
    }),
    addInPlace: (a, b) => step(['add', a.ptr, a.bytes, b.ptr], () => {
      quantized.clear();
      addCuda(ctx, a, b, a.bytes / 4);
    }),
    placements,
    replayStats: () => tape?.stats() ?? null,
    dispose,
  };
}
