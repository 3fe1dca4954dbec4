/** Progress off a terminal: a line at most every interval, a last line only when one was printed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progressBar } from '../../src/cli/progress.js';

test('off a terminal, progress is periodic plain lines with elapsed time and an eta; a short step prints nothing', () => {
  let t = 0;
  const lines: string[] = [];
  const bar = progressBar('gptq layers', 32, { terminal: false, intervalSeconds: 10, write: (l) => lines.push(l), now: () => t });
  for (let l = 1; l <= 32; l++) {
    t += 4000; // 4 s a layer
    bar.update(l);
  }
  bar.stop();
  assert.equal(lines.length, 10 + 1, lines.join("\n")); // at 12, 24, …, 120 s (every third layer), then the last line
  assert.equal(lines[0], 'gptq layers: 3/32 (9%), 12 s elapsed, eta 2 min');
  assert.equal(lines.at(-1), 'gptq layers: 32/32 (100%), 2 min elapsed');

  const quiet: string[] = [];
  const short = progressBar('windows', 4, { terminal: false, write: (l) => quiet.push(l), now: () => 0 });
  for (let w = 1; w <= 4; w++) short.update(w);
  short.stop();
  assert.deepEqual(quiet, []);
});
