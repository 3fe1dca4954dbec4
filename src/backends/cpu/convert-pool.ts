/**
 * float32 → binary16 of a long array split over the CPU pool (the same bits as io/dtype.ts f32ToF16,
 * element by element): for weights made fp16 on the host before an upload (cuda/resident-linear.ts), where
 * one thread spends about 8 ns a weight. An array not in shared memory (or too short to split) converts on this thread.
 */
import { cpuPool } from './pool/index.js';
import { KERNEL_F32_TO_F16 } from './pool/kernels.js';

/** Elements a thread's share must hold before the pool splits the array. */
const MIN_PER_THREAD = 1 << 20;

export function f32ToF16OnPool(src: Float32Array): Uint16Array {
  const out = new Uint16Array(new SharedArrayBuffer(src.length * 2));
  cpuPool().runWhereShared(KERNEL_F32_TO_F16, { src, out }, src.length, { minWorkPerThread: MIN_PER_THREAD });
  return out;
}
