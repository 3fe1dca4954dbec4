/**
 * The options every command that loads a model to run it takes the same way: `-m, --model <dir>`
 * and `--no-memory-check` (eval, generate, serve).
 */
import { Option } from 'commander';
import { DEFAULT_MODEL_DIR } from './default-model.js';

export const modelDirOption = (): Option =>
  new Option('-m, --model <dir>', 'model directory (Hugging Face or intscale-quantized)').default(DEFAULT_MODEL_DIR);

export const memoryCheckOption = (): Option =>
  new Option('--no-memory-check', 'load even when the weights and KV cache look larger than the memory available');
