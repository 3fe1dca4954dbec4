/** `intscale generate`: stream a continuation (or a chat reply) and report tokens/s. */
import { incrementalDecoder } from '../../io/incremental-decode.js';
import * as fs from 'node:fs';
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import { generate } from '../../model/generate.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt, probability } from '../parse.js';
import { backendOption, openEngine, type BackendName, type OpenedEngine } from '../backend-option.js';
import { memoryCheckOption, modelDirOption, samplingSettings } from '../model-options.js';
import { offlineOption, resolveModelArg, tokenizerFileOption } from '../model-source.js';
import { endOfSequenceTokens } from '../../model/stream-text.js';
import { readTextFile } from '../text-file.js';

interface GenerateCliOptions {
  offline?: boolean; tokenizer?: string;
  model: string; prompt?: string; promptFile?: string; json?: boolean; memoryCheck: boolean; maxNewTokens: number; temperature?: number; topP?: number; seed: number; chat: boolean; stats: boolean; backend: BackendName;
}

export const generateCommand = new Command('generate')
  .description('generate text: greedy by default, or temperature/top-p sampling with a seed')
  .addOption(modelDirOption())
  .addOption(offlineOption())
  .addOption(tokenizerFileOption())
  .option('-p, --prompt <text>', 'the prompt (a user message when the model has a chat template); - reads it from stdin')
  .option('--prompt-file <file>', 'read the prompt from a UTF-8 file instead')
  .option('-n, --max-new-tokens <n>', 'tokens to generate at most', positiveInt, 64)
  .option('--temperature <t>', '0 = greedy (default: generation_config.json, else 0)', nonNegativeNumber)
  .option('--top-p <p>', 'nucleus sampling mass (default: generation_config.json, else 1)', probability)
  .option('--seed <n>', 'seed of the sampler', nonNegativeInt, 0)
  .option('--no-chat', 'do not apply the chat template even when the model has one')
  .option('--no-stats', 'do not print tokens/s at the end')
  .option('--json', 'print the continuation and its timings as one JSON object at the end (no streaming)')
  .addOption(memoryCheckOption())
  .addOption(backendOption())
  .action(async (opts: GenerateCliOptions) => {
    opts.model = (await resolveModelArg(opts.model, opts)).dir;
    const promptText = readPrompt(opts);
    // prompt tokens for the KV estimate: at most about one per 2 characters
    const cachePositions = opts.maxNewTokens + Math.ceil(promptText.length / 2);
    const opened = await openEngine(opts.backend, opts.model, { cachePositions, checkMemory: opts.memoryCheck });
    try {
      generateText(opts, promptText, opened);
      if (opts.stats && opened.summary()) process.stderr.write(`${opened.summary()}\n`);
    } finally {
      opened.close();
    }
  });

/** The prompt from -p TEXT, -p - (stdin) or --prompt-file FILE: exactly one of them. */
function readPrompt(opts: GenerateCliOptions): string {
  if ((opts.prompt === undefined) === (opts.promptFile === undefined)) {
    throw new InputError('give the prompt with exactly one of -p TEXT, -p - (read stdin) or --prompt-file FILE');
  }
  if (opts.promptFile !== undefined) return readTextFile(opts.promptFile);
  if (opts.prompt === '-') return fs.readFileSync(0, 'utf8').replace(/\r?\n$/, ''); // the newline that ends a piped line
  return opts.prompt!;
}

function generateText(opts: GenerateCliOptions, promptText: string, { engine, tokenizer, source }: OpenedEngine): void {
  if (tokenizer === null) throw new InputError(`${opts.model}: no tokenizer.json, cannot tokenize the prompt`, { file: opts.model });
  const useChat = opts.chat && tokenizer.hasChatTemplate;
  const prompt = useChat
    ? tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: promptText }], { addGenerationPrompt: true }), { addSpecialTokens: false })
    : tokenizer.encode(promptText);
  const { temperature, topP } = samplingSettings(opts, source.generation);
  const stopTokens = endOfSequenceTokens(engine.config, tokenizer, source.generation);
  const stream = opts.json !== true;
  if (!useChat && stream) process.stdout.write(promptText);
  const decoder = incrementalDecoder(tokenizer);
  const r = generate(engine, prompt, {
    maxNewTokens: opts.maxNewTokens, temperature, topP, seed: opts.seed, stopTokens,
    onToken: (t) => {
      const piece = decoder.push(t);
      if (stream) process.stdout.write(piece);
    },
  });
  const tail = decoder.finish();
  if (stream) process.stdout.write(tail);
  if (!stream) {
    console.log(JSON.stringify({
      prompt: promptText, chat: useChat, text: decoder.text(), tokens: r.tokens,
      prefillTokens: r.prefillTokens, prefillSeconds: r.prefillSeconds, decodeTokens: r.decodeTokens, decodeSeconds: r.decodeSeconds, stoppedBy: r.stoppedBy,
    }));
    return;
  }
  process.stdout.write('\n');
  if (opts.stats) {
    const rate = (n: number, s: number) => (s > 0 ? (n / s).toFixed(1) : '-');
    process.stderr.write(
      `prefill: ${r.prefillTokens} tokens in ${r.prefillSeconds.toFixed(3)} s (${rate(r.prefillTokens, r.prefillSeconds)} tok/s); ` +
      `decode: ${r.decodeTokens} tokens in ${r.decodeSeconds.toFixed(3)} s (${rate(r.decodeTokens, r.decodeSeconds)} tok/s); stopped by ${r.stoppedBy}\n`,
    );
  }
}
