/** What every CPU benchmark shares: the median, and a line describing the machine it ran on. */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { printTable, type Row } from '../src/cli/table.js';

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** CPU model, cores, Node version, threads used and the load average (other processes skew timings). */
/** `sorted[floor(q·n)]` of samples sorted ascending. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

export function machineLine(threads: number): string {
  return `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores; node ${process.version}; ` +
    `pool threads ${threads}; load average ${loadavg()[0]!.toFixed(2)}`;
}

/**
 * A bench's output: its notes (machine, shapes, repetitions) and tables as text, or with --json
 * (`json` true) one JSON object { notes, rows } printed as the process exits.
 */
export function benchOutput(json: boolean): { say(line: string): void; table(rows: readonly Row[]): void } {
  const notes: string[] = [];
  let rows: readonly Row[] = [];
  if (json) process.once('exit', () => console.log(JSON.stringify({ notes: notes.filter((l) => l !== ''), rows })));
  return {
    say: (line) => (json ? notes.push(line.trim()) : console.log(line)),
    table: (r) => (json ? (rows = r) : printTable(r)),
  };
}
