/**
 * What the GPU correctness tests share: one kernel run into a NaN-poisoned output (f32 or f16), the
 * bit-exact comparison of integer paths, f16 rounding of an expected f32 output, and the float-scale
 * tolerance (chunk-term magnitude).
 */
import assert from 'node:assert/strict';
import type { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { groupAccumulators } from '../../../src/backends/cpu/int-linear-reference.js';
import { outputBytes, type OutputFormat } from '../../../src/backends/cuda/output.js';
import { f16ToF32, f32ToF16 } from '../../../src/io/dtype.js';
import type { QuantizedLinear } from '../../../src/quant/types.js';

/**
 * Allocates a [count] output of format `out` poisoned with NaN bytes, runs `launch` into it, returns
 * what it wrote as f32 (f16 values widened exactly; a poison NaN stays NaN).
 */
export function runPoisoned(ctx: CudaContext, count: number, launch: (y: DeviceBuffer) => void, out: OutputFormat = 'f32'): Float32Array {
  const y = ctx.alloc(count * outputBytes(out));
  try {
    y.fill(0xff);
    launch(y);
    ctx.synchronize();
    if (out === 'f32') return y.download(new Float32Array(count));
    const wide = new Float32Array(count);
    f16ToF32(y.download(new Uint16Array(count)), wide);
    return wide;
  } finally {
    y.free();
  }
}

/** f32 values rounded to f16 (nearest even) and widened back: what an f16-output kernel must write. */
export function roundedToF16(v: Float32Array): Float32Array {
  const out = new Float32Array(v.length);
  f16ToF32(f32ToF16(v), out);
  return out;
}

/** Every element bit for bit (a NaN left by the poison fails too). */
export function assertBitExact(got: Float32Array, want: Float32Array, what: string): void {
  const gb = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wb = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < got.length; i++) {
    if (gb[i] !== wb[i]) assert.fail(`${what}: element ${i} is ${got[i]} (0x${gb[i]!.toString(16)}), reference ${want[i]} (0x${wb[i]!.toString(16)})`);
  }
}

/**
 * Float scale: |got - ref| <= 1e-6 · a[m] · Σ_c |acc_c|·s, summed over 128-k chunks c. Kernels may
 * split a group between warps at chunk boundaries (exact for integers, a rounding change for
 * floats), and a split group's halves can be far larger than the group sum, so the bound counts
 * chunk sums. A NaN fails.
 */
export function assertCloseFS(got: Float32Array, want: Float32Array, w: QuantizedLinear, act: { xq: Int8Array; scales: Float32Array; m: number; k: number }, what: string): void {
  const acc = groupAccumulators(act, { ...w, groupSize: 128 });
  const chunks = w.k / 128;
  const groups = w.k / w.groupSize;
  for (let m = 0; m < act.m; m++) {
    for (let n = 0; n < w.n; n++) {
      let mag = 0;
      for (let c = 0; c < chunks; c++) mag += Math.abs(acc[(m * w.n + n) * chunks + c]! * w.scales[n * groups + Math.floor((c * 128) / w.groupSize)]!);
      mag *= act.scales[m]!;
      const i = m * w.n + n;
      if (!(Math.abs(got[i]! - want[i]!) <= 1e-6 * mag + 1e-30)) assert.fail(`${what}: y[${m},${n}] = ${got[i]}, reference ${want[i]} (tolerance ${1e-6 * mag})`);
    }
  }
}
