/**
 * Whole-pass replay (pass-tape.ts) without a GPU: the graph runtime is a fake that records what a
 * capture issues and runs it on launch, the arena a counter. A pass equal to the last one returns
 * the recorded outputs without running its ops and launches one graph (captured once); a pass that
 * differs part-way issues the matched ops' work once, in order, puts the arena back and records
 * from there; a new memory generation, a host round trip, a different final read or a pass left
 * open are handled; a capture that fails falls back to issuing, and errors in the work surface.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPassTape, type GraphRuntime } from '../../../src/backends/cuda/pass-tape.js';

function fakeGpu(failCapture = false) {
  const ran: string[] = [];
  const graphs = new Map<number, string[]>();
  const destroyed: number[] = [];
  let capturing: string[] | null = null;
  let next = 1;
  const runtime: GraphRuntime<number> = {
    capture(issue) {
      capturing = [];
      try {
        issue();
      } finally {
        graphs.set(next, capturing);
        capturing = null;
      }
      if (failCapture) throw new Error('cannot capture');
      return next++;
    },
    launch: (g) => ran.push(...graphs.get(g)!),
    destroy: (g) => destroyed.push(g),
  };
  let arenaAt = 0;
  const arena = { mark: () => arenaAt, restore: (m: number) => { arenaAt = m; } };
  const tape = createPassTape(runtime, arena);
  /** What CudaContext.onStream does: show the item to the observing tape, then issue it. */
  const onStream = (issue: () => void): void => {
    tape.issuing(issue);
    issue();
  };
  /** An op: allocates one arena slot (its output), issues `work` on the stream, counts its host runs. */
  const hostRuns: string[] = [];
  const op = (name: string, args: unknown[], work = [`${name}-kernel`]): number =>
    tape.step([name, ...args], () => {
      hostRuns.push(name);
      for (const w of work) onStream(() => (capturing ? capturing.push(w) : ran.push(w)));
      return arenaAt++;
    });
  return { ran, graphs, destroyed, tape, op, onStream, hostRuns, arena: { get at() { return arenaAt; }, reset: () => { arenaAt = 0; } } };
}

/** A pass of three ops at generation 0; `third` varies the last op's argument. */
function pass(g: ReturnType<typeof fakeGpu>, third = 1, generation = 0): number[] {
  g.arena.reset();
  g.tape.startPass(generation, 0);
  const outs = [g.op('norm', [7]), g.op('linear', [7, 'W']), g.op('rope', [third])];
  g.tape.endPass(['download', outs[2]], generation);
  return outs;
}

test('pass tape: the second equal pass returns the recorded outputs, runs no op, and launches one captured graph; the third reuses it', () => {
  const g = fakeGpu();
  assert.deepEqual(pass(g), [0, 1, 2]);
  assert.deepEqual(g.ran, ['norm-kernel', 'linear-kernel', 'rope-kernel']);
  assert.deepEqual(g.hostRuns, ['norm', 'linear', 'rope']);
  assert.deepEqual(pass(g), [0, 1, 2]);
  assert.deepEqual(pass(g), [0, 1, 2]);
  assert.deepEqual(g.hostRuns, ['norm', 'linear', 'rope'], 'replayed passes run no op');
  assert.deepEqual(g.ran.slice(3), ['norm-kernel', 'linear-kernel', 'rope-kernel', 'norm-kernel', 'linear-kernel', 'rope-kernel']);
  assert.equal(g.graphs.size, 1, 'captured once');
  assert.deepEqual(g.tape.stats(), { recorded: 1, replayed: 2, diverged: 0, captureFailures: 0 });
});

test('pass tape: a pass that differs part-way issues the matched work once, puts the arena back after it, and records from there', () => {
  const g = fakeGpu();
  pass(g);
  const outs = pass(g, 2);
  assert.deepEqual(outs, [0, 1, 2], 'the differing op allocates where the recorded one did');
  assert.deepEqual(g.hostRuns, ['norm', 'linear', 'rope', 'rope'], 'only the differing op ran again on the host');
  assert.deepEqual(g.ran.slice(3), ['norm-kernel', 'linear-kernel', 'rope-kernel'], 'matched work issued once, in order, then the new op');
  assert.deepEqual(g.tape.stats(), { recorded: 2, replayed: 0, diverged: 1, captureFailures: 0 });
  pass(g, 2);
  assert.equal(g.tape.stats().replayed, 1, 'the new pass is the one kept');
  pass(g, 1);
  assert.equal(g.tape.stats().diverged, 2);
});

