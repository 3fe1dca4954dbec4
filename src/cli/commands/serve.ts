/** `intscale serve`: the model behind an OpenAI-compatible HTTP API (src/serve/server.ts). */
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import { createServer } from '../../serve/server.js';
import { intAtLeast, nonNegativeInt } from '../parse.js';
import { backendOption, openEngine, type BackendName } from '../backend-option.js';
import { memoryCheckOption, modelDirOption } from '../model-options.js';
import { offlineOption, resolveModelArg, tokenizerFileOption } from '../model-source.js';

interface ServeCliOptions {
  offline?: boolean; tokenizer?: string;
  model: string; host: string; port: number; maxQueue: number; maxBatch: number; apiKey?: string; modelId?: string; memoryCheck: boolean; backend: BackendName;
}

export const serveCommand = new Command('serve')
  .description('serve the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health); up to --max-batch requests decode together (continuous batching), others queue')
  .addOption(modelDirOption())
  .addOption(offlineOption())
  .addOption(tokenizerFileOption())
  .option('--host <address>', 'address to listen on (0.0.0.0 exposes it to the network)', '127.0.0.1')
  .option('--port <n>', 'TCP port (0 = any free port)', nonNegativeInt, 8080)
  .option('--max-batch <n>', 'requests decoded together: each decode step feeds one token of each (continuous batching)', intAtLeast(1), 8)
  .option('--max-queue <n>', 'requests that may wait while --max-batch run; more are refused with 429', intAtLeast(0), 16)
  .option('--api-key <key>', 'require Authorization: Bearer <key> on /v1 (default: $INTSCALE_API_KEY, else none)')
  .option('--model-id <name>', "the model's name in the API (default: the Hub id, or the directory's base name)")
  .addOption(memoryCheckOption())
  .addOption(backendOption())
  .action(async (opts: ServeCliOptions) => {
    const source = await resolveModelArg(opts.model, opts);
    opts.model = source.dir;
    const opened = await openEngine(opts.backend, opts.model, { checkMemory: opts.memoryCheck }, { maxSequences: opts.maxBatch });
    const loaded = { model: opened.engine, tokenizer: opened.tokenizer, source: opened.source };
    if (loaded.tokenizer === null) throw new InputError(`${opts.model}: no tokenizer.json, the server cannot read prompts`, { file: opts.model });
    const modelId = opts.modelId ?? source.name;
    const apiKey = opts.apiKey ?? process.env['INTSCALE_API_KEY'];
    const { app } = createServer(loaded, {
      modelId, maxQueue: opts.maxQueue, maxBatch: opts.maxBatch, ...(apiKey ? { apiKey } : {}),
      log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
    });
    let address: string;
    try {
      address = await app.listen({ host: opts.host, port: opts.port });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new InputError(`cannot listen on ${opts.host}:${opts.port}: ${code === 'EADDRINUSE' ? 'the port is in use (choose another with --port)' : (e as Error).message}`);
    }
    process.stderr.write(`serving "${modelId}" (${opts.backend}) at ${address}/v1${apiKey ? ', API key required' : ''}; Ctrl-C stops\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${signal}: no new requests; finishing the running ones\n`);
      void app.close().then(() => {
        opened.close();
        process.exit(0);
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
