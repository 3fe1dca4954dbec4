/** `intscale eval`: perplexity of a text file under a model (float or quantized checkpoint). */
import { printTable } from '../table.js';
import { Command, Option } from 'commander';
import type { Backend } from '../../model/backend.js';
import { InputError } from '../../errors.js';
import { PERPLEXITY_PROTOCOLS, perplexity, type PerplexityProtocol } from '../../eval/perplexity.js';
import { loadModel } from '../../backends/load.js';
import { intAtLeast, positiveInt } from '../parse.js';
import { progressBar } from '../progress.js';
import { readTextFile } from '../text-file.js';
import { backendOption, openBackend, type BackendName } from '../backend-option.js';
import { memoryCheckOption, modelDirOption } from '../model-options.js';
import { offlineOption, resolveModelArg, tokenizerFileOption } from '../model-source.js';

export const evalCommand = new Command('eval')
  .description('perplexity of a text file: non-overlapping windows of --seq-len tokens, scored as GPTQ/AWQ do (default) or as llama-perplexity does')
  .addOption(modelDirOption())
  .addOption(offlineOption())
  .addOption(tokenizerFileOption())
  .requiredOption('-t, --text <file>', 'UTF-8 text file, e.g. ../shared/data/wikitext-2/test.txt')
  .option('--seq-len <n>', 'tokens per window, ≥ 2 (capped at the model context)', intAtLeast(2), 2048)
  .option('--max-windows <n>', 'evaluate only the first n windows (quick runs)', positiveInt)
  .addOption(new Option('--protocol <name>', 'gptq: every position but the last scored; llama.cpp: BOS first in each window, its second half scored (llama-perplexity -c SEQ_LEN)')
    .choices([...PERPLEXITY_PROTOCOLS]).default('gptq'))
  .option('--json', 'print the result as JSON')
  .addOption(memoryCheckOption())
  .addOption(backendOption())
  .action(async (opts: EvalCliOptions) => {
    opts.model = (await resolveModelArg(opts.model, opts)).dir;
    const text = readTextFile(opts.text);
    const opened = await openBackend(opts.backend);
    try {
      evaluate(opts, text, opened.backend);
      if (!opts.json && opened.summary()) process.stderr.write(`${opened.summary()}\n`);
    } finally {
      opened.close();
    }
  });

interface EvalCliOptions { model: string; offline?: boolean; tokenizer?: string; text: string; seqLen: number; maxWindows?: number; protocol: PerplexityProtocol; json?: boolean; memoryCheck: boolean; backend: BackendName }

function evaluate(opts: EvalCliOptions, text: string, backend: Backend<unknown>): void {
  const { model, tokenizer } = loadModel(opts.model, { backend, cachePositions: opts.seqLen, checkMemory: opts.memoryCheck });
  if (tokenizer === null) throw new InputError(`${opts.model}: no tokenizer.json, cannot tokenize the text`, { file: opts.model });
  const seqLen = Math.min(opts.seqLen, model.config.maxPositionEmbeddings);
  if (seqLen < opts.seqLen) process.stderr.write(`note: --seq-len ${opts.seqLen} capped at the model's context, ${seqLen}\n`);
  const tokens = tokenizer.encode(text);
  const windows = Math.min(Math.floor(tokens.length / seqLen), opts.maxWindows ?? Infinity);
  const bar = progressBar('windows', windows);
  const r = perplexity(model, tokens, { seqLen, protocol: opts.protocol, bos: tokenizer.bosTokenId, maxWindows: opts.maxWindows, onWindow: (d) => bar.update(d) });
  bar.stop();
  const row = { model: opts.model, text: opts.text, protocol: opts.protocol, seqLen, windows: r.windows, tokens: r.tokensPredicted, perplexity: r.perplexity, seconds: r.seconds };
  if (opts.json) {
    console.log(JSON.stringify(row));
    return;
  }
  printTable([{ ...row, perplexity: Number(r.perplexity.toFixed(4)), seconds: Number(r.seconds.toFixed(1)) }]);
}
