/**
 * The CUDA decode engine over a growing split-K workspace: a prefill that needs more split-K counters than the decode
 * steps captured before it grows the workspace (workspace.ts), which keeps the buffers those graphs name. With a chooser
 * that gives the TMA kernel with 32-token tiles and K split in two from 9 rows: 12 sequences decoded (graphs captured at
 * 12 rows), then a 200-row prefill (7 token tiles: 7× the counters of a 12-row step), then the 12 decoded on (replays);
 * the workspace grown by the prefill, the buffers the graphs were captured with not freed, and the 12 sequences' logits
 * near those of an engine with the default chooser (the decode kernel), with the same greedy tokens. Its own file, so
 * its process's context starts without a workspace. Skips without a GPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BATCH_TOLERANCE, ctxOf, relativeError, skip, withEngine } from './engine-checks.js';
import { quantizedEmbedded } from './embedded.js';
import { chooseW4A8Config, type W4A8Config } from '../../../src/backends/cuda/w4a8.js';
import { splitKWorkspace } from '../../../src/backends/cuda/workspace.js';
import type { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import type { CudaEngineOptions } from '../../../src/backends/cuda/decode-engine.js';
import { argmax } from '../../../src/model/sampling.js';

test('CUDA engine: a 200-row prefill after decode steps captured at 12 rows grows the split-K workspace and leaves the buffers their graphs name; the 12 sequences\' logits near the decode kernel\'s (32-token wgmma tiles, K split in two)', { skip }, (t) => {
  const { model, prompt } = quantizedEmbedded();
  const prompts = Array.from({ length: 12 }, (_, i) => [...prompt.slice(i % 6), ...prompt.slice(0, i % 6)]);
  const long = Array.from({ length: 200 }, (_, i) => prompt[i % prompt.length]!);
  const tokens = (s: number): number[] => prompts.map((_, i) => prompt[(i + 3 * s) % prompt.length]!);
  const STEPS = 6;
  const splitTiles = (m: number, n: number, k: number): W4A8Config => (m >= 9 ? { kind: 'wgmma-tma', STAGES: 4, KS: 2, BT: 32 } : chooseW4A8Config(m, n, k));
  /**
   * The 12 sequences' logits at each decode step: prompts fed one by one (short passes), STEPS steps of 12 rows, the long
   * prefill after the third; `check` before and after it.
   */
  const run = (options: Pick<CudaEngineOptions, 'chooseW4A8'>, check: (phase: 'captured' | 'prefilled') => void): Float32Array[][] => {
    const steps: Float32Array[][] = [];
    withEngine(model, { maxSequences: 13, maxChunk: 256, ...options }, (engine) => {
      const seqs = prompts.map((p) => {
        const seq = engine.open(p.length + STEPS);
        seq.feed(p);
        return seq;
      });
      for (let s = 0; s < STEPS; s++) {
        if (s === 3) {
          check('captured'); // three decode steps: the second captured, the third a replay
          const other = engine.open(long.length + 1);
          other.feed(long);
          other.release();
          check('prefilled');
        }
        steps.push(engine.decodeBatch(seqs, tokens(s)));
      }
      for (const q of seqs) q.release();
    });
    return steps;
  };
  const ctx = ctxOf();
  const inUse = (): DeviceBuffer[] => splitKWorkspace(ctx, 1, 1) as DeviceBuffer[];
  let captured: DeviceBuffer[] = [];
  const tiles = run({ chooseW4A8: splitTiles }, (phase) => {
    if (phase === 'captured') captured = inUse();
    else {
      assert.notDeepEqual(inUse().map((b) => b.address), captured.map((b) => b.address), 'the prefill grew the workspace (else this checks nothing)');
      assert.ok(captured.every((b) => !b.isFreed), 'the buffers the captured steps name are not freed');
    }
  });
  const plain = run({}, () => {});
  let worst = 0;
  for (let s = 0; s < STEPS; s++) {
    for (let i = 0; i < prompts.length; i++) {
      const [got, want] = [tiles[s]![i]!, plain[s]![i]!];
      const e = relativeError(got, want);
      worst = Math.max(worst, e);
      assert.ok(e <= BATCH_TOLERANCE, `step ${s} sequence ${i}: logit error ${e} of the largest`);
      assert.equal(argmax(got), argmax(want), `step ${s} sequence ${i}: greedy token`);
    }
  }
  t.diagnostic(`32-token wgmma tiles vs the decode kernel: largest logit error ${worst.toExponential(1)} of the largest logit`);
});
