/**
 * layer-linears.ts: one walk over dense and mixture-of-experts layers (order, module names, mapping
 * that keeps the shape), and the refusals of code that runs dense layers only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { linearAt, linearEntries, mapLinears, type LayerLinears } from '../../src/model/layer-linears.js';
import { linearModules } from '../../src/model/layout.js';

const dense: LayerLinears<string, string> = { q: 'q', k: 'k', v: 'v', o: 'o', gate: 'g', up: 'u', down: 'd' };
const sparse: LayerLinears<string, string> = {
  q: 'q', k: 'k', v: 'v', o: 'o',
  moe: { router: 'r', experts: [0, 1, 2].map((e) => ({ gate: `g${e}`, up: `u${e}`, down: `d${e}` })) },
};

test('linearEntries: attention, then the MLP or each expert in turn, with the Hub module names; the router is not a linear to quantize', () => {
  assert.deepEqual(linearEntries(dense).map((e) => [e.module, e.weight]), [
    ['self_attn.q_proj', 'q'], ['self_attn.k_proj', 'k'], ['self_attn.v_proj', 'v'], ['self_attn.o_proj', 'o'],
    ['mlp.gate_proj', 'g'], ['mlp.up_proj', 'u'], ['mlp.down_proj', 'd'],
  ]);
  const entries = linearEntries(sparse);
  assert.deepEqual(entries.slice(4, 7).map((e) => [e.module, e.weight, e.slot, e.expert]), [
    ['block_sparse_moe.experts.0.w1', 'g0', 'gate', 0], ['block_sparse_moe.experts.0.w3', 'u0', 'up', 0], ['block_sparse_moe.experts.0.w2', 'd0', 'down', 0],
  ]);
  assert.equal(entries.length, 4 + 3 * 3);
  assert.deepEqual(entries.map((e) => e.module), linearModules(3));
  assert.deepEqual(linearEntries(dense).map((e) => e.module), linearModules(undefined));
});

test('mapLinears keeps the shape (router mapped apart); linearAt finds a linear or names why not', () => {
  const mapped = mapLinears(sparse, (w, slot, expert) => `${w}:${slot}:${expert}`, (r) => r.toUpperCase());
  assert.equal(mapped.moe?.router, 'R');
  assert.equal(mapped.moe?.experts[2]?.down, 'd2:down:2');
  assert.equal(mapped.q, 'q:q:null');
  assert.equal(linearAt(sparse, 'up', 1), 'u1');
  assert.equal(linearAt(dense, 'down', null), 'd');
  assert.throws(() => linearAt(sparse, 'up', null), /the layer is a mixture of experts/);
  assert.throws(() => linearAt(dense, 'up', 0), /the layer is dense/);
  assert.throws(() => linearAt(sparse, 'up', 3), /expert 3: the layer has 3/);
});
