/**
 * Who runs: up to `maxRunning` requests run at once (they decode together in the batch generator,
 * model/batch.ts); more wait in a bounded FIFO queue, and a request that finds the queue full is
 * refused at once, so a client can retry elsewhere.
 */
export class QueueFullError extends Error {}

export interface Scheduler {
  /** runs job when a place is free; rejects with QueueFullError when maxQueue are already waiting. */
  run<R>(job: () => Promise<R>): Promise<R>;
  /** requests waiting for a place. */
  readonly waiting: number;
  /** requests running. */
  readonly running: number;
  /** whether a new request would be refused now. */
  readonly full: boolean;
  /** resolves when nothing runs or waits. */
  idle(): Promise<void>;
}

export function createScheduler(maxQueue: number, maxRunning = 1): Scheduler {
  if (!Number.isInteger(maxRunning) || maxRunning < 1) throw new RangeError(`maxRunning must be a positive integer, got ${maxRunning}`);
  const queue: (() => void)[] = [];
  let running = 0;
  let idleWaiters: (() => void)[] = [];
  const next = () => {
    running--;
    const start = queue.shift();
    if (start !== undefined) {
      start();
      return;
    }
    if (running > 0) return;
    for (const w of idleWaiters) w();
    idleWaiters = [];
  };
  const full = () => running >= maxRunning && queue.length >= maxQueue;
  return {
    run<R>(job: () => Promise<R>): Promise<R> {
      if (full()) return Promise.reject(new QueueFullError(`${running} requests are running and ${queue.length} waiting`));
      return new Promise<R>((resolve, reject) => {
        const start = () => {
          running++;
          job().then(resolve, reject).finally(next);
        };
        if (running < maxRunning) start();
        else queue.push(start);
      });
    },
    get waiting() { return queue.length; },
    get running() { return running; },
    get full() { return full(); },
    idle: () => (running > 0 ? new Promise<void>((r) => idleWaiters.push(r)) : Promise.resolve()),
  };
}
