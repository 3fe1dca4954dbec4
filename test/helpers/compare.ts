/** Comparing logits and quantized codes in tests. */
import assert from 'node:assert/strict';
import { unpackWeights } from '../../src/quant/int4-pack.js';
import type { QuantizedLinear } from '../../src/quant/types.js';

/** max |a − b| / max |b| over a row block: relative to the logits' scale. */
export function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

/** Fraction of codes that differ between two quantizations of one layer. */
export function codeMismatch(a: QuantizedLinear, b: QuantizedLinear): number {
  const [qa, qb] = [unpackWeights(a), unpackWeights(b)];
  let d = 0;
  for (let i = 0; i < qa.length; i++) if (qa[i] !== qb[i]) d++;
  return d / qa.length;
}

/** Every element the same float, bit for bit (−0 ≠ 0, NaN = NaN); `what` names the case in the failure. */
export function assertBitEqual(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}: element ${i}: ${actual[i]} vs reference ${expected[i]}`);
  }
}
