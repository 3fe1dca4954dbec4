/**
 * Emits the WASM SIMD module of the A8 integer linear kernels (W4A8 and W8A8), bit exact with
 * int-linear-reference.ts. It imports the shared arena memory (src/tensor/shared.ts) as env.memory.
 *
 * Data layout (all byte addresses in the arena; Gp = G rounded up to the block, gc = K / G):
 *  - weights: the packed format of src/quant/int4-pack.ts, read in place (Gp = G, the common case),
 *    or a copy with each group zero-padded to Gp: one row of gc·Gp/2 (W4) or gc·Gp (W8) bytes per
 *    output channel, read in blocks of 16 bytes v:
 *      W4, block of 32 inputs k0..k0+31, byte j = q[k0+2j] (low nibble) | q[k0+2j+1] (high), so the
 *        16-bit lane l of v holds q[k0+4l], q[k0+4l+1], q[k0+4l+2], q[k0+4l+3] in bits 0, 4, 8, 12;
 *        two 16-bit shifts (native on x86, unlike 8-bit ones) sign-extend each:
 *        w_i = i16x8.shr_s(i16x8.shl(v, 12 − 4i), 12) (w_3 = i16x8.shr_s(v, 12)), lane l = q[k0+4l+i]
 *      W8, block of 16 inputs k0..k0+15, byte j = q[k0+j]:
 *        w_0 = extend_low(v) = q[k0 .. k0+7], w_1 = extend_high(v) = q[k0+8 .. k0+15]
 *    Padded inputs have q = 0. (Gp = G rounded up to 32 for W4, 16 for W8.)
 *  - activations x16: int16 [M, gc·Gp], token rows contiguous, group g at [g·Gp, (g+1)·Gp), each
 *    block in the order of its weight vectors (activationSlot): W4 slot 8i + l holds the input
 *    w_i lane l weighs (k0 + 4l + i), W8 the inputs in order; so each w_i meets 8 consecutive int16
 *    activations.
 *    Padding slots may hold anything (their weights are 0).
 *  - relaxed W4 (groups unpadded, Gp = G): activations int8, per group a 16-byte correction vector
 *    [−8·Σ_{k∈g} x, 0, 0, 0] (i32) then the group's blocks of 32 bytes: lo (lane j = x[k0+2j]) and hi
 *    (lane j = x[k0+2j+1]); the weights are read as offset nibbles u = q + 8 ∈ [0, 15] (v ^ 0x88, then
 *    & 0x0f and >> 4 in 16-bit lanes & 0x0f), so i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u, acc) gets a
 *    7-bit second operand, where every lowering (pmaddubsw + pmaddwd, vpdpbusd) gives the same exact
 *    sums, and Σ x·u − 8·Σ x = Σ x·q.
 *  - scales: int32 S [N, gc] (integer scale) or f32 s [N, gc] (float scale); bias f32 [N] or 0;
 *    a f32 [M]; out f32 [M, N]; ovf u8 [M, N] (checked mode only).
 *
 * Math, per output (m, n): acc_g = Σ_{k∈g} x16·q via i32x4.dot_i16x8_s (4 partial lanes, exact; relaxed:
 *  the correction vector plus Σ x·u by the relaxed dot, lanes exact modulo 2^32, which is all the
 *  modes below need: the group sum and the proved total fit in int32), then
 *  - mode 'is' (integer scale, layer proved overflow-free): the group sums of up to 4 outputs transposed
 *    into one i32x4 (shuffle + add, as 'fs' below), times their channels' S[n,g] lane-wise, added into
 *    that chunk's i32x4 total (one multiply for 4 outputs; i32 arithmetic is exact modulo 2^32 and the
 *    proved total fits, so nothing is lost); y = f32(f32(f32(total)·a[m])·2^-b)
 *  - mode 'is-checked' (integer scale, no proof): acc_g summed to a scalar, total += acc_g·S in i64,
 *    ovf[m,n] = 1 when any partial |total| ≥ 2^31 (the caller throws as the reference does);
 *    y as above from f32(total).
 *  - mode 'fs' (float scale): t = f32(t + f32(f32(acc_g)·s[n,g])) over g in order; y = f32(a[m]·t).
 *    The group sums of up to 4 outputs are transposed into one i32x4 (shuffle + add) and the
 *    convert / multiply / add run on f32x4 lanes: lane-wise IEEE f32, the same as scalar.
 *  then y = f32(y + bias[n]) when bias ≠ 0. f32 ops here are IEEE single operations: they equal the
 *  reference's Math.fround of float64 ops (float64 is wide enough that the double rounding of
 *  +, × is innocuous, and int32 → f32 conversions round to nearest-even in both).
 *
 * Exports `k{bits}_{mode}_c{C}t{T}(n0, n1, x, a, out, outRow, w, sc, gc, bpg, bias, invAlpha, ovf)`:
 * outputs for channels [n0, n1) (a multiple of C of them) and tokens t = 0..T−1 starting at the
 * given x / a / out / ovf (token stride: the x row, outRow bytes for out, outRow/4 for ovf).
 * bpg = blocks per group = Gp/32 (W4) or Gp/16 (W8). Register block: C channels × T tokens;
 * per block of inputs each weight vector is unpacked once and reused by the T tokens, each
 * activation vector is loaded once and reused by the C channels.
 */
