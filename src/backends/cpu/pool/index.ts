/**
 * The process-wide CPU pool: os.availableParallelism() threads, or INTSCALE_THREADS.
 * Created on first use; its workers never keep the process alive.
 */
import { availableParallelism } from 'node:os';
import { CpuPool } from './pool.js';

export { CpuPool, type PoolOptions, type RunOptions } from './pool.js';
export { registerKernel, getKernel, hasKernel } from './registry.js';
export type { KernelArg, KernelArgs, KernelArray, RowKernel } from './types.js';

/** Threads to use: INTSCALE_THREADS when set to a positive integer, else the available cores. */
export function defaultThreadCount(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['INTSCALE_THREADS'];
  if (raw !== undefined && raw.trim() !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`INTSCALE_THREADS must be a positive integer, got '${raw}'`);
    return n;
  }
  return availableParallelism();
}

let shared: CpuPool | undefined;

/** The shared pool (created on first call). */
export function cpuPool(): CpuPool {
  shared ??= new CpuPool({ threads: defaultThreadCount() });
  return shared;
}

/** Replaces the shared pool with one of `threads` threads (closing the old one); for benches and tests. */
export function setCpuThreads(threads: number): CpuPool {
  shared?.close();
  shared = new CpuPool({ threads });
  return shared;
}
