/**
 * mixtral's mixture of experts on the CPU: the routing against a direct float64 reading of
 * transformers' rule (fresh random logits), the block against every expert run on every token
 * and masked, a mixtral of identical experts against the dense fixture's transformers logits
 * (whatever the router picks, the k weights sum to 1), and the checks
 * on bad checkpoints. The mixtral fixtures made by transformers are checked in forward.test.ts
 * and generate.test.ts, the batched decode step in batch.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cpuBackend } from '../../src/backends/cpu/cpu-backend.js';
import { loadModel } from '../../src/backends/load.js';
import type { PreparedLinear } from '../../src/model/backend.js';
import { forwardHidden, logitsOf } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { routeTokens, runMoe } from '../../src/model/moe.js';
import { loadMemory } from '../../src/model/memory.js';
import { openModelDir } from '../../src/model/model-dir.js';
import type { MoeLinears } from '../../src/model/layer-linears.js';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import type { FloatLinear } from '../../src/quant/types.js';
import { sharedFloat32 } from '../../src/tensor/shared.js';
import { mixtralFromDense } from '../helpers/mixtral-dir.js';
import { fixturePath } from '../helpers/paths.js';
import { freshSeed, makeRng, randomNormals, type Rng } from '../helpers/random.js';
import { readReference } from '../helpers/reference.js';
import { relativeError } from '../helpers/compare.js';
import { throwsInput } from '../io/temp-dir.js';

/** The routing rule read directly: float64 softmax, sort by probability (stable), first k, renormalised. */
function referenceRoute(logits: Float32Array, t: number, experts: number, k: number): Map<number, number> {
  const l = Array.from(logits.subarray(t * experts, (t + 1) * experts));
  const max = Math.max(...l);
  const z = l.reduce((a, v) => a + Math.exp(v - max), 0);
  const p = l.map((v) => Math.exp(v - max) / z);
  const top = p.map((v, e) => [v, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k);
  const total = top.reduce((a, [v]) => a + v, 0);
  return new Map(top.map(([v, e]) => [e, v / total]));
}

test('routeTokens: each token goes to its top-k experts by softmax, weights renormalised to 1 (fresh random logits)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  for (const [experts, k] of [[4, 2], [8, 2], [8, 3], [3, 3], [1, 1]] as const) {
    const m = 37;
    const logits = randomNormals(rng, m * experts, 2);
    const routes = routeTokens(logits, m, experts, k);
    assert.equal(routes.length, experts);
    for (let t = 0; t < m; t++) {
      const want = referenceRoute(logits, t, experts, k);
      const got = new Map<number, number>();
      routes.forEach((r, e) => r.rows.forEach((row, i) => { if (row === t) got.set(e, r.weights[i]!); }));
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `seed ${seed}, E ${experts} k ${k}, token ${t}`);
      for (const [e, w] of want) assert.ok(Math.abs(got.get(e)! - w) < 1e-6, `seed ${seed}: token ${t} expert ${e}: ${got.get(e)} vs ${w}`);
    }
    for (const r of routes) assert.deepEqual(r.rows, [...r.rows].sort((a, b) => a - b), 'rows in token order');
  }
});

test('routeTokens: equal probabilities go to the lower expert index first', () => {
  const routes = routeTokens(new Float32Array([0.5, 1, 1, 1, 0.5]), 1, 5, 2);
  assert.deepEqual(routes.map((r) => r.rows.length), [0, 1, 1, 0, 0]);
  assert.deepEqual([routes[1]!.weights[0], routes[2]!.weights[0]], [0.5, 0.5]);
});

function floatLinear(rng: Rng, n: number, k: number): FloatLinear {
  const w = sharedFloat32(n * k);
  w.set(randomNormals(rng, n * k, 1 / Math.sqrt(k)));
  return { kind: 'float', n, k, w };
}