import { F32, FnBuilder, I32, I64, V128, buildModule, op, simd } from './wasm-emitter.js';

export type IntKernelMode = 'is' | 'is-checked' | 'fs';
export type IntKernelBits = 4 | 8;

/** Register blocks [C channels, T tokens] the module exports. */
export const INT_WASM_BLOCKS: readonly (readonly [number, number])[] = [
  [2, 4], [2, 2], [2, 1],
  [1, 4], [1, 2], [1, 1],
  [4, 1],
];
export const INT_WASM_MODES: readonly IntKernelMode[] = ['is', 'is-checked', 'fs'];

/** Inputs per 16-byte weight block. */
export function inputsPerBlock(bits: IntKernelBits): number {
  return bits === 4 ? 32 : 16;
}

/**
 * Where input i of a group (0 ≤ i < Gp) sits among the group's activation slots (see the layout
 * above). W4: within a block of 32, offset o goes to vector o & 3, lane o >> 2.
 */
export function activationSlot(bits: IntKernelBits, i: number): number {
  if (bits === 8) return i;
  const o = i & 31;
  return (i - o) + ((o & 3) << 3) + (o >> 2);
}

/**
 * Where input i of a group (0 ≤ i < G) sits in the relaxed W4 layout (see above): its byte after the
 * group's 16-byte correction vector; within a block of 32, the even inputs fill the first 16 bytes, the odd
 * ones the next 16.
 */
export function relaxedActivationByte(i: number): number {
  return 32 * (i >> 5) + 16 * (i & 1) + ((i & 31) >> 1);
}

/** The modes the relaxed W4 kernel serves ('is-checked' keeps the int16 kernel: its overflow report reads the int16 rows). */
export const INT_RELAXED_MODES: readonly IntKernelMode[] = ['is', 'fs'];

/** Bytes of one activation row: int16 blocks, or (relaxed) int8 blocks after a 16-byte correction per group. */
export function intActivationRowBytes(bits: IntKernelBits, groupCount: number, blocksPerGroup: number, relaxed = false): number {
  if (relaxed) return groupCount * (16 + 32 * blocksPerGroup);
  return groupCount * blocksPerGroup * (bits === 4 ? 64 : 32);
}

/** A block function's JS signature (see the header). */
export type BlockFn = (
  n0: number, n1: number, x: number, a: number, out: number, outRow: number, w: number,
  sc: number, gc: number, bpg: number, bias: number, invAlpha: number, ovf: number,
) => void;

/** [C2T4, C2T2, C2T1, C1T4, C1T2, C1T1, C4T1] of one (bits, mode). */
export type BlockTable = readonly [BlockFn, BlockFn, BlockFn, BlockFn, BlockFn, BlockFn, BlockFn];

