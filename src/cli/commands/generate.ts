/** `intscale generate`: stream a continuation (or a chat reply) and report tokens/s. */
import { Command } from 'commander';
import type { Backend } from '../../backends/backend.js';
import { InputError } from '../../errors.js';
import { generate } from '../../model/generate.js';
import { loadModel } from '../../model/load.js';
import { DEFAULT_MODEL_DIR } from '../default-model.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt, probability } from '../parse.js';
import { backendOption, openBackend, type BackendName } from '../backend-option.js';

interface GenerateCliOptions {
  model: string; prompt: string; maxNewTokens: number; temperature?: number; topP?: number; seed: number; chat: boolean; stats: boolean; backend: BackendName;
}

export const generateCommand = new Command('generate')
  .description('generate text: greedy by default, or temperature/top-p sampling with a seed')
  .option('-m, --model <dir>', 'model directory (Hugging Face or intscale-quantized)', DEFAULT_MODEL_DIR)
  .requiredOption('-p, --prompt <text>', 'the prompt (a user message when the model has a chat template)')
  .option('-n, --max-new-tokens <n>', 'tokens to generate at most', positiveInt, 64)
  .option('--temperature <t>', '0 = greedy (default: generation_config.json, else 0)', nonNegativeNumber)
  .option('--top-p <p>', 'nucleus sampling mass (default: generation_config.json, else 1)', probability)
  .option('--seed <n>', 'seed of the sampler', nonNegativeInt, 0)
  .option('--no-chat', 'do not apply the chat template even when the model has one')
  .option('--no-stats', 'do not print tokens/s at the end')
  .addOption(backendOption())
  .action(async (opts: GenerateCliOptions) => {
    const opened = await openBackend(opts.backend);
    try {
      generateText(opts, opened.backend);
      if (opts.stats && opened.summary()) process.stderr.write(`${opened.summary()}\n`);
    } finally {
      opened.close();
    }
  });

function generateText(opts: GenerateCliOptions, backend: Backend<unknown>): void {
  const { model, tokenizer, source } = loadModel(opts.model, { backend });
  if (tokenizer === null) throw new InputError(`${opts.model}: no tokenizer.json, cannot tokenize the prompt`, { file: opts.model });
  const useChat = opts.chat && tokenizer.hasChatTemplate;
  const prompt = useChat
    ? tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: opts.prompt }], { addGenerationPrompt: true }), { addSpecialTokens: false })
    : tokenizer.encode(opts.prompt);
  const gen = source.generation;
  const sampleByDefault = gen?.doSample === true;
  const temperature = opts.temperature ?? (sampleByDefault ? gen?.temperature ?? 1 : 0);
  const topP = opts.topP ?? (sampleByDefault ? gen?.topP ?? 1 : 1);
  const stopTokens = [...new Set([...(gen?.eosTokenIds ?? []), ...model.config.eosTokenIds, ...(tokenizer.eosTokenId === null ? [] : [tokenizer.eosTokenId])])];
  if (!useChat) process.stdout.write(opts.prompt);
  // decode the whole continuation each time and print what is new, so multi-byte characters split over tokens print whole
  const produced: number[] = [];
  let printed = '';
  const r = generate(model, prompt, {
    maxNewTokens: opts.maxNewTokens, temperature, topP, seed: opts.seed, stopTokens,
    onToken: (t) => {
      produced.push(t);
      const text = tokenizer.decode(produced, { skipSpecialTokens: true });
      if (text.startsWith(printed) && !text.endsWith('\uFFFD')) {
        process.stdout.write(text.slice(printed.length));
        printed = text;
      }
    },
  });
  process.stdout.write('\n');
  if (opts.stats) {
    const rate = (n: number, s: number) => (s > 0 ? (n / s).toFixed(1) : '-');
    process.stderr.write(
      `prefill: ${r.prefillTokens} tokens in ${r.prefillSeconds.toFixed(3)} s (${rate(r.prefillTokens, r.prefillSeconds)} tok/s); ` +
      `decode: ${r.decodeTokens} tokens in ${r.decodeSeconds.toFixed(3)} s (${rate(r.decodeTokens, r.decodeSeconds)} tok/s); stopped by ${r.stoppedBy}\n`,
    );
  }
}
