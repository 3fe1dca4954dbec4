/**
 * Emits the WASM SIMD module of the A8 integer kernels' activation quantization: int-activation-rows.ts's
 * rows (quantizeActivations, quant/activation-quant.ts) bit for bit, in the int16 layout the integer
 * kernel reads (int-linear-wasm-module.ts). Exports
 *
 *   quantize_rows(x, k, rows, layout, group, x16, rowBytes, scales)      (i32 byte addresses / counts)
 *
 * for `rows` token rows x [rows, k] f32 (contiguous), writing x16 rows of rowBytes and scales [rows] f32:
 *  - a = f32(f64(max |x|) / 127): |x| by f32x4.abs, the max by pmax (a NaN never replaces the running
 *    max: the reference's `v > max`), lanes folded the same way;
 *  - a = 0: the whole row of rowBytes (a multiple of 16) zeroed;
 *  - else q = clamp(nearest(f64(x) / f64(a)), −127, 127): the division and round-half-even in float64
 *    lanes (f64x2; a float32 quotient can land on a half that the exact one misses), then
 *    i32x4.trunc_sat_f64x2_s_zero, i16x8.narrow_i32x4_s and the clamp in int16.
 * Layout: groups unpadded (the caller checks Gp = G), so blocks follow one another along the row; W8
 * (layout 0) in input order, 16 a block; W4 (layout 1) 32 a block in the kernel's slot order,
 * input 4l + i at slot 8i + l: a 4 × 8 transpose of the block's four int16 vectors by six shuffles;
 * relaxed W4 (layout 2, groups of `group` inputs): int8, per group the correction vector
 * [−8·Σ_{k∈g} q, 0, 0, 0] (i32) then blocks of 32 bytes, the even inputs then the odd ones (narrow
 * and two shuffles), the sum in int16 lanes per block (|4·127| fits) widened pairwise into int32.
 */
import { F32, FnBuilder, I32, V128, buildModule, op, simd } from './wasm-emitter.js';

/** i8x16.shuffle immediate from int16 lane picks (0–7 of the first operand, 8–15 of the second). */
const lanes16 = (picks: readonly number[]): number[] => picks.flatMap((l) => [2 * l, 2 * l + 1]);
/** v128.const of eight int16 lanes equal to v. */
const splat16 = (v: number): number[] => Array.from({ length: 8 }, () => [v & 0xff, (v >> 8) & 0xff]).flat();

