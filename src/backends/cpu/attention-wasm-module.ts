/**
 * Emits the WebAssembly SIMD module of the CPU attention row kernel (attention-wasm-kernel.ts): the
 * two float64 loops of attention-kernel.ts's attendRow, in f64x2 lanes that keep each output's
 * operations and their order (so the results are bit for bit the JS kernel's). No FMA: wasm SIMD
 * f64x2.mul then f64x2.add round exactly as JS's `a + b * c`. Every float32 operand is widened with
 * f64x2.promote_low_f32x4 (exact). Imports the shared arena as env.memory; all addresses in bytes.
 *
 *   qk(qd, k, stride, count, d, scale, scores)
 *     scores[j] = ((s0 + s1) + (s2 + s3)) · scale for j < count, the dot product of the float64 row
 *     qd [d] with the float32 key row k + j·stride, where s_r sums q[i]·k[i] over i ≡ r (mod 4),
 *     i < d & ~3, in increasing i, and s0 then goes on over the tail i ≥ d & ~3: lanes (s0, s1) and
 *     (s2, s3) of two f64x2 accumulators, four positions a pass, then one.
 *   pv(p, v, stride, count, d, acc)
 *     acc[i] = (((acc[i] + p[0]·v_0[i]) + p[1]·v_1[i]) + …) + p[count−1]·v_{count−1}[i] for i < d
 *     (acc zeroed by the caller), float64 p [count] and acc [d], float32 rows v_j = v + j·stride:
 *     four positions a pass, each pass one sweep of the four rows in increasing i (sequential
 *     reads: a head's rows are kvDim apart, which maps them to the same cache sets, so a row is
 *     read once, not once per tile), tiles of 16 outputs in registers across the four terms.
 */
import { F64, FnBuilder, I32, V128, buildModule, op, simd, uleb } from './wasm-emitter.js';

/** Positions of one qk pass (its accumulators stay in registers). */
const QK_POSITIONS = 4;
/** Positions of one pv pass (each output's register gets their terms in position order). */
const PV_POSITIONS = 4;
/** Vectors of a pv tile (16 outputs). */
const PV_TILE = 8;

/** f64x2 of the two float32 at addr (on the stack), widened. */
function loadF32Pair(b: FnBuilder, offset: number): void {
  b.simd(simd.v128Load64Zero, 3, ...uleb(offset)).simd(simd.f64x2PromoteLowF32x4);
}

/** One qk pass over P positions starting at key row `row` and score slot `out`. */
function qkPass(b: FnBuilder, P: number): void {
  const kRow = (j: number) => `k${j}`;
  b.get('row').set(kRow(0));
  for (let j = 1; j < P; j++) b.get(kRow(j - 1)).get('stride').emit(op.i32Add).set(kRow(j));
  for (let j = 0; j < P; j++) b.v128Zero().set(`a${j}`).v128Zero().set(`b${j}`);
  // vector part: i (bytes of float32) over [0, d4Bytes), 16 a pass: four elements, two lanes each accumulator
  b.i32(0).set('i');
  b.loop(() => b.get('i').get('d4Bytes').emit(op.i32GeU), () => {
    b.get('qd').get('i').i32(1).emit(op.i32Shl).emit(op.i32Add).set('qa');
    b.get('qa').v128Load(0).set('q01');
    b.get('qa').v128Load(16).set('q23');
    for (let j = 0; j < P; j++) {
      b.get(`a${j}`).get('q01').get(kRow(j)).get('i').emit(op.i32Add);
      loadF32Pair(b, 0);
      b.simd(simd.f64x2Mul).simd(simd.f64x2Add).set(`a${j}`);
      b.get(`b${j}`).get('q23').get(kRow(j)).get('i').emit(op.i32Add);
      loadF32Pair(b, 8);
      b.simd(simd.f64x2Mul).simd(simd.f64x2Add).set(`b${j}`);
    }
    b.addTo('i', 16);
  });
  // s0 = lane 0 of a, then the tail i ≥ d & ~3 added to it in increasing i
  for (let j = 0; j < P; j++) b.get(`a${j}`).simd(simd.f64x2ExtractLane, 0).set(`s${j}`);
  b.loop(() => b.get('i').get('dBytes').emit(op.i32GeU), () => {
    b.get('qd').get('i').i32(1).emit(op.i32Shl).emit(op.i32Add).emit(op.f64Load, 3, 0).set('qs');
    for (let j = 0; j < P; j++) {
      b.get(`s${j}`).get('qs').get(kRow(j)).get('i').emit(op.i32Add, op.f32Load, 2, 0, op.f64PromoteF32, op.f64Mul, op.f64Add).set(`s${j}`);
    }
    b.addTo('i', 4);
  });
  // scores[j] = ((s0 + s1) + (s2 + s3)) · scale
  for (let j = 0; j < P; j++) {
    b.get('out');
    b.get(`s${j}`).get(`a${j}`).simd(simd.f64x2ExtractLane, 1).emit(op.f64Add);
    b.get(`b${j}`).simd(simd.f64x2ExtractLane, 0).get(`b${j}`).simd(simd.f64x2ExtractLane, 1).emit(op.f64Add);
    b.emit(op.f64Add).get('scale').emit(op.f64Mul);
    b.emit(op.f64Store, 3, ...uleb(8 * j));
  }
  b.get(kRow(P - 1)).get('stride').emit(op.i32Add).set('row');
  b.addTo('out', 8 * P);
}

