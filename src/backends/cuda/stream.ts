/**
 * A context's one stream and its events: stream order (synchronize), timing events, and the
 * observer of stream work.
 *
 * Stream work (launches, device-to-device copies, and whatever a caller passes to onStream) can be
 * observed: while a StreamObserver is set (observeWith), each item is handed to it as a function
 * that issues it, just before it is issued. The CUDA backend's pass tape observes a pass's work to
 * record it for replay as a CUDA graph (pass-tape.ts).
 */
import type { DriverApi } from './driver.js';

/** Sees each item of stream work just before it is issued (`issue` issues it again when called). */
export interface StreamObserver {
  issuing(issue: () => void): void;
}

export class CudaStream {
  /** the CUstream. */
  readonly handle: bigint;
  private observer: StreamObserver | null = null;

  /** A non-blocking stream on the current context. */
  constructor(private readonly api: DriverApi) {
    const stream = new BigUint64Array(1);
    api.check('cuStreamCreate', api.fn.cuStreamCreate!(stream, 1 /* CU_STREAM_NON_BLOCKING */) as number);
    this.handle = stream[0]!;
  }

  synchronize(): void {
    this.api.check('cuStreamSynchronize', this.api.fn.cuStreamSynchronize!(this.handle) as number);
  }

  /** Issues stream work now, after showing it to the observer when one is set. */
  onStream(issue: () => void): void {
    this.observer?.issuing(issue);
    issue();
  }

  /** Stream work from now on is shown to `observer` before it is issued (null: to none). */
  observeWith(observer: StreamObserver | null): void {
    this.observer = observer;
  }

  /** Whether an observer is set (work issued now must be able to issue again later). */
  get observed(): boolean {
    return this.observer !== null;
  }

  createEvent(): bigint {
    const e = new BigUint64Array(1);
    this.api.check('cuEventCreate', this.api.fn.cuEventCreate!(e, 0) as number);
    return e[0]!;
  }

  /** Records `ev` on this stream. */
  record(ev: bigint): void {
    this.api.check('cuEventRecord', this.api.fn.cuEventRecord!(ev, this.handle) as number);
  }

  /** Milliseconds between two recorded events (waits for the second). */
  elapsedMs(start: bigint, end: bigint): number {
    this.api.check('cuEventSynchronize', this.api.fn.cuEventSynchronize!(end) as number);
    const ms = new Float32Array(1);
    this.api.check('cuEventElapsedTime', this.api.fn.cuEventElapsedTime!(ms, start, end) as number);
    return ms[0]!;
  }

  destroyEvent(ev: bigint): void {
    this.api.check('cuEventDestroy', this.api.fn.cuEventDestroy!(ev) as number);
  }

  /** Destroys the stream (synchronize first). */
  destroy(): void {
    this.api.check('cuStreamDestroy', this.api.fn.cuStreamDestroy!(this.handle) as number);
  }
}
