import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, f32ToF16Bits, halfBitsToNumber } from '../../src/io/dtype.js';

test('f16 bit patterns decode to the IEEE values', () => {
  const cases: [number, number][] = [
    [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504],
    [0x0001, 2 ** -24], [0x0400, 2 ** -14], [0x7c00, Infinity], [0xfc00, -Infinity],
  ];
  const src = new Uint16Array(cases.map((c) => c[0]));
  const out = new Float32Array(src.length);
  f16ToF32(src, out);
  cases.forEach(([, v], i) => assert.equal(out[i], v, `bits 0x${cases[i]![0].toString(16)}`));
  assert.ok(Number.isNaN(halfBitsToNumber(0x7e00)));
  assert.ok(Object.is(halfBitsToNumber(0x8000), -0));
});

test('f32 → f16 rounds to nearest even and round-trips every half value', () => {
  for (let h = 0; h < 65536; h++) {
    const v = halfBitsToNumber(h);
    if (Number.isNaN(v)) continue;
    assert.equal(f32ToF16Bits(v), h, `half 0x${h.toString(16)}`);
  }
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(f32ToF16Bits(70000), 0x7c00); // overflow → inf
  assert.equal(f32ToF16Bits(2 ** -26), 0); // underflow below half the smallest subnormal
});

test('f32 → f16 of a Float32Array (the fast path) gives f32ToF16Bits of every value: random bits, each rounding boundary, the edges', () => {
  const bits = new Uint32Array(1 << 20);
  let s = 0x9e3779b9;
  for (let i = 0; i < bits.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    bits[i] = s;
  }
  // around every half's rounding boundary (the tie, one ulp either side) and the normal range's ends
  const edges: number[] = [0x38800000, 0x387fffff, 0x477ff000, 0x477fefff, 0x477fe000, 0x7f800000, 0x7fc00000, 0, 0x80000000];
  for (let h = 0; h < 0x7c00; h += 7) {
    const tie = ((h + (112 << 10)) << 13) + 0x1000;
    edges.push(tie - 1, tie, tie + 1, (tie | 0x80000000) >>> 0);
  }
  const all = new Uint32Array([...bits, ...edges]);
  const values = new Float32Array(all.buffer);
  const fast = f32ToF16(values);
  for (let i = 0; i < values.length; i++) {
    if (fast[i] !== f32ToF16Bits(values[i]!)) assert.fail(`bits 0x${all[i]!.toString(16)}: 0x${fast[i]!.toString(16)} vs 0x${f32ToF16Bits(values[i]!).toString(16)}`);
  }
});

test('bf16 keeps the top 16 bits of float32, writing at an offset', () => {
  const values = [1, -2.5, 3.140625, 1e30, -1e-30, 0];
  const bits = f32ToBf16(values);
  const out = new Float32Array(values.length + 2);
  bf16ToF32(bits, out, 2);
  assert.deepEqual([...out.subarray(2)], [1, -2.5, 3.140625, Math.fround(1e30), Math.fround(-1e-30), 0].map((v) => {
    const f = new Float32Array([v]);
    const u = new Uint32Array(f.buffer);
    u[0] = (u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) & 0xffff0000;
    return f[0];
  }));
  assert.equal(out[0], 0);
  const rt = new Float32Array(3);
  f16ToF32(f32ToF16([0.5, -0.25, 1024]), rt);
  assert.deepEqual([...rt], [0.5, -0.25, 1024]);
});
