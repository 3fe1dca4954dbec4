/**
 * Linear layers that read the same input stacked into one (q/k/v, gate/up): W = [W₀; W₁; …] with
 * N = Σ Nᵢ output rows, so one GEMM does the work of several and y = [y₀ | y₁ | …] column-wise.
 * Or interleaved in blocks of B rows (parts of equal N, B | N): rows [B·j, B·(j+1)) of each part
 * in turn, so part i's output column c sits at stacked column (c − c mod B)·P + B·i + c mod B (P parts):
 * gate/up for a GEMM whose epilogue applies SwiGLU (a 16-row tile holds 8 gate rows and their 8 up rows).
 * Rows are independent in every format here (the packed weights, the per-group scales, the bias
 * are row-major over N), so the stacked layer gives each part's output bit for bit. Layers stack
 * only when they share K and their whole format (bits, group size, scale kind and amplifier α, which
 * is one per layer); stackLinears says why not otherwise.
 */
import type { LinearWeight, QuantizedLinear } from './types.js';
import { sharedFloat32 } from '../tensor/shared.js';

/** The stacked layer, or the reason these layers cannot be one. */
export type Stacked = { readonly ok: true; readonly weight: LinearWeight } | { readonly ok: false; readonly reason: string };

function formatOf(w: LinearWeight): string {
  if (w.kind === 'float') return `float, K ${w.k}`;
  const alpha = w.scale === 'int' ? `, α 2^${w.alphaLog2}` : '';
  return `W${w.wBits}A${w.aBits} ${w.scale} scale, G ${w.groupSize}, K ${w.k}${alpha}`;
}

type RowArray = Uint8Array | Int32Array | Float32Array;

/**
 * The parts' rows in a new array made by `make` (a row = `width` elements): one part after the
 * other, or (block > 0) `block` rows of each part in turn.
 */
function concat<A extends RowArray>(parts: readonly A[], make: (length: number) => A, width = 1, block = 0): A {
  const out = make(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  if (block === 0) {
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  const step = block * width;
  for (let r = 0; r < parts[0]!.length; r += step) {
    for (const p of parts) {
      out.set(p.subarray(r, r + step), at);
      at += step;
    }
  }
  return out;
}

/** How stackLinears lays the parts' rows out (see the header). */
export interface StackLayout {
  /** rows interleaved in blocks of this many (parts of equal N, a multiple of it); absent: one part after the other. */
  readonly interleave?: number;
}

/** Stacked column of part `part`'s output column c (of `parts` parts) in an interleaved layout of blocks of B rows. */
export function interleavedColumn(c: number, part: number, parts: number, B: number): number {
  return (c - (c % B)) * parts + B * part + (c % B);
}

// shared memory, as loaded weights are: the CPU pool's kernels (matmuls, fp16 conversion) then split them
const floats = (n: number): Float32Array => sharedFloat32(n);

/** The biases stacked ([N]; a part without one adds zeros), or undefined when no part has one. */
function stackedBias(ws: readonly LinearWeight[], block: number): Float32Array | undefined {
  if (ws.every((w) => !w.bias)) return undefined;
  return concat(ws.map((w) => (w.bias ? w.bias.subarray(0, w.n) : new Float32Array(w.n))), floats, 1, block);
}

export function stackLinears(ws: readonly LinearWeight[], layout: StackLayout = {}): Stacked {
  if (ws.length === 0) return { ok: false, reason: 'no layers to stack' };
  const first = formatOf(ws[0]!);
  const other = ws.find((w) => formatOf(w) !== first);
  if (other) return { ok: false, reason: `formats differ (${first} vs ${formatOf(other)})` };
  const B = layout.interleave ?? 0;
  if (B !== 0) {
    if (!Number.isInteger(B) || B < 1) throw new RangeError(`interleave takes a positive integer of rows, got ${B}`);
    const uneven = ws.find((w) => w.n !== ws[0]!.n || w.n % B !== 0);
    if (uneven) return { ok: false, reason: `rows interleaved in blocks of ${B} need parts of equal N divisible by ${B} (${ws[0]!.n} vs ${uneven.n})` };
  }
  const n = ws.reduce((s, w) => s + w.n, 0);
  const bias = stackedBias(ws, B);
  const w0 = ws[0]!;
  if (w0.kind === 'float') {
    const parts = ws.map((w) => (w as typeof w0).w.subarray(0, w.n * w.k));
    return { ok: true, weight: { kind: 'float', n, k: w0.k, w: concat(parts, floats, w0.k, B), ...(bias ? { bias } : {}) } };
  }
  const qs = ws as readonly QuantizedLinear[];
  const groups = w0.k / w0.groupSize;
  const rowBytes = w0.wBits === 4 ? w0.k / 2 : w0.k;
  const weight: QuantizedLinear = {
    kind: 'quantized', n, k: w0.k, groupSize: w0.groupSize, wBits: w0.wBits, aBits: w0.aBits, scale: w0.scale,
    packed: concat(qs.map((w) => w.packed.subarray(0, w.n * rowBytes)), (l) => new Uint8Array(l), rowBytes, B),
    scales: concat(qs.map((w) => w.scales.subarray(0, w.n * groups)), floats, groups, B),
    ...(w0.scale === 'int' ? { intScales: concat(qs.map((w) => w.intScales!.subarray(0, w.n * groups)), (l) => new Int32Array(l), groups, B), alphaLog2: w0.alphaLog2! } : {}),
    ...(bias ? { bias } : {}),
  };
  return { ok: true, weight };
}
