/**
 * Row kernel of the WASM SIMD A8 integer linear: out[m, n] for every token m and the output
 * channels n ∈ [nStart, nEnd), registered in the pool (pool/kernels.ts) so channels can be split
 * across threads. Every operand is an arena byte address (see int-linear-wasm-module.ts for the
 * layouts and the math); args hold only numbers, so posting a job copies nothing.
 *
 * Channels go in tiles of about 64 KiB of weights; within a tile tokens go in register blocks of 4, then
 * 2, then 1, and channels in pairs, then a last single one (one token: quads, then pairs); a decode step's
 * tiles are read ahead by `touch` (TOUCH_MAX_ROWS).
 * Each thread instantiates the module once, on the arena memory it shares with the others.
 *
 * W4 layers in modes 'is' / 'fs' take the relaxed-SIMD kernels (int8 activations, one relaxed dot per
 * 16 products) where the runtime compiles them (Node 22 on; Node 20 only behind a flag) and they pass a
 * self-test against plain integer sums on random data at first use (an experimental code generator
 * once gave wrong sums in the larger register blocks); otherwise the int16 kernels, with the same bits.
 * INTSCALE_RELAXED_SIMD=0 turns them off.
 */
import { arenaMemory, ARENA_MAX_PAGES } from '../../tensor/shared.js';
import {
  buildIntLinearRelaxedWasmModule,
  buildIntLinearWasmModule,
  intActivationRowBytes,
  intKernelName,
  INT_RELAXED_MODES,
  INT_WASM_MODES,
  type BlockTable,
  type IntKernelBits,
  type IntKernelMode,
} from './int-linear-wasm-module.js';
import { relaxedSelfTest } from './int-linear-relaxed-self-test.js';
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
  /** 1: the relaxed W4 kernel (x in its int8 layout), 0: the int16 one */
  readonly relaxed: number;
}

let tables: Map<string, BlockTable> | null | undefined;
let touchFn: ((p: number, end: number, sink: number) => void) | undefined;
let relaxedTables: Map<string, BlockTable> | null | undefined;
let relaxedStatus: RelaxedKernelStatus | undefined;

const tableKey = (bits: IntKernelBits, mode: IntKernelMode, relaxed: boolean) => `${bits}${relaxed ? 'r' : ''}${mode}`;

/** The block functions of a module, by tableKey; null when there is no arena or the runtime refuses the module. */
function instantiate(relaxed: boolean): Map<string, BlockTable> | null {
  const memory = arenaMemory();
  if (memory === null) return null;
  try {
    const module = new WebAssembly.Module((relaxed ? buildIntLinearRelaxedWasmModule : buildIntLinearWasmModule)(ARENA_MAX_PAGES));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, BlockTable[number]>;
    if (!relaxed) touchFn = exports['touch'] as unknown as typeof touchFn;
    const map = new Map<string, BlockTable>();
    for (const bits of relaxed ? [4] as const : [4, 8] as const) {
      for (const mode of relaxed ? INT_RELAXED_MODES : INT_WASM_MODES) {
        const fn = (c: number, t: number) => exports[intKernelName(bits, mode, c, t, relaxed)]!;
        map.set(tableKey(bits, mode, relaxed), [fn(2, 4), fn(2, 2), fn(2, 1), fn(1, 4), fn(1, 2), fn(1, 1), fn(4, 1)]);
      }
    }
    return map;
  } catch {
    return null;
  }
}

function blockTables(): Map<string, BlockTable> | null {
  if (tables === undefined) tables = instantiate(false);
  return tables;
}

function relaxedBlockTables(): Map<string, BlockTable> | null {
  if (relaxedTables === undefined) relaxedTables = instantiate(true);
  return relaxedTables;
}

/** Whether the WASM SIMD integer kernel can run in this thread (shared arena + SIMD). */
export function wasmIntLinearAvailable(): boolean {
  return blockTables() !== null;
}

/**
 * Whether the relaxed W4 kernels serve this process: the runtime compiles them, INTSCALE_RELAXED_SIMD
 * is not 0, and every block function of both modes gives plain integer sums on random data (checked once,
 * on the calling thread; workers then instantiate the same module).
 */
