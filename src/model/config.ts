/**
 * The model hyper-parameters the forward pass needs, parsed from a Hugging Face config.json
 * (see src/io/hf-config.ts). One shape for every supported architecture.
 */
export type Architecture = 'llama' | 'mistral' | 'qwen2';

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

export interface ModelConfig {
  readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
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
  /** q/k/v projections carry a bias (qwen2). */
  readonly attentionBias: boolean;
  /** mistral's sliding window; null = full attention. */
  readonly slidingWindow: number | null;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
}
