/**
 * The small set of operations the model is written against. A backend owns how each runs
 * (plain loops, worker threads, SIMD, a GPU); the forward pass in src/model is written once.
 *
 * Tensors are the backend's type T (Float32Array on the CPU, device memory on a GPU), row-major
 * float32 with their sizes passed alongside: `m` rows (tokens) of `dim` columns. Functions that
 * return tensors return fresh ones unless they say "in place". A forward pass begins with
 * startPass(), which lets a backend reclaim every tensor it returned before (host arrays from
 * download() and the KV cache are not tensors of a pass and stay).
 *
 * Linear layers are prepared once (prepareLinear, when the model is loaded): the backend puts the
 * weights in its kernels' layout and memory, checks what it must once (the int32 overflow proof),
 * and returns a handle that runs the layer. Nothing is cached by identity and a layer's arrays are
 * not read again after preparation except through the handle.
 */
import type { FloatLinear, LinearWeight, QuantSpec } from '../quant/types.js';

/** One decoder layer's key/value cache: `capacity` positions of [numKvHeads · headDim] each. */
export interface LayerKvCache<T = Float32Array> {
  readonly keys: T;
  readonly values: T;
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

/**
 * A scale search's problem (AWQ, quantize/awq.ts): float linears W_j, each reading one of the inputs
 * (sampled rows X [t, k] on the host), quantized with their spec after a column scale s [k].
 */
export interface ScaleSearchProblem {
  readonly k: number;
  readonly inputs: readonly { readonly rows: Float32Array; readonly t: number }[];
  readonly linears: readonly { readonly w: FloatLinear; readonly spec: QuantSpec; readonly name: string; readonly input: number }[];
}

/** A scale search made ready on a backend: the float layers, inputs and reference outputs kept where it runs them. */
export interface ScaleSearchSession {
  /**
   * Σ_j ‖ Q_j(W_j·diag(s)) run on X_j·diag(s)⁻¹ − X_j·W_jᵀ ‖² in float64, where Q_j is RTN with W_j's spec
   * (the shared group quantizer; W4A8 also quantizes the inputs per token) and each product is the
   * backend's linear (bias added on both sides).
   */
  loss(s: Float32Array): number;
  release(): void;
}

/** A linear layer made ready to run on a backend (see the header); made by Backend.prepareLinear. */
export interface PreparedLinear<T = Float32Array> {
  /** the layer it was prepared from (sizes, precision, bias). */
  readonly weight: LinearWeight;
  /** y [m, N] = x [m, K] · Wᵀ (+ bias), in whatever precision the weight is stored in. */
  run(x: T, m: number): T;
  /** host bytes the preparation holds beside the layer's own arrays (0: they are read in place). */
  readonly copiedBytes: number;
  /** frees what preparation made (kernel copies, device memory); the handle must not run again. */
  release(): void;
}

export interface Backend<T = Float32Array> {
  readonly name: string;
  /** Begins a forward pass: every tensor returned before may be reclaimed. */
  startPass(): void;
  /** A tensor holding these host values (the embedding rows of a pass's tokens). */
  upload(x: Float32Array): T;
  /** Rows [first, first + rows) of x [*, dim] on the host (on the CPU, a view of x). */
  download(x: T, first: number, rows: number, dim: number): Float32Array;
  /** Rows [first, first + rows) of x [*, dim] as a tensor (a view where the backend can). */
  rows(x: T, first: number, rows: number, dim: number): T;
  /** An empty cache for one layer; release it with releaseLayerCache. */
  layerCache(capacity: number, kvDim: number): LayerKvCache<T>;
  releaseLayerCache(cache: LayerKvCache<T>): void;
  /** The layer in this backend's form, ready to run (see the header). */
  prepareLinear(w: LinearWeight): PreparedLinear<T>;
  /** y[i, :] = x[i, :] / sqrt(mean(x[i, :]²) + eps) · weight. */
  rmsnorm(x: T, m: number, weight: Float32Array, eps: number): T;
  /**
   * Rotary embedding in place on x [m, heads, headDim], Hugging Face's half-split layout:
   * for i < headDim/2, (x[i], x[i + headDim/2]) is rotated by angle pos · invFreq[i],
   * row r having position startPos + r.
   */
  rope(x: T, m: number, heads: number, headDim: number, startPos: number, invFreq: Float32Array): void;
  /**
   * Causal attention of m new tokens at positions startPos … startPos+m-1: writes k and v
   * [m, numKvHeads · headDim] into the cache at those positions, then returns
   * softmax(q·kᵀ / sqrt(headDim)) · v as [m, numHeads · headDim]. Grouped-query: query head h
   * reads kv head floor(h / (numHeads / numKvHeads)).
   */
  attention(q: T, k: T, v: T, m: number, startPos: number, cache: LayerKvCache<T>, shape: AttentionShape): T;
  /**
   * Optional (a batched decode step; model/engine.ts uses it when present): row r of q [rows,
   * numHeads · headDim] and k, v [rows, numKvHeads · headDim] is one new token at position
   * positions[r] of its own sequence's cache caches[r]. Rotates row r of q and k by its position
   * (as rope does), writes its k and v into caches[r] there, and returns every row's attention
   * [rows, numHeads · headDim], each exactly what rope + attention give for that row alone.
   */
  decodeAttention?(q: T, k: T, v: T, positions: readonly number[], caches: readonly LayerKvCache<T>[], shape: AttentionShape, invFreq: Float32Array): T;
  /**
   * Optional (mixture-of-experts layers: model/moe.ts; a model with experts is refused on a backend
   * without both): rows[i] of x [*, dim] as row i of a fresh tensor [rows.length, dim].
   */
  gatherRows?(x: T, rows: readonly number[], dim: number): T;
  /** Optional (with gatherRows): out[rows[i], :] += weights[i] · y[i, :] for each i, in place (rows distinct). */
  addScaledRows?(out: T, y: T, rows: readonly number[], weights: Float32Array, dim: number): void;
  /**
   * Optional (AWQ's statistics on a stream off the CPU, quantize/awq.ts): sums[j] += |x[i, j]| for the
   * rows i of x [m, k] in order, in float64 (the host loop's sums bit for bit), without x leaving the device.
   */
  addAbsColumns?(x: T, m: number, k: number, sums: Float64Array): void;
  /**
   * Optional (AWQ's grid search where it has the products: quantize/awq.ts): the problem's float layers,
   * inputs and reference outputs kept on this backend, each grid point's RTN and loss computed there;
   * the losses those of the host loop (quantize/awq.ts hostScaleSearch) but for the float64 order of the
   * sums. null when its kernels do not take the problem's specs (the host loop runs it).
   */
  scaleSearch?(problem: ScaleSearchProblem): ScaleSearchSession | null;
  /** gate[i] = silu(gate[i]) · up[i], in place. */
  siluMul(gate: T, up: T): void;
  /** a[i] += b[i], in place. */
  addInPlace(a: T, b: T): void;
}
