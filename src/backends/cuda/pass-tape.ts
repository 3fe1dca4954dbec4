/**
 * Whole-pass replay: a decode step runs the same ops on the same tensors every time, only the
 * token and the position change (the backend uploads the one and writes the other to device memory
 * before the pass's kernels read them). Issuing its ~550 launches costs milliseconds of host time
 * (argument packing, kernel lookup, the FFI call), more than the GPU needs for the step, so a pass
 * that repeats the last one is replayed instead, in the spirit of tinygrad's TinyJit:
 *
 *   record   each op runs and is recorded (its arguments, its output tensor, the stream work it
 *            issued, where the arena stood after it); the context issues the work at once, as
 *            without a tape, and shows each item to the tape first (StreamObserver)
 *   replay   the next pass starts in the same memory: each op's arguments are compared with the
 *            recorded op's and, when equal, the op returns the recorded output without running;
 *            when the pass ends (it reads the host) the recorded work is launched as one CUDA graph
 *            (captured at the first replay)
 *   diverge  an op differs: the recorded work of the ops matched so far is issued, the arena goes
 *            back to where it stood after them, and the pass goes on recording from there
 *
 * Ops compare their arguments by identity (tensors by address, weights and caches as objects). A
 * pass replays only in the memory generation it was recorded in (no device buffer freed since its
 * start), and never when it computed on the host between ops. Outside passes ops run directly,
 * allocating after the pass's tensors (replayed or not: the arena stands where the recorded pass left it).
 */
import type { StreamObserver } from './stream.js';

/** What replay needs from the GPU; cudaGraphRuntime (graphs.ts) is the real one. */
export interface GraphRuntime<G = bigint> {
  /** An instantiated graph of the stream work `issue` issues (captured, not run); throws when it cannot be captured. */
  capture(issue: () => void): G;
  launch(graph: G): void;
  destroy(graph: G): void;
}

export interface PassReplayStats {
  /** passes recorded: their work issued op by op. */
  readonly recorded: number;
  /** passes replayed: launched as one graph, their ops not run. */
  readonly replayed: number;
  /** recorded passes that had matched the last pass for some ops, then differed. */
  readonly diverged: number;
  readonly captureFailures: number;
}

export interface PassTape<M> extends StreamObserver {
  /** A pass begins in memory generation `generation`, the arena at `mark`. */
  startPass(generation: number, mark: M): void;
  /** One op: the recorded output when replaying and `args` equal the recorded op's, else run() (recorded). */
  step<R>(args: readonly unknown[], run: () => R): R;
  /** The pass computes on the host between ops: it will not be replayed. */
  hostRoundTrip(): void;
  /** The pass ends reading the host (`args` name the read): its device work is issued before this returns. */
  endPass(args: readonly unknown[], generation: number): void;
  stats(): PassReplayStats;
  /** Issues the work a pass left open had matched, and destroys the graph. */
  dispose(): void;
}

interface RecordedOp<M> {
  readonly args: readonly unknown[];
  readonly out: unknown;
  /** stream items issued by this op and the ones before it. */
  readonly items: number;
  readonly mark: M;
}

interface Tape<M, G> {
  readonly generation: number;
  readonly ops: RecordedOp<M>[];
  readonly items: (() => void)[];
  replayable: boolean;
  end: readonly unknown[] | null;
  graph: G | null;
  captureFailed: boolean;
}

const sameArgs = (a: readonly unknown[], b: readonly unknown[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

export function createPassTape<M, G>(runtime: GraphRuntime<G>, arena: { mark(): M; restore(m: M): void }): PassTape<M> {
  let mode: 'idle' | 'record' | 'replay' = 'idle';
  let last: Tape<M, G> | null = null; // the last complete pass
  let cur: Tape<M, G> | null = null; // the pass being recorded
  let replayAt = 0; // replay: the next op of `last` to match
  let passMark: M | null = null;
  const stats = { recorded: 0, replayed: 0, diverged: 0, captureFailures: 0 };

  const record = (generation: number, ops: RecordedOp<M>[], items: (() => void)[]): void => {
    cur = { generation, ops, items, replayable: true, end: null, graph: null, captureFailed: false };
    mode = 'record';
  };

  /**
   * Replay → record, keeping the matched prefix of `last` (its work issued now) and, unless the
   * pass is over, putting the arena back where it stood after that prefix.
   */
  const diverge = (restoreArena = true): void => {
    const t = last!;
    const n = replayAt;
    if (n > 0) stats.diverged++;
    if (restoreArena) arena.restore(n > 0 ? t.ops[n - 1]!.mark : passMark!);
    record(t.generation, t.ops.slice(0, n), t.items.slice(0, n > 0 ? t.ops[n - 1]!.items : 0));
    for (const issue of cur!.items) issue();
  };

  const launch = (t: Tape<M, G>): void => {
    const issueAll = (): void => {
      for (const issue of t.items) issue();
    };
    if (t.graph === null && !t.captureFailed) {
      try {
        t.graph = runtime.capture(issueAll);
      } catch {
        t.captureFailed = true;
        stats.captureFailures++;
      }
    }
    if (t.graph !== null) runtime.launch(t.graph);
    else issueAll(); // an error in the work itself is thrown here, outside any capture
  };

  const keep = (t: Tape<M, G>): void => {
    if (last && last !== t && last.graph !== null) runtime.destroy(last.graph);
    last = t;
  };

  return {
    startPass(generation, mark) {
      if (mode === 'replay') diverge(false); // the previous pass never read the host: issue what it matched
      passMark = mark;
      if (last !== null && last.replayable && last.end !== null && last.generation === generation) {
        mode = 'replay';
        replayAt = 0;
      } else {
        record(generation, [], []);
      }
    },
    step(args, run) {
      if (mode === 'idle') return run();
      if (mode === 'replay') {
        const op = last!.ops[replayAt];
        if (op !== undefined && sameArgs(op.args, args)) {
          replayAt++;
          return op.out as ReturnType<typeof run>;
        }
        diverge();
      }
      const out = run();
      cur!.ops.push({ args, out, items: cur!.items.length, mark: arena.mark() });
      return out;
    },
    issuing(issue) {
      if (mode === 'replay') diverge(); // work outside any op: this pass is not the recorded one
      if (mode === 'record') cur!.items.push(issue);
    },
    hostRoundTrip() {
      if (mode === 'replay') diverge();
      if (mode === 'record') cur!.replayable = false;
    },
    endPass(args, generation) {
      if (mode === 'replay') {
        const t = last!;
        if (replayAt === t.ops.length && sameArgs(t.end!, args)) {
          launch(t);
          // ops after the read (outside any pass: a mixture of experts routes on the host mid-layer) allocate
          // past the replayed pass's tensors, as they did after the recorded one
          arena.restore(t.ops.length > 0 ? t.ops[t.ops.length - 1]!.mark : passMark!);
          stats.replayed++;
          mode = 'idle';
          return;
        }
        diverge();
      }
      if (mode === 'record') {
        const t = cur!;
        t.end = args;
        if (t.generation !== generation) t.replayable = false; // memory it used was freed during the pass
        stats.recorded++;
        keep(t);
        cur = null;
        mode = 'idle';
      }
    },
    stats: () => ({ ...stats }),
    dispose() {
      if (mode === 'replay') diverge(false);
      mode = 'idle';
      if (last?.graph != null) runtime.destroy(last.graph);
      last = null;
      cur = null;
    },
  };
}
