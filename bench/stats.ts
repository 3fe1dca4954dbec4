/** What every CPU benchmark shares: the median, and a line describing the machine it ran on. */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { printTable, type Row } from '../src/cli/table.js';
import { w4a8KernelLine } from '../src/backends/cpu/int-linear-wasm-kernel.js';

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** `sorted[floor(q·n)]` of samples sorted ascending. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

/** CPU model, cores, Node version, threads used, the load average (other processes skew timings) and the W4A8 kernel. */
export function machineLine(threads: number): string {
  return `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores; node ${process.version}; ` +
    `pool threads ${threads}; load average ${loadavg()[0]!.toFixed(2)}; ${w4a8KernelLine()}`;
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

/**
 * Latencies (ms) counted in logarithmic buckets 1% wide, so that a long run keeps a fixed few KB
 * whatever the number of samples (a soak that kept every sample would grow its own heap):
 * percentile(q) is the sample at rank floor(q·n), as `percentile` over the sorted samples gives it,
 * within 1%.
 */
export class LatencyHistogram {
  /** bucket b holds samples in [MIN·RATIO^b, MIN·RATIO^(b+1)); the first also holds everything below MIN, the last everything above. */
  private static readonly MIN = 0.01;
  private static readonly RATIO = 1.01;
  private readonly counts = new Uint32Array(Math.ceil(Math.log(1e7) / Math.log(LatencyHistogram.RATIO)));
  count = 0;

  add(ms: number): void {
    const b = Math.floor(Math.log(Math.max(ms, LatencyHistogram.MIN) / LatencyHistogram.MIN) / Math.log(LatencyHistogram.RATIO));
    this.counts[Math.min(b, this.counts.length - 1)]!++;
    this.count++;
  }

  /** the bucket's midpoint (geometric) of the sample at rank floor(q·n); NaN when empty. */
  percentile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.min(this.count - 1, Math.floor(this.count * q));
    let seen = 0;
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b]!;
      if (seen > rank) return LatencyHistogram.MIN * LatencyHistogram.RATIO ** (b + 0.5);
    }
    return NaN;
  }

  /** bytes the counts take (fixed: the histogram does not grow with its samples). */
  get bytes(): number {
    return this.counts.byteLength;
  }
}
