/**
 * Emits the bytes of a tiny WebAssembly SIMD module for f32 dot-product blocks, so no WASM
 * toolchain is needed: the module is generated here from TypeScript and compiled at run time.
 *
 * It imports a shared memory as env.memory (the arena of src/tensor/shared.ts) and exports
 *
 *   dot{C}x{T}(x_0 … x_{T−1}, w, k, out_0 … out_{T−1})          (all i32 byte addresses / counts)
 *
 * which for token rows x_t (k floats each) and C consecutive weight rows starting at w
 * (row c at w + 4·k·c) stores out_t[c] = Σ_i x_t[i] · w_c[i] as f32, for c < C, t < T.
 * The k loop is f32x4: C·T vector accumulators, one f32x4 load per token and per weight row
 * every 4 elements (each weight vector is reused by the T tokens), then a scalar loop over the
 * k mod 4 tail; lanes are summed ((l0 + l1) + (l2 + l3)) + tail at the end.
 */

/** Register-block shapes the module exports: [channels C, tokens T]. */
export const WASM_DOT_BLOCKS = [
  [4, 2],
  [4, 1],
  [1, 1],
] as const;

export type WasmDotBlock = (typeof WASM_DOT_BLOCKS)[number];

export function wasmDotName([c, t]: readonly [number, number]): string {
  return `dot${c}x${t}`;
}

import { F32, FnBuilder, I32, V128, buildModule, op, simd, uleb } from './wasm-emitter.js';

/** Params of dot{C}x{T}: x0…x{T−1}, w, k, out0…out{T−1}. */
function dotParams(tokens: number): string[] {
  const xs = Array.from({ length: tokens }, (_, t) => `x${t}`);
  const outs = Array.from({ length: tokens }, (_, t) => `out${t}`);
  return [...xs, 'w', 'k', ...outs];
}

function dotFunction(channels: number, tokens: number): FnBuilder {
  const b = new FnBuilder(wasmDotName([channels, tokens]), dotParams(tokens).map((p) => [p, I32] as const));
  const C = channels;
  const T = tokens;
  b.local('kBytes', I32);
  b.local('kVecBytes', I32);
  b.local('i', I32);
  for (let c = 1; c < C; c++) b.local(`w${c}`, I32);
  for (let c = 0; c < C; c++) for (let t = 0; t < T; t++) b.local(`acc${c}_${t}`, V128);
  for (let t = 0; t < T; t++) b.local(`xv${t}`, V128);
  b.local('wv', V128);
  for (let c = 0; c < C; c++) for (let t = 0; t < T; t++) b.local(`tail${c}_${t}`, F32);
  for (let t = 0; t < T; t++) b.local(`xs${t}`, F32);
  b.local('ws', F32);
  const wRow = (c: number) => (c === 0 ? 'w' : `w${c}`);

  // kBytes = k·4; kVecBytes = (k & ~3)·4; w_c = w + c·kBytes
  b.get('k').i32(2).emit(op.i32Shl).set('kBytes');
  b.get('k').i32(-4).emit(op.i32And).i32(2).emit(op.i32Shl).set('kVecBytes');
  for (let c = 1; c < C; c++) b.get('w').get('kBytes').i32(c).emit(op.i32Mul).emit(op.i32Add).set(`w${c}`);

  // vector loop: i = 0; while (i < kVecBytes) { … ; i += 16 }
  b.i32(0).set('i');
  b.emit(op.block, op.empty, op.loop, op.empty);
  b.get('i').get('kVecBytes').emit(op.i32GeU, op.brIf, 1);
  for (let t = 0; t < T; t++) b.get(`x${t}`).get('i').emit(op.i32Add).simd(simd.v128Load, 2, 0).set(`xv${t}`);
  for (let c = 0; c < C; c++) {
    b.get(wRow(c)).get('i').emit(op.i32Add).simd(simd.v128Load, 2, 0).set('wv');
    for (let t = 0; t < T; t++) {
      b.get(`acc${c}_${t}`).get(`xv${t}`).get('wv').simd(simd.f32x4Mul).simd(simd.f32x4Add).set(`acc${c}_${t}`);
    }
  }
  b.get('i').i32(16).emit(op.i32Add).set('i');
  b.emit(op.br, 0, op.end, op.end);

  // scalar tail: while (i < kBytes) { … ; i += 4 }
  b.emit(op.block, op.empty, op.loop, op.empty);
  b.get('i').get('kBytes').emit(op.i32GeU, op.brIf, 1);
  for (let t = 0; t < T; t++) b.get(`x${t}`).get('i').emit(op.i32Add, op.f32Load, 2, 0).set(`xs${t}`);
  for (let c = 0; c < C; c++) {
    b.get(wRow(c)).get('i').emit(op.i32Add, op.f32Load, 2, 0).set('ws');
    for (let t = 0; t < T; t++) {
      b.get(`tail${c}_${t}`).get(`xs${t}`).get('ws').emit(op.f32Mul, op.f32Add).set(`tail${c}_${t}`);
    }
  }
  b.get('i').i32(4).emit(op.i32Add).set('i');
  b.emit(op.br, 0, op.end, op.end);

  // out_t[c] = ((l0 + l1) + (l2 + l3)) + tail
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < C; c++) {
      const acc = `acc${c}_${t}`;
      b.get(`out${t}`);
      b.get(acc).simd(simd.f32x4ExtractLane, 0).get(acc).simd(simd.f32x4ExtractLane, 1).emit(op.f32Add);
      b.get(acc).simd(simd.f32x4ExtractLane, 2).get(acc).simd(simd.f32x4ExtractLane, 3).emit(op.f32Add);
      b.emit(op.f32Add).get(`tail${c}_${t}`).emit(op.f32Add);
      b.emit(op.f32Store, 2, ...uleb(4 * c));
    }
  }
  return b;
}

/** The module bytes, exporting dot{C}x{T} for each block; its memory import is shared, maxPages pages at most. */
export function buildMatmulF32WasmModule(
  maxPages: number,
  blocks: readonly (readonly [number, number])[] = WASM_DOT_BLOCKS,
): Uint8Array<ArrayBuffer> {
  return buildModule(blocks.map(([c, t]) => dotFunction(c, t)), maxPages);
}
