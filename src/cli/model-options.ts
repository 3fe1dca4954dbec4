/**
 * The options every command that loads a model to run it takes the same way: `-m, --model <dir|id>`
 * and `--no-memory-check` (eval, generate, serve, chat).
 */
import { Option } from 'commander';
import type { GenerationConfig } from '../io/generation-config.js';
import { DEFAULT_MODEL_DIR } from './default-model.js';

export const modelDirOption = (): Option =>
  new Option('-m, --model <dir|id>', 'model directory (Hugging Face or intscale-quantized), or a Hub id org/name[@revision] (downloaded into the Hugging Face cache)').default(DEFAULT_MODEL_DIR);

export const memoryCheckOption = (): Option =>
  new Option('--no-memory-check', 'load even when the weights and KV cache look larger than the memory available');

/**
 * Temperature and top-p for generate and chat: the flags when given, else generation_config.json's
 * when it samples (do_sample), else greedy.
 */
export function samplingSettings(opts: { readonly temperature?: number; readonly topP?: number }, generation: GenerationConfig | null): { temperature: number; topP: number } {
  const sample = generation?.doSample === true;
  return {
    temperature: opts.temperature ?? (sample ? generation?.temperature ?? 1 : 0),
    topP: opts.topP ?? (sample ? generation?.topP ?? 1 : 1),
  };
}
