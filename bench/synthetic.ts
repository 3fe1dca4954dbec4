/**
 * Synthetic models for speed and memory benchmarks: LLaMA-2-7B's shape (hidden 4096, ffn 11008,
 * 32 heads, vocab 32000, tied fp32 lm_head; or another shape, Mixtral-8x7B's mixture of experts
 * included) with RANDOM W4A8 integer-scale weights, in memory or written as a quantized checkpoint. Their text means nothing; only their
 * speed and size are measured.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeQuantizedCheckpoint } from '../src/quantize/write-checkpoint.js';
import { DEFAULT_SPEC, type QuantRecipe } from '../src/quantize/recipe.js';
import { sharedFloat32, sharedUint8, withArenaAllocation } from '../src/tensor/shared.js';
import { NO_BIASES, type ModelConfig } from '../src/model/config.js';
import type { LayerWeights, ModelWeights } from '../src/model/weights.js';
import type { FloatLinear, LinearWeight, QuantizedLinear } from '../src/quant/types.js';

/** count random int4 values in the packed format (int4-pack.ts): xorshift32 words, 8 nibbles each (any byte is two valid values). */
function randomPackedInt4(count: number, seed: number): Uint8Array {
  const packed = sharedUint8(count / 2);
  const words = new Uint32Array(packed.buffer, packed.byteOffset, count >> 3);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    words[i] = s;
  }
  return packed;
}

export function randomW4A8(n: number, k: number, seed: number): QuantizedLinear {
  const groups = k / 128;
  const intScales = new Int32Array(n * groups);
  for (let i = 0; i < intScales.length; i++) intScales[i] = 1 + ((i * 2654435761 + seed) >>> 29);
  const scales = Float32Array.from(intScales, (v) => v / 1024);
  return { kind: 'quantized', n, k, groupSize: 128, wBits: 4, aBits: 8, packed: randomPackedInt4(n * k, seed), scale: 'int', scales, intScales, alphaLog2: 10 };
}

/** The dimensions of a synthetic LLaMA (LLAMA2_7B_SHAPE is the default), or a Mixtral with `moe`. */
export interface SyntheticShape {
  readonly hidden: number;
  /** the MLP's width (each expert's for a mixture of experts). */
  readonly ffn: number;
  readonly heads: number;
  /** key/value heads (default: heads). */
  readonly kvHeads?: number;
  readonly vocab: number;
  /** a mixture of experts in every layer (a float router and numExperts SwiGLU experts, topK per token). */
  readonly moe?: { readonly numExperts: number; readonly topK: number };
}

export const LLAMA2_7B_SHAPE: SyntheticShape = { hidden: 4096, ffn: 11008, heads: 32, vocab: 32000 };
/** Mixtral-8x7B: 8 experts of ffn 14336, top 2, GQA 32/8 (the paper's Figure 5c model). */
export const MIXTRAL_8X7B_SHAPE: SyntheticShape = { hidden: 4096, ffn: 14336, heads: 32, kvHeads: 8, vocab: 32000, moe: { numExperts: 8, topK: 2 } };

/** The shapes the benches take by name (--shape). */
export const SHAPES = { 'llama2-7b': LLAMA2_7B_SHAPE, 'mixtral-8x7b': MIXTRAL_8X7B_SHAPE } as const;

/** A random linear layer [n, k] (seeded): the weight format a synthetic model is built of. */
type RandomLinear = (n: number, k: number, seed: number) => LinearWeight;

/** A synthetic model's config and weights (createModel puts them on a backend). */
export interface SyntheticModel {
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
}

/**
 * The lm_head of a synthetic model: 'float' (tied to the fp32 embedding) or 'w8a8' (RANDOM W8A8
 * g128 integer-scale weights, α = 2^16: the format `intscale quantize` writes by default).
 */
export type SyntheticLmHead = 'float' | 'w8a8';

