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

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

const op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  f32Load: 0x2a,
  f32Store: 0x38,
  i32Const: 0x41,
  f32Const: 0x43,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Shl: 0x74,
  i32Mul: 0x6c,
  f32Add: 0x92,
  f32Mul: 0x94,
  empty: 0x40,
  simd: 0xfd,
} as const;

const simd = {
  v128Load: 0x00,
  v128Const: 0x0c,
  f32x4ExtractLane: 0x1f,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
} as const;

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function name(s: string): number[] {
  const bytes = [...Buffer.from(s, 'utf8')];
  return [...uleb(bytes.length), ...bytes];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

/** Function body builder with named locals. */
class Body {
  readonly code: number[] = [];
  private readonly locals = new Map<string, number>();
  private readonly extraTypes: number[] = [];
  private next: number;

  constructor(params: readonly string[]) {
    params.forEach((p, i) => this.locals.set(p, i));
    this.next = params.length;
  }

  local(nameOf: string, type: number): void {
    this.locals.set(nameOf, this.next++);
    this.extraTypes.push(type);
  }

  idx(nameOf: string): number {
    const i = this.locals.get(nameOf);
    if (i === undefined) throw new Error(`wasm emitter: unknown local ${nameOf}`);
    return i;
  }

  emit(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  get(nameOf: string): this {
    return this.emit(op.localGet, ...uleb(this.idx(nameOf)));
  }
  set(nameOf: string): this {
    return this.emit(op.localSet, ...uleb(this.idx(nameOf)));
  }
  i32(value: number): this {
    return this.emit(op.i32Const, ...sleb(value));
  }
  simd(opcode: number, ...imm: number[]): this {
    return this.emit(op.simd, ...uleb(opcode), ...imm);
  }

  /** The encoded body: local declarations (run-length by type), code, end. */
  encode(): number[] {
    const groups: number[][] = [];
    for (const type of this.extraTypes) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === type) last[0]!++;
      else groups.push([1, type]);
    }
    const body = [...uleb(groups.length), ...groups.flatMap(([count, type]) => [...uleb(count!), type!]), ...this.code, op.end];
    return [...uleb(body.length), ...body];
  }
}

/** Params of dot{C}x{T}: x0…x{T−1}, w, k, out0…out{T−1}. */
function dotParams(tokens: number): string[] {
  const xs = Array.from({ length: tokens }, (_, t) => `x${t}`);
  const outs = Array.from({ length: tokens }, (_, t) => `out${t}`);
  return [...xs, 'w', 'k', ...outs];
}

function dotBody(channels: number, tokens: number): number[] {
  const b = new Body(dotParams(tokens));
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
  return b.encode();
}

/** The module bytes, exporting dot{C}x{T} for each block; its memory import is shared, maxPages pages at most. */
export function buildMatmulF32WasmModule(
  maxPages: number,
  blocks: readonly (readonly [number, number])[] = WASM_DOT_BLOCKS,
): Uint8Array<ArrayBuffer> {
  const types = blocks.map(([, t]) => [0x60, ...vec(dotParams(t).map(() => [I32])), ...vec([])]);
  const memoryImport = [...name('env'), ...name('memory'), 0x02, 0x03, ...uleb(0), ...uleb(maxPages)];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([memoryImport])),
    ...section(3, vec(blocks.map((_, i) => uleb(i)))),
    ...section(7, vec(blocks.map((blk, i) => [...name(wasmDotName(blk)), 0x00, ...uleb(i)]))),
    ...section(10, vec(blocks.map(([c, t]) => dotBody(c, t)))),
  ];
  return Uint8Array.from(bytes);
}
