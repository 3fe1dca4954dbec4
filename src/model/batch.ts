/**
 * Continuous batching: generations started at any time decode together. One loop owns every
 * running sequence; each turn it feeds the runs that just joined their prompts and every other run
 * its last token: where the engine packs sequences' rows into shared passes (SequenceEngine.feedBatch,
 * the CUDA engine) all in one call, so joiners ride along the decode step instead of costing a pass
 * each; elsewhere each joiner alone, then one decode step of the others (SequenceEngine.decodeBatch:
 * on the CPU one M = rows matmul per linear). Where the engine picks tokens on its device (feedPicked) every call
 * goes through it, so the logits stay there and only the tokens come back. Runs leave when they
 * stop, are aborted, or their consumer stops reading. Between turns the loop yields to the event
 * loop, so a server keeps answering. A run's tokens are exactly those it gets alone (decodeBatch's
 * contract; tested).
 */
import type { Sequence, SequenceEngine } from './engine.js';
import { GenerationRun, openFor, stepRun, type GenerateResult, type RunOptions } from './generation-run.js';

export interface BatchGenerator {
  /**
   * One generation, decoded in the shared batch: `for await (const token of stream)`, its return
   * value the GenerateResult. A consumer that stops early (break, return) ends the run at the next turn.
   */
  stream(prompt: readonly number[], options: RunOptions): AsyncGenerator<number, GenerateResult>;
  /** generations running now. */
  readonly running: number;
}

/** A run in the batch and its consumer's mailbox. */
interface Entry {
  readonly run: GenerationRun;
  readonly sequence: Sequence;
  readonly ready: number[];
  wake: (() => void) | null;
  /** set when the entry left the batch: its result, or why it failed. */
  outcome: { result: GenerateResult } | { error: unknown } | null;
  /** the consumer stopped reading. */
  cancelled: boolean;
}

export function createBatchGenerator(engine: SequenceEngine): BatchGenerator {
  const entries = new Set<Entry>();
  let looping = false;

  const notify = (e: Entry): void => {
    const wake = e.wake;
    e.wake = null;
    wake?.();
  };
  const leave = (e: Entry, outcome: NonNullable<Entry['outcome']>): void => {
    entries.delete(e);
    e.sequence.release();
    e.outcome = outcome;
    notify(e);
  };
  const deliver = (e: Entry, token: number | null): void => {
    if (token !== null) e.ready.push(token);
    notify(e);
  };

  /**
   * One engine call feeding inputs[r] to entries[r]; returns how each then takes its next token: picked where the logits
   * are where the engine can (feedPicked), else from the logits `feed` returns. A call the engine refuses throws before
   * anything runs, and each run keeps its pick.
   */
  const feedAll = (entries: readonly Entry[], inputs: readonly (readonly number[])[], feed: (sequences: Sequence[]) => Float32Array[]): ((e: Entry, r: number) => number | null) => {
    const sequences = entries.map((e) => e.sequence);
    if (engine.feedPicked !== undefined) {
      // only the tokens come back
      const picked = engine.feedPicked(sequences, inputs, entries.map((e) => e.run.pick()));
      return (e, r) => e.run.acceptPicked(picked[r]!);
    }
    const logits = feed(sequences);
    return (e, r) => e.run.accept(logits[r]!);
  };

  /** Each joiner's prompt fed alone, then one decode step of the rest (a failure leaves only its runs). */
  const feedApart = (joining: readonly Entry[], decoding: readonly Entry[]): void => {
    for (const e of joining) {
      try {
        deliver(e, stepRun(engine, e.run, e.run.input()!));
      } catch (error) {
        leave(e, { error });
      }
    }
    if (decoding.length === 0) return;
    const inputs = decoding.map((e) => e.run.input()!);
    try {
      const accept = feedAll(decoding, inputs, (sequences) => engine.decodeBatch(sequences, inputs.map((t) => t[0]!)));
      decoding.forEach((e, r) => deliver(e, accept(e, r)));
    } catch (error) {
      for (const e of decoding) leave(e, { error });
    }
  };

  /** One turn: joiners prefilled and everyone else one decode step; finished runs leave. */
  const turn = (): void => {
    const joining: Entry[] = [];
    const decoding: Entry[] = [];
    for (const e of [...entries]) {
      if (e.cancelled) e.run.abort();
      if (e.run.input() === null) leave(e, { result: e.run.result! });
      else (e.run.prefilled ? decoding : joining).push(e);
    }
    if (joining.length === 0 || (engine.feedBatch === undefined && engine.feedPicked === undefined)) {
      feedApart(joining, decoding);
      return;
    }
    const all = [...joining, ...decoding];
    const inputs = all.map((e) => e.run.input()!);
    let accept: (e: Entry, r: number) => number | null;
    try {
      accept = feedAll(all, inputs, (sequences) => engine.feedBatch!(sequences, inputs));
    } catch {
      // the engine refuses before anything runs: apart, only the run at fault fails (each run keeps its pick)
      feedApart(joining, decoding);
      return;
    }
    all.forEach((e, r) => {
      try {
        deliver(e, accept(e, r));
      } catch (error) {
        leave(e, { error });
      }
    });
  };

  const loop = async (): Promise<void> => {
    looping = true;
    try {
      while (entries.size > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        turn();
      }
    } finally {
      looping = false;
    }
  };

  return {
    get running() {
      return entries.size;
    },
    async *stream(prompt, options) {
      const sequence = openFor(engine, prompt, options.maxNewTokens);
      const e: Entry = { run: new GenerationRun(sequence, prompt, options), sequence, ready: [], wake: null, outcome: null, cancelled: false };
      entries.add(e);
      if (!looping) void loop();
      try {
        for (;;) {
          if (e.ready.length > 0) {
            yield e.ready.shift()!;
            continue;
          }
          if (e.outcome !== null) {
            if ('error' in e.outcome) throw e.outcome.error;
            return e.outcome.result;
          }
          await new Promise<void>((resolve) => (e.wake = resolve));
        }
      } finally {
        if (e.outcome === null) e.cancelled = true; // the loop lets it leave (and frees its sequence) at the next turn
      }
    },
  };
}

