/**
 * The CUDA decode engine on mixture-of-experts (mixtral) models: float fixtures near transformers'
 * logits token by token (decode steps: routed on the device, float experts as one batched cuBLAS GEMM)
 * and as one prefill (one GEMM per picked expert), the f32 greedy tokens equal to transformers'; a
 * mixtral made from the embedded model (a fresh seed per run), RTN-quantized (W4A8 integer and float
 * scale, W4A16: the grouped expert kernels), near the exact CPU path's logits fed the CPU's greedy
 * tokens, its greedy picks the CPU's but where the CPU's two best logits are within the tolerance; sequences batched (decode
 * steps whose experts get several rows each) near each alone with the same greedy tokens; graph replay
 * equal to eager steps bit for bit. Skips without a GPU. Tolerances as decode-engine.test.ts.
 */
import { test } from 'node:test';
import { BATCH_TOLERANCE, engineOnFixture, FLOAT_TOLERANCE, QUANTIZED_TOLERANCE, relativeError, sameGreedyWithin, skip, withEngine } from './engine-checks.js';
import assert from 'node:assert/strict';
import { modelEngine, type SequenceEngine } from '../../../src/model/engine.js';
import type { Model } from '../../../src/model/forward.js';
import { loadModel } from '../../../src/backends/load.js';
import { argmax } from '../../../src/model/sampling.js';
import { quantizeModel } from '../../../src/quantize/quantize-model.js';
import { DEFAULT_SPEC } from '../../../src/quantize/recipe.js';
import type { QuantSpec } from '../../../src/quant/types.js';
import { fixturePath, repoPath } from '../../helpers/paths.js';
import { readReference } from '../../helpers/reference.js';
import { mixtralFromDense } from '../../helpers/mixtral-dir.js';
import { freshSeed } from '../../helpers/random.js';


/** The prompt's logits, then `steps` greedy steps' (each fed the previous argmax). */
function greedyLogits(engine: SequenceEngine, prompt: readonly number[], steps: number): Float32Array[] {
  const seq = engine.open(prompt.length + steps);
  try {
    const out = [seq.feed(prompt)];
    for (let s = 0; s < steps; s++) out.push(seq.feed([argmax(out[s]!)]));
    return out;
  } finally {
    seq.release();
  }
}

test('CUDA engine, mixture of experts: float mixtral fixtures give transformers\' logits token by token and as one prefill, and (f32) its greedy tokens', { skip }, (t) => {
  for (const name of ['mixtral', 'mixtral-window']) {
    const dir = fixturePath(name);
    const ref = readReference(dir);
    const model = loadModel(dir).model;
    for (const floatPrecision of ['f32', 'f16'] as const) {
      withEngine(model, { floatPrecision }, (engine) => {
        assert.match(engine.describe(), new RegExp(`mixture-of-experts layers of ${model.config.moe!.numExperts} ${floatPrecision.toUpperCase()} experts`));
        const { tokenByToken: e, prefillLast: eLast, greedy } = engineOnFixture(engine, ref, ref.greedy.length);
        t.diagnostic(`${name} ${floatPrecision}: token by token ${e.toExponential(1)}, prefill's last row ${eLast.toExponential(1)}; greedy ${greedy.join(' ')}`);
        const tol = floatPrecision === 'f32' ? FLOAT_TOLERANCE : 2 * FLOAT_TOLERANCE;
        assert.ok(e <= tol, `${name} ${floatPrecision}: logit error ${e} of the largest (token by token)`);
        assert.ok(eLast <= tol, `${name} ${floatPrecision}: logit error ${eLast} of the largest (prefill)`);
        if (floatPrecision === 'f32') assert.deepEqual(greedy, ref.greedy, `${name}: greedy tokens`);
      });
    }
  }
});

/** The embedded model made a mixtral of 4 experts (top 2, each its MLP plus 30% noise), RTN-quantized with `spec`; and a prompt. */
const seed = freshSeed();
let mixtralDir: string | undefined;
function quantizedMixtral(spec: QuantSpec): { model: Model; prompt: number[] } {
  mixtralDir ??= mixtralFromDense('tiny-wikitext', { experts: 4, topK: 2, seed, noise: 0.3 }, repoPath('models/tiny-wikitext'));
  const { loaded } = quantizeModel(mixtralDir, { method: 'rtn', base: spec, overrides: {} });
  return { model: loaded.model, prompt: loaded.tokenizer!.encode('The game began development in 2010 , carrying over a large portion of the work') };
}

