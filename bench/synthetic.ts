/**
 * Synthetic models for speed benchmarks: LLaMA-2-7B's shape (hidden 4096, ffn 11008, 32 heads,
 * vocab 32000, tied fp32 lm_head) with RANDOM W4A8 integer-scale weights. Their text means
 * nothing; only their speed is measured.
 */
import { cpuBackend } from '../src/backends/cpu/cpu-backend.js';
import type { Model } from '../src/model/forward.js';
import { NO_BIASES, type ModelConfig } from '../src/model/config.js';
import { ropeInverseFrequencies } from '../src/model/rope.js';
import type { LayerWeights } from '../src/model/weights.js';
import type { QuantizedLinear } from '../src/quant/types.js';

/** xorshift32 words; 4 random int4 values in [-8, 7] per 32-bit word. */
function randomInt4(count: number, seed: number): Int8Array {
  const q = new Int8Array(count);
  const words = new Uint32Array(q.buffer, 0, count >> 2);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const nib = s & 0x0f0f0f0f;
    words[i] = (nib | (((nib & 0x08080808) >>> 3) * 0xf0)) >>> 0;
  }
  return q;
}

export function randomW4A8(n: number, k: number, seed: number): QuantizedLinear {
  const groups = k / 128;
  const intScales = new Int32Array(n * groups);
  for (let i = 0; i < intScales.length; i++) intScales[i] = 1 + ((i * 2654435761 + seed) >>> 29);
  const scales = Float32Array.from(intScales, (v) => v / 1024);
  return { kind: 'quantized', n, k, groupSize: 128, wBits: 4, aBits: 8, q: randomInt4(n * k, seed), scale: 'int', scales, intScales, alphaLog2: 10 };
}

/** LLaMA-2-7B's shape with `layers` decoder layers of random W4A8 IS weights. */
export function syntheticModel(layers: number): Model {
  const config: ModelConfig = {
    architecture: 'llama', vocabSize: 32000, hiddenSize: 4096, intermediateSize: 11008, numLayers: layers,
    numHeads: 32, numKvHeads: 32, headDim: 128, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: { kind: 'none' },
    maxPositionEmbeddings: 4096, tieWordEmbeddings: true, bias: NO_BIASES, slidingWindow: null, bosTokenId: 1, eosTokenIds: [],
  };
  const d = 4096;
  const f = 11008;
  const embedding = new Float32Array(32000 * d);
  for (let i = 0; i < embedding.length; i++) embedding[i] = ((Math.imul(i, 2654435761) >>> 16) / 65536 - 0.5) * 0.05;
  const ones = new Float32Array(d).fill(1);
  const built: LayerWeights[] = [];
  for (let l = 0; l < layers; l++) {
    const s = 1000 * (l + 1);
    built.push({
      inputNorm: ones, postAttentionNorm: ones,
      q: randomW4A8(d, d, s + 1), k: randomW4A8(d, d, s + 2), v: randomW4A8(d, d, s + 3), o: randomW4A8(d, d, s + 4),
      gate: randomW4A8(f, d, s + 5), up: randomW4A8(f, d, s + 6), down: randomW4A8(d, f, s + 7),
    });
  }
  return {
    config, backend: cpuBackend, invFreq: ropeInverseFrequencies(128, 10000, { kind: 'none' }),
    weights: { embedding, layers: built, finalNorm: ones, lmHead: { kind: 'float', n: 32000, k: d, w: embedding } },
  };
}
