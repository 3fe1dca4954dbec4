/**
 * AWQ's scale search on the GPU (Backend.scaleSearch; quantize/awq.ts has the search): the problem's float
 * layers, sampled inputs and reference outputs X·Wᵀ (+ bias, cuBLAS fp32 as the backend's float linear)
 * stay on the device; a grid point's loss uploads s [k], divides every input's columns by it
 * (divide_columns), quantizes each layer's W·diag(s) into its W4A8 layout (scaled-rtn.ts: the host's RTN
 * bit for bit, α chosen on the host from the float scales read back), runs it as the backend runs a W4A8
 * linear (per-token int8 inputs, the kernel chosen for t rows, bias) and reads back only the float64
 * partial sums of its squared error. Per grid point the host moves 4·k bytes up and ~8·n·k/G + 8 KiB a
 * layer down, where the host loop moved every layer's codes up and every output down.
 */
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import type { Cublas } from './cublas.js';
import type { ScaleSearchProblem, ScaleSearchSession } from '../../model/backend.js';
import { addBiasCuda } from './model-ops.js';
import { activationOrder, quantizeActivationsCuda, w4a8Linear, type ActivationOrder, type W4A8Config } from './w4a8.js';
import { divideColumnsCuda, freeScaledRtnTarget, quantizeScaledW4A8, scaledRtnRefusal, scaledRtnTarget, squaredErrorCuda, SQUARED_ERROR_PARTS, type ScaledRtnTarget } from './scaled-rtn.js';

/** What the session needs of its backend: the context, cuBLAS, and the kernel its W4A8 linears choose for m rows. */
export interface ScaleSearchDevice {
  readonly ctx: CudaContext;
  readonly blas: Cublas;
  chooseConfig(m: number, n: number, k: number): W4A8Config;
}

interface SearchInput {
  readonly t: number;
  readonly x: DeviceBuffer;
  readonly scaled: DeviceBuffer;
  readonly xq: DeviceBuffer;
  readonly a: DeviceBuffer;
}

interface SearchLinear {
  readonly input: SearchInput;
  readonly target: ScaledRtnTarget;
  readonly bias: DeviceBuffer | null;
  readonly ref: DeviceBuffer;
  readonly config: W4A8Config;
}

/** The session of `problem` on the device, or null when a layer's spec is not W4A8 the kernels take. */
export function createScaleSearch(device: ScaleSearchDevice, problem: ScaleSearchProblem): ScaleSearchSession | null {
  const { ctx, blas } = device;
  const { k } = problem;
  if (problem.linears.some((l) => l.w.k !== k || scaledRtnRefusal(l.spec, k) !== null)) return null;
  const owned: DeviceBuffer[] = [];
  const targets: ScaledRtnTarget[] = [];
  const keep = (b: DeviceBuffer): DeviceBuffer => {
    owned.push(b);
    return b;
  };
  const release = (): void => {
    ctx.synchronize(); // queued launches may still read them
    for (const t of targets) freeScaledRtnTarget(t);
    for (const b of owned) b.free();
  };
  try {
    const inputs: SearchInput[] = problem.inputs.map(({ rows, t }) => ({
      t,
      x: keep(ctx.upload(rows.subarray(0, t * k))),
      scaled: keep(ctx.alloc(t * k * 4)),
      xq: keep(ctx.alloc(t * k)),
      a: keep(ctx.alloc(t * 4)),
    }));
    const largest = Math.max(...problem.linears.map((l) => inputs[l.input]!.t * l.w.n));
    const y = keep(ctx.alloc(Math.max(1, largest) * 4));
    const parts = keep(ctx.alloc(SQUARED_ERROR_PARTS * 8));
    const s = keep(ctx.alloc(k * 4));
    const linears: SearchLinear[] = problem.linears.map(({ w, spec, name, input: i }) => {
      const input = inputs[i]!;
      const target = scaledRtnTarget(ctx, w.w, w.n, k, spec, name);
      targets.push(target);
      const bias = w.bias ? keep(ctx.upload(w.bias.subarray(0, w.n))) : null;
      const ref = keep(ctx.alloc(input.t * w.n * 4));
      const [ra, xa, wa] = [ref.address, input.x.address, target.w.address];
      ctx.onStream(() => blas.gemmF32(ra, xa, wa, input.t, w.n, k));
      if (bias) addBiasCuda(ctx, ref, bias, input.t, w.n);
      return { input, target, bias, ref, config: device.chooseConfig(input.t, w.n, k) };
    });
    // the uploads above went on the legacy stream: let them land before our stream reads them
    ctx.landUploads();
    return {
      loss: (scales) => {
        if (scales.length !== k) throw new RangeError(`scale search: ${scales.length} scales for K = ${k}`);
        ctx.copyToDevice(s, scales);
        for (const input of inputs) divideColumnsCuda(ctx, input.x, s, input.scaled, input.t, k);
        const quantizedIn = new Map<SearchInput, ActivationOrder>(); // the order each input's int8 copy is in
        let loss = 0;
        for (const l of linears) {
          const { input, target, config } = l;
          quantizeScaledW4A8(ctx, target, s);
          const order = activationOrder(config);
          if (quantizedIn.get(input) !== order) {
            quantizeActivationsCuda(ctx, input.scaled, input.xq, input.a, input.t, k, order);
            quantizedIn.set(input, order);
          }
          w4a8Linear(ctx, target.layer, input.xq, input.a, y, input.t, config);
          if (l.bias) addBiasCuda(ctx, y, l.bias, input.t, target.n);
          loss += squaredErrorCuda(ctx, y, l.ref, input.t * target.n, parts);
        }
        return loss;
      },
      release,
    };
  } catch (e) {
    release();
    throw e;
  }
}
