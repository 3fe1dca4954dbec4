/**
 * One completion request run on the model: the prompt's tokens, sampling settings, and a stream
 * of text pieces cut at the first stop string (text a stop string could still begin is held back
 * until it is known not to). Stop token ids end the sequence without adding text.
 */
import type { GenerateResult, RunOptions } from '../model/generation-run.js';
import { incrementalDecoder } from '../io/incremental-decode.js';
import type { ModelTokenizer } from '../io/tokenizer.js';

export interface CompletionJob {
  readonly prompt: readonly number[];
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
  readonly seed: number;
  readonly stopStrings: readonly string[];
  /** the model's end-of-sequence tokens and the request's stop token ids. */
  readonly stopTokens: readonly number[];
  readonly signal: AbortSignal;
}

export type FinishReason = 'stop' | 'length';

export interface CompletionOutcome {
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly aborted: boolean;
  /** seconds from the start to the first token, and of the decode after it. */
  readonly firstTokenSeconds: number;
  readonly decodeSeconds: number;
}

/** Where a job's tokens come from: a generation stream (the server's batch generator, model/batch.ts). */
export type TokenStream = (prompt: readonly number[], options: RunOptions) => AsyncGenerator<number, GenerateResult>;

/** Runs job, calling onText with each piece of text as it becomes final; resolves with the outcome. */
export async function runCompletion(generate: TokenStream, tokenizer: ModelTokenizer, job: CompletionJob,
  onText: (piece: string) => void): Promise<CompletionOutcome> {
  const t0 = performance.now();
  let firstToken = 0;
  const decoder = incrementalDecoder(tokenizer);
  const holdBack = Math.max(0, ...job.stopStrings.map((s) => s.length - 1));
  let text = '';
  let sent = 0;
  let stoppedByString = false;
  let generated = 0;
  const stream = generate(job.prompt, {
    maxNewTokens: job.maxTokens, temperature: job.temperature, topP: job.topP, seed: job.seed,
    stopTokens: job.stopTokens, signal: job.signal,
  });
  let result: GenerateResult | undefined;
  for (;;) {
    const step = await stream.next();
    if (step.done) { result = step.value; break; }
    if (firstToken === 0) firstToken = performance.now();
    generated++;
    if (job.stopTokens.includes(step.value)) continue;
    text += decoder.push(step.value);
    const at = firstStop(text, job.stopStrings, Math.max(0, sent - holdBack));
    if (at >= 0) {
      text = text.slice(0, at);
      stoppedByString = true;
      await stream.return(undefined as never);
      break;
    }
    const ready = text.length - holdBack;
    if (ready > sent) {
      onText(text.slice(sent, ready));
      sent = ready;
    }
  }
  if (!stoppedByString) {
    text += decoder.finish(); // a character the last token left incomplete
    const at = firstStop(text, job.stopStrings, Math.max(0, sent - holdBack));
    if (at >= 0) {
      text = text.slice(0, at);
      stoppedByString = true;
    }
  }
  if (sent < text.length) onText(text.slice(sent));
  const finishReason: FinishReason = stoppedByString || result?.stoppedBy === 'stop-token' ? 'stop' : 'length';
  return {
    text, finishReason, promptTokens: job.prompt.length, completionTokens: generated,
    aborted: result?.stoppedBy === 'aborted', firstTokenSeconds: firstToken === 0 ? 0 : (firstToken - t0) / 1000,
    decodeSeconds: firstToken === 0 ? 0 : (performance.now() - firstToken) / 1000,
  };
}

function firstStop(text: string, stops: readonly string[], from: number): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s, from);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
