/**
 * The model hyper-parameters the forward pass needs, parsed from a Hugging Face config.json
 * (see src/io/hf-config.ts). One shape for every supported architecture.
 */
export type Architecture = 'llama' | 'mistral' | 'qwen2' | 'mixtral';

/** How rotary frequencies are rescaled for long context, as config.json's rope_scaling says. */
export type RopeScaling =
  | { readonly kind: 'none' }
  /** position interpolation: every frequency divided by factor. */
  | { readonly kind: 'linear'; readonly factor: number }
  /** Llama 3.x: low frequencies divided by factor, high kept, smooth blend between. */
  | {
      readonly kind: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositionEmbeddings: number;
    };

/**
 * Biases per group of linear layers: llama's attention_bias gives q, k, v and o one, its mlp_bias
 * gate, up and down; qwen2 always has q/k/v biases (never o or the MLP); mistral has none.
 */
export interface LinearBiases {
  readonly qkv: boolean;
  readonly o: boolean;
  readonly mlp: boolean;
}

export const NO_BIASES: LinearBiases = { qkv: false, o: false, mlp: false };

/**
 * A sparse mixture-of-experts MLP (mixtral): each token's MLP is the weighted sum of the topK of
 * numExperts SwiGLU experts its router picks (model/moe.ts).
 */
export interface MoeConfig {
  readonly numExperts: number;
  readonly topK: number;
}

export interface ModelConfig {
  readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  /** the MLP's width (of each expert for a mixture of experts). */
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
  /** which linear layers carry a bias, as transformers builds them for the architecture. */
  readonly bias: LinearBiases;
  /** the sliding window of every layer (mistral, qwen2 with use_sliding_window); null = full attention. */
  readonly slidingWindow: number | null;
  /** the mixture of experts every layer's MLP is (mixtral); absent: a dense MLP. */
  readonly moe?: MoeConfig;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
}
