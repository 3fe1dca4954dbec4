/**
 * Models converted from another format (GGUF, llama2.c) into a Hugging Face directory once, kept
 * in intscale's cache ($INTSCALE_CACHE, else $XDG_CACHE_HOME/intscale, else ~/.cache/intscale):
 * one directory per source, named after it and keyed by the sources' paths, sizes and modification
 * times, so a changed file is converted again. A conversion writes into a temporary directory
 * renamed into place when complete: a failed or interrupted one leaves nothing that looks done.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { createSafetensorsWriter, type TensorToWrite } from './safetensors.js';

/** How a conversion reports and where it goes. */
export interface ConversionOptions {
  /** where the converted directory goes (default intscaleCacheDir()/<kind>). */
  readonly cacheDir?: string;
  /** a line for the user (what was converted, and what that means). */
  readonly onNote?: (line: string) => void;
  /** tensors converted so far, of the total. */
  readonly onProgress?: (done: number, total: number) => void;
}

export function intscaleCacheDir(): string {
  return process.env.INTSCALE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'intscale');
}

/** The converted directory of `sources` (the first names it), made by `convert(tmpDir)` unless already there. */
export async function convertOnce(sources: readonly string[], kind: string, convert: (dir: string) => Promise<void> | void, cacheDir?: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of sources) {
    if (!fs.existsSync(file)) throw new InputError(`${file}: file not found`, { file });
    const stat = fs.statSync(file);
    hash.update(`${path.resolve(file)}\0${stat.size}\0${stat.mtimeMs}\0`);
  }
  const name = path.basename(sources[0]!).replace(/\.[^.]*$/, '');
  const dir = path.join(cacheDir ?? path.join(intscaleCacheDir(), kind), `${name}-${hash.digest('hex').slice(0, 16)}`);
  if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await convert(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return dir;
}

/** config.json, tokenizer.json, tokenizer_config.json and generation_config.json of a converted model. */
export function writeModelFiles(dir: string, config: Record<string, unknown>, tokenizer: unknown, tokenizerConfig: Record<string, unknown>): void {
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id }, null, 2) + '\n');
}

/**
 * Writes `out`/model.safetensors from tensors that `body` reads from the open source file (its fd)
 * and passes to `write`, one at a time (`onProgress` after each); the file appears only when all were written.
 */
export function convertTensors(source: string, out: string, tensorCount: number, body: (fd: number, write: (t: TensorToWrite) => void) => void,
  onProgress?: (done: number, total: number) => void): void {
  const fd = fs.openSync(source, 'r');
  const writer = createSafetensorsWriter(path.join(out, 'model.safetensors'), 128 * (tensorCount + 8));
  let done = 0;
  try {
    body(fd, (t) => {
      writer.write(t);
      onProgress?.(++done, tensorCount);
    });
    writer.finish({ format: 'pt', source: `converted by intscale from ${path.basename(source)}` });
  } catch (e) {
    writer.abort();
    throw e;
  } finally {
    fs.closeSync(fd);
  }
}