/** RANDOM 8-bit weights [n, k], groups of 128 with integer scales 1…16 at α = 2^16 (overflow-safe for any int8 input). */
function randomW8A8IntScale(n: number, k: number, seed: number): QuantizedLinear {
  const groups = k / 128;
  const intScales = new Int32Array(n * groups);
  for (let i = 0; i < intScales.length; i++) intScales[i] = 1 + ((i * 2654435761 + seed) >>> 28);
  const scales = Float32Array.from(intScales, (v) => v / 65536);
  return { kind: 'quantized', n, k, groupSize: 128, wBits: 8, aBits: 8, packed: randomPackedInt4(n * k * 2, seed), scale: 'int', scales, intScales, alphaLog2: 16 };
}

/** A model of `shape` with `layers` decoder layers whose linears `linear` makes (lm_head: tied fp32, or W8A8). */
function syntheticOf(layers: number, shape: SyntheticShape, linear: RandomLinear, lmHead: SyntheticLmHead = 'float'): SyntheticModel {
  const { hidden: d, ffn: f, heads, vocab, moe } = shape;
  const headDim = d / heads, kvHeads = shape.kvHeads ?? heads;
  const config: ModelConfig = {
    architecture: moe ? 'mixtral' : 'llama', vocabSize: vocab, hiddenSize: d, intermediateSize: f, numLayers: layers,
    numHeads: heads, numKvHeads: kvHeads, headDim, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: { kind: 'none' },
    maxPositionEmbeddings: 4096, tieWordEmbeddings: true, bias: NO_BIASES, slidingWindow: null, bosTokenId: 1, eosTokenIds: [],
    ...(moe ? { moe } : {}),
  };
  // tied, so in the arena where the loader puts a tied embedding (the WASM lm_head matmul reads it there)
  const embedding = withArenaAllocation(() => sharedFloat32(vocab * d));
  for (let i = 0; i < embedding.length; i++) embedding[i] = ((Math.imul(i, 2654435761) >>> 16) / 65536 - 0.5) * 0.05;
  const ones = new Float32Array(d).fill(1);
  const built: LayerWeights[] = [];
  for (let l = 0; l < layers; l++) {
    const s = 1000 * (l + 1);
    const kv = kvHeads * headDim;
    const attention = { inputNorm: ones, postAttentionNorm: ones, q: linear(d, d, s + 1), k: linear(kv, d, s + 2), v: linear(kv, d, s + 3), o: linear(d, d, s + 4) };
    if (!moe) {
      built.push({ ...attention, gate: linear(f, d, s + 5), up: linear(f, d, s + 6), down: linear(d, f, s + 7) });
      continue;
    }
    const router: FloatLinear = { kind: 'float', n: moe.numExperts, k: d, w: randomFloats(moe.numExperts * d, s + 8) };
    const experts = Array.from({ length: moe.numExperts }, (_, e) => ({ gate: linear(f, d, s + 10 + 3 * e), up: linear(f, d, s + 11 + 3 * e), down: linear(d, f, s + 12 + 3 * e) }));
    built.push({ ...attention, moe: { router, experts } });
  }
  const head: LinearWeight = lmHead === 'w8a8' ? randomW8A8IntScale(vocab, d, 7) : { kind: 'float', n: vocab, k: d, w: embedding };
  return { config, weights: { embedding: { kind: 'float', n: vocab, k: d, w: embedding }, layers: built, finalNorm: ones, lmHead: head } };
}

/** A model of `shape` (LLaMA-2-7B's by default) with `layers` decoder layers of random W4A8 IS weights (tied lm_head in fp32 unless lmHead says w8a8). */
export function syntheticModel(layers: number, shape: SyntheticShape = LLAMA2_7B_SHAPE, lmHead: SyntheticLmHead = 'float'): SyntheticModel {
  return syntheticOf(layers, shape, randomW4A8, lmHead);
}

/** n·k float weights ~ uniform(−0.05, 0.05) from a fast LCG (speed only; their values mean nothing). */
function randomFloats(count: number, seed: number): Float32Array {
  const w = sharedFloat32(count); // shared, as loaded weights are (the pool converts them to fp16)
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[i] = (s / 4294967296 - 0.5) * 0.1;
  }
  return w;
}

/** The same shape as syntheticModel with RANDOM float weights in every linear layer (the FP16 baseline runs these). */
export function syntheticFloatModel(layers: number, shape: SyntheticShape = LLAMA2_7B_SHAPE): SyntheticModel {
  return syntheticOf(layers, shape, (n, k, seed) => ({ kind: 'float', n, k, w: randomFloats(n * k, seed) }));
}

