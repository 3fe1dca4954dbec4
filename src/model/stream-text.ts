/**
 * The library's streaming text API: `for await (const piece of streamText(model, tokenizer, prompt, options))`
 * yields the continuation as text, piece by piece as it becomes final (io/incremental-decode.ts:
 * a character split across tokens comes out whole), and returns the GenerateResult. Abort with
 * options.signal. A prompt given as chat messages goes through the model's chat template.
 */
import { incrementalDecoder } from '../io/incremental-decode.js';
import type { ChatMessage, ModelTokenizer } from '../io/tokenizer.js';
import type { GenerationConfig } from '../io/generation-config.js';
import type { ModelConfig } from './config.js';
import type { SequenceEngine } from './engine.js';
import type { Model } from './forward.js';
import { generateStream, type GenerateResult, type StreamOptions } from './generate.js';

export interface StreamTextOptions extends Omit<StreamOptions, 'stopTokens'> {
  /** generation stops after these tokens (default: the model's and the tokenizer's end-of-sequence tokens); their text is not yielded. */
  readonly stopTokens?: readonly number[];
}

/** The tokens that end a generation: the model's, generation_config.json's (when given) and the tokenizer's end-of-sequence ids. */
export function endOfSequenceTokens(config: ModelConfig, tokenizer: ModelTokenizer, generation: GenerationConfig | null = null): number[] {
  return [...new Set([...config.eosTokenIds, ...(generation?.eosTokenIds ?? []), ...(tokenizer.eosTokenId === null ? [] : [tokenizer.eosTokenId])])];
}

/** The prompt's tokens: text as is, chat messages through the model's chat template (an Error when it has none). */
export function promptTokens(tokenizer: ModelTokenizer, prompt: string | readonly ChatMessage[]): number[] {
  if (typeof prompt === 'string') return tokenizer.encode(prompt);
  if (!tokenizer.hasChatTemplate) throw new Error('this model has no chat template: give the prompt as text');
  return tokenizer.encode(tokenizer.applyChatTemplate(prompt, { addGenerationPrompt: true }), { addSpecialTokens: false });
}

export async function* streamText<T>(runner: Model<T> | SequenceEngine, tokenizer: ModelTokenizer, prompt: string | readonly ChatMessage[],
  options: StreamTextOptions): AsyncGenerator<string, GenerateResult> {
  const stopTokens = options.stopTokens ?? endOfSequenceTokens(runner.config, tokenizer);
  const decoder = incrementalDecoder(tokenizer);
  const tokens = generateStream(runner, promptTokens(tokenizer, prompt), { ...options, stopTokens });
  for (;;) {
    const step = await tokens.next();
    if (step.done) {
      const tail = decoder.finish();
      if (tail !== '') yield tail;
      return step.value;
    }
    if (stopTokens.includes(step.value)) continue;
    const piece = decoder.push(step.value);
    if (piece !== '') yield piece;
  }
}