export function relaxedIntLinearAvailable(): boolean {
  return relaxedKernelStatus() === 'on';
}

/** Why the relaxed W4 kernels serve this process or not (relaxedIntLinearAvailable is 'on'). */
export type RelaxedKernelStatus = 'on' | 'turned off' | 'not compiled by this runtime' | 'failed its self-test';

export function relaxedKernelStatus(): RelaxedKernelStatus {
  relaxedStatus ??= checkRelaxed();
  return relaxedStatus;
}

function checkRelaxed(): RelaxedKernelStatus {
  if (process.env['INTSCALE_RELAXED_SIMD'] === '0') return 'turned off';
  const fns = relaxedBlockTables();
  if (fns === null) return 'not compiled by this runtime';
  return relaxedSelfTest(fns.get(tableKey(4, 'is', true))!, fns.get(tableKey(4, 'fs', true))!) ? 'on' : 'failed its self-test';
}

/** One line naming the W4A8 kernel this process runs, and for the int16 one why (and what would run the faster one). */
export function w4a8KernelLine(): string {
  if (!wasmIntLinearAvailable()) return 'W4A8 kernel: plain JS (no WASM SIMD on the shared arena)';
  const status = relaxedKernelStatus();
  if (status === 'on') return 'W4A8 kernel: WASM relaxed SIMD (i32x4.relaxed_dot_i8x16_i7x16_add_s)';
  if (status === 'turned off') return 'W4A8 kernel: WASM SIMD int16 (relaxed SIMD turned off by INTSCALE_RELAXED_SIMD=0)';
  return `W4A8 kernel: WASM SIMD int16; the relaxed-SIMD kernel ${status === 'failed its self-test' ? 'failed its self-test on' : 'is not compiled by'} ` +
    `Node ${process.versions.node} (Node 24 runs it, about 2× faster on a CPU with AVX-VNNI)`;
}

/**
 * Up to this many tokens (a decode step, one sequence or a batch) each tile is first read by `touch`, many
 * cache lines in flight, before the register blocks walk it from the caches (`cpu-step-ops`, 8 layers, Node
 * 24, builds alternated): the W4 linears of a one-token step 21.2 → 18.0 ms (the step 36.1 → 32.1 ms; Node 20
 * 41.6 → 38.5), at 8 tokens 44.5 → 39.5 ms; a 128-token prefill, compute-bound, gained nothing, so it is left
 * out there.
 */
const TOUCH_MAX_ROWS = 32;

/** Weight bytes of one channel tile: the tile stays in cache while every token block passes over it. */
const TILE_BYTES = 1 << 16;

export function intLinearWasmRows(args: IntLinearWasmArgs, nStart: number, nEnd: number): void {
  const relaxed = args.relaxed === 1;
  const all = relaxed ? relaxedBlockTables() : blockTables();
  if (all === null) throw new Error(`the WASM SIMD integer kernel${relaxed ? ' (relaxed SIMD)' : ''} is not available in this thread`);
  const mode: IntKernelMode = INT_WASM_MODES[args.mode]!;
  const fns = all.get(tableKey(args.bits, mode, relaxed))!;
  const { x, a, out, ovf, w, sc, bias, m: M, n: N, groupCount: gc, blocksPerGroup: bpg, invAlpha } = args;
  const xRow = intActivationRowBytes(args.bits, gc, bpg, relaxed);
  const outRow = 4 * N;
  const wRow = gc * bpg * 16;
  const tile = Math.max(4, Math.floor(TILE_BYTES / wRow) & ~3); // whole channel quads (the one-token C4T1 block)
  const touchTiles = M <= TOUCH_MAX_ROWS;
  if (touchTiles) blockTables(); // touch lives in the int16 module
  for (let n0 = nStart; n0 < nEnd; n0 += tile) {
    const n1 = Math.min(nEnd, n0 + tile);
    if (touchTiles) touchFn!(w + n0 * wRow, w + n1 * wRow, out + 4 * n0);
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
