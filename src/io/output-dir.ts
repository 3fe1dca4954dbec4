/**
 * The directory a checkpoint is written into, checked (and created) before any work, so that a
 * long quantization is never thrown away at the end: it must not be the source model's directory,
 * must be a directory (not a file), empty unless overwriting, and writable. Missing directories are
 * made one component at a time (recursive mkdir loops forever under /proc on Linux), each failure
 * an InputError naming the path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';

export interface OutputDirOptions {
  /** the directory read from, which must not be overwritten. */
  readonly sourceDir: string;
  /** allow a directory that already holds files (its checkpoint is replaced). */
  readonly overwrite: boolean;
}

/** Makes outDir ready to receive a checkpoint, or throws an InputError saying why it cannot. */
export function prepareOutputDir(outDir: string, options: OutputDirOptions): void {
  if (path.resolve(outDir) === path.resolve(options.sourceDir)) {
    throw new InputError(`${outDir}: the output directory is the source model's directory`, { file: outDir });
  }
  const stat = statOrNull(outDir);
  if (stat !== null && !stat.isDirectory()) {
    throw new InputError(`${outDir}: exists and is not a directory; choose a directory for the checkpoint`, { file: outDir });
  }
  if (stat !== null && fs.readdirSync(outDir).length > 0 && !options.overwrite) {
    throw new InputError(`${outDir}: output directory is not empty (pass --overwrite to replace its checkpoint)`, { file: outDir });
  }
  if (stat === null) makeDirectories(outDir);
  const probe = path.join(outDir, `.intscale-write-test-${process.pid}`);
  try {
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new InputError(`${outDir}: cannot write into the output directory (${(e as Error).message})`, { file: outDir });
  }
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

/** mkdir of every missing component of dir, from its nearest existing ancestor down. */
function makeDirectories(dir: string): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (statOrNull(at) === null) {
    missing.unshift(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  const ancestor = statOrNull(at);
  if (ancestor !== null && !ancestor.isDirectory()) {
    throw new InputError(`${dir}: cannot create the output directory: ${at} is a file`, { file: dir });
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      throw new InputError(`${dir}: cannot create the output directory (${(e as Error).message})`, { file: dir });
    }
  }
}
