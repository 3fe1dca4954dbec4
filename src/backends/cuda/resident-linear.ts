/**
 * A model's linear layer made resident on the GPU: its weights uploaded once in the layout of the
 * kernel that will run it, or the reason it has to stay on the CPU (a shape the CUDA kernels do not
 * take, a W8A8 integer-scale layer whose int32 sum could overflow in the plain epilogue).
 *   W4A8  → w4a8Linear (decode / TMA wgmma kernels)    W8A8 → w8a8Linear
 *   W4A16 → w4a16Gemm (decode kernel, or fp16 + cuBLAS) float → cuBLAS fp32 GEMM (never TF32), or
 *                                                         with floatPrecision 'f16' an fp16 GEMM (fp32 out)
 * Biases stay on the host: the backend adds them after the copy back, as the CPU reference does.
 */
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import { f32ToF16OnPool } from '../cpu/convert-pool.js';
import { checkW4A8Shape } from './repack.js';
import { freeW4A8, uploadW4A8, type W4A8Layer } from './w4a8.js';
import { freeW8A8, uploadW8A8, type W8A8Layer } from './w8a8.js';
import { freeW4A16, uploadW4A16, type W4A16Layer } from './w4a16.js';
import type { LinearWeight, QuantizedLinear } from '../../quant/types.js';

export type ResidentLinear =
  | { readonly kind: 'w4a8'; readonly layer: W4A8Layer }
  | { readonly kind: 'w8a8'; readonly layer: W8A8Layer }
  | { readonly kind: 'w4a16'; readonly layer: W4A16Layer }
  | { readonly kind: 'f32'; readonly n: number; readonly k: number; readonly w: DeviceBuffer }
  | { readonly kind: 'f16'; readonly n: number; readonly k: number; readonly w: DeviceBuffer }
  | { readonly kind: 'cpu'; readonly reason: string };

/** Which GPU form a quantized layer takes ('cpu' with the reason when none). */
function placement(w: QuantizedLinear): { kind: ResidentLinear['kind']; reason?: string } {
  try {
    checkW4A8Shape(w.n, w.k, w.groupSize); // W8A8 and W4A16 kernels share the K and G rules
  } catch (e) {
    return { kind: 'cpu', reason: (e as Error).message };
  }
  if (w.wBits === 4) return { kind: w.aBits === 8 ? 'w4a8' : 'w4a16' };
  if (w.aBits === 8) return { kind: 'w8a8' };
  return { kind: 'cpu', reason: `no CUDA kernel for W${w.wBits}A${w.aBits}` };
}

/** How float layers run: fp32 (cuBLAS SGEMM, the reference) or fp16 weights and inputs (the FP16 baseline). */
export type FloatPrecision = 'f32' | 'f16';

/** Uploads w for the kernel that runs it; a layer no kernel can take comes back as { kind: 'cpu', reason }. */
export function makeResident(ctx: CudaContext, w: LinearWeight, floatPrecision: FloatPrecision = 'f32'): ResidentLinear {
  if (w.kind === 'float') {
    const values = w.w.subarray(0, w.n * w.k);
    // fp16: rounded to nearest even on the host, over the CPU pool (a kernel launched here would land in a pass being recorded)
    if (floatPrecision === 'f16') return { kind: 'f16', n: w.n, k: w.k, w: ctx.upload(f32ToF16OnPool(values)) };
    return { kind: 'f32', n: w.n, k: w.k, w: ctx.upload(values) };
  }
  const p = placement(w);
  switch (p.kind) {
    case 'w4a8': return { kind: 'w4a8', layer: uploadW4A8(ctx, w) };
    case 'w4a16': return { kind: 'w4a16', layer: uploadW4A16(ctx, w) };
    case 'w8a8':
      try {
        return { kind: 'w8a8', layer: uploadW8A8(ctx, w) };
      } catch (e) {
        if (e instanceof RangeError) return { kind: 'cpu', reason: e.message }; // the int32 overflow bound
        throw e;
      }
    default: return { kind: 'cpu', reason: p.reason! };
  }
}

export function freeResident(r: ResidentLinear): void {
  if (r.kind === 'w4a8') freeW4A8(r.layer);
  else if (r.kind === 'w8a8') freeW8A8(r.layer);
  else if (r.kind === 'w4a16') freeW4A16(r.layer);
  else if (r.kind === 'f32' || r.kind === 'f16') r.w.free();
}
