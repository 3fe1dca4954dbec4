/**
 * The LLaMA-family forward pass (llama, mistral, qwen2, mixtral), written once against the Backend
 * interface, in the spirit of llama2.c's single readable function:
 *
 *   h = embed(tokens)
 *   for each layer:
 *     x = rmsnorm(h);  q, k, v = x·Wqᵀ, x·Wkᵀ, x·Wvᵀ (+ biases: qwen2, llama attention_bias);  rope(q), rope(k)
 *     h += attention(q, k, v, cache) · Woᵀ (+ bias: llama attention_bias)
 *     x = rmsnorm(h);  h += (silu(x·Wgateᵀ) ⊙ x·Wupᵀ) · Wdownᵀ (+ biases: llama mlp_bias)
 *                      or, mixtral, h += the mixture of experts of x (moe.ts)
 *   return rmsnorm(h)            (the caller applies the lm_head to the rows it needs)
 *
 * The same code runs a batched prefill (m tokens at once), token-by-token decode (m = 1), and a
 * decode step of several sequences at once (forwardDecodeBatch: the linears see one row per
 * sequence, rope and attention run per row in each sequence's cache, Backend.decodeAttention);
 * the KV cache carries the positions in between. runDecoderLayer runs one layer alone (GPTQ/AWQ
 * calibration streams the model layer by layer through it, observing each linear's input).
 * The linears run through the handles the backend prepared when the model was made (prepare.ts).
 */
import type { AttentionShape, Backend, LayerKvCache, PreparedLinear } from './backend.js';
import { sharedFloat32 } from '../tensor/shared.js';
import type { ModelConfig } from './config.js';
import type { KvCache } from './kv-cache.js';
import type { LayerLinears } from './layer-linears.js';
import { runMoe } from './moe.js';
import type { LinearInput, LinearObserver } from './observer.js';
import type { LayerNorms, ModelWeights } from './weights.js';
import { dequantizeRow } from '../quant/quantize-linear.js';
import type { LinearWeight } from '../quant/types.js';

/** A decoder layer's norms and its linears (the router too, for mixtral) as the backend prepared them. */
export type PreparedLayer<T = Float32Array> = LayerNorms & LayerLinears<PreparedLinear<T>, PreparedLinear<T>>;

/** What running one decoder layer needs besides the layer itself. */
export interface LayerContext<T = Float32Array> {
  readonly config: ModelConfig;
  readonly backend: Backend<T>;
  readonly invFreq: Float32Array;
}

/** A model on a backend whose tensors are T (Float32Array on the CPU); made by prepare.ts's createModel. */
export interface Model<T = Float32Array> extends LayerContext<T> {
  readonly weights: ModelWeights;
  /** weights.layers as the backend prepared them. */
  readonly layers: readonly PreparedLayer<T>[];
  readonly lmHead: PreparedLinear<T>;
}

function attentionShape(c: ModelConfig): AttentionShape {
  return { numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, slidingWindow: c.slidingWindow };
}

/**
 * Where the rows of a pass sit in one layer's KV cache: m consecutive positions of one sequence from
 * `start`, or one new position per row, each in its own sequence's cache (a batched decode step).
 */
export type LayerRows<T = Float32Array> =
  | { readonly cache: LayerKvCache<T>; readonly start: number }
  | { readonly caches: readonly LayerKvCache<T>[]; readonly positions: readonly number[] };

export type { LinearInput, LinearObserver } from './observer.js';

