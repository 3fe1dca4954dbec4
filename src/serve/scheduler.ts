/**
 * Who runs next: requests wait in a bounded FIFO queue and run one at a time on the model (one
 * sequence decodes at a time: continuous batching, several sequences in one step, is the next
 * step of issue #19). A full queue is refused at once, so a client can retry elsewhere.
 */
export class QueueFullError extends Error {}

export interface Scheduler {
  /** runs job when its turn comes; rejects with QueueFullError when maxQueue are already waiting. */
  run<R>(job: () => Promise<R>): Promise<R>;
  /** requests waiting (not counting the running one). */
  readonly waiting: number;
  readonly running: boolean;
  /** resolves when nothing runs or waits. */
  idle(): Promise<void>;
}

export function createScheduler(maxQueue: number): Scheduler {
  const queue: (() => void)[] = [];
  let running = false;
  let idleWaiters: (() => void)[] = [];
  const next = () => {
    const start = queue.shift();
    if (start !== undefined) {
      start();
      return;
    }
    running = false;
    for (const w of idleWaiters) w();
    idleWaiters = [];
  };
  return {
    run<R>(job: () => Promise<R>): Promise<R> {
      if (running && queue.length >= maxQueue) return Promise.reject(new QueueFullError(`${queue.length} requests are already waiting`));
      return new Promise<R>((resolve, reject) => {
        const start = () => {
          running = true;
          job().then(resolve, reject).finally(next);
        };
        if (running) queue.push(start);
        else start();
      });
    },
    get waiting() { return queue.length; },
    get running() { return running; },
    idle: () => (running ? new Promise<void>((r) => idleWaiters.push(r)) : Promise.resolve()),
  };
}
