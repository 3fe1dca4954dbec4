/**
 * Benchmark and test helpers on the GPU (bench/kernels/bench-util.cu, compiled like the backend's
 * kernels by kernel-cache.ts): device-side random fills, the stream-holding spin kernel, the empty
 * kernel of the launch floor, and a late writer for the tests of overlapped launches.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import type { CudaContext } from '../src/backends/cuda/context.js';
import { getKernel } from '../src/backends/cuda/kernel-cache.js';

/** bench/kernels: beside this module in the source tree, or two folders up from dist/bench. */
export function benchKernelsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'kernels'), join(here, '..', '..', 'bench', 'kernels')];
  for (const c of candidates) if (existsSync(join(c, 'bench-util.cu'))) return c;
  throw new Error(`bench CUDA kernel sources not found (looked in ${candidates.join(', ')})`);
}

const GRID = 1024;
let benchUtil: string | undefined;
/** The path of bench-util.cu (found once). */
const BENCH_UTIL = (): string => (benchUtil ??= join(benchKernelsDir(), 'bench-util.cu'));

export function fillRandomU32(ctx: CudaContext, b: DeviceBuffer, seed: number): void {
  ctx.launch(getKernel(ctx, BENCH_UTIL(), 'fill_u32'), [GRID], [256], [b, { u64: Math.floor(b.bytes / 4) }, { i32: seed | 0 }]);
}
export function fillRandomI8(ctx: CudaContext, b: DeviceBuffer, seed: number): void {
  ctx.launch(getKernel(ctx, BENCH_UTIL(), 'fill_i8'), [GRID], [256], [b, { u64: Math.floor(b.bytes / 4) }, { i32: seed | 0 }]);
}
export function fillRandomF16(ctx: CudaContext, b: DeviceBuffer, seed: number): void {
  ctx.launch(getKernel(ctx, BENCH_UTIL(), 'fill_f16'), [GRID], [256], [b, { u64: Math.floor(b.bytes / 2) }, { i32: seed | 0 }]);
}
export function fillRandomI32(ctx: CudaContext, b: DeviceBuffer, seed: number, lo: number, hi: number): void {
  ctx.launch(getKernel(ctx, BENCH_UTIL(), 'fill_i32'), [GRID], [256], [b, { u64: Math.floor(b.bytes / 4) }, { i32: seed | 0 }, { i32: lo }, { i32: hi }]);
}
export function fillRandomF32(ctx: CudaContext, b: DeviceBuffer, seed: number, lo: number, hi: number): void {
  ctx.launch(getKernel(ctx, BENCH_UTIL(), 'fill_f32'), [GRID], [256], [b, { u64: Math.floor(b.bytes / 4) }, { i32: seed | 0 }, { f32: lo }, { f32: hi }]);
}
/** Holds the stream busy for `us` microseconds so that launches queued behind it run back to back. */
export function spin(ctx: CudaContext, us: number): void {
  ctx.launch(getKernel(ctx, BENCH_UTIL(), 'spin'), [1], [32], [{ u64: Math.round(us * 1000) }]);
}
/** Launches a kernel that does nothing: timed like any other, it gives the launch floor of a measurement. */
export function launchEmpty(ctx: CudaContext): void {
  ctx.launch(getKernel(ctx, BENCH_UTIL(), 'empty'), [1], [32], []);
}
/**
 * Test support: a kernel that lets the next launch overlap it (programmatic dependent launch), waits
 * `us` µs of GPU time, then copies the first `bytes` (a multiple of 4) of src to dst.
 */
export function delayedCopy(ctx: CudaContext, dst: DeviceBuffer, src: DeviceBuffer, bytes: number, us: number): void {
  if (bytes % 4 !== 0 || bytes > dst.bytes || bytes > src.bytes) throw new RangeError(`delayedCopy: ${bytes} B must be a multiple of 4 that fits both buffers`);
  ctx.launch(getKernel(ctx, BENCH_UTIL(), 'delayed_copy_u32'), [8], [256], [dst, src, { u64: bytes / 4 }, { u64: Math.round(us * 1000) }]);
}
/**
 * The read floor of a streaming kernel (read_stream_u4 / _u8): every byte of the first `bytes` of src read once,
 * `unit` 16-byte loads a thread, `threads` a block, each block one contiguous run of unit·threads·16 bytes (as a
 * decode block streams its tiles). `bytes` must be a multiple of that run; sink: 4 bytes a block.
 * overlapPrevious (unit 4 only): read_stream_u4_pdl, launched to overlap the launch before it as the engine's
 * decode kernels are (its loads issued before it waits for that launch to finish).
 */
export function readStream(ctx: CudaContext, src: DeviceBuffer, bytes: number, unit: 4 | 8, threads: number, sink: DeviceBuffer, overlapPrevious = false): void {
  const run = unit * threads * 16, blocks = bytes / run;
  if (!Number.isInteger(blocks) || blocks < 1 || bytes > src.bytes || sink.bytes < blocks * 4) throw new RangeError(`readStream: ${bytes} B must be a positive multiple of ${run} within src, sink ${blocks * 4} B`);
  if (overlapPrevious && unit !== 4) throw new RangeError('readStream: the overlapping read streams 4 loads a thread');
  const name = overlapPrevious ? 'read_stream_u4_pdl' : unit === 4 ? 'read_stream_u4' : 'read_stream_u8';
  ctx.launch(getKernel(ctx, BENCH_UTIL(), name), [blocks], [threads], [src, sink], 0, { overlapPrevious });
}
