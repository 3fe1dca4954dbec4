import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { packInt4, unpackInt4 } from '../../src/quant/int4-pack.js';
import { freshSeed, makeRng } from '../helpers/random.js';

test('pack/unpack round trip over the whole range, -8 and 7 included', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const n = 5;
  const k = 34;
  const q = new Int8Array(n * k);
  for (let i = 0; i < q.length; i++) q[i] = rng.int(-8, 7);
  q[0] = -8;
  q[1] = 7;
  q[2] = 7;
  q[3] = -8;
  const packed = packInt4(q, n, k);
  assert.equal(packed.length, (n * k) / 2);
  assert.deepEqual(unpackInt4(packed, n, k), q, `seed ${seed}`);
});

test('layout: even k in the low nibble, odd k in the high nibble, two\'s complement', () => {
  const packed = packInt4(new Int8Array([-8, 7, -1, 0, 1, -2]), 1, 6);
  assert.deepEqual([...packed], [0x78, 0x0f, 0xe1]);
});

test('odd K and out-of-range values are rejected with clear errors', () => {
  assert.throws(() => packInt4(new Int8Array(6), 2, 3), (e: unknown) => e instanceof InputError && /K = 3 is odd/.test(e.message));
  assert.throws(() => unpackInt4(new Uint8Array(3), 2, 3), InputError);
  assert.throws(() => packInt4(new Int8Array([0, 8]), 1, 2), (e: unknown) => e instanceof InputError && /value 8 .* column 1/.test(e.message));
});
