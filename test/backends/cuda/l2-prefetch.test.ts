/**
 * The decode engine's L2 prefetch plan (src/backends/cuda/l2-prefetch.ts), on the CPU: over one step
 * the windows ask for every weight byte exactly once, the window after stage s starts `ahead` bytes
 * past the start of stage s+1 (cyclically), and every piece is 16-byte aligned and sized.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planL2Prefetch, type Piece } from '../../../src/backends/cuda/l2-prefetch.js';
import { freshSeed, makeRng } from '../../helpers/random.js';

/** Random stages of 1–3 ranges each, 256-aligned addresses (as allocations are), sizes not all multiples of 16. */
function randomStages(seed: number): Piece[][] {
  const rng = makeRng(seed);
  let next = 1 << 20;
  return Array.from({ length: rng.int(1, 9) }, () =>
    Array.from({ length: rng.int(1, 3) }, () => {
      const bytes = rng.int(0, 5000);
      const p = { address: next, bytes };
      next += Math.ceil((bytes + 1) / 256) * 256 + 256 * rng.int(0, 4);
      return p;
    }));
}

test('L2 prefetch plan: each step asks for every 16-byte-rounded weight byte once, each window `ahead` bytes past the next stage', () => {
  const seed = freshSeed();
  const rng = makeRng(seed ^ 0x5eed);
  for (let trial = 0; trial < 40; trial++) {
    const stages = randomStages(seed + trial);
    const rounded = stages.map((s) => s.map((p) => ({ ...p, bytes: p.bytes & ~15 })));
    const total = rounded.flat().reduce((t, p) => t + p.bytes, 0);
    const ahead = rng.int(0, 3) === 0 ? 0 : rng.int(0, 2 * total + 40);
    const plan = planL2Prefetch(stages, ahead);
    assert.equal(plan.total, total, `seed ${seed}`);
    assert.equal(plan.after.length, stages.length);
    // byte offset in the cycle of each address, to check coverage
    const offsetOf = new Map<number, number>();
    let at = 0;
    for (const p of rounded.flat()) {
      for (let b = 0; b < p.bytes; b += 16) offsetOf.set(p.address + b, at + b);
      at += p.bytes;
    }
    const seen = new Map<number, number>();
    const starts = [0];
    for (const s of rounded) starts.push(starts[starts.length - 1]! + s.reduce((t, p) => t + p.bytes, 0));
    plan.after.forEach(([first, end], s) => {
      for (let i = first; i < end; i++) {
        const address = Number(plan.table[2 * i]!), bytes = Number(plan.table[2 * i + 1]!);
        assert.ok(address % 16 === 0 && bytes % 16 === 0 && bytes > 0, `seed ${seed}: piece ${address}+${bytes}`);
        for (let b = 0; b < bytes; b += 16) {
          assert.ok(offsetOf.has(address + b), `seed ${seed}: piece byte ${address + b} is no weight's`);
          seen.set(address + b, (seen.get(address + b) ?? 0) + 1);
        }
      }
      if (end > first && total > 0) {
        const want = (starts[(s + 1) % stages.length]! + (ahead & ~15)) % total;
        assert.equal(offsetOf.get(Number(plan.table[2 * first]!)), want, `seed ${seed}: window after stage ${s}`);
      }
    });
    for (const a of offsetOf.keys()) assert.equal(seen.get(a), 1, `seed ${seed}: byte ${a} asked ${seen.get(a) ?? 0} times`);
  }
});

test('L2 prefetch plan: refuses a negative lookahead and unaligned ranges', () => {
  assert.throws(() => planL2Prefetch([[{ address: 256, bytes: 64 }]], -1), /non-negative/);
  assert.throws(() => planL2Prefetch([[{ address: 258, bytes: 64 }]], 0), /16-byte aligned/);
});
