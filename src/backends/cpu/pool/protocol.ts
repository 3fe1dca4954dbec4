/**
 * Layout of the shared control Int32Array between the main thread and the workers.
 *
 *   [NEXT_CHUNK]          next unclaimed chunk of the current job (Atomics.add by every thread)
 *   [STATE_BASE + w]      state of worker w: IDLE → POSTED (main) → RUNNING (worker) → IDLE (worker),
 *                         or POSTED → IDLE (main cancels a job the worker had not started yet)
 *   [SEQ_BASE + w]        sequence number of the job last posted to worker w
 *   [ERROR_BASE + w]      1 when worker w's last job threw (the error follows on its port)
 *   [READY_BASE + w]      1 once worker w has loaded its kernels; -1 once it has exited
 */
import type { MessagePort } from 'node:worker_threads';

export const NEXT_CHUNK = 0;
export const STATE_BASE = 1;

export const IDLE = 0;
export const POSTED = 1;
export const RUNNING = 2;

export function controlLength(workers: number): number {
  return STATE_BASE + 4 * workers;
}
export function stateIndex(worker: number): number {
  return STATE_BASE + worker;
}
export function seqIndex(workers: number, worker: number): number {
  return STATE_BASE + workers + worker;
}
export function errorIndex(workers: number, worker: number): number {
  return STATE_BASE + 2 * workers + worker;
}
export function readyIndex(workers: number, worker: number): number {
  return STATE_BASE + 3 * workers + worker;
}

/** A job as posted on a worker's port. */
export interface JobMessage {
  readonly seq: number;
  readonly kernel: string;
  readonly args: unknown;
  readonly rowEnd: number;
  readonly chunkRows: number;
  readonly chunks: number;
}

/** What a worker sends back on its port when a job throws. */
export interface JobError {
  readonly seq: number;
  readonly message: string;
  readonly stack?: string;
}

/** Data the worker starts with. */
export interface WorkerInit {
  readonly control: Int32Array;
  readonly index: number;
  readonly workers: number;
  readonly port: MessagePort;
  readonly spinIterations: number;
  /** the main thread's arena (src/tensor/shared.ts), for the WASM kernels; null without one */
  readonly memory: WebAssembly.Memory | null;
}

/**
 * Claims chunks of the current job until none are left, running the kernel on each.
 * Chunk c covers rows [c·chunkRows, min((c+1)·chunkRows, rowEnd)).
 */
export function runChunks(
  control: Int32Array,
  chunks: number,
  chunkRows: number,
  rowEnd: number,
  run: (rowStart: number, rowEnd: number) => void,
): void {
  for (;;) {
    const c = Atomics.add(control, NEXT_CHUNK, 1);
    if (c >= chunks) return;
    const start = c * chunkRows;
    run(start, Math.min(start + chunkRows, rowEnd));
  }
}
