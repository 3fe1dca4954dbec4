/**
 * The benches' latency histogram: its percentiles are those of the sorted samples within 1%, and it
 * keeps a fixed size however many samples go in (serve-load's soak must not grow its own heap).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram, percentile } from '../../bench/stats.js';
import { seededRandom } from '../../src/tensor/random.js';

test('LatencyHistogram percentiles equal the sorted samples\' within 1%, in a size that does not grow', () => {
  const random = seededRandom(7);
  const h = new LatencyHistogram();
  const bytes = h.bytes;
  const samples: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const ms = 0.05 + 400 * random() ** 4; // skewed like token gaps: most short, a long tail
    samples.push(ms);
    h.add(ms);
  }
  samples.sort((a, b) => a - b);
  assert.equal(h.count, samples.length);
  for (const q of [0, 0.01, 0.5, 0.9, 0.99, 0.999, 1]) {
    const exact = percentile(samples, q);
    assert.ok(Math.abs(h.percentile(q) - exact) <= 0.01 * exact, `q ${q}: ${h.percentile(q)} vs ${exact}`);
  }
  assert.equal(h.bytes, bytes, 'the counts are allocated once');
  assert.ok(bytes < 16 * 1024, `${bytes} bytes`);
  assert.ok(Number.isNaN(new LatencyHistogram().percentile(0.5)), 'no samples: NaN');
});
