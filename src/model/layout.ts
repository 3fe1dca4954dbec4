/**
 * Where the weights of a LLaMA-family decoder live: the Hugging Face module names of the seven
 * linear layers of each decoder layer (a mixtral layer: q/k/v/o, the router and each expert's three),
 * and the shapes config.json implies for them.
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

/** The MLP's three slots: a dense layer's mlp, and each expert of a mixture of experts. */
export const MLP_SLOTS = ['gate', 'up', 'down'] as const;
export type MlpSlot = (typeof MLP_SLOTS)[number];
export const ATTENTION_SLOTS = ['q', 'k', 'v', 'o'] as const;

/** mixtral's router [numExperts, hidden] (kept in float) and its experts' names for gate, up, down. */
export const ROUTER_NAME = 'block_sparse_moe.gate';
export const EXPERT_NAMES: Readonly<Record<MlpSlot, string>> = { gate: 'w1', up: 'w3', down: 'w2' };

/** The module name (after the layer prefix) of a linear: a dense slot, or slot `slot` of expert `expert`. */
export function linearModule(slot: LinearSlot, expert: number | null): string {
  if (expert === null || slot === 'q' || slot === 'k' || slot === 'v' || slot === 'o') return LINEAR_NAMES[slot];
  return `block_sparse_moe.experts.${expert}.${EXPERT_NAMES[slot]}`;
}

/** Module names (after the layer prefix) of a layer's linears but the router: 7 when dense, 4 + 3 per expert. */
export function linearModules(numExperts: number | undefined): string[] {
  if (numExperts === undefined) return LINEAR_SLOTS.map((s) => LINEAR_NAMES[s]);
  const experts = Array.from({ length: numExperts }, (_, e) => MLP_SLOTS.map((s) => linearModule(s, e)));
  return [...ATTENTION_SLOTS.map((s) => LINEAR_NAMES[s]), ...experts.flat()];
}

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

