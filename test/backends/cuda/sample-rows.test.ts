/**
 * sample_rows (kernels/sampling.cu) against the host's pickToken (model/sampling.ts) on fresh random logits: peaked,
 * flat and tied rows, ragged vocabularies (1 to 32003 tokens and qwen2's 152064), temperatures 0.3-2, top-p from a
 * one-token nucleus to the whole vocabulary, draws 0, just below 1 and random, greedy rows among sampled ones, rows
 * with NaN and infinite logits: every row's token must be the host's (the same integers from the same logits; the
 * device's exp may differ from the host's in the last bit, which moves a weight only where it sits within 2^-18 of a
 * rounding boundary, so a token could differ only at a draw within one unit of a boundary: not seen here). Each row's
 * token is the same launched alone and in a batch, and the same twice, and on 1, 2, 4 or 8 blocks a row (a cluster).
 * The picks' checks name the row and field; the cluster chooser and the refusal of a cluster size the kernel is not built for run without a GPU. Skips without a GPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import type { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import { pickRows, sampleCluster, sampleRowsCuda, sampleScratchBytes, PICK_BYTES, SAMPLE_CLUSTERS, type SampleCluster } from '../../../src/backends/cuda/sample-rows.js';
import { pickToken, seededRandom, type TokenPick } from '../../../src/model/sampling.js';
import { LOGIT_SHAPES, randomLogits, type LogitShape } from '../../../bench/random-logits.js';
import { freshSeed } from '../../helpers/random.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

/** The tokens sample_rows picks from rows [m, n] of logits with the picks (on `cluster` blocks a row, else the default). */
function devicePicks(logits: Float32Array, n: number, picks: readonly TokenPick[], cluster?: SampleCluster): Int32Array {
  const ctx = ctxOf();
  const m = picks.length;
  const x = ctx.upload(logits), p = ctx.upload(pickRows(picks));
  const scratch = ctx.alloc(m * sampleScratchBytes(n)), out = ctx.alloc(m * 4);
  try {
    out.fill(0xff);
    ctx.landUploads();
    sampleRowsCuda(ctx, x, p, scratch, out, m, n, cluster);
    return ctx.copyToHost(new Int32Array(m), out);
  } finally {
    for (const b of [x, p, scratch, out]) b.free();
  }
}

/** m rows of logits of the shapes in turn, with a NaN, a −∞ and (in some) a +∞ among them. */
function rowsOf(m: number, n: number, random: () => number): { logits: Float32Array; shapes: LogitShape[] } {
  const shapes: LogitShape[] = [];
  const logits = new Float32Array(m * n);
  for (let r = 0; r < m; r++) {
    const shape = LOGIT_SHAPES[r % LOGIT_SHAPES.length]!;
    shapes.push(shape);
    logits.set(randomLogits(shape, n, random), r * n);
    if (n > 4 && r % 4 === 1) logits[r * n + Math.floor(random() * n)] = NaN;
    if (n > 4 && r % 5 === 2) logits[r * n + Math.floor(random() * n)] = -Infinity;
    if (n > 4 && r === 7) logits[r * n + Math.floor(random() * n)] = Infinity;
  }
  return { logits, shapes };
}

const SETTINGS: readonly [number, number][] = [[0.3, 0.5], [0.7, 0.9], [1, 0.95], [1, 1], [2, 0.99], [1, 1e-6], [0, 1], [1.3, 0.3]];

test('sample_rows picks the host\'s token on every row: peaked, flat and tied logits, ragged vocabularies, greedy rows among sampled, NaN and infinite logits', { skip }, () => {
  const seed = freshSeed();
  const random = seededRandom(seed);
  let sampled = 0;
  for (const n of [1, 7, 1000, 32000, 32003, 152064]) {
    const m = n > 100000 ? 6 : 24;
    const { logits, shapes } = rowsOf(m, n, random);
    const picks = Array.from({ length: m }, (_, r): TokenPick => {
      const [temperature, topP] = SETTINGS[(r + n) % SETTINGS.length]!;
      return { temperature, topP, draw: r % 6 === 0 ? 0 : r % 6 === 1 ? 1 - 2 ** -53 : random() };
    });
    const got = devicePicks(logits, n, picks);
    picks.forEach((pick, r) => {
      const want = pickToken(logits.subarray(r * n, (r + 1) * n), pick);
      assert.equal(got[r], want, `seed ${seed}: n=${n} row ${r} (${shapes[r]}, T ${pick.temperature}, top-p ${pick.topP}, draw ${pick.draw})`);
      if (pick.temperature > 0) sampled++;
    });
  }
  assert.ok(sampled > 100, `${sampled} sampled rows`);
});

