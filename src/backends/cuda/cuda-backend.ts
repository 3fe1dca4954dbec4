/**
 * The CUDA backend: the model's linear layers on the GPU, everything else (RMSNorm, rotary
 * embedding, attention, SwiGLU, residual adds) on the CPU with the CPU backend's ops.
 *
 * Each layer is uploaded at its first call in its kernel's layout (resident-linear.ts) and stays
 * resident until dispose(). One call y[m, N] = x[m, K] · W'ᵀ (+ bias):
 *   x (f32) → device on the context's stream
 *   A8 layers:  act_quant (per-token int8, the k order the chosen kernel reads) → W4A8 / W8A8 kernel
 *   A16 layers: x rounded to fp16 on the host → W4A16 kernel (M ≤ 64; larger M runs on the CPU)
 *   float:      cuBLAS fp32 GEMM
 *   y (f32) → host after a stream synchronize; bias added on the host, y = fround(y + bias[n]).
 * The integer layers give the CPU backend's output bit for bit (the kernels are exact against the
 * CPU reference); fp32 layers differ from the CPU matmul only in summation order.
 * Layers no CUDA kernel takes run on the CPU; placements() says which and why.
 */
import type { Backend } from '../backend.js';
import { cpuBackend } from '../cpu/cpu-backend.js';
import type { LinearWeight } from '../../quant/types.js';
import { f32ToF16 } from '../../io/dtype.js';
import { sharedFloat32 } from '../../tensor/shared.js';
import type { DeviceBuffer } from './buffer.js';
import { CudaContext } from './context.js';
import { Cublas } from './cublas.js';
import { freeResident, makeResident, W4A16_MAX_TOKENS, type ResidentLinear } from './resident-linear.js';
import { activationOrder, chooseW4A8Config, quantizeActivationsCuda, w4a8Linear } from './w4a8.js';
import { w8a8Linear } from './w8a8.js';
import { w4a16Linear } from './w4a16.js';
import { hasTensorMaps } from './tensor-map.js';
import { grown } from './workspace.js';

/** Where the linear layers a backend has seen run: GPU layers by kernel family, CPU layers with the reason. */
export interface LinearPlacements {
  readonly gpu: Readonly<Record<'w4a8' | 'w8a8' | 'w4a16' | 'f32', number>>;
  readonly cpu: readonly { readonly reason: string; readonly layers: number }[];
}

export interface CudaBackend extends Backend {
  readonly ctx: CudaContext;
  placements(): LinearPlacements;
  /** Frees every uploaded layer and scratch buffer (and the context when the backend opened it). */
  dispose(): void;
}

type Scratch = Partial<Record<'x32' | 'x16' | 'xq' | 'a' | 'y', DeviceBuffer>>;

/** Scratch sizes grow in powers of two, so buffers (and the TMA maps cached for them) settle quickly. */
const roundUp = (bytes: number): number => 2 ** Math.ceil(Math.log2(Math.max(bytes, 256)));

/** A backend on `ctx` (default: a new context on GPU 0; throws CudaUnavailableError without a GPU). */
export function createCudaBackend(options: { readonly ctx?: CudaContext } = {}): CudaBackend {
  const ownsContext = options.ctx === undefined;
  const ctx = options.ctx ?? new CudaContext(0);
  const blas = new Cublas(ctx.stream);
  const resident = new Map<LinearWeight, ResidentLinear>();
  const scratch: Scratch = {};
  const buffer = (key: keyof Scratch, bytes: number) => grown(ctx, scratch, key, roundUp(bytes));
  const wgmma = ctx.arch === 'sm_90a';
  const tma = wgmma && hasTensorMaps(ctx);

  const residentOf = (w: LinearWeight): ResidentLinear => {
    let r = resident.get(w);
    if (!r) resident.set(w, (r = makeResident(ctx, w)));
    return r;
  };

  /** y = x·W'ᵀ on the GPU into `out`, or false when this layer/M runs on the CPU. */
  const runOnGpu = (r: ResidentLinear, x: Float32Array, m: number, n: number, k: number, out: Float32Array): boolean => {
    if (r.kind === 'cpu' || (r.kind === 'w4a16' && m > W4A16_MAX_TOKENS)) return false;
    const y = buffer('y', m * n * 4);
    if (r.kind === 'w4a16') {
      const x16 = buffer('x16', m * k * 2);
      ctx.copyToDevice(x16, f32ToF16(x.subarray(0, m * k)));
      w4a16Linear(ctx, r.layer, x16, y, m);
    } else {
      const x32 = buffer('x32', m * k * 4);
      ctx.copyToDevice(x32, x.subarray(0, m * k));
      if (r.kind === 'f32') {
        blas.gemmF32(y.address, x32.address, r.w.address, m, n, k);
      } else {
        const xq = buffer('xq', m * k);
        const a = buffer('a', m * 4);
        if (r.kind === 'w4a8') {
          const config = chooseW4A8Config(m, n, k, wgmma, tma, ctx.info.multiprocessors);
          quantizeActivationsCuda(ctx, x32, xq, a, m, k, activationOrder(config));
          w4a8Linear(ctx, r.layer, xq, a, y, m, config);
        } else {
          quantizeActivationsCuda(ctx, x32, xq, a, m, k);
          w8a8Linear(ctx, r.layer, xq, a, y, m);
        }
      }
    }
    ctx.copyToHost(out.subarray(0, m * n), y);
    return true;
  };

  const linear = (x: Float32Array, m: number, w: LinearWeight): Float32Array => {
    if (x.length < m * w.k) throw new RangeError(`x holds ${x.length} values, need m·K = ${m}·${w.k}`);
    const out = sharedFloat32(m * w.n);
    if (!runOnGpu(residentOf(w), x, m, w.n, w.k, out)) return cpuBackend.linear(x, m, w);
    const bias = w.bias;
    if (bias) {
      for (let i = 0; i < m; i++) for (let j = 0; j < w.n; j++) out[i * w.n + j] = out[i * w.n + j]! + bias[j]!;
    }
    return out;
  };

  const placements = (): LinearPlacements => {
    const gpu = { w4a8: 0, w8a8: 0, w4a16: 0, f32: 0 };
    const cpu = new Map<string, number>();
    for (const r of resident.values()) {
      if (r.kind === 'cpu') cpu.set(r.reason, (cpu.get(r.reason) ?? 0) + 1);
      else gpu[r.kind]++;
    }
    return { gpu, cpu: [...cpu].map(([reason, layers]) => ({ reason, layers })) };
  };

  const dispose = (): void => {
    ctx.synchronize();
    for (const r of resident.values()) freeResident(r);
    resident.clear();
    for (const b of Object.values(scratch)) b?.free();
    blas.destroy();
    if (ownsContext) ctx.release();
  };

  const { rmsnorm, rope, attention, siluMul, addInPlace } = cpuBackend;
  return { name: 'cuda', ctx, linear, rmsnorm, rope, attention, siluMul, addInPlace, placements, dispose };
}
