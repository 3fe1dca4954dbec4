/**
 * A minimal WebAssembly binary emitter for the CPU kernels (no toolchain: the module bytes of the
 * f32 matmul and the integer kernels are generated from TypeScript and compiled at run time).
 *
 * `FnBuilder` writes one function body with named locals; `buildModule` wraps functions into a
 * module that imports a shared memory as env.memory and exports every function by name.
 * Only the opcodes the kernels use are listed.
 */

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64 | typeof V128;

export const op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  f64Load: 0x2b,
  i32Store: 0x36,
  f32Store: 0x38,
  f64Store: 0x39,
  i32Store8: 0x3a,
  i32Const: 0x41,
  f32Const: 0x43,
  f64Const: 0x44,
  i64Const: 0x42,
  i32Eqz: 0x45,
  i32Ne: 0x47,
  i32GtU: 0x4b,
  i32GeU: 0x4f,
  f32Eq: 0x5b,
  f32Lt: 0x5d,
  i64LeS: 0x57,
  i64GeS: 0x59,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Or: 0x72,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  i64Add: 0x7c,
  i64Mul: 0x7e,
  f32Add: 0x92,
  f32Mul: 0x94,
  f64Add: 0xa0,
  f64Mul: 0xa2,
  f64Div: 0xa3,
  i64ExtendI32S: 0xac,
  f32ConvertI32S: 0xb2,
  f32ConvertI64S: 0xb4,
  f32DemoteF64: 0xb6,
  f64PromoteF32: 0xbb,
  empty: 0x40,
  simd: 0xfd,
} as const;

export const simd = {
  v128Load: 0x00,
  v128Load64Splat: 0x0a,
  v128Store: 0x0b,
  v128Const: 0x0c,
  i8x16Shuffle: 0x0d,
  i32x4Splat: 0x11,
  f32x4Splat: 0x13,
  f64x2Splat: 0x14,
  i32x4ExtractLane: 0x1b,
  i32x4ReplaceLane: 0x1c,
  f32x4ExtractLane: 0x1f,
  f32x4ReplaceLane: 0x20,
  f64x2ExtractLane: 0x21,
  v128And: 0x4e,
  v128Xor: 0x51,
  v128Load64Zero: 0x5d,
  f64x2PromoteLowF32x4: 0x5f,
  i8x16NarrowI16x8S: 0x65,
  i32x4ExtaddPairwiseI16x8S: 0x7e,
  i16x8NarrowI32x4S: 0x85,
  i16x8ExtendLowI8x16S: 0x87,
  i16x8ExtendHighI8x16S: 0x88,
  i16x8Shl: 0x8b,
  i16x8ShrS: 0x8c,
  i16x8ShrU: 0x8d,
  i16x8Add: 0x8e,
  f64x2Nearest: 0x94,
  i16x8MinS: 0x96,
  i16x8MaxS: 0x98,
  i32x4Add: 0xae,
  i32x4Mul: 0xb5,
  i32x4DotI16x8S: 0xba,
  f32x4Abs: 0xe0,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
  f32x4Pmax: 0xeb,
  f64x2Add: 0xf0,
  f64x2Mul: 0xf2,
  f64x2Div: 0xf3,
  f32x4ConvertI32x4S: 0xfa,
  i32x4TruncSatF64x2SZero: 0xfc,
  /** relaxed SIMD (a runtime may refuse it: build such functions into a module of their own) */
  i32x4RelaxedDotI8x16I7x16AddS: 0x113,
} as const;

export function uleb(value: number): number[] {
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

/** Signed LEB128 of any safe integer (i32 and i64 constants). */
export function sleb(value: number): number[] {
  const out: number[] = [];
  let v = BigInt(value);
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
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

/** One function: typed params, named locals, and a code buffer. */
export class FnBuilder {
  readonly code: number[] = [];
  private readonly locals = new Map<string, number>();
  private readonly localTypes: ValType[] = [];
  private next: number;

  constructor(readonly exportName: string, readonly params: readonly (readonly [string, ValType])[]) {
    params.forEach(([p], i) => this.locals.set(p, i));
    this.next = params.length;
  }

  local(localName: string, type: ValType): this {
    if (this.locals.has(localName)) throw new Error(`wasm emitter: local ${localName} declared twice`);
    this.locals.set(localName, this.next++);
    this.localTypes.push(type);
    return this;
  }

  private idx(localName: string): number {
    const i = this.locals.get(localName);
    if (i === undefined) throw new Error(`wasm emitter: unknown local ${localName}`);
    return i;
  }

  emit(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }
  get(localName: string): this {
    return this.emit(op.localGet, ...uleb(this.idx(localName)));
  }
  set(localName: string): this {
    return this.emit(op.localSet, ...uleb(this.idx(localName)));
  }
  i32(value: number): this {
    return this.emit(op.i32Const, ...sleb(value));
  }
  i64(value: number): this {
    return this.emit(op.i64Const, ...sleb(value));
  }
  simd(opcode: number, ...imm: number[]): this {
    return this.emit(op.simd, ...uleb(opcode), ...imm);
  }
  /** v128.load with a constant byte offset (address on the stack). */
  v128Load(offset = 0): this {
    return this.simd(simd.v128Load, 4, ...uleb(offset));
  }
  /** An all-zero v128 on the stack. */
  v128Zero(): this {
    return this.simd(simd.v128Const, ...new Array<number>(16).fill(0));
  }
  /** local = local + delta (i32). */
  addTo(localName: string, delta: number): this {
    return this.get(localName).i32(delta).emit(op.i32Add).set(localName);
  }
  /** `while (cond) { body }` with cond emitted by `exitWhen` (leaves an i32: nonzero exits). */
  loop(exitWhen: () => void, body: () => void): this {
    this.emit(op.block, op.empty, op.loop, op.empty);
    exitWhen();
    this.emit(op.brIf, 1);
    body();
    this.emit(op.br, 0, op.end, op.end);
    return this;
  }

  /** The type signature (params → no results) and the encoded body. */
  typeBytes(): number[] {
    return [0x60, ...vec(this.params.map(([, t]) => [t])), ...vec([])];
  }
  bodyBytes(): number[] {
    const groups: [number, ValType][] = [];
    for (const type of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === type) last[0]++;
      else groups.push([1, type]);
    }
    const body = [...uleb(groups.length), ...groups.flatMap(([count, type]) => [...uleb(count), type]), ...this.code, op.end];
    return [...uleb(body.length), ...body];
  }
}

/** A module importing env.memory (shared, at most maxPages) and exporting every function by its name. */
export function buildModule(fns: readonly FnBuilder[], maxPages: number): Uint8Array<ArrayBuffer> {
  const memoryImport = [...name('env'), ...name('memory'), 0x02, 0x03, ...uleb(0), ...uleb(maxPages)];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(fns.map((f) => f.typeBytes()))),
    ...section(2, vec([memoryImport])),
    ...section(3, vec(fns.map((_, i) => uleb(i)))),
    ...section(7, vec(fns.map((f, i) => [...name(f.exportName), 0x00, ...uleb(i)]))),
    ...section(10, vec(fns.map((f) => f.bodyBytes()))),
  ];
  return Uint8Array.from(bytes);
}
