/** A UTF-8 text file named on the command line (a text to evaluate, a prompt, calibration text). */
import * as fs from 'node:fs';
import { InputError } from '../errors.js';

export function readTextFile(file: string): string {
  if (!fs.existsSync(file)) throw new InputError(`${file}: text file not found`, { file });
  if (fs.statSync(file).isDirectory()) throw new InputError(`${file}: is a directory, expected a UTF-8 text file`, { file });
  return fs.readFileSync(file, 'utf8');
}
