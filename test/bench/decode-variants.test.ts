/** The --decode flag's variants of the W4A8 decode kernel (bench/decode-variants.ts): parsing and where they apply. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeVariants, withDecodeVariant } from '../../bench/decode-variants.js';

test('decodeVariants reads default and WK:STAGES:MINB[:PREW[:XREG]] entries and names a malformed one', () => {
  const [d, v] = decodeVariants('decode', 'default,16:2:3');
  assert.deepEqual(d, { label: 'default', set: null });
  assert.deepEqual(v!.set, { WK: 16, STAGES: 2, MINB: 3, PREW: 1, XREG: 0 });
  assert.equal(v!.label, 'WK16 2 smem slots MINB3');
  assert.equal(decodeVariants('decode', '8:0:1')[0]!.label, 'WK8 registers MINB1');
  const [early, slotsEarly] = decodeVariants('decode', '16:0:1:2,16:4:2:4');
  assert.deepEqual(early!.set, { WK: 16, STAGES: 0, MINB: 1, PREW: 2, XREG: 0 });
  assert.equal(early!.label, 'WK16 registers MINB1 PREW2');
  assert.deepEqual(slotsEarly!.set, { WK: 16, STAGES: 4, MINB: 2, PREW: 4, XREG: 0 });
  assert.deepEqual(decodeVariants('decode', '16:2:3:1')[0]!.set, { WK: 16, STAGES: 2, MINB: 3, PREW: 1, XREG: 0 }, 'PREW 1 and XREG 0 written out, so a variant does not inherit the chooser\'s');
  const [xreg] = decodeVariants('decode', '8:4:2:4:1');
  assert.deepEqual(xreg!.set, { WK: 8, STAGES: 4, MINB: 2, PREW: 4, XREG: 1 });
  assert.equal(xreg!.label, 'WK8 4 smem slots MINB2 PREW4 x in registers');
  for (const bad of ['16:2', '12:2:3', '16:9:1', '16:2:0', 'fast', '16:2:3,', '16:0:1:3', '16:4:2:5', '16:2:3:0', '16:0:1:1:1', '16:2:3:1:2', '16:2:3:1:1:1']) {
    assert.throws(() => decodeVariants('decode', bad), /--decode takes default, tma32, tma64 or WK:STAGES:MINB\[:PREW\[:XREG\]\]/, bad);
  }
});

test('withDecodeVariant changes the decode kernel at one token half only, or at the token halves asked', () => {
  const [v] = decodeVariants('decode', '8:4:6');
  assert.deepEqual(withDecodeVariant({ kind: 'decode', MT: 1, NTW: 1, WK: 16 }, v!), { kind: 'decode', MT: 1, NTW: 1, WK: 8, STAGES: 4, MINB: 6, PREW: 1, XREG: 0 });
  const two = { kind: 'decode', MT: 2, NTW: 2, WK: 8 } as const;
  assert.equal(withDecodeVariant(two, v!), two);
  assert.deepEqual(withDecodeVariant(two, v!, 2), { ...two, WK: 8, STAGES: 4, MINB: 6, PREW: 1, XREG: 0 }, 'MT picks the token halves it applies to');
  const tma = { kind: 'wgmma-tma', STAGES: 4 } as const;
  assert.equal(withDecodeVariant(tma, v!), tma);
  assert.deepEqual(withDecodeVariant({ kind: 'decode', MT: 1, NTW: 1, WK: 16 }, decodeVariants('decode', 'default')[0]!), { kind: 'decode', MT: 1, NTW: 1, WK: 16 });
});

test('a tma32 / tma64 variant puts the TMA kernel, set as the chooser sets it, where the decode kernel was', () => {
  const [t32, t64] = decodeVariants('decode', 'tma32,tma64');
  const decode4 = { kind: 'decode', MT: 4, NTW: 1, WK: 8, MINB: 2 } as const;
  const gateUp = { m: 32, n: 22016, k: 4096, sms: 132 }, o = { m: 32, n: 4096, k: 4096, sms: 132 };
  assert.deepEqual(withDecodeVariant(decode4, t32!, 4, gateUp), { kind: 'wgmma-tma', STAGES: 4, blocks: 'sms', BT: 32 }, '172 tiles of 32 tokens: no K split');
  assert.deepEqual(withDecodeVariant(decode4, t32!, 4, o), { kind: 'wgmma-tma', STAGES: 4, blocks: 'sms', KS: 4, BT: 32 }, '32 tiles on 132 SMs: K split in 4');
  assert.deepEqual(withDecodeVariant(decode4, t64!, 4, { ...o, m: 20 }), { kind: 'wgmma-tma', STAGES: 4, blocks: 'sms', KS: 4, BT: 64 });
  assert.equal(withDecodeVariant(decode4, t32!, 1, gateUp), decode4, 'other token halves: unchanged');
  assert.throws(() => withDecodeVariant(decode4, t32!, 4), /known shape/);
});
