/**
 * The small device state the CUDA backend keeps between ops (cuda-backend.ts): the start position
 * in device memory, device copies of the model's host constants, per-token quantized inputs shared
 * by the linears reading one tensor, and a scratch buffer grown on demand. Each frees what it allocated.
 */
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import type { StepArena } from './step-arena.js';
import { quantizeActivationsCuda, type ActivationOrder } from './w4a8.js';

/** The start position the kernels read, written (in stream order) when it changes. */
export interface DevicePosition {
  at(startPos: number): DeviceBuffer;
  free(): void;
}

export function devicePosition(ctx: CudaContext): DevicePosition {
  const position = ctx.alloc(4);
  let value = -1;
  return {
    at: (startPos) => {
      if (startPos !== value) {
        ctx.copyToDevice(position, Int32Array.of(startPos));
        value = startPos;
      }
      return position;
    },
    free: () => position.free(),
  };
}

/** Device copies of host arrays the model keeps (norm weights, rotary frequencies), each made once. */
export interface DeviceConstants {
  of(a: Float32Array): DeviceBuffer;
  free(): void;
}

export function deviceConstants(ctx: CudaContext): DeviceConstants {
  const constants = new Map<Float32Array, DeviceBuffer>();
  return {
    of: (a) => {
      let d = constants.get(a);
      if (!d) {
        d = ctx.alloc(a.byteLength);
        ctx.copyToDevice(d, a);
        constants.set(a, d);
      }
      return d;
    },
    free: () => {
      for (const d of constants.values()) d.free();
      constants.clear();
    },
  };
}

/**
 * A layer's input quantized per token for one A8 linear (int8 xq in `order`, scales a), reused by
 * the next linear reading the same tensor (q/k/v, gate/up); cleared by any in-place op and each pass.
 */
export interface QuantizedInputs {
  of(x: DeviceBuffer, m: number, k: number, order: ActivationOrder): [DeviceBuffer, DeviceBuffer];
  clear(): void;
}

export function quantizedInputs(ctx: CudaContext, arena: StepArena): QuantizedInputs {
  /** `${address}|${m}|${k}|${order}` → [xq, a] */
  const quantized = new Map<string, [DeviceBuffer, DeviceBuffer]>();
  return {
    of: (x, m, k, order) => {
      const key = `${x.address}|${m}|${k}|${order}`;
      let q = quantized.get(key);
      if (!q) {
        q = [arena.alloc(m * k), arena.alloc(m * 4)];
        quantizeActivationsCuda(ctx, x, q[0], q[1], m, k, order);
        quantized.set(key, q);
      }
      return q;
    },
    clear: () => quantized.clear(),
  };
}

/** Device scratch reused by every call, grown on demand (attention's float64 partials). */
export interface Scratch {
  atLeast(bytes: number): DeviceBuffer;
  free(): void;
}

export function scratch(ctx: CudaContext): Scratch {
  let buf: DeviceBuffer | null = null;
  return {
    atLeast: (bytes) => {
      if (!buf || buf.bytes < bytes) {
        if (buf) {
          ctx.synchronize(); // queued launches may still read the old scratch
          buf.free();
        }
        buf = ctx.alloc(bytes);
      }
      return buf;
    },
    free: () => buf?.free(),
  };
}