function qkFunction(): FnBuilder {
  const b = new FnBuilder('qk', [['qd', I32], ['k', I32], ['stride', I32], ['count', I32], ['d', I32], ['scale', F64], ['scores', I32]]);
  b.local('i', I32).local('qa', I32).local('row', I32).local('out', I32).local('end', I32).local('d4Bytes', I32).local('dBytes', I32);
  for (let j = 0; j < QK_POSITIONS; j++) b.local(`k${j}`, I32).local(`a${j}`, V128).local(`b${j}`, V128).local(`s${j}`, F64);
  b.local('q01', V128).local('q23', V128).local('qs', F64);
  b.get('d').i32(2).emit(op.i32Shl).set('dBytes');
  b.get('d').i32(-4).emit(op.i32And).i32(2).emit(op.i32Shl).set('d4Bytes');
  b.get('k').set('row');
  b.get('scores').set('out');
  // end = scores + 8·count; passes of QK_POSITIONS while they fit, then one position a pass
  b.get('scores').get('count').i32(3).emit(op.i32Shl).emit(op.i32Add).set('end');
  b.loop(() => b.get('out').i32(8 * QK_POSITIONS).emit(op.i32Add).get('end').emit(op.i32GtU), () => qkPass(b, QK_POSITIONS));
  b.loop(() => b.get('out').get('end').emit(op.i32GeU), () => qkPass(b, 1));
  return b;
}

/** Terms of P positions added to W vectors of acc at `a` (two outputs each), float32 offset `i` in the rows. */
function pvTile(b: FnBuilder, P: number, W: number): void {
  for (let w = 0; w < W; w++) b.get('a').v128Load(16 * w).set(`c${w}`);
  for (let j = 0; j < P; j++) {
    b.get(`v${j}`).get('i').emit(op.i32Add).set('va');
    for (let w = 0; w < W; w++) {
      b.get(`c${w}`).get(`p${j}`).get('va');
      loadF32Pair(b, 8 * w);
      b.simd(simd.f64x2Mul).simd(simd.f64x2Add).set(`c${w}`);
    }
  }
  for (let w = 0; w < W; w++) b.get('a').get(`c${w}`).simd(simd.v128Store, 4, ...uleb(16 * w));
  b.addTo('i', 8 * W);
  b.addTo('a', 16 * W);
}

/**
 * One pv pass: acc[i] = (((acc[i] + p_0·v_0[i]) + p_1·v_1[i]) + …) for the P positions at rows
 * row + j·stride and weights p + 8j, every output i < d: sixteen a tile (in registers across the
 * P terms), then two, then the odd last one.
 */
function pvPass(b: FnBuilder, P: number): void {
  for (let j = 0; j < P; j++) {
    if (j > 0) b.get(`v${j - 1}`).get('stride').emit(op.i32Add).set(`v${j}`);
    else b.get('row').set('v0');
    b.get('p').simd(simd.v128Load64Splat, 3, ...uleb(8 * j)).set(`p${j}`);
  }
  // i: bytes of float32 in the rows; a: the matching float64 address in acc
  b.i32(0).set('i');
  b.get('acc').set('a');
  b.loop(() => b.get('i').get('d16Bytes').emit(op.i32GeU), () => pvTile(b, P, PV_TILE));
  b.loop(() => b.get('i').get('d2Bytes').emit(op.i32GeU), () => pvTile(b, P, 1));
  // odd d: the last output, the same sums in scalar
  b.get('i').get('dBytes').emit(op.i32Ne, op.if, op.empty);
  b.get('a').get('a').emit(op.f64Load, 3, 0);
  for (let j = 0; j < P; j++) {
    b.get(`p${j}`).simd(simd.f64x2ExtractLane, 0).get(`v${j}`).get('i').emit(op.i32Add, op.f32Load, 2, 0, op.f64PromoteF32, op.f64Mul, op.f64Add);
  }
  b.emit(op.f64Store, 3, 0, op.end);
  b.get(`v${P - 1}`).get('stride').emit(op.i32Add).set('row');
  b.addTo('p', 8 * P);
}

/** pv: see the header; positions PV_POSITIONS a pass, then one. */
function pvFunction(): FnBuilder {
  const b = new FnBuilder('pv', [['p', I32], ['v', I32], ['stride', I32], ['count', I32], ['d', I32], ['acc', I32]]);
  b.local('end', I32).local('row', I32).local('i', I32).local('a', I32).local('va', I32).local('d16Bytes', I32).local('d2Bytes', I32).local('dBytes', I32);
  for (let j = 0; j < PV_POSITIONS; j++) b.local(`v${j}`, I32).local(`p${j}`, V128);
  for (let w = 0; w < PV_TILE; w++) b.local(`c${w}`, V128);
  b.get('d').i32(2).emit(op.i32Shl).set('dBytes');
  b.get('d').i32(-2).emit(op.i32And).i32(2).emit(op.i32Shl).set('d2Bytes');
  b.get('d').i32(-16).emit(op.i32And).i32(2).emit(op.i32Shl).set('d16Bytes');
  b.get('v').set('row');
  b.get('p').get('count').i32(3).emit(op.i32Shl).emit(op.i32Add).set('end');
  b.loop(() => b.get('p').i32(8 * PV_POSITIONS).emit(op.i32Add).get('end').emit(op.i32GtU), () => pvPass(b, PV_POSITIONS));
  b.loop(() => b.get('p').get('end').emit(op.i32GeU), () => pvPass(b, 1));
  return b;
}

/** The module bytes (shared memory import of at most maxPages pages). */
export function buildAttentionWasmModule(maxPages: number): Uint8Array<ArrayBuffer> {
  return buildModule([qkFunction(), pvFunction()], maxPages);
}
