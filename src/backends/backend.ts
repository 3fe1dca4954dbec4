/**
 * The small set of operations the model is written against. A backend owns how each runs
 * (plain loops, worker threads, SIMD, a GPU); the forward pass in src/model is written once.
 *
 * Tensors are row-major Float32Arrays with their sizes passed alongside: `m` rows (tokens)
 * of `dim` columns. Functions that return arrays return fresh ones unless they say "in place".
 */
import type { LinearWeight } from '../quant/types.js';

/** One decoder layer's key/value cache: `capacity` positions of [numKvHeads · headDim] each. */
export interface LayerKvCache {
  readonly keys: Float32Array;
  readonly values: Float32Array;
  readonly capacity: number;
}

/** What attention needs to know about the layout of q, k and v. */
export interface AttentionShape {
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** keys farther back than this are masked out (mistral); null = full causal attention. */
  readonly slidingWindow: number | null;
}

export interface Backend {
  readonly name: string;
  /** y[m, N] = x[m, K] · Wᵀ (+ bias), in whatever precision the weight is stored in. */
  linear(x: Float32Array, m: number, w: LinearWeight): Float32Array;
  /** y[i, :] = x[i, :] / sqrt(mean(x[i, :]²) + eps) · weight. */
  rmsnorm(x: Float32Array, m: number, weight: Float32Array, eps: number): Float32Array;
  /**
   * Rotary embedding in place on x [m, heads, headDim], Hugging Face's half-split layout:
   * for i < headDim/2, (x[i], x[i + headDim/2]) is rotated by angle pos · invFreq[i],
   * row r having position startPos + r.
   */
  rope(x: Float32Array, m: number, heads: number, headDim: number, startPos: number, invFreq: Float32Array): void;
  /**
   * Causal attention of m new tokens at positions startPos … startPos+m-1: writes k and v
   * [m, numKvHeads · headDim] into the cache at those positions, then returns
   * softmax(q·kᵀ / sqrt(headDim)) · v as [m, numHeads · headDim]. Grouped-query: query head h
   * reads kv head floor(h / (numHeads / numKvHeads)).
   */
  attention(q: Float32Array, k: Float32Array, v: Float32Array, m: number, startPos: number,
    cache: LayerKvCache, shape: AttentionShape): Float32Array;
  /** gate[i] = silu(gate[i]) · up[i], in place. */
  siluMul(gate: Float32Array, up: Float32Array): void;
  /** a[i] += b[i], in place. */
  addInPlace(a: Float32Array, b: Float32Array): void;
}