test('runMoe equals every expert run on every token, weighted by the routing and summed (fresh random weights)', () => {
  const seed = freshSeed();
  const rng = makeRng(seed);
  const [d, f, experts, k, m] = [24, 40, 6, 2, 19];
  const router = floatLinear(rng, experts, d);
  const mlps = Array.from({ length: experts }, () => ({ gate: floatLinear(rng, f, d), up: floatLinear(rng, f, d), down: floatLinear(rng, d, f) }));
  const prep = (w: FloatLinear): PreparedLinear => cpuBackend.prepareLinear(w);
  const moe: MoeLinears<PreparedLinear, PreparedLinear> = { router: prep(router), experts: mlps.map((e) => ({ gate: prep(e.gate), up: prep(e.up), down: prep(e.down) })) };
  const x = sharedFloat32(m * d);
  x.set(randomNormals(rng, m * d));
  const seen: string[] = [];
  const out = runMoe(cpuBackend, moe, k, x, m, d, (input, _x, rows, expert) => seen.push(`${input}:${expert}:${rows}`));

  const dot = (a: Float32Array, ao: number, b: Float32Array, bo: number, n: number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[ao + i]! * b[bo + i]!;
    return s;
  };
  const logits = new Float32Array(m * experts);
  for (let t = 0; t < m; t++) for (let e = 0; e < experts; e++) logits[t * experts + e] = dot(x, t * d, router.w, e * d, d);
  let maxDiff = 0;
  let scale = 0;
  for (let t = 0; t < m; t++) {
    const weights = referenceRoute(logits, t, experts, k);
    for (let c = 0; c < d; c++) {
      let y = 0;
      mlps.forEach((e, i) => {
        const h = Array.from({ length: f }, (_, j) => {
          const g = dot(x, t * d, e.gate.w, j * d, d);
          return (g / (1 + Math.exp(-g))) * dot(x, t * d, e.up.w, j * d, d);
        });
        y += (weights.get(i) ?? 0) * h.reduce((a, v, j) => a + v * e.down.w[c * f + j]!, 0);
      });
      maxDiff = Math.max(maxDiff, Math.abs(out[t * d + c]! - y));
      scale = Math.max(scale, Math.abs(y));
    }
  }
  assert.ok(maxDiff < 1e-5 * scale, `seed ${seed}: max |Δ| ${maxDiff} of ${scale}`);
  assert.equal(seen[0], `gateUp:null:${m}`, 'the block input first, every token');
  const routed = seen.slice(1).filter((s) => s.startsWith('gateUp')).reduce((a, s) => a + Number(s.split(':')[2]), 0);
  assert.equal(routed, m * k, 'each token reaches k experts');
});

test('a mixtral of 4 identical experts (top 2, random router) gives the dense mistral fixture\'s transformers logits within 1e-4, prefill and decode', () => {
  const dir = mixtralFromDense('mistral', { experts: 4, topK: 2, seed: freshSeed(), noise: 0 });
  const { model } = loadModel(dir);
  assert.equal(model.config.architecture, 'mixtral');
  assert.deepEqual(model.config.moe, { numExperts: 4, topK: 2 });
  assert.equal(model.config.slidingWindow, 8);
  const ref = readReference(fixturePath('mistral'));
  const t = ref.inputIds.length;
  const prefill = logitsOf(model, forwardHidden(model, ref.inputIds, createKvCache(model.config, t, model.backend)), 0, t);
  assert.ok(relativeError(prefill, ref.logits) < 1e-4, `prefill relative error ${relativeError(prefill, ref.logits)}`);
  const cache = createKvCache(model.config, t, model.backend);
  const vocab = model.config.vocabSize;
  for (let i = 0; i < t; i++) {
    const row = logitsOf(model, forwardHidden(model, [ref.inputIds[i]!], cache), 0, 1);
    const err = relativeError(row, ref.logits.subarray(i * vocab, (i + 1) * vocab));
    assert.ok(err < 1e-4, `decode step ${i} relative error ${err}`);
  }
  // and with distinct experts the logits differ: the experts are really used
  const mixed = loadModel(mixtralFromDense('mistral', { experts: 4, topK: 2, seed: freshSeed(), noise: 0.5 })).model;
  const other = logitsOf(mixed, forwardHidden(mixed, ref.inputIds, createKvCache(mixed.config, t, mixed.backend)), 0, t);
  assert.ok(relativeError(other, ref.logits) > 1e-3);
});

