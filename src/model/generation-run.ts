/**
 * One sequence's generation as a state machine, so that a loop over one (generate.ts) and a loop
 * over many decoded together (batch.ts) drive the same rules: input() is what to feed next (the
 * prompt, then each new token; null once the run stopped or was aborted), accept(logits) samples
 * the next token from the logits of what was fed and decides whether the run goes on; or pick() gives how the next
 * token is to be picked (its sampling options and its generator's draw) to an engine that picks where the logits are,
 * and acceptPicked(token) takes the token it picked.
 */
import type { Sequence, SequenceEngine } from './engine.js';
import { pickToken, seededRandom, type SamplingOptions, type TokenPick } from './sampling.js';

export interface RunOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  readonly seed: number;
  /** generation stops after any of these tokens (it is included in the output). */
  readonly stopTokens: readonly number[];
  /** aborting it ends the run before its next step (the result says stoppedBy 'aborted'). */
  readonly signal?: AbortSignal;
}

export interface GenerateResult {
  readonly tokens: number[];
  readonly prefillTokens: number;
  readonly prefillSeconds: number;
  readonly decodeTokens: number;
  readonly decodeSeconds: number;
  readonly stoppedBy: 'stop-token' | 'max-new-tokens' | 'context-full' | 'aborted';
}

/** Checks the prompt against the context and opens a sequence with the capacity the run needs. */
export function openFor(engine: SequenceEngine, prompt: readonly number[], maxNewTokens: number): Sequence {
  if (prompt.length === 0) throw new RangeError('the prompt is empty: give at least one token');
  const capacity = Math.min(engine.config.maxPositionEmbeddings, prompt.length + maxNewTokens);
  if (prompt.length >= capacity && maxNewTokens > 0) {
    throw new RangeError(`the prompt has ${prompt.length} tokens; the model's context is ${engine.config.maxPositionEmbeddings}`);
  }
  return engine.open(capacity);
}

/**
 * One step of a run alone: feeds its input (the prompt, or its last token) and takes the next token, picked where the
 * logits are when the engine can (feedPicked; the same token: its contract), else from the logits.
 */
export function stepRun(engine: SequenceEngine, run: GenerationRun, input: readonly number[]): number | null {
  if (engine.feedPicked !== undefined) return run.acceptPicked(engine.feedPicked([run.sequence], [input], [run.pick()])[0]!);
  return run.accept(run.sequence.feed(input));
}

export class GenerationRun {
  readonly tokens: number[] = [];
  private readonly random: () => number;
  private pending: readonly number[];
  /** this step's pick once pick() gave it, until its token is taken (so a step that failed to run keeps its draw). */
  private stepPick: TokenPick | null = null;
  private stoppedBy: GenerateResult['stoppedBy'] | null = null;
  private readonly started = performance.now();
  /** when the prefill's logits came back (0: not yet). */
  private prefilledAt = 0;
  private prefillSeconds = 0;
  private stoppedAt = 0;

  constructor(readonly sequence: Sequence, readonly prompt: readonly number[], private readonly options: RunOptions) {
    this.random = seededRandom(options.seed);
    this.pending = prompt;
  }

  get prefilled(): boolean {
    return this.prefilledAt > 0;
  }

  /** The tokens to feed next, or null when the run has stopped (an aborted signal stops it here). */
  input(): readonly number[] | null {
    if (this.stoppedBy === null && this.options.signal?.aborted) this.stop('aborted');
    return this.stoppedBy === null ? this.pending : null;
  }

  /** The logits of the last position fed: samples the next token and returns it (null when the run ends without one). */
  accept(logits: Float32Array): number | null {
    const token = this.take(() => pickToken(logits, this.pick()));
    this.stepPick = null;
    return token;
  }

  /**
   * How this step's token is to be picked where the logits are (SequenceEngine.feedPicked): the run's sampling options
   * and the draw accept(logits) would take from its generator (sampling runs only; the generator moves on as it would
   * there). The same pick until the step's token is taken (acceptPicked, or accept from logits if the engine's call
   * failed), so each token takes one draw whichever way it is picked.
   */
  pick(): TokenPick {
    if (this.stepPick === null) {
      const { temperature, topP } = this.options;
      this.stepPick = { temperature, topP, draw: temperature > 0 ? this.random() : 0 }; // sampleToken's rule: greedy takes no draw
    }
    return this.stepPick;
  }

  /** The token picked by pick()'s rule from the logits of the last position fed: what accept(those logits) would take. */
  acceptPicked(token: number): number | null {
    if (this.stepPick === null) throw new Error('acceptPicked: no pick was given for this step (call pick() before the engine picks)');
    this.stepPick = null;
    return this.take(() => token);
  }

  private take(pick: () => number): number | null {
    if (!this.prefilled) {
      this.prefilledAt = performance.now();
      this.prefillSeconds = (this.prefilledAt - this.started) / 1000;
    }
    const { maxNewTokens, stopTokens } = this.options;
    if (this.tokens.length >= maxNewTokens) {
      this.stop('max-new-tokens');
      return null;
    }
    const next = pick();
    this.tokens.push(next);
    if (stopTokens.includes(next)) this.stop('stop-token');
    else if (this.tokens.length === maxNewTokens) this.stop('max-new-tokens');
    else if (this.sequence.length >= this.sequence.capacity) this.stop('context-full');
    else this.pending = [next];
    return next;
  }

  /** Ends the run now as aborted (its consumer went away); no effect once it stopped. */
  abort(): void {
    if (this.stoppedBy === null) this.stop('aborted');
  }

  private stop(reason: GenerateResult['stoppedBy']): void {
    this.stoppedBy = reason;
    this.stoppedAt = performance.now();
  }

  /** How the run ended, with its timings (null while it runs). */
  get result(): GenerateResult | null {
    if (this.stoppedBy === null) return null;
    const decodeFrom = this.prefilled ? this.prefilledAt : this.stoppedAt;
    return {
      tokens: this.tokens, prefillTokens: this.prompt.length, prefillSeconds: this.prefillSeconds,
      decodeTokens: Math.max(0, this.tokens.length - 1), decodeSeconds: (this.stoppedAt - decodeFrom) / 1000, stoppedBy: this.stoppedBy,
    };
  }
}
