/**
 * The benches' fold flags (bench/engine-folds.ts): every pairing of the settings given, in flag order;
 * a flag not given leaves the engine's default; a bad setting names its flag.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFoldVariant, foldFlagOptions, foldSettings, foldVariants } from '../../bench/engine-folds.js';

test('foldVariants: the cartesian product of the flags given, the others left to the engine', () => {
  assert.deepEqual(foldVariants({}), [{}]);
  assert.deepEqual(foldVariants({ 'norm-in-gemm': 'on,off', 'quantize-in-tail': 'auto' }), [
    { normInGemm: true, quantizeInTail: 'auto' },
    { normInGemm: false, quantizeInTail: 'auto' },
  ]);
  const four = foldVariants({ 'rope-in-attention': 'on,off', 'fuse-swiglu': 'off,on' });
  assert.deepEqual(four, [
    { ropeInAttention: true, fuseSwiGLU: false },
    { ropeInAttention: true, fuseSwiGLU: true },
    { ropeInAttention: false, fuseSwiGLU: false },
    { ropeInAttention: false, fuseSwiGLU: true },
  ]);
  assert.equal(describeFoldVariant(four[1]!), 'rope in attention on, SwiGLU in the GEMM epilogue on');
  assert.equal(describeFoldVariant({}), 'engine defaults');
});

test('foldSettings rejects anything but auto, on, off, naming the flag', () => {
  assert.deepEqual(foldSettings('fuse-swiglu', 'auto,on,off'), ['auto', true, false]);
  assert.throws(() => foldSettings('norm-in-gemm', 'yes'), /--norm-in-gemm takes on, off, auto .*got 'yes'/);
  assert.throws(() => foldSettings('norm-in-gemm', 'on,'), /--norm-in-gemm/);
});

test('foldFlagOptions: string options, with a default only where one is given', () => {
  const o = foldFlagOptions({ 'fuse-swiglu': 'auto' });
  assert.deepEqual(o['fuse-swiglu'], { type: 'string', default: 'auto' });
  assert.deepEqual(o['norm-in-gemm'], { type: 'string' });
  assert.deepEqual(Object.keys(o), ['rope-in-attention', 'fuse-swiglu', 'norm-in-gemm', 'quantize-in-tail', 'quantize-in-gemm', 'wide-attention', 'merge-in-attention', 'overlap-small-ops']);
});
