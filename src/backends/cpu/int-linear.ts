/**
 * Quantized linear layers on the CPU: y = x · W'ᵀ (+ bias), bit for bit equal to
 * int-linear-reference.ts (see there for the exact math and float op order).
 *
 * A8 layers (W4A8, W8A8) run the WASM SIMD integer kernel (int-linear-wasm*.ts): per-layer data
 * prepared once into the shared arena (int-linear-prepared.ts), activations quantized once per
 * call on the calling thread, output channels split across the CPU pool. Where the WASM kernel
 * cannot run (no shared arena, INTSCALE_ARENA=0, arena full, no WASM SIMD) the plain-JS kernels
 * (int-linear-js.ts) run instead, on the calling thread; A16 layers always run the JS kernel.
 */
import { quantizeActivations } from '../../quant/activation-quant.js';
import type { QuantizedLinear } from '../../quant/types.js';
import { intLinearRows, prepareIntLinearJs, weightOnlyLinearRows } from './int-linear-js.js';
import { preparedIntLinear } from './int-linear-prepared.js';
import { INT_MIN_MACS_PER_THREAD, intLinearWasm, wasmIntLinearUsable } from './int-linear-wasm.js';
import { cpuPool, type CpuPool } from './pool/index.js';

export { intLinearRows, weightOnlyLinearRows } from './int-linear-js.js';
export { intLinearPreparationCount } from './int-linear-prepared.js';
export { INT_MIN_MACS_PER_THREAD } from './int-linear-wasm.js';

export type IntLinearKernel = 'auto' | 'js' | 'wasm';

export interface IntLinearOptions {
  /** 'auto' (default): WASM SIMD for A8 layers where it can run, else JS. 'wasm' throws when it cannot run. */
  readonly kernel?: IntLinearKernel;
  /** Pool to split output channels over (default: the shared pool for large products); null: calling thread only. */
  readonly pool?: CpuPool | null;
  /** Fewest multiply-adds worth a thread (default INT_MIN_MACS_PER_THREAD); tests pass 0 to split tiny layers. */
  readonly minMacsPerThread?: number;
}

/** Builds the layer's per-layer kernel data now (else it is built on its first call), e.g. at load time. */
export function prepareIntLinear(w: QuantizedLinear): void {
  if (w.aBits !== 8) return;
  if (!wasmIntLinearUsable(w)) prepareIntLinearJs(w);
  else preparedIntLinear(w);
}

/** y = x · W'ᵀ (+ bias) for x [M, K] float32 into out (or a new array) [M, N]. */
export function intLinear(x: Float32Array, M: number, w: QuantizedLinear, out?: Float32Array, options: IntLinearOptions = {}): Float32Array {
  if (x.length < M * w.k) throw new RangeError(`x holds ${x.length} values, need M·K = ${M}·${w.k}`);
  const y = out ?? new Float32Array(M * w.n);
  if (y.length < M * w.n) throw new RangeError(`out holds ${y.length} values, need M·N = ${M}·${w.n}`);
  const kernel = options.kernel ?? 'auto';
  if (w.aBits === 8 && kernel !== 'js') {
    const macs = M * w.n * w.k;
    const pool = options.pool === undefined ? (macs >= 2 * INT_MIN_MACS_PER_THREAD ? cpuPool() : null) : options.pool;
    if (wasmIntLinearUsable(w) && intLinearWasm(x, M, w, y.subarray(0, M * w.n), pool, options.minMacsPerThread)) return y;
    if (kernel === 'wasm') throw new Error('intLinear: the WASM kernel needs WASM SIMD and room in the shared arena (src/tensor/shared.ts)');
  }
  if (w.aBits === 8) intLinearRows(quantizeActivations(x, M, w.k), w, y, 0, w.n);
  else weightOnlyLinearRows(x, M, w, y, 0, w.n);
  return y;
}