export function intKernelName(bits: IntKernelBits, mode: IntKernelMode, c: number, t: number, relaxed = false): string {
  return `k${bits}${relaxed ? 'r' : ''}_${mode.replace('-', '_')}_c${c}t${t}`;
}

const PARAMS = [
  ['n0', I32], ['n1', I32], ['x', I32], ['a', I32], ['out', I32], ['outRow', I32], ['w', I32],
  ['sc', I32], ['gc', I32], ['bpg', I32], ['bias', I32], ['invAlpha', F32], ['ovf', I32],
] as const;

function kernel(bits: IntKernelBits, mode: IntKernelMode, C: number, T: number, relaxed = false): FnBuilder {
  if (relaxed && (bits !== 4 || !INT_RELAXED_MODES.includes(mode))) throw new Error(`no relaxed kernel for W${bits} ${mode}`);
  const f = new FnBuilder(intKernelName(bits, mode, C, T, relaxed), PARAMS);
  // weight vectors per 16-byte block: int16x8 (4 for W4, 2 for W8), or (relaxed) 2 of int8x16
  const vecs = relaxed ? 2 : bits === 4 ? 4 : 2;
  const xStep = relaxed ? 32 : 16 * vecs; // activation bytes per block
  const cs = [...Array(C).keys()];
  const ts = [...Array(T).keys()];
  f.local('n', I32).local('g', I32).local('b', I32).local('xRow', I32).local('wRow', I32).local('s', I32);
  for (const c of cs) f.local(`wp${c}`, I32).local(`sc${c}`, I32).local(`v${c}`, V128).local(`wi${c}`, V128);
  for (const t of ts) f.local(`xp${t}`, I32);
  f.local('xv', V128).local('y', F32);
  if (relaxed) {
    f.local('m88', V128).local('m0f', V128);
    f.simd(simd.v128Const, ...new Array<number>(16).fill(0x88)).set('m88');
    f.simd(simd.v128Const, ...new Array<number>(16).fill(0x0f)).set('m0f');
  }
  for (const c of cs) for (const t of ts) {
    f.local(`acc${c}_${t}`, V128);
    if (mode === 'is-checked') f.local(`tot${c}_${t}`, I64).local(`bad${c}_${t}`, I32);
  }
  // is / fs: the outputs (c, t) in chunks of up to 4, one running sum per chunk (lane j = output j): i32x4
  // (is) or f32x4 (fs)
  const chunks: [number, number][][] = [];
  for (const c of cs) for (const t of ts) {
    if (chunks.length === 0 || chunks[chunks.length - 1]!.length === 4) chunks.push([]);
    chunks[chunks.length - 1]!.push([c, t]);
  }
  if (mode !== 'is-checked') {
    chunks.forEach((_, j) => f.local(`ctot${j}`, V128));
    f.local('h0', V128).local('h1', V128);
    for (const c of cs) f.local(`s${c}`, mode === 'fs' ? F32 : I32);
  }

  // wRow = gc·bpg·16 bytes; xRow = gc·bpg·xStep bytes (+ gc·16 relaxed: a correction vector a group)
  f.get('gc').get('bpg').emit(op.i32Mul).i32(4).emit(op.i32Shl).set('wRow');
  f.get('gc').get('bpg').emit(op.i32Mul).i32(xStep).emit(op.i32Mul).set('xRow');
  if (relaxed) f.get('xRow').get('gc').i32(4).emit(op.i32Shl, op.i32Add).set('xRow');
  f.get('n0').set('n');
  f.loop(() => f.get('n').get('n1').emit(op.i32GeU), () => {
    for (const c of cs) {
      // wp_c = w + (n + c)·wRow; sc_c = sc + (n + c)·gc·4
      f.get('w').get('n').i32(c).emit(op.i32Add).get('wRow').emit(op.i32Mul, op.i32Add).set(`wp${c}`);
      f.get('sc').get('n').i32(c).emit(op.i32Add).get('gc').emit(op.i32Mul).i32(2).emit(op.i32Shl, op.i32Add).set(`sc${c}`);
    }
    for (const t of ts) f.get('x').get('xRow').i32(t).emit(op.i32Mul, op.i32Add).set(`xp${t}`);
    for (const c of cs) for (const t of ts) {
      if (mode === 'is-checked') f.i64(0).set(`tot${c}_${t}`).i32(0).set(`bad${c}_${t}`);
    }
    if (mode !== 'is-checked') chunks.forEach((_, j) => f.v128Zero().set(`ctot${j}`));
    f.i32(0).set('g');
    f.loop(() => f.get('g').get('gc').emit(op.i32GeU), () => {
      if (relaxed) {
        // acc = the group's correction vector [−8·Σx, 0, 0, 0] (the offset of the weights, below)
        for (const t of ts) {
          f.get(`xp${t}`).v128Load().set('xv');
          for (const c of cs) f.get('xv').set(`acc${c}_${t}`);
          f.addTo(`xp${t}`, 16);
        }
      } else {
        for (const c of cs) for (const t of ts) f.v128Zero().set(`acc${c}_${t}`);
      }
      f.i32(0).set('b');
      f.loop(() => f.get('b').get('bpg').emit(op.i32GeU), () => {
        for (const c of cs) {
          f.get(`wp${c}`).v128Load();
          if (relaxed) f.get('m88').simd(simd.v128Xor); // each nibble q + 8 ∈ [0, 15]
          f.set(`v${c}`);
        }
        for (let i = 0; i < vecs; i++) {
          for (const c of cs) unpack(f, bits, i, c, relaxed);
          for (const t of ts) {
            f.get(`xp${t}`).v128Load(16 * i).set('xv');
            for (const c of cs) {
              if (relaxed) f.get('xv').get(`wi${c}`).get(`acc${c}_${t}`).simd(simd.i32x4RelaxedDotI8x16I7x16AddS).set(`acc${c}_${t}`);
              else f.get(`acc${c}_${t}`).get('xv').get(`wi${c}`).simd(simd.i32x4DotI16x8S).simd(simd.i32x4Add).set(`acc${c}_${t}`);
            }
          }
        }
        for (const c of cs) f.addTo(`wp${c}`, 16);
        for (const t of ts) f.addTo(`xp${t}`, xStep);
        f.addTo('b', 1);
      });
      // group epilogue
      if (mode !== 'is-checked') {
        const fs = mode === 'fs';
        for (const c of cs) f.get(`sc${c}`).get('g').i32(2).emit(op.i32Shl, op.i32Add).emit(fs ? op.f32Load : op.i32Load, 2, 0).set(`s${c}`);
        chunks.forEach((chunk, j) => {
          // fs: ctot_j = ctot_j + f32(acc sums) · [s of each lane's channel], lane-wise (IEEE f32, as scalar);
          // is: ctot_j = ctot_j + acc sums · [S of each lane's channel] in i32 (one multiply for 4 outputs)
          lanesSums(f, chunk.map(([c, t]) => `acc${c}_${t}`));
          if (fs) f.simd(simd.f32x4ConvertI32x4S);
          f.get(`s${chunk[0]![0]}`).simd(fs ? simd.f32x4Splat : simd.i32x4Splat);
          chunk.forEach(([c], lane) => {
            if (c !== chunk[0]![0]) f.get(`s${c}`).simd(fs ? simd.f32x4ReplaceLane : simd.i32x4ReplaceLane, lane);
          });
          f.simd(fs ? simd.f32x4Mul : simd.i32x4Mul).get(`ctot${j}`).simd(fs ? simd.f32x4Add : simd.i32x4Add).set(`ctot${j}`);
        });
      } else {
        for (const c of cs) {
          f.get(`sc${c}`).get('g').i32(2).emit(op.i32Shl, op.i32Add).emit(op.i32Load, 2, 0).set('s');
          for (const t of ts) {
            const acc = `acc${c}_${t}`;
            const tot = `tot${c}_${t}`;
            f.get(tot);
            lanesSum(f, acc);
            f.emit(op.i64ExtendI32S).get('s').emit(op.i64ExtendI32S, op.i64Mul, op.i64Add).set(tot);
            // bad |= tot ≥ 2^31 | tot ≤ −2^31
            f.get(`bad${c}_${t}`).get(tot).i64(2 ** 31).emit(op.i64GeS).emit(op.i32Or);
            f.get(tot).i64(-(2 ** 31)).emit(op.i64LeS).emit(op.i32Or).set(`bad${c}_${t}`);
          }
        }
      }
      f.addTo('g', 1);
    });
    // output epilogue
    for (const c of cs) for (const t of ts) {
      const tot = `tot${c}_${t}`;
      // out + t·outRow + 4·(n + c)
      const outAddr = () => f.get('out').get('outRow').i32(t).emit(op.i32Mul, op.i32Add)
        .get('n').i32(c).emit(op.i32Add).i32(2).emit(op.i32Shl, op.i32Add);
      const flat = c * T + t;
      if (mode === 'fs') {
        f.get('a').emit(op.f32Load, 2, 4 * t).get(`ctot${flat >> 2}`).simd(simd.f32x4ExtractLane, flat & 3).emit(op.f32Mul).set('y');
      } else {
        if (mode === 'is') f.get(`ctot${flat >> 2}`).simd(simd.i32x4ExtractLane, flat & 3).emit(op.f32ConvertI32S);
        else f.get(tot).emit(op.f32ConvertI64S);
        f.get('a').emit(op.f32Load, 2, 4 * t).emit(op.f32Mul).get('invAlpha').emit(op.f32Mul).set('y');
      }
      // if (bias) y = y + bias[n + c]
      f.get('bias').emit(op.if, op.empty);
      f.get('y').get('bias').get('n').i32(c).emit(op.i32Add).i32(2).emit(op.i32Shl, op.i32Add).emit(op.f32Load, 2, 0).emit(op.f32Add).set('y');
      f.emit(op.end);
      outAddr();
      f.get('y').emit(op.f32Store, 2, 0);
      if (mode === 'is-checked') {
        // ovf + t·outRow/4 + n + c
        f.get('ovf').get('outRow').i32(2).emit(op.i32ShrU).i32(t).emit(op.i32Mul, op.i32Add).get('n').i32(c).emit(op.i32Add, op.i32Add);
        f.get(`bad${c}_${t}`).emit(op.i32Store8, 0, 0);
      }
    }
    f.addTo('n', C);
  });
  return f;
}

