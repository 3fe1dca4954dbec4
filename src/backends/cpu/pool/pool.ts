/**
 * A synchronous worker pool for row kernels.
 *
 * `run(kernelId, args, rows)` splits rows [0, rows) into aligned chunks. The main thread posts
 * the job on each worker's MessagePort, marks the worker POSTED and notifies it; then it claims
 * chunks itself (Atomics.add on a shared counter) while the woken workers do the same. When no
 * chunk is left it cancels workers that never woke (POSTED → IDLE) and waits for the RUNNING
 * ones. Small jobs run inline on the main thread. A kernel error in a worker comes back on its
 * port and is rethrown here; a worker that exits marks itself so it is never waited for.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort, type WorkerOptions } from 'node:worker_threads';
import { arenaMemory } from '../../../tensor/shared.js';
import { getKernel } from './registry.js';
import './kernels.js';
import {
  IDLE,
  NEXT_CHUNK,
  POSTED,
  RUNNING,
  controlLength,
  errorIndex,
  readyIndex,
  runChunks,
  seqIndex,
  stateIndex,
  type JobError,
  type JobMessage,
  type WorkerInit,
} from './protocol.js';
import type { KernelArgs } from './types.js';

export interface PoolOptions {
  /** Threads including the main thread (≥ 1); the pool starts threads − 1 workers. */
  readonly threads: number;
  /** Iterations a waiting thread polls its word before blocking in Atomics.wait. */
  readonly spinIterations?: number;
  /** Worker entry (compiled JS); tests may point it elsewhere. */
  readonly workerUrl?: URL;
}

export interface RunOptions {
  /** Chunk sizes are multiples of this (the kernel's row block). Default 1. */
  readonly align?: number;
  /** Estimated work of one row (e.g. multiply-adds). Default 1. */
  readonly workPerRow?: number;
  /** Use fewer threads than this much work each; one thread means inline. Default 0. */
  readonly minWorkPerThread?: number;
  /** Cap on the threads for this job. */
  readonly maxThreads?: number;
  /** Chunks per thread, for dynamic balancing. Default 4. */
  readonly chunksPerThread?: number;
}

const DEFAULT_SPIN = 20_000;

/**
 * The process's Node flags a worker may take: --input-type (node -e scripts) is refused by workers
 * started from a file, and V8's tick profiler (--prof, its log options) by any worker; the main
 * thread still profiles (`node --prof`, then `node --prof-process`).
 */
export function workerExecArgv(argv: readonly string[]): string[] {
  const refused = ['--input-type', '--prof', '--logfile', '--no-logfile-per-isolate', '--log-internal-timer-events'];
  return argv.filter((a) => !refused.some((flag) => a === flag || a.startsWith(`${flag}=`)));
}

/**
 * A worker on the flags workerExecArgv keeps, less any the runtime still refuses: Node 24's test runner
 * hands its children every default as a flag (--stack-trace-limit=10, --v8-pool-size=4, …), and a worker
 * refuses the per-process ones; the error names them, so the second try leaves them out.
 */
function startWorker(url: URL, options: WorkerOptions): Worker {
  const execArgv = workerExecArgv(process.execArgv);
  try {
    return new Worker(url, { ...options, execArgv });
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
    const listed = (e as Error).message.split('flags: ').slice(1).join('flags: ').split(', ');
    return new Worker(url, { ...options, execArgv: execArgv.filter((a) => !listed.includes(a)) });
  }
}

export class CpuPool {
  /** Threads including the main thread. */
  readonly threads: number;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly control: Int32Array;
  private readonly spinIterations: number;
  private seq = 0;
  private busy = false;
  private closed = false;
  private startupError: Error | undefined;

  constructor(options: PoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) {
      throw new RangeError(`threads must be an integer ≥ 1, got ${options.threads}`);
    }
    this.threads = options.threads;
    this.spinIterations = options.spinIterations ?? DEFAULT_SPIN;
    const workerCount = this.threads - 1;
    this.control = new Int32Array(new SharedArrayBuffer(controlLength(workerCount) * 4));
    const memory = arenaMemory();
    const url = options.workerUrl ?? new URL('./worker.js', import.meta.url);
    for (let i = 0; i < workerCount; i++) {
      const { port1, port2 } = new MessageChannel();
      const init: WorkerInit = {
        control: this.control,
        index: i,
        workers: workerCount,
        port: port2,
        spinIterations: this.spinIterations,
        memory,
      };
      const worker = startWorker(url, { workerData: init, transferList: [port2] });
      worker.on('error', (e: Error) => {
        this.startupError ??= e;
        this.markExited(i);
      });
      worker.on('exit', () => this.markExited(i));
      worker.unref();
      port1.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  /** Number of worker threads (threads − 1). */
  get workerCount(): number {
    return this.workers.length;
  }

  /** Blocks until every worker has loaded its kernels; throws after timeoutMs. */
  waitUntilReady(timeoutMs = 10_000): void {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < this.workers.length; i++) {
      const at = readyIndex(this.workers.length, i);
      for (;;) {
        const ready = Atomics.load(this.control, at);
        if (ready === 1) break;
        if (ready === -1) throw new Error(`cpu pool worker ${i} exited during startup`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`cpu pool worker ${i} not ready after ${timeoutMs} ms`);
        Atomics.wait(this.control, at, 0, Math.min(left, 10));
      }
    }
  }

