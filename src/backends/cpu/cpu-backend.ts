/**
 * The CPU backend: float matmuls split over the worker pool, exact integer kernels for
 * quantized layers (the true integer path, not fake quantization), plain loops for the rest.
 *
 * prepareLinear: a quantized layer gets its kernel data once (int-linear.ts); a float layer runs
 * from its own weights when they are in the WASM arena (a loaded model's are), else from an arena
 * copy made here and given back by release() (calibration's layers, read outside the arena so
 * they can be collected), so the SIMD matmul runs it either way.
 */
import type { Backend, PreparedLinear } from '../../model/backend.js';
import type { FloatLinear, LinearWeight } from '../../quant/types.js';
import { ARENA_MAX_PAGES, arenaAddress, arenaFloat32, releaseArenaBlock, sharedFloat32 } from '../../tensor/shared.js';
import { prepareIntLinear } from './int-linear.js';
import { wasmIntLinearAvailable } from './int-linear-wasm-kernel.js';
import { matmulF32 } from './matmul.js';
import { addInPlace, addScaledRows, attention, decodeAttention, gatherRows, rmsnorm, rope, siluMul } from './ops.js';

let warnedArenaFull = false;

/**
 * Once a process, a warning (process.emitWarning, code INTSCALE_ARENA_FULL) that the WASM arena had no
 * room for a layer's kernel data: that layer, and others after it, run on the plain JS kernels, several
 * times slower. It is otherwise silent: the results are the same bits.
 */
function warnArenaFull(layer: LinearWeight): void {
  if (warnedArenaFull) return;
  warnedArenaFull = true;
  const gib = (ARENA_MAX_PAGES * 65536) / 2 ** 30;
  process.emitWarning(
    `the WASM arena (at most ${gib} GiB, shared by every model and KV cache in this process) is full: a ${layer.n}×${layer.k} ` +
      `${layer.kind} layer, and any prepared after it without room, run on the plain JS kernels, several times slower; load fewer or smaller models in one process`,
    { code: 'INTSCALE_ARENA_FULL' },
  );
}

function prepareFloatLinear(w: FloatLinear): PreparedLinear {
  const values = w.w.subarray(0, w.n * w.k);
  let weights = values;
  if (arenaAddress(values) < 0) {
    const copy = arenaFloat32(values.length);
    if (arenaAddress(copy) >= 0) {
      copy.set(values);
      weights = copy;
    } else {
      warnArenaFull(w);
    }
  }
  return {
    weight: w,
    get copiedBytes() {
      return weights === values ? 0 : weights.byteLength;
    },
    run: (x, m) => {
      const out = sharedFloat32(m * w.n);
      matmulF32(x, m, w.k, weights, w.n, out, w.bias);
      return out;
    },
    release: () => {
      if (weights !== values) releaseArenaBlock(weights);
      weights = values;
    },
  };
}

function prepareLinear(w: LinearWeight): PreparedLinear {
  if (w.kind === 'float') return prepareFloatLinear(w);
  const kernel = prepareIntLinear(w);
  if (kernel.kernel === 'js' && w.aBits === 8 && wasmIntLinearAvailable()) warnArenaFull(w); // WASM can run: no arena room
  return {
    weight: w,
    run: (x, m) => kernel.run(x, m, sharedFloat32(m * w.n)),
    get copiedBytes() {
      return kernel.copiedBytes;
    },
    release: () => kernel.release(),
  };
}

const rows = (x: Float32Array, first: number, count: number, dim: number): Float32Array => x.subarray(first * dim, (first + count) * dim);

export const cpuBackend: Backend = {
  name: 'cpu',
  startPass: () => {},
  upload: (x) => x,
  download: rows,
  rows,
  // in the arena, where the WASM attention kernel reads them (ops.ts); given back for reuse on release
  layerCache: (capacity, kvDim) => ({ keys: arenaFloat32(capacity * kvDim), values: arenaFloat32(capacity * kvDim), capacity }),
  releaseLayerCache: (cache) => {
    releaseArenaBlock(cache.keys);
    releaseArenaBlock(cache.values);
  },
  prepareLinear, rmsnorm, rope, attention, decodeAttention, gatherRows, addScaledRows, siluMul, addInPlace,
};
