/**
 * This thread's slot in the pool: 0 on the main thread, 1 + its index in a worker (set by
 * worker.ts at start-up). Kernels that need per-thread scratch in shared memory index it by slot,
 * the main thread allocating `threads` slots before a run.
 */
let slot = 0;

export function threadSlot(): number {
  return slot;
}

/** Called once by a pool worker. */
export function setThreadSlot(value: number): void {
  slot = value;
}