  /**
   * Runs kernel(args, rowStart, rowEnd) over rows [0, rows), split across threads.
   * Synchronous: all rows are done (or an Error is thrown) when it returns.
   */
  run<A extends KernelArgs>(kernelId: string, args: A, rows: number, options: RunOptions = {}): void {
    if (this.closed) throw new Error('cpu pool is closed');
    if (rows <= 0) return;
    const kernel = getKernel(kernelId);
    const align = options.align ?? 1;
    const work = rows * (options.workPerRow ?? 1);
    const byWork = options.minWorkPerThread ? Math.floor(work / options.minWorkPerThread) : Infinity;
    const blocks = Math.ceil(rows / align);
    const threads = Math.max(1, Math.min(this.threads, options.maxThreads ?? Infinity, byWork, blocks));
    if (threads === 1 || this.busy) {
      kernel(args, 0, rows);
      return;
    }
    if (this.startupError !== undefined) {
      throw new Error(`cpu pool worker failed: ${this.startupError.message}`, { cause: this.startupError });
    }
    assertShared(args);
    const chunkTarget = threads * (options.chunksPerThread ?? 4);
    const chunkRows = Math.ceil(Math.ceil(rows / chunkTarget) / align) * align;
    const chunks = Math.ceil(rows / chunkRows);
    this.busy = true;
    try {
      this.dispatch(kernelId, kernel, args, rows, chunkRows, chunks, Math.min(threads, chunks) - 1);
    } finally {
      this.busy = false;
    }
  }

  /**
   * run(), or the kernel on this thread when an array argument is not in shared memory (for callers whose
   * arrays may come from anywhere: loaded, made by a caller, copied): the same rows either way.
   */
  runWhereShared<A extends KernelArgs>(kernelId: string, args: A, rows: number, options: RunOptions = {}): void {
    if (unsharedArg(args) !== undefined) getKernel(kernelId)(args, 0, rows);
    else this.run(kernelId, args, rows, options);
  }

  /** Terminates the workers (they never keep the process alive, so this is optional). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
  }

  private dispatch<A extends KernelArgs>(
    kernelId: string,
    kernel: (args: A, s: number, e: number) => void,
    args: A,
    rowEnd: number,
    chunkRows: number,
    chunks: number,
    helpers: number,
  ): void {
    const control = this.control;
    const n = this.workers.length;
    const seq = ++this.seq;
    Atomics.store(control, NEXT_CHUNK, 0);
    const posted: number[] = [];
    const job: JobMessage = { seq, kernel: kernelId, args, rowEnd, chunkRows, chunks };
    for (let i = 0; i < n && posted.length < helpers; i++) {
      if (Atomics.load(control, readyIndex(n, i)) === -1) continue;
      Atomics.store(control, seqIndex(n, i), seq);
      this.ports[i]!.postMessage(job);
      Atomics.store(control, stateIndex(i), POSTED);
      Atomics.notify(control, stateIndex(i), 1);
      posted.push(i);
    }
    let mainError: unknown;
    try {
      runChunks(control, chunks, chunkRows, rowEnd, (s, e) => kernel(args, s, e));
    } catch (e) {
      mainError = e;
      Atomics.store(control, NEXT_CHUNK, chunks); // let the workers stop early
    }
    for (const i of posted) this.finish(i);
    const workerError = this.collectWorkerErrors(posted, seq);
    if (mainError !== undefined) throw mainError;
    if (workerError !== undefined) throw workerError;
  }

  /** Cancels worker i if it never started the job, otherwise waits until it is IDLE again. */
  private finish(i: number): void {
    const control = this.control;
    const at = stateIndex(i);
    if (Atomics.compareExchange(control, at, POSTED, IDLE) === POSTED) return;
    for (let spin = 0; spin < this.spinIterations; spin++) {
      if (Atomics.load(control, at) === IDLE) return;
    }
    while (Atomics.load(control, at) === RUNNING) Atomics.wait(control, at, RUNNING, 100);
  }

  /** The first error of the posted workers (clearing every error flag), if any. */
  private collectWorkerErrors(posted: readonly number[], seq: number): Error | undefined {
    const n = this.workers.length;
    let first: Error | undefined;
    for (const i of posted) {
      const at = errorIndex(n, i);
      if (Atomics.load(this.control, at) === 0) {
        if (Atomics.load(this.control, readyIndex(n, i)) === -1) first ??= new Error(`cpu pool worker ${i} exited during a job`);
        continue;
      }
      Atomics.store(this.control, at, 0);
      let report: JobError | undefined;
      for (let m = receiveMessageOnPort(this.ports[i]!); m !== undefined; m = receiveMessageOnPort(this.ports[i]!)) {
        report = m.message as JobError;
        if (report.seq === seq) break;
      }
      if (first !== undefined) continue;
      first = new Error(`cpu pool worker ${i}: ${report?.message ?? 'kernel failed'}`);
      if (report?.stack !== undefined) first.stack = `${first.stack}\n--- in worker ---\n${report.stack}`;
    }
    return first;
  }

  private markExited(i: number): void {
    const n = this.workers.length;
    Atomics.store(this.control, readyIndex(n, i), -1);
  }
}

/** The name of the first array argument not in shared memory, if any. */
function unsharedArg(args: KernelArgs): string | undefined {
  for (const key in args) {
    const value = args[key];
    if (ArrayBuffer.isView(value) && !(value.buffer instanceof SharedArrayBuffer)) return key;
  }
  return undefined;
}

function assertShared(args: KernelArgs): void {
  const key = unsharedArg(args);
  if (key !== undefined) throw new TypeError(`kernel arg '${key}' is not backed by a SharedArrayBuffer (allocate it with src/tensor/shared.ts)`);
}
