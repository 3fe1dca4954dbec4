/**
 * Quantized linear layers on the CPU: y = x · W'ᵀ (+ bias), bit for bit equal to
 * int-linear-reference.ts (see there for the exact math and float op order).
 *
 * prepareIntLinear makes a layer's kernel once (the backend does it when the model is loaded):
 * the layer's int32 overflow proof (quant/overflow.ts) is checked once, and A8 layers (W4A8, W8A8)
 * get the WASM SIMD integer kernel's data (int-linear-prepared.ts: the layer's packed weights read
 * in place, or a padded arena copy). Each run quantizes the activations once on the calling thread
 * and splits the output channels across the CPU pool. Where the WASM kernel cannot run (no shared
 * arena, INTSCALE_ARENA=0, arena full, no WASM SIMD) the plain-JS kernels (int-linear-js.ts) run
 * instead, on the calling thread; A16 layers always run the JS kernel.
 */
import { quantizeActivations } from '../../quant/activation-quant.js';
import { proveNoOverflow } from '../../quant/overflow.js';
import type { QuantizedLinear } from '../../quant/types.js';
import { intLinearRows, prepareIntLinearJs, weightOnlyLinearRows, type JsIntLinear } from './int-linear-js.js';
import { prepareIntLinearWasm, releaseIntLinearWasm, type PreparedIntLinear } from './int-linear-prepared.js';
import { INT_MIN_MACS_PER_THREAD, intLinearWasm } from './int-linear-wasm.js';
import { wasmIntLinearAvailable } from './int-linear-wasm-kernel.js';
import { cpuPool, type CpuPool } from './pool/index.js';

export { intLinearRows, weightOnlyLinearRows } from './int-linear-js.js';
export { INT_MIN_MACS_PER_THREAD } from './int-linear-wasm.js';

export type IntLinearKernel = 'auto' | 'js' | 'wasm';

export interface IntLinearPrepareOptions {
  /** 'auto' (default): WASM SIMD for A8 layers where it can run, else JS. 'wasm': runs throw when it cannot run. */
  readonly kernel?: IntLinearKernel;
}

export interface IntLinearRunOptions {
  /** Pool to split output channels over (default: the shared pool for large products); null: calling thread only. */
  readonly pool?: CpuPool | null;
  /** Fewest multiply-adds worth a thread (default INT_MIN_MACS_PER_THREAD); tests pass 0 to split tiny layers. */
  readonly minMacsPerThread?: number;
}

export type IntLinearOptions = IntLinearPrepareOptions & IntLinearRunOptions;

/** A quantized layer prepared for the CPU kernels. */
export interface PreparedIntLinearLayer {
  readonly layer: QuantizedLinear;
  /** which kernel runs it: 'wasm' when the WASM data is in the arena, else 'js'. */
  readonly kernel: 'wasm' | 'js';
  /** y = x · W'ᵀ (+ bias) for x [M, K] float32 into out (or a new array) [M, N]. */
  run(x: Float32Array, M: number, out?: Float32Array, options?: IntLinearRunOptions): Float32Array;
  /** gives back the arena copies the preparation made. */
  release(): void;
  /** bytes of kernel data held beside the layer's own arrays (0 when the WASM kernel reads them in place). */
  readonly copiedBytes: number;
}

/** Prepares w for the CPU kernels (see the header). */
export function prepareIntLinear(w: QuantizedLinear, options: IntLinearPrepareOptions = {}): PreparedIntLinearLayer {
  const choice = options.kernel ?? 'auto';
  const provenSafe = w.aBits === 8 && w.scale === 'int' ? proveNoOverflow(w).safe : true;
  let wasm: PreparedIntLinear | null = null;
  if (w.aBits === 8 && choice !== 'js' && wasmIntLinearAvailable()) {
    wasm = prepareIntLinearWasm(w, provenSafe);
    if (wasm.wAddress < 0) {
      releaseIntLinearWasm(wasm);
      wasm = null;
    }
  }
  let js: JsIntLinear | null = null;
  /** the JS kernel's data, made when first needed (the WASM path never needs it). */
  const jsData = (): JsIntLinear => (js ??= prepareIntLinearJs(w, provenSafe));
  if (w.aBits === 8 && wasm === null && choice !== 'wasm') jsData();
  return {
    layer: w,
    kernel: wasm === null ? 'js' : 'wasm',
    run(x, M, out, runOptions = {}) {
      if (x.length < M * w.k) throw new RangeError(`x holds ${x.length} values, need M·K = ${M}·${w.k}`);
      const y = out ?? new Float32Array(M * w.n);
      if (y.length < M * w.n) throw new RangeError(`out holds ${y.length} values, need M·N = ${M}·${w.n}`);
      if (w.aBits !== 8) {
        weightOnlyLinearRows(x, M, w, y, 0, w.n);
        return y;
      }
      if (wasm !== null) {
        const macs = M * w.n * w.k;
        const pool = runOptions.pool === undefined ? (macs >= 2 * INT_MIN_MACS_PER_THREAD ? cpuPool() : null) : runOptions.pool;
        if (intLinearWasm(x, M, w, wasm, y.subarray(0, M * w.n), pool, runOptions.minMacsPerThread)) return y;
      }
      if (choice === 'wasm') throw new Error('intLinear: the WASM kernel needs WASM SIMD and room in the shared arena (src/tensor/shared.ts)');
      intLinearRows(quantizeActivations(x, M, w.k), w, y, 0, w.n, jsData());
      return y;
    },
    get copiedBytes() {
      const wasmBytes = wasm === null || wasm.inPlace ? 0 : wasm.weights.byteLength + wasm.scales.byteLength + (wasm.bias?.byteLength ?? 0);
      return wasmBytes + (js?.packed?.wp.byteLength ?? 0);
    },
    release() {
      if (wasm !== null) releaseIntLinearWasm(wasm);
      wasm = null;
      js = null;
    },
  };
}

/** y = x · W'ᵀ (+ bias) for x [M, K] float32 into out (or a new array) [M, N], preparing w for this call only. */
export function intLinear(x: Float32Array, M: number, w: QuantizedLinear, out?: Float32Array, options: IntLinearOptions = {}): Float32Array {
  const prepared = prepareIntLinear(w, options);
  try {
    return prepared.run(x, M, out, options);
  } finally {
    prepared.release();
  }
}