test('sample_rows: a row\'s token is the same alone, in a batch and launched again (integer sums)', { skip }, () => {
  const seed = freshSeed();
  const random = seededRandom(seed);
  const n = 32000, m = 16;
  const { logits } = rowsOf(m, n, random);
  const picks = Array.from({ length: m }, (): TokenPick => ({ temperature: 0.5 + random(), topP: 0.5 + 0.5 * random(), draw: random() }));
  const batched = devicePicks(logits, n, picks);
  assert.deepEqual(devicePicks(logits, n, picks), batched, `seed ${seed}: launched again`);
  for (const r of [0, 5, 15]) {
    assert.equal(devicePicks(logits.slice(r * n, (r + 1) * n), n, [picks[r]!])[0], batched[r], `seed ${seed}: row ${r} alone`);
  }
});

test('sample_rows: the same host token on 1, 2, 4 and 8 blocks a row, slices of a few tokens and empty ones among them', { skip }, () => {
  const seed = freshSeed();
  const random = seededRandom(seed);
  for (const n of [1, 7, 13, 1000, 32003]) {
    const m = 12;
    const { logits, shapes } = rowsOf(m, n, random);
    const picks = Array.from({ length: m }, (_, r): TokenPick => {
      const [temperature, topP] = SETTINGS[(r + n) % SETTINGS.length]!;
      return { temperature, topP, draw: r % 5 === 0 ? 0 : r % 5 === 1 ? 1 - 2 ** -53 : random() };
    });
    const want = picks.map((pick, r) => pickToken(logits.subarray(r * n, (r + 1) * n), pick));
    for (const cluster of SAMPLE_CLUSTERS) {
      const got = devicePicks(logits, n, picks, cluster);
      want.forEach((w, r) => assert.equal(got[r], w, `seed ${seed}: n=${n} row ${r} on ${cluster} blocks (${shapes[r]}, T ${picks[r]!.temperature}, top-p ${picks[r]!.topP}, draw ${picks[r]!.draw})`));
    }
  }
});

test('sample_rows takes a row on as many blocks as keep the rows within the multiprocessors, up to 8, one before Hopper', () => {
  assert.deepEqual([1, 16, 17, 33, 34, 66, 67, 200].map((m) => sampleCluster(m, 132, 9)), [8, 8, 4, 4, 2, 2, 1, 1]);
  assert.equal(sampleCluster(1, 132, 8), 1);
  assert.equal(sampleCluster(1, 4, 9), 4);
  // a cluster size the kernel is not built for is refused before any buffer or kernel is touched (no GPU needed)
  const none = {} as CudaContext & DeviceBuffer;
  assert.throws(() => sampleRowsCuda(none, none, none, none, none, 1, 10, 3 as SampleCluster), /sample_rows takes a row on 1, 2, 4, 8 blocks, got 3/);
  assert.throws(() => sampleRowsCuda(none, none, none, none, none, 1, 10, 16 as SampleCluster), /got 16/);
});

test('the picks are checked before they reach the device: the row and the field named', () => {
  assert.equal(pickRows([{ temperature: 0, topP: 1, draw: 0 }]).byteLength, PICK_BYTES);
  assert.throws(() => pickRows([{ temperature: 0.7, topP: 0.9, draw: 0.5 }, { temperature: 0.7, topP: 0, draw: 0.5 }]), /pick 1: topP must be in \(0, 1\], got 0/);
  assert.throws(() => pickRows([{ temperature: 0.7, topP: 0.9, draw: 1 }]), /pick 0: the draw must be in \[0, 1\), got 1/);
  assert.throws(() => pickRows([{ temperature: NaN, topP: 0.9, draw: 0.5 }]), /pick 0: temperature must be a finite number, got NaN/);
  // a greedy pick's other fields are unused
  assert.deepEqual([...pickRows([{ temperature: 0, topP: 7, draw: 3 }])], [0, 0, 1]);
});
