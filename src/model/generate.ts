/**
 * Text generation: one batched prefill of the prompt, then token-by-token decode through the
 * KV cache, each new token handed to onToken as it is chosen (generate) or yielded by an async
 * stream that can be aborted (generateStream); on an engine that picks on its device (feedPicked) every token
 * comes from there, the prompt's first and each decode step's, greedy or sampled, without the logits. Reports
 * prefill and decode speed. The rules of a run (sampling, stop tokens, limits) are generation-run.ts's, shared with
 * batched generation (batch.ts).
 */
import type { Model } from './forward.js';
import { asEngine, type SequenceEngine } from './engine.js';
import { GenerationRun, openFor, stepRun, type GenerateResult, type RunOptions } from './generation-run.js';

export type { GenerateResult } from './generation-run.js';

export interface GenerateOptions extends Omit<RunOptions, 'signal'> {
  readonly onToken?: (token: number) => void;
}

export type StreamOptions = RunOptions;

/**
 * Generates synchronously, calling onToken with each token as it is chosen. `runner`: a Model (its
 * forward pass on its backend) or a SequenceEngine (engine.ts).
 */
export function generate<T>(runner: Model<T> | SequenceEngine, prompt: readonly number[], options: GenerateOptions): GenerateResult {
  const engine = asEngine(runner);
  const sequence = openFor(engine, prompt, options.maxNewTokens);
  try {
    const run = new GenerationRun(sequence, prompt, options);
    for (let input = run.input(); input !== null; input = run.input()) {
      const token = stepRun(engine, run, input);
      if (token !== null) options.onToken?.(token);
    }
    return run.result!;
  } finally {
    sequence.release();
  }
}

/**
 * The same generation as an async stream of tokens: `for await (const token of stream)`; the
 * stream's return value (from `.next()` when done) is the GenerateResult. Between steps it yields
 * to the event loop, so a server keeps answering while a sequence decodes, and it checks `signal`.
 */
export async function* generateStream<T>(runner: Model<T> | SequenceEngine, prompt: readonly number[], options: StreamOptions): AsyncGenerator<number, GenerateResult> {
  const engine = asEngine(runner);
  const sequence = openFor(engine, prompt, options.maxNewTokens);
  try {
    const run = new GenerationRun(sequence, prompt, options);
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const input = run.input();
      if (input === null) return run.result!;
      const token = stepRun(engine, run, input);
      if (token !== null) yield token;
    }
  } finally {
    sequence.release();
  }
}
