/**
 * Where `-m` points: a local model directory, a GGUF file or a llama2.c checkpoint (`.bin`, with
 * --tokenizer or the tokenizer.bin beside it), each converted once into intscale's cache (io/gguf.ts,
 * io/llama2c.ts), or a Hugging Face Hub id (`org/name[@revision]`) fetched into the Hugging Face cache
 * first (io/hub.ts), with a progress bar per large file on stderr. A local path that exists wins
 * over a Hub id of the same spelling, as in transformers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option } from 'commander';
import { InputError } from '../errors.js';
import { ggufModelDir } from '../io/gguf.js';
import { llama2cModelDir } from '../io/llama2c.js';
import { parseHubId, resolveHubModel, type HubProgress } from '../io/hub.js';
import { progressBar, type Progress } from './progress.js';

export const tokenizerFileOption = (): Option =>
  new Option('--tokenizer <file>', "a llama2.c checkpoint's tokenizer.bin (default: tokenizer.bin beside it)");

export const offlineOption = (): Option =>
  new Option('--offline', 'read a Hub id (org/name[@revision]) from the Hugging Face cache only, downloading nothing (also HF_HUB_OFFLINE=1)');

/** Files smaller than this download without a bar. */
const BAR_BYTES = 8 << 20;

/** A bar per large file, in MB: the callback for resolveHubModel's onProgress. */
function downloadBars(): { onProgress: (p: HubProgress) => void; stop: () => void } {
  let file = '';
  let bar: Progress | null = null;
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  return {
    onProgress(p) {
      if (p.file !== file) {
        stop();
        file = p.file;
        if (p.totalBytes >= BAR_BYTES) bar = progressBar(`${p.file} (MB)`, Math.ceil(p.totalBytes / 1e6));
      }
      bar?.update(Math.floor(p.bytes / 1e6));
    },
    stop,
  };
}

/** The model directory `-m` names, fetching a Hub id first; `name` is what to call the model (the Hub id, or the directory's name). */
/** A bar over a conversion's tensors (a GGUF or llama2.c file into intscale's cache). */
function conversionBar(label: string): { onProgress: (done: number, total: number) => void; stop: () => void } {
  let bar: Progress | null = null;
  return {
    onProgress(done, total) {
      bar ??= progressBar(label, total);
      bar.update(done);
    },
    stop: () => bar?.stop(),
  };
}

export async function resolveModelArg(arg: string, opts: { readonly offline?: boolean; readonly tokenizer?: string } = {}): Promise<{ dir: string; name: string }> {
  const onNote = (line: string) => process.stderr.write(`${line}\n`);
  if (arg.endsWith('.gguf') || arg.endsWith('.bin')) {
    const bar = conversionBar(`converting ${path.basename(arg)} (tensors)`);
    try {
      if (arg.endsWith('.gguf')) return { dir: await ggufModelDir(arg, { onNote, onProgress: bar.onProgress }), name: path.basename(arg, '.gguf') };
      const tokenizer = opts.tokenizer ?? path.join(path.dirname(arg), 'tokenizer.bin');
      return { dir: await llama2cModelDir(arg, tokenizer, { onNote, onProgress: bar.onProgress }), name: path.basename(arg, '.bin') };
    } finally {
      bar.stop();
    }
  }
  const id = fs.existsSync(arg) ? null : parseHubId(arg);
  if (id === null) return { dir: arg, name: path.basename(path.resolve(arg)) };
  const bars = downloadBars();
  try {
    const dir = await resolveHubModel(id, { ...(opts.offline ? { offline: true } : {}), onProgress: bars.onProgress });
    return { dir, name: id.repo };
  } catch (e) {
    // a mistyped local path reads as a Hub id too: say that it was looked for on disk first
    if (e instanceof InputError) throw new InputError(`${arg}: no such local directory, and as a Hugging Face Hub id: ${e.message}`, { file: arg });
    throw e;
  } finally {
    bars.stop();
  }
}
