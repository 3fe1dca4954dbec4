/**
 * f32 matmul row kernel on WASM SIMD: out[m, n] = Σ_k x[m, k] · w[n, k] for n ∈ [nStart, nEnd).
 *
 * Same layout as the JS kernel (x [M, K], w [N, K], out [M, N], row-major f32), but the operands
 * are byte addresses in the shared arena memory (src/tensor/shared.ts) and the dot products run
 * in the dot{C}x{T} blocks of ./matmul-f32-wasm-module.ts: 4 channels × 2 tokens, then 4 × 1 for
 * an odd last token, then 1 × 1 for the last N mod 4 channels. f32 accumulation (4 lanes), no bias.
 * Each thread instantiates the module once, on the arena memory it shares with the others.
 */
import { buildMatmulF32WasmModule } from './matmul-f32-wasm-module.js';
import type { KernelArgs } from './pool/types.js';
import { instantiateOnArena } from './wasm-instance.js';

export interface MatmulF32WasmArgs extends KernelArgs {
  /** byte addresses in the arena */
  readonly x: number;
  readonly w: number;
  readonly out: number;
  readonly m: number;
  readonly k: number;
  readonly n: number;
}

type Dot2 = (x0: number, x1: number, w: number, k: number, out0: number, out1: number) => void;
type Dot1 = (x0: number, w: number, k: number, out0: number) => void;

interface DotBlocks {
  readonly dot4x2: Dot2;
  readonly dot4x1: Dot1;
  readonly dot1x1: Dot1;
}

let blocks: DotBlocks | null | undefined;

/** This thread's instance of the dot-block module, or null without WASM SIMD / shared arena. */
function dotBlocks(): DotBlocks | null {
  if (blocks === undefined) blocks = instantiateOnArena<DotBlocks>((maxPages) => buildMatmulF32WasmModule(maxPages));
  return blocks;
}

/** Whether the WASM SIMD kernel can run in this thread. */
export function wasmMatmulAvailable(): boolean {
  return dotBlocks() !== null;
}

export function matmulF32WasmRows(args: MatmulF32WasmArgs, nStart: number, nEnd: number): void {
  const dots = dotBlocks();
  if (dots === null) throw new Error('WASM SIMD matmul is not available in this thread');
  const { dot4x2, dot4x1, dot1x1 } = dots;
  const { x, w, out, m, k, n } = args;
  const xRow = 4 * k;
  const outRow = 4 * n;
  let j = nStart;
  for (; j + 4 <= nEnd; j += 4) {
    const wj = w + j * xRow;
    let i = 0;
    for (; i + 2 <= m; i += 2) {
      const xi = x + i * xRow;
      const oi = out + i * outRow + 4 * j;
      dot4x2(xi, xi + xRow, wj, k, oi, oi + outRow);
    }
    if (i < m) dot4x1(x + i * xRow, wj, k, out + i * outRow + 4 * j);
  }
  for (; j < nEnd; j++) {
    const wj = w + j * xRow;
    for (let i = 0; i < m; i++) dot1x1(x + i * xRow, wj, k, out + i * outRow + 4 * j);
  }
}
