/**
 * The linear layers of one decoder layer in one shape for dense and mixture-of-experts layers:
 * q/k/v/o, then either the dense MLP's gate/up/down or (mixtral) a router and its experts' gate/up/down.
 * W is what a linear is (a LinearWeight, a prepared handle, …), R what the router is (it is never
 * quantized: a FloatLinear, or its prepared handle). linearEntries lists every linear but the router
 * with its module name, mapLinears replaces each one, so code that treats linears one by one (RTN,
 * the checkpoint writer, the overflow audit, preparation) needs no case for experts.
 */
import type { FloatLinear, LinearWeight } from '../quant/types.js';
import { ATTENTION_SLOTS, MLP_SLOTS, linearModule, type LinearSlot, type MlpSlot } from './layout.js';

/** A SwiGLU MLP, down(silu(gate·x) ⊙ up·x): a dense layer's, or one expert's. */
export type MlpLinears<W> = { readonly [S in MlpSlot]: W };

type AttentionLinears<W> = { readonly [S in (typeof ATTENTION_SLOTS)[number]]: W };

/** A mixture of experts: the router [numExperts, hidden] and the experts, in index order. */
export interface MoeLinears<W, R = FloatLinear> {
  readonly router: R;
  readonly experts: readonly MlpLinears<W>[];
}

export type DenseLinears<W> = AttentionLinears<W> & MlpLinears<W> & { readonly moe?: undefined };
export type SparseLinears<W, R = FloatLinear> = AttentionLinears<W> & { readonly moe: MoeLinears<W, R> };
export type LayerLinears<W = LinearWeight, R = FloatLinear> = DenseLinears<W> | SparseLinears<W, R>;

/** One linear of a layer: its slot, its expert (null: attention or a dense MLP) and module name after the layer prefix. */
export interface LinearEntry<W> {
  readonly slot: LinearSlot;
  readonly expert: number | null;
  readonly module: string;
  readonly weight: W;
}

/** Every linear of the layer except the router, in order: q, k, v, o, then gate, up, down (of each expert in turn). */
export function linearEntries<W>(layer: LayerLinears<W, unknown>): LinearEntry<W>[] {
  const entry = (slot: LinearSlot, expert: number | null, weight: W): LinearEntry<W> => ({ slot, expert, module: linearModule(slot, expert), weight });
  const out = ATTENTION_SLOTS.map((s) => entry(s, null, layer[s]));
  if (layer.moe === undefined) {
    for (const s of MLP_SLOTS) out.push(entry(s, null, layer[s]));
  } else {
    layer.moe.experts.forEach((e, i) => { for (const s of MLP_SLOTS) out.push(entry(s, i, e[s])); });
  }
  return out;
}

/** The linear at slot `slot` (of expert `expert`; null: attention or the dense MLP); an error when the layer has no such one. */
export function linearAt<W>(layer: LayerLinears<W, unknown>, slot: LinearSlot, expert: number | null): W {
  if (slot === 'q' || slot === 'k' || slot === 'v' || slot === 'o') return layer[slot];
  if ((expert === null) !== (layer.moe === undefined)) {
    throw new RangeError(`${slot}${expert === null ? '' : ` of expert ${expert}`}: the layer is ${layer.moe === undefined ? 'dense' : 'a mixture of experts'}`);
  }
  if (layer.moe === undefined) return layer[slot];
  const e = layer.moe.experts[expert!];
  if (e === undefined) throw new RangeError(`expert ${expert}: the layer has ${layer.moe.experts.length}`);
  return e[slot];
}

/** The layer's linears each replaced by f (the router by router), in the same shape. */
export function mapLinears<A, B, R1, R2>(layer: LayerLinears<A, R1>, f: (w: A, slot: LinearSlot, expert: number | null) => B,
  router: (r: R1) => R2): LayerLinears<B, R2> {
  const attention = { q: f(layer.q, 'q', null), k: f(layer.k, 'k', null), v: f(layer.v, 'v', null), o: f(layer.o, 'o', null) };
  if (layer.moe === undefined) return { ...attention, gate: f(layer.gate, 'gate', null), up: f(layer.up, 'up', null), down: f(layer.down, 'down', null) };
  const experts = layer.moe.experts.map((e, i) => ({ gate: f(e.gate, 'gate', i), up: f(e.up, 'up', i), down: f(e.down, 'down', i) }));
  return { ...attention, moe: { router: router(layer.moe.router), experts } };
}

/** The layer's linears (norms and other fields dropped). */
export function linearsOf<W, R>(layer: LayerLinears<W, R>): LayerLinears<W, R> {
  return mapLinears(layer, (w) => w, (r) => r);
}
