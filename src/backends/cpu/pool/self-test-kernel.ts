/**
 * A diagnostic kernel for the pool itself: for each row r it writes out[r] = 2·input[r] + 1 and
 * who[r] = the thread id that ran it; it sleeps sleepMs per call (so that every thread gets
 * chunks), and throws in a worker when throwInWorker is set, or on row throwAtRow.
 */
import { isMainThread, threadId } from 'node:worker_threads';
import type { KernelArgs } from './types.js';

export interface PoolSelfTestArgs extends KernelArgs {
  readonly input: Float64Array;
  readonly out: Float64Array;
  readonly who: Int32Array;
  readonly sleepMs: number;
  readonly throwInWorker: boolean;
  readonly throwAtRow: number;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function poolSelfTestRows(args: PoolSelfTestArgs, rowStart: number, rowEnd: number): void {
  if (args.sleepMs > 0) Atomics.wait(sleeper, 0, 0, args.sleepMs);
  if (!isMainThread && args.throwInWorker) throw new Error(`self-test failure in worker on rows ${rowStart}..${rowEnd}`);
  for (let r = rowStart; r < rowEnd; r++) {
    if (r === args.throwAtRow) throw new Error(`self-test failure at row ${r}`);
    args.out[r] = 2 * args.input[r]! + 1;
    args.who[r] = threadId;
  }
}
