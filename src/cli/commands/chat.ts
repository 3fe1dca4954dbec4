/**
 * `intscale chat`: an interactive chat in the terminal on the model's chat template. The history is
 * kept (each turn sends the whole conversation), the answer streams as it is generated, Ctrl-C
 * stops the answer (not the program; at an empty prompt it exits, as do Ctrl-D, /exit and /quit),
 * /reset clears the history. Lines piped on stdin are read as turns, one per line.
 */
import * as readline from 'node:readline';
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import type { ChatMessage } from '../../io/tokenizer.js';
import { endOfSequenceTokens, streamText } from '../../model/stream-text.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt, probability } from '../parse.js';
import { backendOption, openEngine, type BackendName } from '../backend-option.js';
import { memoryCheckOption, modelDirOption, samplingSettings } from '../model-options.js';
import { offlineOption, resolveModelArg, tokenizerFileOption } from '../model-source.js';

interface ChatCliOptions {
  offline?: boolean; tokenizer?: string;
  model: string; system?: string; maxNewTokens: number; temperature?: number; topP?: number; seed: number; memoryCheck: boolean; backend: BackendName;
}

export const chatCommand = new Command('chat')
  .description('chat with the model in the terminal (its chat template; history kept; Ctrl-C stops an answer, /reset clears, /exit or Ctrl-D leaves)')
  .addOption(modelDirOption())
  .addOption(offlineOption())
  .addOption(tokenizerFileOption())
  .option('--system <text>', 'a system message that starts the conversation')
  .option('-n, --max-new-tokens <n>', 'tokens per answer at most', positiveInt, 256)
  .option('--temperature <t>', '0 = greedy (default: generation_config.json, else 0)', nonNegativeNumber)
  .option('--top-p <p>', 'nucleus sampling mass (default: generation_config.json, else 1)', probability)
  .option('--seed <n>', 'seed of the sampler (the n-th answer uses seed + n)', nonNegativeInt, 0)
  .addOption(memoryCheckOption())
  .addOption(backendOption())
  .action(async (opts: ChatCliOptions) => {
    opts.model = (await resolveModelArg(opts.model, opts)).dir;
    const opened = await openEngine(opts.backend, opts.model, { checkMemory: opts.memoryCheck });
    try {
      const { engine, tokenizer, source } = opened;
      if (tokenizer === null) throw new InputError(`${opts.model}: no tokenizer.json, cannot chat`, { file: opts.model });
      if (!tokenizer.hasChatTemplate) throw new InputError(`${opts.model}: the model has no chat template; use intscale generate for plain text`, { file: opts.model });
      const { temperature, topP } = samplingSettings(opts, source.generation);
      const stopTokens = endOfSequenceTokens(engine.config, tokenizer, source.generation);
      const start: ChatMessage[] = opts.system === undefined ? [] : [{ role: 'system', content: opts.system }];
      let history = [...start];
      const interactive = process.stdin.isTTY === true;
      const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
      let answering: AbortController | null = null;
      rl.on('SIGINT', () => {
        if (answering) answering.abort();
        else rl.close();
      });
      if (interactive) process.stderr.write(`chat with ${opts.model} (${opts.backend}); /reset clears the history, /exit or Ctrl-D leaves\n`);
      let turn = 0;
      if (interactive) rl.setPrompt('> ');
      const lines = rl[Symbol.asyncIterator]();
      const ask = async (): Promise<string | null> => {
        if (interactive) rl.prompt();
        const next = await lines.next();
        return next.done === true ? null : next.value;
      };
      for (let line = await ask(); line !== null; line = await ask()) {
        const text = line.trim();
        if (text === '') continue;
        if (text === '/exit' || text === '/quit') break;
        if (text === '/reset') {
          history = [...start];
          continue;
        }
        history.push({ role: 'user', content: text });
        answering = new AbortController();
        let answer = '';
        const maxNewTokens = Math.min(opts.maxNewTokens, engine.config.maxPositionEmbeddings - 1);
        try {
          const pieces = streamText(engine, tokenizer, history, { maxNewTokens, temperature, topP, seed: opts.seed + turn, stopTokens, signal: answering.signal });
          for await (const piece of pieces) {
            answer += piece;
            process.stdout.write(piece);
          }
        } catch (e) {
          if (e instanceof RangeError) throw new InputError(`the conversation no longer fits the model's context (${e.message}); /reset starts over`);
          throw e;
        }
        process.stdout.write(answering.signal.aborted ? ' [stopped]\n' : '\n');
        answering = null;
        history.push({ role: 'assistant', content: answer });
        turn++;
      }
      rl.close();
    } finally {
      opened.close();
    }
  });