test('the memory estimate counts every expert and the router', () => {
  const dir = mixtralFromDense('mistral', { experts: 5, topK: 2, seed: freshSeed(), noise: 0.1 });
  const source = openModelDir(dir);
  try {
    const { hiddenSize: d, intermediateSize: f, numLayers, vocabSize: v, numHeads, numKvHeads, headDim } = source.config;
    const attention = 2 * d * numHeads * headDim + 2 * d * numKvHeads * headDim;
    const perLayer = 2 * d + attention + 5 * d + 5 * 3 * d * f;
    assert.equal(loadMemory(source.weights).resident, 4 * (2 * v * d + d + numLayers * perLayer));
  } finally {
    source.weights.close();
  }
});

test('a backend without the mixture-of-experts operations refuses a mixtral when the model is made, naming itself', () => {
  const dir = mixtralFromDense('mistral', { experts: 2, topK: 1, seed: freshSeed(), noise: 0.1 });
  const { gatherRows: _g, addScaledRows: _a, ...rest } = cpuBackend;
  throwsInput(() => loadModel(dir, { backend: { ...rest, name: 'dense-only' } }), 'the dense-only backend does not run mixture-of-experts (mixtral) layers yet');
});

/** Rewrites dir/model.safetensors through `edit` (name → tensor or null to drop it). */
function editTensors(dir: string, edit: (name: string, shape: number[], data: Float32Array) => { shape: number[]; data: Float32Array } | null): void {
  const file = path.join(dir, 'model.safetensors');
  const st = openSafetensors(file);
  const tensors = [...st.tensors.values()].flatMap((t) => {
    const r = edit(t.name, [...t.shape], st.readFloat32(t.name));
    return r === null ? [] : [{ name: t.name, dtype: 'F32' as const, shape: r.shape, data: r.data }];
  });
  st.close();
  writeSafetensors(file, tensors, { format: 'pt' });
}

test('bad mixtral checkpoints: a missing expert, a router of the wrong shape, and too few experts in config.json are errors naming the problem', () => {
  const options = { experts: 4, topK: 2, seed: freshSeed(), noise: 0.1 };
  const missing = mixtralFromDense('mistral', options);
  editTensors(missing, (name, shape, data) => (name === 'model.layers.1.block_sparse_moe.experts.3.w2.weight' ? null : { shape, data }));
  throwsInput(() => loadModel(missing), /model\.layers\.1\.block_sparse_moe\.experts\.3\.w2\.weight/);

  const router = mixtralFromDense('mistral', options);
  editTensors(router, (name, shape, data) => (name === 'model.layers.0.block_sparse_moe.gate.weight' ? { shape: [3, shape[1]!], data: data.subarray(0, 3 * shape[1]!) } : { shape, data }));
  throwsInput(() => loadModel(router), /model\.layers\.0\.block_sparse_moe\.gate\.weight" has shape \[3, 64\] but the model expects \[4, 64\]/);

  const fewer = mixtralFromDense('mistral', { ...options, config: { num_local_experts: 3 } });
  throwsInput(() => loadModel(fewer), /block_sparse_moe\.gate\.weight" has shape \[4, 64\] but the model expects \[3, 64\]/);

  const k = mixtralFromDense('mistral', { ...options, config: { num_experts_per_tok: 5 } });
  throwsInput(() => loadModel(k), '"num_experts_per_tok" 5 is more than "num_local_experts" 4');
  assert.ok(fs.existsSync(path.join(k, 'config.json')));
});
