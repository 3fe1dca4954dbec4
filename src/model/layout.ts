/**
 * Where the weights of a LLaMA-family decoder live: the Hugging Face module names of the seven
 * linear layers of each decoder layer, and the shapes config.json implies for them.
 */
import type { ModelConfig } from './config.js';

/** The seven linear layers of a decoder layer, by their Hugging Face module names. */
export const LINEAR_NAMES = {
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
} as const;

export type LinearSlot = keyof typeof LINEAR_NAMES;
export const LINEAR_SLOTS = Object.keys(LINEAR_NAMES) as LinearSlot[];

export function layerPrefix(layer: number): string {
  return `model.layers.${layer}.`;
}

/** [out, in] of each linear layer as config.json implies. */
export function linearShape(config: ModelConfig, slot: LinearSlot): [number, number] {
  const { hiddenSize: d, intermediateSize: f, numHeads, numKvHeads, headDim } = config;
  switch (slot) {
    case 'q': return [numHeads * headDim, d];
    case 'k':
    case 'v': return [numKvHeads * headDim, d];
    case 'o': return [d, numHeads * headDim];
    case 'gate':
    case 'up': return [f, d];
    case 'down': return [d, f];
  }
}

/** Whether transformers gives this linear layer a bias (see LinearBiases). */
export function hasBias(config: ModelConfig, slot: LinearSlot): boolean {
  switch (slot) {
    case 'q':
    case 'k':
    case 'v': return config.bias.qkv;
    case 'o': return config.bias.o;
    case 'gate':
    case 'up':
    case 'down': return config.bias.mlp;
  }
}