test('pass tape: a new memory generation, a host round trip or a different final read is recorded, not replayed', () => {
  const g = fakeGpu();
  pass(g, 1, 0);
  pass(g, 1, 1);
  assert.equal(g.tape.stats().replayed, 0, 'memory was freed since the recording');

  g.arena.reset();
  g.tape.startPass(1, 0);
  g.op('linear', [7, 'W']);
  g.tape.hostRoundTrip();
  g.tape.endPass(['download', 0], 1);
  g.arena.reset();
  g.tape.startPass(1, 0);
  g.op('linear', [7, 'W']);
  g.tape.endPass(['download', 0], 1);
  assert.equal(g.tape.stats().replayed, 0, 'a pass that computed on the host is not replayed');

  const h = fakeGpu();
  pass(h);
  h.arena.reset();
  h.tape.startPass(0, 0);
  for (const [name, args] of [['norm', [7]], ['linear', [7, 'W']], ['rope', [1]]] as const) h.op(name, [...args]);
  h.tape.endPass(['download', 0], 0);
  assert.deepEqual(h.tape.stats(), { recorded: 2, replayed: 0, diverged: 1, captureFailures: 0 });
  assert.equal(h.ran.length, 6, 'the matched ops\' work was issued once');

  const freedDuring = fakeGpu();
  freedDuring.tape.startPass(0, 0);
  freedDuring.op('norm', [7]);
  freedDuring.tape.endPass(['download', 0], 1);
  freedDuring.tape.startPass(0, 0);
  freedDuring.op('norm', [7]);
  freedDuring.tape.endPass(['download', 0], 0);
  assert.equal(freedDuring.tape.stats().replayed, 0, 'memory freed during the recording: not replayable');
});

test('pass tape: a pass left open issues its matched work when the next begins; outside passes ops run at once', () => {
  const g = fakeGpu();
  pass(g);
  g.arena.reset();
  g.tape.startPass(0, 0);
  g.op('norm', [7]);
  assert.equal(g.ran.length, 3, 'replaying: nothing issued yet');
  pass(g, 5);
  assert.deepEqual(g.ran.slice(3), ['norm-kernel', 'norm-kernel', 'linear-kernel', 'rope-kernel']);
  g.op('add', [1]);
  assert.equal(g.ran.at(-1), 'add-kernel', 'idle: the op ran and issued at once');
});

test('pass tape: a graph that cannot be captured is issued item by item; an error in the work is thrown; dispose destroys the graph', () => {
  const g = fakeGpu(true);
  pass(g);
  pass(g);
  assert.deepEqual(g.ran.slice(3), ['norm-kernel', 'linear-kernel', 'rope-kernel']);
  assert.equal(g.tape.stats().captureFailures, 1);

  const h = fakeGpu();
  h.tape.startPass(0, 0);
  assert.throws(() => h.tape.step(['bad'], () => h.onStream(() => { throw new Error('cuLaunchKernel failed: invalid argument'); })), /invalid argument/,
    'the context issues recorded work at once: its error surfaces at the op');

  const d = fakeGpu();
  pass(d);
  pass(d);
  d.tape.dispose();
  assert.deepEqual(d.destroyed, [1]);
});

test('pass tape: ops after a replayed pass (outside it: a mixture of experts reads its routing mid-layer) allocate after its tensors, as after the recorded one', () => {
  const g = fakeGpu();
  pass(g);
  const afterRecorded = g.op('gather', [1]);
  assert.equal(afterRecorded, 3, 'after the recorded pass: the next slot');
  pass(g);
  assert.equal(g.tape.stats().replayed, 1);
  assert.equal(g.op('gather', [1]), 3, 'after the replayed pass: the same slot, not one of the pass\'s own');
});
