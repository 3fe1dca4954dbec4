#!/usr/bin/env node
/**
 * `intscale <command>`: the command-line entry. Exit codes: 1 for bad arguments (commander prints the
 * usage), 2 for bad input or a failed run: its message on one line (a file-system error names the path).
 */
import { Command } from 'commander';
import { InputError } from '../errors.js';
import { TOOL_VERSION } from '../version.js';
import { positiveInt } from './parse.js';
import { evalCommand } from './commands/eval.js';
import { generateCommand } from './commands/generate.js';
import { quantizeCommand } from './commands/quantize.js';
import { demoCommand } from './commands/demo.js';
import { benchCommand } from './commands/bench.js';
import { inspectCommand } from './commands/inspect.js';
import { serveCommand } from './commands/serve.js';
import { chatCommand } from './commands/chat.js';

const program = new Command('intscale')
  .description('Integer Scale fine-grained quantization (W4A8, integer group scales) for LLaMA-family models')
  .version(TOOL_VERSION)
  .option('--threads <n>', 'CPU threads for the kernels (default: every core; same as INTSCALE_THREADS)', positiveInt)
  .hook('preAction', (root) => {
    const threads = (root.opts() as { threads?: number }).threads;
    if (threads !== undefined) process.env['INTSCALE_THREADS'] = String(threads); // read when the CPU pool starts
  })
  .showHelpAfterError()
  .addHelpText('after', '\nExit codes: 0 done; 1 bad arguments (usage printed); 2 bad input or a failed run (one line on stderr).')
  .addCommand(evalCommand)
  .addCommand(generateCommand)
  .addCommand(chatCommand)
  .addCommand(quantizeCommand)
  .addCommand(demoCommand)
  .addCommand(serveCommand)
  .addCommand(inspectCommand)
  .addCommand(benchCommand);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof InputError || e instanceof RangeError) {
    process.stderr.write(`intscale: ${e.message}\n`);
    process.exit(2);
  }
  const fsError = e as NodeJS.ErrnoException;
  if (typeof fsError?.code === 'string' && typeof fsError.path === 'string') {
    // a file-system error the checks above did not foresee: one line naming the path, no stack
    process.stderr.write(`intscale: ${fsError.path}: ${fsError.code} (${fsError.message})\n`);
    process.exit(2);
  }
  throw e;
}
