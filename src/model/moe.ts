/**
 * mixtral's sparse mixture-of-experts MLP, as transformers' MixtralSparseMoeBlock computes it:
 *
 *   logits  = x · Wrouterᵀ                               [m, E]   (the router stays float)
 *   p       = softmax(logits) over all E experts, in float32
 *   top     = the topK largest p of each token (equal values: the lower expert index first)
 *   w_j     = p_j / Σ_top p                               (the k weights renormalised to sum 1)
 *   out     = Σ_{e in top} w_e · down_e(silu(gate_e·x) ⊙ up_e·x)
 *
 * Each expert runs once on the rows routed to it (gathered, then added back scaled by their weights,
 * experts in index order as index_add_ does). routeTokens is the host-side routing, exported for the
 * calibration and tests.
 */
import type { Backend, PreparedLinear } from './backend.js';
import type { MoeLinears } from './layer-linears.js';
import type { LinearObserver } from './observer.js';
import { sharedFloat32 } from '../tensor/shared.js';

/** The tokens (rows) routed to one expert, with their routing weights. */
export interface ExpertRoute {
  readonly rows: number[];
  readonly weights: Float32Array;
}

/** Routes m tokens by their router logits [m, numExperts] (see the header); one entry per expert. */
export function routeTokens(logits: Float32Array, m: number, numExperts: number, topK: number): ExpertRoute[] {
  const rows: number[][] = Array.from({ length: numExperts }, () => []);
  const weights: number[][] = Array.from({ length: numExperts }, () => []);
  const p = new Float32Array(numExperts);
  const picked: number[] = [];
  for (let t = 0; t < m; t++) {
    const l = logits.subarray(t * numExperts, (t + 1) * numExperts);
    let max = -Infinity;
    for (let e = 0; e < numExperts; e++) max = Math.max(max, l[e]!);
    let sum = 0;
    for (let e = 0; e < numExperts; e++) sum += Math.exp(l[e]! - max);
    for (let e = 0; e < numExperts; e++) p[e] = Math.exp(l[e]! - max) / sum;
    picked.length = 0;
    for (let j = 0; j < topK; j++) {
      let best = -1;
      for (let e = 0; e < numExperts; e++) if (!picked.includes(e) && (best < 0 || p[e]! > p[best]!)) best = e;
      picked.push(best);
    }
    let total = 0;
    for (const e of picked) total = Math.fround(total + p[e]!);
    for (const e of picked) {
      rows[e]!.push(t);
      weights[e]!.push(Math.fround(p[e]! / total));
    }
  }
  return rows.map((r, e) => ({ rows: r, weights: Float32Array.from(weights[e]!) }));
}

/**
 * The mixture-of-experts MLP on x [m, hidden] (the post-attention normed states): returns its
 * output [m, hidden]. `observe` sees the block's input ('gateUp', expert null), then each expert's
 * gate/up input (its routed rows) and down input, with the expert's index.
 */
export function runMoe<T>(b: Backend<T>, moe: MoeLinears<PreparedLinear<T>, PreparedLinear<T>>, topK: number, x: T, m: number,
  hidden: number, observe?: LinearObserver<T>): T {
  if (!b.gatherRows || !b.addScaledRows) throw new Error(`the ${b.name} backend cannot run mixture-of-experts layers (no gatherRows / addScaledRows)`);
  const numExperts = moe.experts.length;
  observe?.('gateUp', x, m, null);
  const logits = b.download(moe.router.run(x, m), 0, m, numExperts);
  const routes = routeTokens(logits, m, numExperts, topK);
  const out = b.upload(sharedFloat32(m * hidden));
  routes.forEach(({ rows, weights }, e) => {
    if (rows.length === 0) return;
    const expert = moe.experts[e]!;
    const xe = b.gatherRows!(x, rows, hidden);
    observe?.('gateUp', xe, rows.length, e);
    const gate = expert.gate.run(xe, rows.length);
    b.siluMul(gate, expert.up.run(xe, rows.length));
    observe?.('down', gate, rows.length, e);
    b.addScaledRows!(out, expert.down.run(gate, rows.length), rows, weights, hidden);
  });
  return out;
}
