/**
 * Which input each linear of a decoder layer reads (q/k/v share the normed hidden state, gate/up
 * share the post-attention normed state), and the input widths.
 */
import type { ModelConfig } from '../model/config.js';
import type { LinearInput } from '../model/forward.js';
import type { LinearSlot } from '../model/layout.js';

export const INPUT_OF: Readonly<Record<LinearSlot, LinearInput>> = {
  q: 'qkv', k: 'qkv', v: 'qkv', o: 'o', gate: 'gateUp', up: 'gateUp', down: 'down',
};

/** The linears reading each input, in the order GPTQ's true-sequential mode quantizes them. */
export const LINEARS_OF: Readonly<Record<LinearInput, readonly LinearSlot[]>> = {
  qkv: ['q', 'k', 'v'], o: ['o'], gateUp: ['gate', 'up'], down: ['down'],
};

export const LINEAR_INPUTS: readonly LinearInput[] = ['qkv', 'o', 'gateUp', 'down'];

export function inputWidth(config: ModelConfig, input: LinearInput): number {
  switch (input) {
    case 'qkv':
    case 'gateUp': return config.hiddenSize;
    case 'o': return config.numHeads * config.headDim;
    case 'down': return config.intermediateSize;
  }
}