/** The precisions of the engine's end-to-end comparison (the paper's Table 7 columns, and FP16). */
export const PRECISIONS = ['fp16', 'w8a8', 'w4a16', 'w4a8-fs', 'w4a8-is'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** RANDOM 8-bit weights [n, k], per-channel float scales (SmoothQuant-style W8A8). */
function randomW8A8(n: number, k: number, seed: number): QuantizedLinear {
  const packed = randomPackedInt4(n * k * 2, seed); // any byte is a valid int8
  const scales = Float32Array.from({ length: n }, (_, i) => (1 + ((i * 2654435761 + seed) >>> 28)) / 4096);
  return { kind: 'quantized', n, k, groupSize: k, wBits: 8, aBits: 8, packed, scale: 'float', scales };
}

/**
 * A LLaMA-2-7B-shaped model (or `shape`) of `layers` RANDOM layers in one precision, for speed only.
 * fp16: one set of random float matrices shared by every layer on the host (each layer is uploaded
 * to its own device memory all the same, so the GPU reads distinct bytes per layer); the engine
 * rounds them to fp16. w4a16 and w4a8-fs: the int4 weights of w4a8-is with float group scales.
 * `lmHead` applies to the precisions with 8-bit activations (w8a8, w4a8-fs, w4a8-is); fp16 and
 * w4a16 keep the float lm_head (as `intscale quantize` does for a weight-only base).
 */
export function syntheticModelIn(precision: Precision, layers: number, shape: SyntheticShape = LLAMA2_7B_SHAPE, lmHead: SyntheticLmHead = 'float'): SyntheticModel {
  switch (precision) {
    case 'w4a8-is': return syntheticModel(layers, shape, lmHead);
    case 'w4a8-fs': return syntheticOf(layers, shape, (n, k, seed) => ({ ...randomW4A8(n, k, seed), scale: 'float', intScales: undefined, alphaLog2: undefined }), lmHead);
    case 'w4a16': return syntheticOf(layers, shape, (n, k, seed) => ({ ...randomW4A8(n, k, seed), aBits: 16, scale: 'float', intScales: undefined, alphaLog2: undefined }));
    case 'w8a8': return syntheticOf(layers, shape, randomW8A8, lmHead);
    case 'fp16': {
      const shared = new Map<string, LinearWeight>();
      return syntheticOf(layers, shape, (n, k, seed) => {
        const key = `${n}x${k}:${seed % 1000}`;
        if (!shared.has(key)) shared.set(key, { kind: 'float', n, k, w: randomFloats(n * k, seed % 1000) });
        return shared.get(key)!;
      });
    }
  }
}

/** config.json of a synthetic model, as transformers writes a LlamaConfig (a MixtralConfig with experts). */
function hfConfig(c: ModelConfig): Record<string, unknown> {
  return {
    architectures: [c.moe ? 'MixtralForCausalLM' : 'LlamaForCausalLM'], model_type: c.moe ? 'mixtral' : 'llama', vocab_size: c.vocabSize, hidden_size: c.hiddenSize,
    ...(c.moe ? { num_local_experts: c.moe.numExperts, num_experts_per_tok: c.moe.topK } : {}),
    intermediate_size: c.intermediateSize, num_hidden_layers: c.numLayers, num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxPositionEmbeddings, tie_word_embeddings: c.tieWordEmbeddings, bos_token_id: c.bosTokenId,
    eos_token_id: 2, hidden_act: 'silu', torch_dtype: 'float32',
  };
}

/** Writes `model` (a synthetic one) as an intscale quantized checkpoint in dir; returns its model.safetensors size in bytes. */
export function writeSyntheticCheckpoint(dir: string, model: SyntheticModel): number {
  const recipe: QuantRecipe = { method: 'rtn', base: { ...DEFAULT_SPEC, alpha: { kind: 'fixed', log2: 10 } }, overrides: {} };
  writeQuantizedCheckpoint(dir, { dir: 'synthetic (random weights)', rawConfig: hfConfig(model.config) }, model.weights, recipe);
  return fs.statSync(path.join(dir, 'model.safetensors')).size;
}