const QUANTIZED: [string, QuantSpec, string][] = [
  ['W4A8 IS', DEFAULT_SPEC, 'W4A8'],
  ['W4A8 FS', { ...DEFAULT_SPEC, scale: 'float' }, 'W4A8'],
  ['W4A16', { ...DEFAULT_SPEC, aBits: 16, scale: 'float' }, 'W4A16'],
];

for (const [label, spec, kind] of QUANTIZED) {
  test(`CUDA engine, mixture of experts: a quantized mixtral (${label}, grouped expert kernels) near the CPU's logits at the prompt and 12 decode steps fed the CPU's greedy tokens, and the same greedy picks but at near-ties within the tolerance (seed ${seed})`, { skip }, (t) => {
    const { model, prompt } = quantizedMixtral(spec);
    const reference = greedyLogits(modelEngine(model), prompt, 12);
    const tokens = reference.slice(0, 12).map(argmax);
    withEngine(model, {}, (engine) => {
      t.diagnostic(engine.describe());
      assert.match(engine.describe(), new RegExp(`4 mixture-of-experts layers of 4 ${kind} experts`));
      const seq = engine.open(prompt.length + tokens.length);
      const got = [seq.feed(prompt), ...tokens.map((id) => seq.feed([id]))];
      seq.release();
      const errors = got.map((g, i) => relativeError(g, reference[i]!));
      const flips = got.filter((g, i) => argmax(g) !== argmax(reference[i]!)).length;
      t.diagnostic(`largest logit error per step: ${errors.map((e) => e.toExponential(1)).join(' ')}; greedy picks different from the CPU's: ${flips} of ${got.length}`);
      for (const [i, e] of errors.entries()) assert.ok(e <= QUANTIZED_TOLERANCE, `step ${i}: logit error ${e} of the largest`);
      for (const [i, g] of got.entries()) assert.ok(sameGreedyWithin(g, reference[i]!, QUANTIZED_TOLERANCE), `step ${i}: greedy pick ${argmax(g)} vs the CPU's ${argmax(reference[i]!)}, not a near-tie`);
    });
  });
}

test(`CUDA engine, mixture of experts: 6 sequences batched (W4A8 IS grouped kernels; f16 experts padded per expert) each near its logits alone within 1e-3 with the same greedy tokens; graph replay equals eager steps bit for bit (seed ${seed})`, { skip }, (t) => {
  const { model, prompt } = quantizedMixtral(DEFAULT_SPEC);
  const float = loadModel(fixturePath('mixtral-window')).model;
  const floatPrompt = readReference(fixturePath('mixtral-window')).inputIds;
  for (const [label, m, base] of [['W4A8 IS', model, prompt], ['f16 experts', float, floatPrompt]] as const) {
    const prompts = Array.from({ length: 6 }, (_, i) => [...base.slice(i % 4), ...base.slice(0, i % 4)].slice(0, base.length - (i % 3)));
    const steps = 5;
    withEngine(m, { maxSequences: 6, maxChunk: 32 }, (engine) => {
      const alone = prompts.map((p) => greedyLogits(engine, p, steps));
      const seqs = prompts.map((p) => engine.open(p.length + steps));
      const together = engine.feedBatch(seqs, prompts).map((l) => [l]);
      for (let s = 0; s < steps; s++) engine.decodeBatch(seqs, together.map((ls) => argmax(ls[s]!))).forEach((l, i) => together[i]!.push(l));
      for (const q of seqs) q.release();
      let worst = 0;
      for (let i = 0; i < prompts.length; i++) {
        for (let s = 0; s <= steps; s++) {
          const e = relativeError(together[i]![s]!, alone[i]![s]!);
          worst = Math.max(worst, e);
          assert.ok(e <= BATCH_TOLERANCE, `${label} sequence ${i} step ${s}: logit error ${e} of the largest`);
          assert.equal(argmax(together[i]![s]!), argmax(alone[i]![s]!), `${label} sequence ${i} step ${s}: greedy token`);
        }
      }
      t.diagnostic(`${label}: batched vs alone, largest logit error ${worst.toExponential(1)}`);
    });
    const eager: Float32Array[][] = [];
    withEngine(m, { graphs: false }, (engine) => eager.push(greedyLogits(engine, base, 8)));
    withEngine(m, {}, (engine) => {
      const replayed = greedyLogits(engine, base, 8);
      for (let s = 0; s < replayed.length; s++) assert.deepEqual(replayed[s], eager[0]![s], `${label} step ${s}: graph vs eager`);
    });
  }
});
