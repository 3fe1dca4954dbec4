/**
 * The CPU attention row kernel: one row = one (token r, query head h) pair of the m new tokens, so
 * the pool can split heads across threads. Per row, in float64 (the reference arithmetic, the same
 * in every thread, so a split changes no bit):
 *   s_t = (q[r,h,:] · K[t, g(h), :]) / sqrt(D)   for t = first .. p,  p = startPos + r
 *         (the dot product as four partial sums over k mod 4, added pairwise)
 *   out[r,h,:] = Σ_t (e^(s_t − max s) / Σ e^(s − max s)) · V[t, g(h), :]
 * first = 0, or p − window + 1 with a sliding window; g(h) = h / (H / KVH) (grouped-query).
 * Layout: q, out [m][H][D]; keys, values [capacity][KVH][D] (row t = position t), float32.
 * decodeAttentionRows: the same rows for one new token of each of B sequences, each with its own cache.
 */
import type { RowKernel } from './pool/types.js';

export interface AttentionArgs {
  readonly [name: string]: Float32Array | number;
  readonly q: Float32Array;
  readonly keys: Float32Array;
  readonly values: Float32Array;
  readonly out: Float32Array;
  readonly startPos: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** 0: full causal attention. */
  readonly window: number;
}

/** Scratch of one kernel call: scores over positions, the output and the query row in float64. */
interface RowScratch {
  scores: Float64Array;
  readonly acc: Float64Array;
  readonly qd: Float64Array;
}
const scratchFor = (positions: number, D: number): RowScratch => ({ scores: new Float64Array(positions), acc: new Float64Array(D), qd: new Float64Array(D) });

/**
 * One row: out[qo .. qo+D) = softmax over t ∈ [first, pos] of (q·K[t]) / sqrt(D), times V[t], with
 * q = q[qo ..], K[t] = keys[t·kvDim + kvo ..], V[t] likewise (the arithmetic in the header).
 */
function attendRow(q: Float32Array, qo: number, keys: Float32Array, values: Float32Array, kvo: number, kvDim: number,
  first: number, pos: number, D: number, out: Float32Array, s: RowScratch): void {
  const { scores, acc, qd } = s;
  const scale = 1 / Math.sqrt(D);
  const D4 = D & ~3;
  for (let i = 0; i < D; i++) qd[i] = q[qo + i]!;
  let max = -Infinity;
  // two positions a pass (twice the independent sums in flight, each q element loaded once for both);
  // each position's four partial sums (k ≡ 0, 1, 2, 3 mod 4, added pairwise) are the one-position order
  let t = first;
  for (; t < pos; t += 2) {
    const ka = t * kvDim + kvo, kb = ka + kvDim;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    let i = 0;
    for (; i < D4; i += 4) {
      const q0 = qd[i]!, q1 = qd[i + 1]!, q2 = qd[i + 2]!, q3 = qd[i + 3]!;
      a0 += q0 * keys[ka + i]!;
      a1 += q1 * keys[ka + i + 1]!;
      a2 += q2 * keys[ka + i + 2]!;
      a3 += q3 * keys[ka + i + 3]!;
      b0 += q0 * keys[kb + i]!;
      b1 += q1 * keys[kb + i + 1]!;
      b2 += q2 * keys[kb + i + 2]!;
      b3 += q3 * keys[kb + i + 3]!;
    }
    for (; i < D; i++) {
      a0 += qd[i]! * keys[ka + i]!;
      b0 += qd[i]! * keys[kb + i]!;
    }
    const sa = ((a0 + a1) + (a2 + a3)) * scale, sb = ((b0 + b1) + (b2 + b3)) * scale;
    scores[t] = sa;
    scores[t + 1] = sb;
    if (sa > max) max = sa;
    if (sb > max) max = sb;
  }
  if (t === pos) {
    const ko = t * kvDim + kvo;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let i = 0;
    for (; i < D4; i += 4) {
      s0 += qd[i]! * keys[ko + i]!;
      s1 += qd[i + 1]! * keys[ko + i + 1]!;
      s2 += qd[i + 2]! * keys[ko + i + 2]!;
      s3 += qd[i + 3]! * keys[ko + i + 3]!;
    }
    for (; i < D; i++) s0 += qd[i]! * keys[ko + i]!;
    const sc = ((s0 + s1) + (s2 + s3)) * scale;
    scores[t] = sc;
    if (sc > max) max = sc;
  }
  let sum = 0;
  for (let u = first; u <= pos; u++) {
    const e = Math.exp(scores[u]! - max);
    scores[u] = e;
    sum += e;
  }
  acc.fill(0);
  // acc[i] += p_t · V[t][i] in increasing t, two positions a pass: acc[i] = (acc[i] + p_a·V_a[i]) + p_b·V_b[i]
  for (t = first; t < pos; t += 2) {
    const pa = scores[t]! / sum, pb = scores[t + 1]! / sum;
    const va = t * kvDim + kvo, vb = va + kvDim;
    for (let i = 0; i < D; i++) acc[i] = acc[i]! + pa * values[va + i]! + pb * values[vb + i]!;
  }
  if (t === pos) {
    const p = scores[t]! / sum;
    const vo = t * kvDim + kvo;
    for (let i = 0; i < D; i++) acc[i] += p * values[vo + i]!;
  }
  for (let i = 0; i < D; i++) out[qo + i] = acc[i]!;
}

