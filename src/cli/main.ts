#!/usr/bin/env node
/** `intscale <command>`: the command-line entry. Bad input prints its message and exits 2. */
import { Command } from 'commander';
import { InputError } from '../errors.js';
import { evalCommand } from './commands/eval.js';
import { generateCommand } from './commands/generate.js';
import { quantizeCommand } from './commands/quantize.js';
import { demoCommand } from './commands/demo.js';
import { benchCommand } from './commands/bench.js';
import { inspectCommand } from './commands/inspect.js';

const program = new Command('intscale')
  .description('Integer Scale fine-grained quantization (W4A8, integer group scales) for LLaMA-family models')
  .showHelpAfterError()
  .addCommand(evalCommand)
  .addCommand(generateCommand)
  .addCommand(quantizeCommand)
  .addCommand(demoCommand)
  .addCommand(inspectCommand)
  .addCommand(benchCommand);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof InputError || e instanceof RangeError) {
    process.stderr.write(`intscale: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
