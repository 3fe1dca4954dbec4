/**
 * Progress of a long step on stderr: a cli-progress bar on a terminal; elsewhere (a log file, a
 * pipe, CI) one plain line at most every `intervalSeconds` (`label: 3/32 (9%), 12 s elapsed, eta 2 min`)
 * and a last line when the step ends, so short steps stay silent and long ones are followed.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

export interface ProgressOptions {
  /** a bar (default when stderr is a terminal) or periodic lines. */
  readonly terminal?: boolean;
  readonly intervalSeconds?: number;
  readonly write?: (line: string) => void;
  /** milliseconds, for tests. */
  readonly now?: () => number;
}

const duration = (s: number): string => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

export function progressBar(label: string, total: number, options: ProgressOptions = {}): Progress {
  if (options.terminal ?? process.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} | {duration_formatted} elapsed | eta {eta_formatted}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { update: (done) => bar.update(done), stop: () => bar.stop() };
  }
  const now = options.now ?? (() => performance.now());
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const interval = 1000 * (options.intervalSeconds ?? 10);
  const start = now();
  let last = start;
  let done = 0;
  let lines = 0;
  const line = (): string => {
    const elapsed = (now() - start) / 1000;
    const eta = done > 0 && done < total ? `, eta ${duration((elapsed * (total - done)) / done)}` : '';
    return `${label}: ${done}/${total} (${Math.floor((100 * done) / Math.max(total, 1))}%), ${duration(elapsed)} elapsed${eta}`;
  };
  return {
    update(d) {
      done = d;
      if (now() - last >= interval) {
        last = now();
        lines++;
        write(line());
      }
    },
    stop() {
      if (lines > 0) write(line());
    },
  };
}