function quantizeRows(): FnBuilder {
  const b = new FnBuilder('quantize_rows', [
    ['x', I32], ['k', I32], ['rows', I32], ['layout', I32], ['group', I32], ['x16', I32], ['rowBytes', I32], ['scales', I32],
  ]);
  b.local('row', I32).local('p', I32).local('end', I32).local('o', I32).local('oEnd', I32).local('gEnd', I32).local('corr', I32);
  b.local('m', F32).local('l', F32).local('a', F32);
  b.local('acc', V128).local('v', V128).local('aa', V128).local('lo', V128).local('q0', V128).local('q1', V128);
  for (let i = 0; i < 4; i++) b.local(`h${i}`, V128);
  b.local('s', V128).local('t', V128).local('min', V128).local('max', V128).local('sum', V128);
  b.simd(simd.v128Const, ...splat16(-127)).set('min');
  b.simd(simd.v128Const, ...splat16(127)).set('max');

  /** Leaves on the stack the i32x4 of nearest(f64(lane) / aa) for the f32x4 in local v (lanes 0–3). */
  const quantize4 = (): void => {
    const half = (high: boolean): void => {
      b.get('v');
      if (high) b.get('v').simd(simd.i8x16Shuffle, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
      b.simd(simd.f64x2PromoteLowF32x4).get('aa').simd(simd.f64x2Div).simd(simd.f64x2Nearest).simd(simd.i32x4TruncSatF64x2SZero);
    };
    half(false);
    b.set('lo');
    b.get('lo');
    half(true);
    b.simd(simd.i8x16Shuffle, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  };
  /** Leaves the clamped i16x8 of the 8 floats at address local p + offset. */
  const quantize8 = (offset: number): void => {
    b.get('p').v128Load(offset).set('v');
    quantize4();
    b.set('q0');
    b.get('p').v128Load(offset + 16).set('v');
    quantize4();
    b.set('q1');
    b.get('q0').get('q1').simd(simd.i16x8NarrowI32x4S).get('min').simd(simd.i16x8MaxS).get('max').simd(simd.i16x8MinS);
  };

  b.i32(0).set('row');
  b.loop(() => b.get('row').get('rows').emit(op.i32GeU), () => {
    // p walks the row's floats: end = p + 4k
    b.get('x').set('p');
    b.get('x').get('k').i32(2).emit(op.i32Shl).emit(op.i32Add).set('end');
    // the max of |x|
    b.v128Zero().set('acc');
    b.loop(() => b.get('p').get('end').emit(op.i32GeU), () => {
      b.get('acc').get('p').v128Load().simd(simd.f32x4Abs).simd(simd.f32x4Pmax).set('acc');
      b.addTo('p', 16);
    });
    b.get('acc').simd(simd.f32x4ExtractLane, 0).set('m');
    for (let lane = 1; lane < 4; lane++) {
      // m = m < l ? l : m
      b.get('acc').simd(simd.f32x4ExtractLane, lane).set('l');
      b.get('l').get('m').get('m').get('l').emit(op.f32Lt).emit(op.select).set('m');
    }
    // a = f32(f64(m) / 127)
    b.get('m').emit(op.f64PromoteF32).emit(op.f64Const, ...f64Bytes(127)).emit(op.f64Div).emit(op.f32DemoteF64).set('a');
    b.get('scales').get('a').emit(op.f32Store, 2, 0);
    b.get('x16').set('o');
    b.get('x16').get('rowBytes').emit(op.i32Add).set('oEnd');
    b.get('a').emit(op.f32Const, 0, 0, 0, 0).emit(op.f32Eq);
    b.emit(op.if, op.empty);
    b.loop(() => b.get('o').get('oEnd').emit(op.i32GeU), () => {
      b.get('o').v128Zero().simd(simd.v128Store, 4, 0);
      b.addTo('o', 16);
    });
    b.emit(op.else);
    b.get('a').emit(op.f64PromoteF32).simd(simd.f64x2Splat).set('aa');
    b.get('x').set('p');
    b.get('layout').emit(op.i32Eqz);
    b.emit(op.if, op.empty);
    // W8: blocks of 16 inputs in order
    b.loop(() => b.get('p').get('end').emit(op.i32GeU), () => {
      b.get('o');
      quantize8(0);
      b.simd(simd.v128Store, 4, 0);
      b.get('o');
      quantize8(32);
      b.simd(simd.v128Store, 4, 16);
      b.addTo('p', 64).addTo('o', 32);
    });
    b.emit(op.else);
    b.get('layout').i32(1).emit(op.i32Ne);
    b.emit(op.if, op.empty);
    // relaxed W4: per group the correction vector, then int8 blocks of 32 (evens, then odds)
    b.loop(() => b.get('p').get('end').emit(op.i32GeU), () => {
      b.get('o').set('corr');
      b.addTo('o', 16);
      b.v128Zero().set('sum');
      b.get('p').get('group').i32(2).emit(op.i32Shl, op.i32Add).set('gEnd');
      b.loop(() => b.get('p').get('gEnd').emit(op.i32GeU), () => {
        for (let j = 0; j < 4; j++) {
          quantize8(32 * j);
          b.set(`h${j}`);
        }
        b.get('h0').get('h1').simd(simd.i16x8Add).get('h2').get('h3').simd(simd.i16x8Add).simd(simd.i16x8Add);
        b.simd(simd.i32x4ExtaddPairwiseI16x8S).get('sum').simd(simd.i32x4Add).set('sum');
        b.get('h0').get('h1').simd(simd.i8x16NarrowI16x8S).set('s'); // inputs 0..15
        b.get('h2').get('h3').simd(simd.i8x16NarrowI16x8S).set('t'); // inputs 16..31
        const evens = Array.from({ length: 16 }, (_, j) => 2 * j);
        b.get('o').get('s').get('t').simd(simd.i8x16Shuffle, ...evens).simd(simd.v128Store, 4, 0);
        b.get('o').get('s').get('t').simd(simd.i8x16Shuffle, ...evens.map((e) => e + 1)).simd(simd.v128Store, 4, 16);
        b.addTo('p', 128).addTo('o', 32);
      });
      // [−8·Σ, 0, 0, 0]
      b.get('corr').v128Zero().simd(simd.v128Store, 4, 0);
      b.get('corr');
      b.get('sum').simd(simd.i32x4ExtractLane, 0).get('sum').simd(simd.i32x4ExtractLane, 1).emit(op.i32Add);
      b.get('sum').simd(simd.i32x4ExtractLane, 2).get('sum').simd(simd.i32x4ExtractLane, 3).emit(op.i32Add);
      b.emit(op.i32Add).i32(-8).emit(op.i32Mul).emit(op.i32Store, 2, 0);
    });
    b.emit(op.else);
    // W4: blocks of 32 inputs, h_j = inputs 8j .. 8j+7, then slot vector i (lane l) = input 4l + i
    b.loop(() => b.get('p').get('end').emit(op.i32GeU), () => {
      for (let j = 0; j < 4; j++) {
        quantize8(32 * j);
        b.set(`h${j}`);
      }
      for (const [i0, i1] of [[0, 1], [2, 3]] as const) {
        // s: slot vectors i0 (l = 0..3) | i1 (l = 0..3) from h0, h1; t: the same for l = 4..7 from h2, h3
        const pick = lanes16([i0, 4 + i0, 8 + i0, 12 + i0, i1, 4 + i1, 8 + i1, 12 + i1]);
        b.get('h0').get('h1').simd(simd.i8x16Shuffle, ...pick).set('s');
        b.get('h2').get('h3').simd(simd.i8x16Shuffle, ...pick).set('t');
        b.get('o').get('s').get('t').simd(simd.i8x16Shuffle, ...lanes16([0, 1, 2, 3, 8, 9, 10, 11])).simd(simd.v128Store, 4, ...storeOffset(16 * i0));
        b.get('o').get('s').get('t').simd(simd.i8x16Shuffle, ...lanes16([4, 5, 6, 7, 12, 13, 14, 15])).simd(simd.v128Store, 4, ...storeOffset(16 * i1));
      }
      b.addTo('p', 128).addTo('o', 64);
    });
    b.emit(op.end); // layout 2 | 1
    b.emit(op.end); // layout 0
    b.emit(op.end); // a = 0
    b.addTo('row', 1);
    b.get('x').get('k').i32(2).emit(op.i32Shl).emit(op.i32Add).set('x');
    b.get('x16').get('rowBytes').emit(op.i32Add).set('x16');
    b.addTo('scales', 4);
  });
  return b;
}

/** Little-endian bytes of a float64 constant. */
function f64Bytes(v: number): number[] {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, v, true);
  return Array.from({ length: 8 }, (_, i) => buf.getUint8(i));
}

/** A store's constant offset immediate (small enough for one LEB byte). */
function storeOffset(offset: number): number[] {
  if (offset >= 128) throw new RangeError('store offset past one LEB byte');
  return [offset];
}

export function buildIntActivationWasmModule(maxPages: number): Uint8Array<ArrayBuffer> {
  return buildModule([quantizeRows()], maxPages);
}

/** quantize_rows's signature (see the header). */
export type QuantizeRowsWasm = (x: number, k: number, rows: number, layout: number, group: number, x16: number, rowBytes: number, scales: number) => void;