/** Embedding rows [tokens.length, hidden] (on the host) of tokens placed at position `start` onward. */
export function embedTokens(c: ModelConfig, embedding: LinearWeight, tokens: ArrayLike<number>, start: number): Float32Array {
  const d = c.hiddenSize;
  const h = sharedFloat32(tokens.length * d);
  for (let r = 0; r < tokens.length; r++) {
    const id = tokens[r];
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
      throw new RangeError(`token id ${id} at position ${start + r} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    if (embedding.kind === 'float') h.set(embedding.w.subarray(id * d, (id + 1) * d), r * d);
    else dequantizeRow(embedding, id, h.subarray(r * d, (r + 1) * d));
  }
  return h;
}

/** Rotary embedding and attention of the rows (see LayerRows); writes their keys/values into the cache(s). */
function attend<T>(context: LayerContext<T>, q: T, k: T, v: T, m: number, rows: LayerRows<T>): T {
  const { config: c, backend: b, invFreq } = context;
  if ('caches' in rows) {
    if (!b.decodeAttention) throw new Error(`the ${b.name} backend cannot run a decode step of several sequences (no decodeAttention)`);
    return b.decodeAttention(q, k, v, rows.positions, rows.caches, attentionShape(c), invFreq);
  }
  b.rope(q, m, c.numHeads, c.headDim, rows.start, invFreq);
  b.rope(k, m, c.numKvHeads, c.headDim, rows.start, invFreq);
  return b.attention(q, k, v, m, rows.start, rows.cache, attentionShape(c));
}

/**
 * Where a decoder layer stands between its linears: the residual stream h (updated in place) and
 * the input of the linears at `at` (null at the start and the end). The layer in the order its
 * linears read their inputs:
 *   start  → qkv     x = rmsnorm(h)
 *   qkv    → o       attn = attention(rope(q(x)), rope(k(x)), v(x))   (keys/values into the cache)
 *   o      → gateUp  h += o(attn);  x2 = rmsnorm(h)
 *   gateUp → down    g = silu(gate(x2)) · up(x2)
 *   down   → end     h += down(g)
 * A mixture of experts goes o → end: h += moe(rmsnorm(h)) (observing its router's and experts' inputs).
 */
export interface LayerState<T> {
  readonly h: T;
  at: 'start' | LinearInput | 'end';
  input: T | null;
}

/**
 * Runs `layer` from state.at onward on the rows placed as `rows` says, `observe` seeing each
 * linear's input as it comes, until the input `until` has been observed (or to the end). Calibration
 * walks a layer this way, input by input, with the linears of each input quantized before the next step.
 */
export function advanceLayer<T>(context: LayerContext<T>, layer: PreparedLayer<T>, state: LayerState<T>, m: number,
  rows: LayerRows<T>, observe?: LinearObserver<T>, until?: LinearInput): void {
  const { config: c, backend: b } = context;
  const { h } = state;
  while (state.at !== 'end' && state.at !== until) {
    const x = state.input!;
    switch (state.at) {
      case 'start':
        state.input = b.rmsnorm(h, m, layer.inputNorm, c.rmsNormEps);
        state.at = 'qkv';
        break;
      case 'qkv':
        state.input = attend(context, layer.q.run(x, m), layer.k.run(x, m), layer.v.run(x, m), m, rows);
        state.at = 'o';
        break;
      case 'o': {
        b.addInPlace(h, layer.o.run(x, m));
        const x2 = b.rmsnorm(h, m, layer.postAttentionNorm, c.rmsNormEps);
        if (layer.moe !== undefined) {
          b.addInPlace(h, runMoe(b, layer.moe, c.moe!.topK, x2, m, c.hiddenSize, observe));
          state.input = null;
          state.at = 'end';
          return;
        }
        state.input = x2;
        state.at = 'gateUp';
        break;
      }
      case 'gateUp': {
        if (layer.moe !== undefined) throw new Error('a mixture-of-experts layer has no dense gate/up step');
        const gate = layer.gate.run(x, m);
        b.siluMul(gate, layer.up.run(x, m));
        state.input = gate;
        state.at = 'down';
        break;
      }
      case 'down':
        if (layer.moe !== undefined) throw new Error('a mixture-of-experts layer has no dense down step');
        b.addInPlace(h, layer.down.run(x, m));
        state.input = null;
        state.at = 'end';
        return;
    }
    observe?.(state.at, state.input!, m, null);
  }
}

/**
 * One decoder layer on the hidden states h [m, hidden] (updated in place) of the rows placed as
 * `rows` says; writes their keys/values into the cache(s). `observe` sees the input of every linear;
 * with `stopAfter` the layer returns once that input has been observed (calibration: h and the cache
 * are then left part-way, what comes after is not computed; a mixture of experts stops only before
 * its block, at 'qkv' or 'o').
 */
export function runDecoderLayer<T>(context: LayerContext<T>, layer: PreparedLayer<T>, h: T, m: number,
  rows: LayerRows<T>, observe?: LinearObserver<T>, stopAfter?: LinearInput): void {
  advanceLayer(context, layer, { h, at: 'start', input: null }, m, rows, observe, stopAfter);
}

/** Final-normed hidden states [tokens.length, hidden] of tokens placed at cache.length onward. */
export function forwardHidden<T>(model: Model<T>, tokens: ArrayLike<number>, cache: KvCache<T>): T {
  const { config: c, weights: w, backend: b } = model;
  const m = tokens.length;
  b.startPass();
  const h = b.upload(embedTokens(c, w.embedding, tokens, cache.length));
  for (let l = 0; l < c.numLayers; l++) runDecoderLayer(model, model.layers[l]!, h, m, { cache: cache.layers[l]!, start: cache.length });
  cache.length += m;
  return b.rmsnorm(h, m, w.finalNorm, c.rmsNormEps);
}

/** Logits [rows, vocab] (on the host) for `rows` consecutive rows of hidden states starting at row `first`. */
export function logitsOf<T>(model: Model<T>, hidden: T, first: number, rows: number): Float32Array {
  const b = model.backend;
  const x = b.rows(hidden, first, rows, model.config.hiddenSize);
  return b.download(model.lmHead.run(x, rows), 0, rows, model.config.vocabSize);
}

/** Logits of the last position after feeding tokens (decode step or end of prefill). */
export function forwardLastLogits<T>(model: Model<T>, tokens: ArrayLike<number>, cache: KvCache<T>): Float32Array {
  const hidden = forwardHidden(model, tokens, cache);
  return logitsOf(model, hidden, tokens.length - 1, 1);
}

/**
 * One decode step of several sequences at once: tokens[r] goes at position caches[r].length of
 * caches[r]. The linears run once on all rows (M = rows), rope and attention per row
 * (Backend.decodeAttention). Returns each sequence's logits [vocab] (on the host).
 */
export function forwardDecodeBatch<T>(model: Model<T>, tokens: readonly number[], caches: readonly KvCache<T>[]): Float32Array[] {
  const { config: c, weights: w, backend: b } = model;
  const m = tokens.length;
  if (caches.length !== m) throw new RangeError(`forwardDecodeBatch: ${m} tokens for ${caches.length} sequences`);
  if (new Set(caches).size !== m) throw new RangeError('forwardDecodeBatch: a sequence appears twice in one step');
  for (const cache of caches) if (cache.length >= cache.capacity) throw new RangeError(`KV cache holds ${cache.capacity} positions; asked for ${cache.length + 1}`);
  b.startPass();
  const h = b.upload(embedTokens(c, w.embedding, tokens, 0));
  const positions = caches.map((cache) => cache.length);
  for (let l = 0; l < c.numLayers; l++) runDecoderLayer(model, model.layers[l]!, h, m, { caches: caches.map((cache) => cache.layers[l]!), positions });
  for (const cache of caches) cache.length += 1;
  const all = logitsOf(model, b.rmsnorm(h, m, w.finalNorm, c.rmsNormEps), 0, m);
  return tokens.map((_, r) => all.slice(r * c.vocabSize, (r + 1) * c.vocabSize));
}
