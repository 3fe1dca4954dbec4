/**
 * Which input each linear of a decoder layer reads (q/k/v share the normed hidden state, gate/up
 * share the post-attention normed state; in a mixture of experts each expert's gate/up read the
 * rows routed to it), and the input widths.
 */
import type { ModelConfig } from '../model/config.js';
import type { LinearInput } from '../model/forward.js';
import { linearModule, type LinearSlot } from '../model/layout.js';
import { mapLinears, type LayerLinears } from '../model/layer-linears.js';
import type { LayerNorms } from '../model/weights.js';

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

/** Linears reading one input: `expert` null for attention and a dense MLP, else the expert whose routed rows they read. */
export interface LinearGroup {
  readonly input: LinearInput;
  readonly expert: number | null;
  readonly slots: readonly LinearSlot[];
  /** how the observer's (input, expert) of this group is keyed (groupKey). */
  readonly key: string;
}

export const groupKey = (input: LinearInput, expert: number | null): string => (expert === null ? input : `${input}#${expert}`);

/** The groups of one input, one per expert for gate/up and down of a mixture of experts. */
export function groupsOf(config: ModelConfig, input: LinearInput): LinearGroup[] {
  const experts = config.moe !== undefined && (input === 'gateUp' || input === 'down') ? config.moe.numExperts : 0;
  const make = (expert: number | null): LinearGroup => ({ input, expert, slots: LINEARS_OF[input], key: groupKey(input, expert) });
  return experts === 0 ? [make(null)] : Array.from({ length: experts }, (_, e) => make(e));
}

/** The layer with the linears named in `replaced` (by module name after the layer prefix) swapped in. */
export function withReplaced<W, L extends LayerNorms & LayerLinears<W>>(layer: L, replaced: ReadonlyMap<string, W>): LayerNorms & LayerLinears<W> {
  const linears = mapLinears(layer, (w, slot, expert) => replaced.get(linearModule(slot, expert)) ?? w, (r) => r);
  return { inputNorm: layer.inputNorm, postAttentionNorm: layer.postAttentionNorm, ...linears };
}
