/**
 * Worker entry of the CPU pool. Loop: spin briefly, then Atomics.wait on this worker's state
 * word; when the main thread has POSTED a job, claim it (POSTED → RUNNING), take the job
 * message from the port synchronously (receiveMessageOnPort), run chunks of rows until none
 * are left, report an error on the port if the kernel threw, and go back to IDLE + notify.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { adoptArenaMemory } from '../../../tensor/shared.js';
import { getKernel } from './registry.js';
import { setThreadSlot } from './thread-slot.js';
import './kernels.js';
import {
  IDLE,
  POSTED,
  RUNNING,
  errorIndex,
  readyIndex,
  runChunks,
  seqIndex,
  stateIndex,
  type JobError,
  type JobMessage,
  type WorkerInit,
} from './protocol.js';

const init = workerData as WorkerInit;
const { control, index, workers, port, spinIterations, memory } = init;
if (memory !== null) adoptArenaMemory(memory);
setThreadSlot(index + 1);
const stateAt = stateIndex(index);
const seqAt = seqIndex(workers, index);
const errorAt = errorIndex(workers, index);
const readyAt = readyIndex(workers, index);

process.on('exit', () => {
  Atomics.store(control, readyAt, -1);
  Atomics.store(control, stateAt, IDLE);
  Atomics.notify(control, stateAt);
});

/** Reads messages until the one for job seq (older ones belong to jobs cancelled before they started). */
function takeJob(seq: number): JobMessage {
  for (;;) {
    const received = receiveMessageOnPort(port);
    if (received === undefined) continue; // posted before the state store; cannot stay empty
    const job = received.message as JobMessage;
    if (job.seq === seq) return job;
  }
}

function runJob(job: JobMessage): void {
  const kernel = getKernel(job.kernel);
  const args = job.args as Parameters<typeof kernel>[0];
  runChunks(control, job.chunks, job.chunkRows, job.rowEnd, (start, end) => kernel(args, start, end));
}

function waitForPost(): void {
  for (let i = 0; i < spinIterations; i++) {
    if (Atomics.load(control, stateAt) !== IDLE) return;
  }
  while (Atomics.load(control, stateAt) === IDLE) Atomics.wait(control, stateAt, IDLE);
}

Atomics.store(control, readyAt, 1);
for (;;) {
  waitForPost();
  if (Atomics.compareExchange(control, stateAt, POSTED, RUNNING) !== POSTED) continue;
  const seq = Atomics.load(control, seqAt);
  try {
    runJob(takeJob(seq));
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const report: JobError = { seq, message: err.message, stack: err.stack };
    port.postMessage(report);
    Atomics.store(control, errorAt, 1);
  }
  Atomics.store(control, stateAt, IDLE);
  Atomics.notify(control, stateAt);
}