/** Leaves the i32 sum of the 4 lanes of v128 local `v` on the stack. */
function lanesSum(f: FnBuilder, v: string): void {
  f.get(v).simd(simd.i32x4ExtractLane, 0).get(v).simd(simd.i32x4ExtractLane, 1).emit(op.i32Add);
  f.get(v).simd(simd.i32x4ExtractLane, 2).get(v).simd(simd.i32x4ExtractLane, 3).emit(op.i32Add);
  f.emit(op.i32Add);
}

/** i8x16.shuffle picking i32 lanes (0..3 of the first operand, 4..7 of the second). */
function shuffle32(f: FnBuilder, lanes: readonly number[]): void {
  f.simd(simd.i8x16Shuffle, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
}

/**
 * Leaves an i32x4 whose lane j is the sum of the 4 lanes of accs[j] (1 to 4 v128 locals; the
 * lanes past accs.length hold garbage), by two transposing shuffle+add rounds.
 */
function lanesSums(f: FnBuilder, accs: readonly string[]): void {
  const [a, b = a, c = a, d = c] = accs;
  // h0 = [a0+a2, b0+b2, a1+a3, b1+b3], h1 = the same for c, d
  f.get(a!).get(b!); shuffle32(f, [0, 4, 1, 5]);
  f.get(a!).get(b!); shuffle32(f, [2, 6, 3, 7]);
  f.simd(simd.i32x4Add).set('h0');
  if (accs.length > 2) {
    f.get(c!).get(d!); shuffle32(f, [0, 4, 1, 5]);
    f.get(c!).get(d!); shuffle32(f, [2, 6, 3, 7]);
    f.simd(simd.i32x4Add).set('h1');
  } else {
    f.get('h0').set('h1');
  }
  f.get('h0').get('h1'); shuffle32(f, [0, 1, 4, 5]);
  f.get('h0').get('h1'); shuffle32(f, [2, 3, 6, 7]);
  f.simd(simd.i32x4Add);
}

/** wi_c = weight vector i (int16x8, or relaxed int8x16) of channel c's 16-byte block v_c (see the layout above). */
function unpack(f: FnBuilder, bits: IntKernelBits, i: number, c: number, relaxed: boolean): void {
  const [v, wi] = [`v${c}`, `wi${c}`];
  if (relaxed) {
    // v_c holds the offset nibbles: byte j & 0x0f = q[k0+2j] + 8 (i = 0), byte j >> 4 = q[k0+2j+1] + 8 (i = 1)
    f.get(v);
    if (i === 1) f.i32(4).simd(simd.i16x8ShrU);
    f.get('m0f').simd(simd.v128And).set(wi);
    return;
  }
  if (bits === 8) {
    f.get(v).simd(i % 2 === 0 ? simd.i16x8ExtendLowI8x16S : simd.i16x8ExtendHighI8x16S).set(wi);
    return;
  }
  f.get(v);
  if (i < 3) f.i32(12 - 4 * i).simd(simd.i16x8Shl);
  f.i32(12).simd(simd.i16x8ShrS).set(wi);
}

/**
 * `touch(p, end, sink)`: reads [p, end) a 64-byte line at a time (16 bytes of each), four lines an iteration
 * while four fit (loads whose addresses do not wait on each other, so many misses are in flight), then one a
 * time, and stores an i32 of what it read at sink (the caller's own output, overwritten after): a weight tile
 * pulled into the caches before the register blocks walk it. end − p must be a multiple of 16 (whole weight
 * rows); no load reaches past end (a tile at the end of the arena's memory would trap).
 */
function touch(): FnBuilder {
  const f = new FnBuilder('touch', [['p', I32], ['end', I32], ['sink', I32]]);
  f.local('acc', V128);
  f.v128Zero().set('acc');
  f.loop(() => f.get('p').i32(256).emit(op.i32Add).get('end').emit(op.i32GtU), () => {
    for (let line = 0; line < 4; line++) f.get('acc').get('p').v128Load(64 * line).simd(simd.v128Xor).set('acc');
    f.addTo('p', 256);
  });
  f.loop(() => f.get('p').get('end').emit(op.i32GeU), () => {
    f.get('acc').get('p').v128Load().simd(simd.v128Xor).set('acc');
    f.addTo('p', 64);
  });
  f.get('sink').get('acc').simd(simd.i32x4ExtractLane, 0).emit(op.i32Store, 2, 0);
  return f;
}

/** The module bytes; its memory import is shared, maxPages pages at most. */
export function buildIntLinearWasmModule(maxPages: number): Uint8Array<ArrayBuffer> {
  const fns: FnBuilder[] = [touch()];
  for (const bits of [4, 8] as const) {
    for (const mode of INT_WASM_MODES) for (const [c, t] of INT_WASM_BLOCKS) fns.push(kernel(bits, mode, c!, t!));
  }
  return buildModule(fns, maxPages);
}

/** The relaxed W4 kernels' module (a runtime without relaxed SIMD refuses it; the int16 module still serves). */
export function buildIntLinearRelaxedWasmModule(maxPages: number): Uint8Array<ArrayBuffer> {
  const fns: FnBuilder[] = [];
  for (const mode of INT_RELAXED_MODES) for (const [c, t] of INT_WASM_BLOCKS) fns.push(kernel(4, mode, c!, t!, true));
  return buildModule(fns, maxPages);
}
