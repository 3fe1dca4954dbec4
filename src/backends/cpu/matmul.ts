/**
 * out[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]) in f32, W row-major [N, K] (Hugging Face layout).
 *
 * Output channels N are split across the CPU pool's threads (each streams its own rows of W
 * once, which is what decode, M = 1, needs: it is memory-bound). Two kernels:
 *  - 'wasm': WASM SIMD f32x4 (./matmul-f32-wasm-kernel.ts), used when W lives in the shared arena
 *    (allocated inside withArenaAllocation, src/tensor/shared.ts); x and out outside it are staged
 *    through arena scratch (copies of M·K and M·N floats, small next to the M·N·K work).
 *  - 'js': plain JS, float64 accumulation (./matmul-f32-kernel.ts), for everything else.
 * Small products run on the calling thread alone; so do inputs not in shared memory.
 */
import { allShared, arenaAddress, arenaFloat32 } from '../../tensor/shared.js';
import { cpuPool, type CpuPool, type RunOptions } from './pool/index.js';
import { KERNEL_MATMUL_F32, KERNEL_MATMUL_F32_WASM } from './pool/kernels.js';
import { MATMUL_F32_BLOCK_N, matmulF32Rows, type MatmulF32Args } from './matmul-f32-kernel.js';
import { matmulF32WasmRows, wasmMatmulAvailable, type MatmulF32WasmArgs } from './matmul-f32-wasm-kernel.js';
import { copyRowsOnPool } from './copy-pool.js';

/** Below this many multiply-adds per thread a matmul is not worth a dispatch (~ 5-10 µs). */
export const MATMUL_MIN_MACS_PER_THREAD = 1 << 17;

export type MatmulKernel = 'auto' | 'js' | 'wasm';

export interface MatmulOptions {
  /** Pool to use (default: the shared pool); pass null to stay on the calling thread. */
  readonly pool?: CpuPool | null;
  /** 'auto' (default): WASM SIMD when W is in the arena, else JS. 'wasm' throws when it cannot run. */
  readonly kernel?: MatmulKernel;
}

/**
 * The WASM kernel by name where the runtime has one, else the default choice: for callers whose
 * scratch must be in the arena, so that scratch outside it throws instead of quietly running the JS kernel.
 */
export function wasmKernelWhereAvailable(): MatmulOptions {
  return wasmMatmulAvailable() ? { kernel: 'wasm' } : {};
}

export function matmulF32(
  x: Float32Array,
  m: number,
  k: number,
  w: Float32Array,
  n: number,
  out: Float32Array,
  bias?: Float32Array,
  options: MatmulOptions = {},
): void {
  checkShapes(x, m, k, w, n, out, bias);
  const macs = m * n * k;
  const pool = options.pool === undefined ? (macs >= 2 * MATMUL_MIN_MACS_PER_THREAD ? cpuPool() : null) : options.pool;
  const run: RunOptions = { align: MATMUL_F32_BLOCK_N, workPerRow: m * k, minWorkPerThread: MATMUL_MIN_MACS_PER_THREAD };
  const kernel = options.kernel ?? 'auto';
  const wAddress = kernel === 'js' ? -1 : arenaAddress(w);
  if (wAddress >= 0 && wasmMatmulAvailable() && matmulWasm(x, m, k, wAddress, n, out, bias, pool, run)) return;
  if (kernel === 'wasm') throw new Error('matmulF32: the WASM kernel needs W allocated in the shared arena (src/tensor/shared.ts) and WASM SIMD');
  const args: MatmulF32Args = { x, w, out, bias, m, k, n };
  if (pool === null || pool.threads === 1 || !allShared(x, w, out, bias)) matmulF32Rows(args, 0, n);
  else pool.run(KERNEL_MATMUL_F32, args, n, run);
}

let scratchX: Float32Array | undefined;
let scratchOut: Float32Array | undefined;

/** Arena scratch of at least length floats (grown geometrically, never freed). */
function scratch(current: Float32Array | undefined, length: number): Float32Array {
  if (current !== undefined && current.length >= length) return current;
  return arenaFloat32(Math.max(length, 2 * (current?.length ?? 0)));
}

/** Runs the WASM kernel; false (nothing done) when scratch for x or out cannot be had. */
function matmulWasm(
  x: Float32Array,
  m: number,
  k: number,
  wAddress: number,
  n: number,
  out: Float32Array,
  bias: Float32Array | undefined,
  pool: CpuPool | null,
  run: RunOptions,
): boolean {
  let xAddress = arenaAddress(x);
  if (xAddress < 0) {
    const staged = (scratchX = scratch(scratchX, m * k));
    staged.set(x.subarray(0, m * k));
    xAddress = arenaAddress(staged);
  }
  let outAddress = arenaAddress(out);
  const stagedOut = outAddress < 0 ? (scratchOut = scratch(scratchOut, m * n)) : undefined;
  if (stagedOut !== undefined) outAddress = arenaAddress(stagedOut);
  if (xAddress < 0 || outAddress < 0) return false; // the arena is full: no room for scratch
  const args: MatmulF32WasmArgs = { x: xAddress, w: wAddress, out: outAddress, m, k, n };
  if (pool === null || pool.threads === 1) matmulF32WasmRows(args, 0, n);
  else pool.run(KERNEL_MATMUL_F32_WASM, args, n, run);
  if (stagedOut !== undefined) copyRowsOnPool(stagedOut, out, m, n, pool);
  if (bias !== undefined) addBias(out, m, n, bias);
  return true;
}

function addBias(out: Float32Array, m: number, n: number, bias: Float32Array): void {
  for (let i = 0; i < m; i++) {
    const row = i * n;
    for (let j = 0; j < n; j++) out[row + j] += bias[j]!;
  }
}

function checkShapes(
  x: Float32Array,
  m: number,
  k: number,
  w: Float32Array,
  n: number,
  out: Float32Array,
  bias: Float32Array | undefined,
): void {
  for (const [name, v] of [['m', m], ['k', k], ['n', n]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`matmulF32: ${name} must be a non-negative integer, got ${v}`);
  }
  if (x.length < m * k) throw new RangeError(`matmulF32: x has ${x.length} elements, needs M·K = ${m * k}`);
  if (w.length < n * k) throw new RangeError(`matmulF32: w has ${w.length} elements, needs N·K = ${n * k}`);
  if (out.length < m * n) throw new RangeError(`matmulF32: out has ${out.length} elements, needs M·N = ${m * n}`);
  if (bias !== undefined && bias.length < n) throw new RangeError(`matmulF32: bias has ${bias.length} elements, needs N = ${n}`);
}