/** The part of a kernel's args that places its rows. */
export interface AttentionRowShape {
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly window: number;
}

/**
 * Rows [rowStart, rowEnd), row = (i, h) with i = ⌊row / H⌋ (a token, or a sequence) at position
 * posOf(i): visit(row, i, kvo, first, pos) with kvo = g(h)·D, the KV head's offset in a cache row,
 * and first the window's first position. Shared by the JS and the WASM kernels.
 */
export function visitAttentionRows(a: AttentionRowShape, rowStart: number, rowEnd: number, posOf: (i: number) => number,
  visit: (row: number, i: number, kvo: number, first: number, pos: number) => void): void {
  const { numHeads: H, numKvHeads: KVH, headDim: D, window } = a;
  const group = H / KVH;
  for (let row = rowStart; row < rowEnd; row++) {
    const i = Math.floor(row / H);
    const h = row - i * H;
    const pos = posOf(i);
    visit(row, i, Math.floor(h / group) * D, window > 0 ? Math.max(0, pos - window + 1) : 0, pos);
  }
}

export const attentionRows: RowKernel<AttentionArgs> = (a, rowStart, rowEnd) => {
  const { q, keys, values, out, startPos, numHeads: H, numKvHeads: KVH, headDim: D } = a;
  const scratch = scratchFor(startPos + Math.floor((rowEnd - 1) / H) + 1, D);
  visitAttentionRows(a, rowStart, rowEnd, (r) => startPos + r,
    (row, _r, kvo, first, pos) => attendRow(q, row * D, keys, values, kvo, KVH * D, first, pos, D, out, scratch));
};

/**
 * A decode step of B sequences at once (Backend.decodeAttention): row = (sequence b, head h), one
 * new token per sequence at positions[b], its caches keys${b} / values${b}. Each row's arithmetic is
 * attendRow's, so a sequence's output is bit for bit what attentionRows gives it alone.
 */
export interface DecodeAttentionArgs {
  readonly [name: string]: Float32Array | Int32Array | number;
  readonly q: Float32Array;
  readonly out: Float32Array;
  readonly positions: Int32Array;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly window: number;
}

export const decodeAttentionRows: RowKernel<DecodeAttentionArgs> = (a, rowStart, rowEnd) => {
  const { q, out, positions, numHeads: H, numKvHeads: KVH, headDim: D } = a;
  let longest = 0;
  for (let b = Math.floor(rowStart / H); b <= Math.floor((rowEnd - 1) / H); b++) longest = Math.max(longest, positions[b]! + 1);
  const scratch = scratchFor(longest, D);
  visitAttentionRows(a, rowStart, rowEnd, (b) => positions[b]!, (row, b, kvo, first, pos) =>
    attendRow(q, row * D, a[`keys${b}`] as Float32Array, a[`values${b}`] as Float32Array, kvo, KVH * D, first, pos, D, out, scratch));
};
