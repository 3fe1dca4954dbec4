/**
 * The command line of every bench script: node's parseArgs, strict, plus `--help` / `-h`, which
 * prints the script's header comment (its usage, written once at the top of each script) and exits 0.
 * An unknown option, a missing value or a stray argument prints one line naming it, then points at
 * --help, and exits 1 (the CLI's code for bad arguments), so a mistyped flag never runs a benchmark
 * on its defaults. Beside it, the value parsers the scripts share (positive integers, lists of them,
 * KxN shapes), each a BenchArgumentError naming its flag; a script's own checks of its values throw one too, and
 * benchArgs makes any that escapes print one line naming the problem and exit 1, as a parse error does.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A bad value of a bench script's option (a RangeError): printed as one line, exit code 1 (benchArgs). */
export class BenchArgumentError extends RangeError {
  override name = 'BenchArgumentError';
}

/** Installs, once, the handler that prints an escaped BenchArgumentError as one line and exits 1; any other error prints as Node would (its stack) and exits 1. */
let argumentHandler = false;
function handleArgumentErrors(name: string): void {
  if (argumentHandler) return;
  argumentHandler = true;
  process.on('uncaughtException', (e) => {
    if (e instanceof BenchArgumentError) process.stderr.write(`${name}: ${e.message}\n(${name} --help lists the options)\n`);
    else process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}

/** The first block comment of a script's source, its ` * ` margins removed. */
export function headerComment(source: string): string {
  const m = /\/\*\*?([\s\S]*?)\*\//.exec(source);
  if (m === null) return '';
  return m[1]!
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim();
}

/**
 * parseArgs(config) for the script at `scriptUrl` (its import.meta.url) on this process's arguments,
 * or `argv` where given (tests).
 */
export function benchArgs<T extends ParseArgsConfig>(scriptUrl: string, config: T, argv: string[] = process.argv.slice(2)): ReturnType<typeof parseArgs<T>> {
  const script = fileURLToPath(scriptUrl);
  const name = script.replace(/^.*[\\/]/, '');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${headerComment(fs.readFileSync(script, 'utf8'))}\n`);
    process.exit(0);
  }
  handleArgumentErrors(name);
  try {
    return parseArgs({ ...config, args: argv, strict: true }) as ReturnType<typeof parseArgs<T>>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw e;
    process.stderr.write(`${name}: ${(e as Error).message.split('\n')[0]}\n(${name} --help lists the options)\n`);
    process.exit(1);
  }
}

const isPositiveInt = (n: number): boolean => Number.isInteger(n) && n >= 1;

/** `--flag 1,16,128` as positive integers; anything else is a BenchArgumentError naming the flag. */
export function positiveInts(flag: string, text: string): number[] {
  return text.split(',').map((s) => {
    const n = Number(s);
    if (!isPositiveInt(n)) throw new BenchArgumentError(`--${flag} takes positive integers separated by commas; got '${text}'`);
    return n;
  });
}

/** `--flag a,b,…` as exactly `names.length` positive integers (named in the message); anything else is a BenchArgumentError. */
export function positiveIntTuple(flag: string, text: string, names: readonly string[]): number[] {
  const values = text.split(',').map(Number);
  if (values.length !== names.length || !values.every(isPositiveInt)) throw new BenchArgumentError(`--${flag} takes ${names.length} positive integers ${names.join(',')}; got '${text}'`);
  return values;
}

/** `--flag N` as one positive integer; anything else (a list included) is a BenchArgumentError naming the flag. */
export function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!isPositiveInt(n)) throw new BenchArgumentError(`--${flag} takes a positive integer; got '${text}'`);
  return n;
}

/** `--flag N` as one integer ≥ 0 (a seed, an index, a count that may be none); anything else is a BenchArgumentError naming the flag. */
export function nonNegativeInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new BenchArgumentError(`--${flag} takes an integer of 0 or more; got '${text}'`);
  return n;
}

/** `--flag X` as one finite number > 0 (seconds, a factor); anything else is a BenchArgumentError naming the flag. */
export function positiveNumber(flag: string, text: string): number {
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0)) throw new BenchArgumentError(`--${flag} takes a number above 0; got '${text}'`);
  return n;
}

/** `--flag KxN,KxN` as [K, N] pairs of positive integers; anything else is a BenchArgumentError naming the flag. */
export function shapeList(flag: string, text: string): [K: number, N: number][] {
  return text.split(',').map((s) => {
    const kn = s.split('x').map(Number);
    if (kn.length !== 2 || !kn.every(isPositiveInt)) throw new BenchArgumentError(`--${flag} takes KxN shapes separated by commas (4096x4096); got '${text}'`);
    return kn as [number, number];
  });
}
