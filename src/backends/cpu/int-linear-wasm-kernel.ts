/**
 * Row kernel of the WASM SIMD A8 integer linear: out[m, n] for every token m and the output
 * channels n ∈ [nStart, nEnd), registered in the pool (pool/kernels.ts) so channels can be split
 * across threads. Every operand is an arena byte address (see int-linear-wasm-module.ts for the
 * layouts and the math); args hold only numbers, so posting a job copies nothing.
 *
 * Channels go in tiles of about 64 KiB of weights (for M > 4); within a tile tokens go in register
 * blocks of 4, then 2, then 1, and channels in pairs, then a last single one.
 * Each thread instantiates the module once, on the arena memory it shares with the others.
 */
import { arenaMemory, ARENA_MAX_PAGES } from '../../tensor/shared.js';
import {
  buildIntLinearWasmModule,
  intKernelName,
  INT_WASM_MODES,
  type IntKernelBits,
  type IntKernelMode,
} from './int-linear-wasm-module.js';
import type { KernelArgs } from './pool/types.js';

export interface IntLinearWasmArgs extends KernelArgs {
  /** arena byte addresses: int16 activations [M, gc·Gp], a [M] f32, out [M, N] f32, ovf [M, N] u8 (or 0) */
  readonly x: number;
  readonly a: number;
  readonly out: number;
  readonly ovf: number;
  /** arena byte addresses of the prepared layer (int-linear-prepared.ts); bias 0 when none */
  readonly w: number;
  readonly sc: number;
  readonly bias: number;
  readonly m: number;
  readonly n: number;
  readonly groupCount: number;
  readonly blocksPerGroup: number;
  readonly invAlpha: number;
  readonly bits: IntKernelBits;
  /** index into INT_WASM_MODES */
  readonly mode: number;
}

type BlockFn = (
  n0: number, n1: number, x: number, a: number, out: number, outRow: number, w: number,
  sc: number, gc: number, bpg: number, bias: number, invAlpha: number, ovf: number,
) => void;

/** [C2T4, C2T2, C2T1, C1T4, C1T2, C1T1, C4T1] of one (bits, mode). */
type BlockTable = readonly [BlockFn, BlockFn, BlockFn, BlockFn, BlockFn, BlockFn, BlockFn];

let tables: Map<string, BlockTable> | null | undefined;

function instantiate(): Map<string, BlockTable> | null {
  const memory = arenaMemory();
  if (memory === null) return null;
  try {
    const module = new WebAssembly.Module(buildIntLinearWasmModule(ARENA_MAX_PAGES));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, BlockFn>;
    const map = new Map<string, BlockTable>();
    for (const bits of [4, 8] as const) {
      for (const mode of INT_WASM_MODES) {
        const fn = (c: number, t: number) => exports[intKernelName(bits, mode, c, t)]!;
        map.set(`${bits}${mode}`, [fn(2, 4), fn(2, 2), fn(2, 1), fn(1, 4), fn(1, 2), fn(1, 1), fn(4, 1)]);
      }
    }
    return map;
  } catch {
    return null;
  }
}

function blockTables(): Map<string, BlockTable> | null {
  if (tables === undefined) tables = instantiate();
  return tables;
}

/** Whether the WASM SIMD integer kernel can run in this thread (shared arena + SIMD). */
export function wasmIntLinearAvailable(): boolean {
  return blockTables() !== null;
}

/** Bytes of one int16 activation row. */
export function intActivationRowBytes(bits: IntKernelBits, groupCount: number, blocksPerGroup: number): number {
  return groupCount * blocksPerGroup * (bits === 4 ? 64 : 32);
}

/** Weight bytes of one channel tile: the tile stays in cache while every token block passes over it. */
const TILE_BYTES = 1 << 16;

export function intLinearWasmRows(args: IntLinearWasmArgs, nStart: number, nEnd: number): void {
  const all = blockTables();
  if (all === null) throw new Error('the WASM SIMD integer kernel is not available in this thread');
  const mode: IntKernelMode = INT_WASM_MODES[args.mode]!;
  const fns = all.get(`${args.bits}${mode}`)!;
  const { x, a, out, ovf, w, sc, bias, m: M, n: N, groupCount: gc, blocksPerGroup: bpg, invAlpha } = args;
  const xRow = intActivationRowBytes(args.bits, gc, bpg);
  const outRow = 4 * N;
  const tile = M <= 4 ? nEnd - nStart : Math.max(2, Math.floor(TILE_BYTES / (gc * bpg * 16)) & ~1);
  for (let n0 = nStart; n0 < nEnd; n0 += tile) {
    const n1 = Math.min(nEnd, n0 + tile);
    const nPairs = n0 + ((n1 - n0) & ~1);
    const nQuads = n0 + ((n1 - n0) & ~3);
    let m = 0;
    for (let block = 0; block < 3; block++) {
      const T = 4 >> block;
      const pairFn = fns[block]!;
      const singleFn = fns[3 + block]!;
      for (; M - m >= T; m += T) {
        const xm = x + m * xRow;
        const am = a + 4 * m;
        const om = out + m * outRow;
        const vm = ovf + m * N;
        // one token at a time (decode): four channels a pass, four weight streams from memory at once
        const nq = T === 1 ? nQuads : n0;
        if (nq > n0) fns[6](n0, nq, xm, am, om, outRow, w, sc, gc, bpg, bias, invAlpha, vm);
        if (nPairs > nq) pairFn(nq, nPairs, xm, am, om, outRow, w, sc, gc, bpg, bias, invAlpha, vm);
        if (n1 > nPairs) singleFn(nPairs, n1, xm, am, om, outRow, w, sc, gc, bpg, bias, invAlpha, vm);
      }
    }
  }
}
