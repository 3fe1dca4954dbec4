/**
 * The CPU attention row kernel: one row = one (token r, query head h) pair of the m new tokens, so
 * the pool can split heads across threads. Per row, in float64 (the reference arithmetic, the same
 * in every thread, so a split changes no bit):
 *   s_t = (q[r,h,:] · K[t, g(h), :]) / sqrt(D)   for t = first .. p,  p = startPos + r
 *   out[r,h,:] = Σ_t (e^(s_t − max s) / Σ e^(s − max s)) · V[t, g(h), :]
 * first = 0, or p − window + 1 with a sliding window; g(h) = h / (H / KVH) (grouped-query).
 * Layout: q, out [m][H][D]; keys, values [capacity][KVH][D] (row t = position t), float32.
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

export const attentionRows: RowKernel<AttentionArgs> = (a, rowStart, rowEnd) => {
  const { q, keys, values, out, startPos, numHeads: H, numKvHeads: KVH, headDim: D, window } = a;
  const kvDim = KVH * D;
  const group = H / KVH;
  const scale = 1 / Math.sqrt(D);
  const lastPos = startPos + Math.floor((rowEnd - 1) / H);
  const scores = new Float64Array(lastPos + 1);
  const acc = new Float64Array(D);
  for (let row = rowStart; row < rowEnd; row++) {
    const r = Math.floor(row / H);
    const h = row - r * H;
    const pos = startPos + r;
    const first = window > 0 ? Math.max(0, pos - window + 1) : 0;
    const qo = row * D;
    const kvo = Math.floor(h / group) * D;
    let max = -Infinity;
    for (let t = first; t <= pos; t++) {
      const ko = t * kvDim + kvo;
      let s = 0;
      for (let i = 0; i < D; i++) s += q[qo + i]! * keys[ko + i]!;
      s *= scale;
      scores[t] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let t = first; t <= pos; t++) {
      const e = Math.exp(scores[t]! - max);
      scores[t] = e;
      sum += e;
    }
    acc.fill(0);
    for (let t = first; t <= pos; t++) {
      const p = scores[t]! / sum;
      const vo = t * kvDim + kvo;
      for (let i = 0; i < D; i++) acc[i]! += p * values[vo + i]!;
    }
    for (let i = 0; i < D; i++) out[qo + i] = acc[i]!;
  }
};
