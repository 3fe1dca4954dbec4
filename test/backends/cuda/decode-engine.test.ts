/**
 * The CUDA decode engine (the fast path: fused float32 small ops, fp16 KV cache and lm_head, decode
 * steps as CUDA graphs) against the references: the quantized embedded model's logits near the exact
 * CPU path's at every step and its greedy tokens equal; float fixtures (GQA, sliding window, q/k/v and
 * o biases, llama3 rope) near transformers' logits at every position, fed token by token and as one
 * prefill; graph replay equal to eager steps bit for bit; a prompt fed in chunks near the one-shot
 * prefill; a W4A16 prompt past the decode kernel's rows (fp16 expansion + cuBLAS) near the same prompt in
 * short passes; two sequences interleaved equal to each alone; 20 sequences batched (a packed prefill,
 * then decode steps of M = 20 rows at different positions) each near its own logits alone with the
 * same greedy tokens, and feedPicked (the argmax on the device) the same tokens; tokens sampled on the device
 * (sample_rows) the host's picks from the same call's logits, alone and batched with greedy picks; decode steps with
 * rope and the KV write folded into attention, with SwiGLU in the gate/up GEMM's epilogue, with the rows
 * of attention and SwiGLU quantized in their producer's last block, and with the RMSNorm in the o / down
 * GEMM's last block, equal to the separate kernels bit for bit; bad use refused with a message. Skips
 * without a GPU. Tolerances are relative to the largest reference logit and are the fast path's
 * stated accuracy (docs/cuda-notes.md).
 */
import { test } from 'node:test';
import { BATCH_TOLERANCE, engineOnFixture, FLOAT_TOLERANCE, QUANTIZED_TOLERANCE, relativeError, sameGreedyWithin, skip, withEngine } from './engine-checks.js';
import assert from 'node:assert/strict';
import { modelEngine, type Sequence, type SequenceEngine } from '../../../src/model/engine.js';
import type { Model } from '../../../src/model/forward.js';
import { ROPE_FOLD_MAX_ROWS, SWIGLU_FOLD_MAX_ROWS, type CudaEngineOptions } from '../../../src/backends/cuda/decode-engine.js';
import { generate } from '../../../src/model/generate.js';
import { argmax, pickToken, seededRandom, type TokenPick } from '../../../src/model/sampling.js';
import { loadModel } from '../../../src/backends/load.js';
import { fixturePath } from '../../helpers/paths.js';
import { readReference } from '../../helpers/reference.js';
import { quantizedEmbedded } from './embedded.js';
import { W4A16_MAX_TOKENS } from '../../../src/backends/cuda/w4a16.js';
import { chooseW4A8Config, type DecodeConfig, type W4A8Config } from '../../../src/backends/cuda/w4a8.js';


/** Logits of the prompt and of `steps` decode steps fed the reference's greedy tokens. */
function stepLogits(engine: SequenceEngine, prompt: number[], tokens: number[]): Float32Array[] {
  const seq = engine.open(prompt.length + tokens.length);
  try {
    return [seq.feed(prompt), ...tokens.map((t) => seq.feed([t]))];
  } finally {
    seq.release();
  }
}

for (const lmHead of ['float', 'w8a8'] as const) {
  test(`CUDA engine: the quantized embedded model's logits (${lmHead === 'w8a8' ? 'W8A8 lm_head, 8-bit embedding: quantize\'s defaults' : 'float lm_head and embedding'}) near the CPU's at the prompt and 16 decode steps, and its greedy tokens equal`, { skip }, (t) => {
    const { model, prompt } = quantizedEmbedded(lmHead);
    assert.equal(model.weights.embedding.kind, lmHead === 'w8a8' ? 'quantized' : 'float');
    const options = { maxNewTokens: 24, temperature: 0, topP: 1, seed: 0, stopTokens: [] };
    const cpuTokens = generate(model, prompt, options).tokens;
    const reference = stepLogits(modelEngine(model), prompt, cpuTokens.slice(0, 16));
    withEngine(model, {}, (engine) => {
      t.diagnostic(engine.describe());
      assert.match(engine.describe(), /GEMMs: 16 W4A8 \(8 of 8 q\/k\/v and gate\/up groups stacked\)/, '4 layers × (q/k/v, o, gate/up, down)');
      assert.match(engine.describe(), lmHead === 'w8a8' ? /lm_head W8A8/ : /lm_head F16/);
      assert.match(engine.describe(), new RegExp(`folds: rope in attention up to ${ROPE_FOLD_MAX_ROWS} rows, SwiGLU in the GEMM epilogue up to ${SWIGLU_FOLD_MAX_ROWS} rows, norm in the GEMM tail`));
      const got = stepLogits(engine, prompt, cpuTokens.slice(0, 16));
      const errors = got.map((g, i) => relativeError(g, reference[i]!));
      t.diagnostic(`largest logit error per step (fraction of the largest logit): ${errors.map((e) => e.toExponential(1)).join(' ')}`);
      for (const [i, e] of errors.entries()) assert.ok(e <= QUANTIZED_TOLERANCE, `step ${i}: logit error ${e} of the largest logit`);
      assert.ok(errors.some((e) => e > 0), 'the fast path is not bit-exact: the comparison sees its rounding');
      assert.deepEqual(generate(engine, prompt, options).tokens, cpuTokens, 'greedy tokens');
    });
  });
}

test('CUDA engine: decode steps replayed as a CUDA graph give the eager steps\' logits bit for bit', { skip }, () => {
  const { model, prompt } = quantizedEmbedded();
  const run = (graphs: boolean): Float32Array[] => {
    let out: Float32Array[] = [];
    withEngine(model, { graphs }, (engine) => {
      const seq = engine.open(prompt.length + 12);
      out = [seq.feed(prompt)];
      for (let s = 0; s < 12; s++) out.push(seq.feed([argmax(out[out.length - 1]!)]));
      seq.release();
    });
    return out;
  };
  const eager = run(false);
  const replayed = run(true);
  for (let s = 0; s < eager.length; s++) assert.deepEqual(replayed[s], eager[s], `step ${s}`);
});

test('CUDA engine: a prompt fed in chunks of 5 gives the one-shot prefill\'s logits within tolerance, and two interleaved sequences each their own', { skip }, () => {
  const { model, prompt } = quantizedEmbedded();
  withEngine(model, { maxChunk: 5 }, (chunked) => {
    withEngine(model, {}, (whole) => {
      const a = chunked.open(prompt.length + 1).feed(prompt);
      const b = whole.open(prompt.length + 1).feed(prompt);
      assert.ok(relativeError(a, b) <= QUANTIZED_TOLERANCE, `chunked prefill: ${relativeError(a, b)}`);
      assert.equal(argmax(a), argmax(b));
    });
  });
  withEngine(model, {}, (engine) => {
    const other = prompt.slice(3).reverse();
    const alone = (p: number[]) => stepLogits(engine, p, [5, 9, 17, 33]);
    const [soloA, soloB] = [alone(prompt), alone(other)];
    const [sa, sb] = [engine.open(prompt.length + 4), engine.open(other.length + 4)];
    const together = [[sa.feed(prompt)], [sb.feed(other)]];
    for (const tok of [5, 9, 17, 33]) {
      together[0]!.push(sa.feed([tok]));
      together[1]!.push(sb.feed([tok]));
    }
    sa.release();
    sb.release();
    for (let s = 0; s < 5; s++) {
      assert.deepEqual(together[0]![s], soloA[s], `sequence A step ${s}`);
      assert.deepEqual(together[1]![s], soloB[s], `sequence B step ${s}`);
    }
  });
});

test('CUDA engine: a W4A16 prompt longer than the decode kernel\'s rows (one pass: layers expanded to fp16 for cuBLAS) gives its logits fed in passes of 32 (the decode kernel), and near the CPU\'s', { skip }, () => {
  const { model } = quantizedEmbedded('w4a16');
  const { prompt } = quantizedEmbedded();
  const long = Array.from({ length: Math.ceil((W4A16_MAX_TOKENS + 20) / prompt.length) }, () => prompt).flat().slice(0, W4A16_MAX_TOKENS + 20);
  assert.ok(long.length > W4A16_MAX_TOKENS);
  const cpu = modelEngine(model).open(long.length).feed(long);
  withEngine(model, {}, (whole) => {
    assert.match(whole.describe(), /W4A16/);
    withEngine(model, { maxChunk: 32 }, (chunked) => {
      const a = whole.open(long.length).feed(long);
      const b = chunked.open(long.length).feed(long);
      assert.ok(relativeError(a, b) <= FLOAT_TOLERANCE, `one pass vs passes of 32: ${relativeError(a, b)}`);
      assert.ok(relativeError(a, cpu) <= QUANTIZED_TOLERANCE, `one pass vs the CPU: ${relativeError(a, cpu)}`);
      assert.equal(argmax(a), argmax(cpu));
    });
  });
});

test('CUDA engine: float fixtures (GQA, sliding window, biases, llama3 rope) give transformers\' logits at every position, token by token and as one prefill', { skip }, (t) => {
  for (const name of ['llama', 'mistral', 'qwen2', 'llama-attention-bias', 'llama-mlp-bias']) {
    const dir = fixturePath(name);
    const ref = readReference(dir);
    const model = loadModel(dir).model;
    for (const floatPrecision of ['f32', 'f16'] as const) {
      withEngine(model, { floatPrecision }, (engine) => {
        const { tokenByToken: e, prefillLast: eLast } = engineOnFixture(engine, ref);
        t.diagnostic(`${name} ${floatPrecision}: token by token ${e.toExponential(1)}, prefill's last row ${eLast.toExponential(1)}`);
        const tol = floatPrecision === 'f32' ? FLOAT_TOLERANCE : 2 * FLOAT_TOLERANCE;
        assert.ok(e <= tol, `${name} ${floatPrecision}: logit error ${e} of the largest (token by token)`);
        assert.ok(eLast <= tol, `${name} ${floatPrecision}: logit error ${eLast} of the largest (prefill)`);
      });
    }
  }
});

test('CUDA engine: 20 sequences batched (prefill packed across passes, decode steps of 20 rows at different positions) each give their own logits alone within 1e-3 and the same greedy tokens; feedPicked picks them on the device, the prefill\'s too', { skip }, (t) => {
  const { model, prompt } = quantizedEmbedded();
  const prompts = Array.from({ length: 20 }, (_, i) => [...prompt.slice(i % 5), ...prompt.slice(0, i % 5)].slice(0, prompt.length - (i % 7)));
  const steps = 6;
  withEngine(model, { maxSequences: 20, maxChunk: 64 }, (engine) => {
    const alone = prompts.map((p) => {
      const seq = engine.open(p.length + steps);
      const out = [seq.feed(p)];
      for (let s = 0; s < steps; s++) out.push(seq.feed([argmax(out[s]!)]));
      seq.release();
      return out;
    });
    const seqs = prompts.map((p) => engine.open(p.length + steps));
    const together = engine.feedBatch(seqs, prompts).map((l) => [l]);
    for (let s = 0; s < steps; s++) {
      const step = engine.decodeBatch(seqs, together.map((ls) => argmax(ls[s]!)));
      step.forEach((l, i) => together[i]!.push(l));
    }
    for (const q of seqs) q.release();
    // the same run with the tokens chosen on the device (the prefill's too, its passes each picking the sequences that
    // end in them): each step's tokens are the batched logits' argmax
    const again = prompts.map((p) => engine.open(p.length + steps));
    let next = [...engine.feedPicked(again, prompts)];
    for (let s = 0; s < steps; s++) {
      assert.deepEqual(next, together.map((ls) => argmax(ls[s]!)), `feedPicked's tokens after step ${s}`);
      next = [...engine.feedPicked(again, next.map((tk) => [tk]))];
    }
    assert.deepEqual(next, together.map((ls) => argmax(ls[steps]!)), 'feedPicked\'s last tokens');
    for (const q of again) q.release();
    let worst = 0, identical = 0;
    for (let i = 0; i < prompts.length; i++) {
      for (let s = 0; s <= steps; s++) {
        const [got, want] = [together[i]![s]!, alone[i]![s]!];
        const e = relativeError(got, want);
        worst = Math.max(worst, e);
        if (e === 0) identical++;
        assert.ok(e <= BATCH_TOLERANCE, `sequence ${i} step ${s}: logit error ${e} of the largest`);
        assert.equal(argmax(got), argmax(want), `sequence ${i} step ${s}: greedy token`);
      }
    }
    t.diagnostic(`batched vs alone: largest logit error ${worst.toExponential(1)}; ${identical} of ${prompts.length * (steps + 1)} rows bit-identical`);
  });
});

test('CUDA engine: tokens sampled on the device (feedPicked, sample_rows) are the host\'s picks from the logits the same call returns: alone through generate (seeded, T 0.8, top-p 0.9) and 12 sequences batched (a prefill over several passes, then decode steps), greedy and sampled picks mixed; bad picks refused before anything runs', { skip }, (t) => {
  const { model, prompt } = quantizedEmbedded();
  withEngine(model, { maxSequences: 12, maxChunk: 48 }, (engine) => {
    // the same engine without feedPicked: its calls return logits and the host picks (the same kernels up to the pick)
    const hostPicks: SequenceEngine = { config: engine.config, open: engine.open, decodeBatch: engine.decodeBatch };
    for (const seed of [1234, 99]) {
      const options = { maxNewTokens: 20, temperature: 0.8, topP: 0.9, seed, stopTokens: [] };
      const onDevice = generate(engine, prompt, options).tokens;
      assert.deepEqual(onDevice, generate(hostPicks, prompt, options).tokens, `seed ${seed}`);
      t.diagnostic(`seed ${seed}: ${onDevice.join(' ')}`);
    }
    const prompts = Array.from({ length: 12 }, (_, i) => [...prompt.slice(i % 5), ...prompt.slice(0, i % 5)].slice(0, prompt.length - (i % 4)));
    const steps = 6;
    const random = seededRandom(7);
    // picks[0] for the prefill's tokens, picks[s + 1] for decode step s
    const picks = Array.from({ length: steps + 1 }, () => prompts.map((_, i): TokenPick => (i % 3 === 0 ? { temperature: 0, topP: 1, draw: 0 } : { temperature: 0.5 + (i % 4) * 0.4, topP: [0.5, 0.9, 1][i % 3]!, draw: random() })));
    const run = (pickCall: (seqs: Sequence[], tokens: number[][], s: number) => number[]): number[][] => {
      const seqs = prompts.map((p) => engine.open(p.length + steps));
      let next = pickCall(seqs, prompts, 0);
      const out = [next];
      for (let s = 1; s <= steps; s++) out.push((next = pickCall(seqs, next.map((tk) => [tk]), s)));
      for (const q of seqs) q.release();
      return out;
    };
    let notArgmax = 0;
    const host = run((seqs, tokens, s) => engine.feedBatch(seqs, tokens).map((l, i) => {
      const token = pickToken(l, picks[s]![i]!);
      if (token !== argmax(l)) notArgmax++;
      return token;
    }));
    const device = run((seqs, tokens, s) => [...engine.feedPicked(seqs, tokens, picks[s])]);
    assert.deepEqual(device, host, '12 sequences, greedy and sampled picks');
    assert.ok(notArgmax > 0, 'some sampled picks are not the argmax (the check sees sampling)');
    t.diagnostic(`${notArgmax} of ${(steps + 1) * 8} sampled picks not the argmax`);
    const seq = engine.open(prompt.length + 2);
    seq.feed(prompt);
    assert.throws(() => engine.feedPicked([seq], [[1]], [{ temperature: 0.7, topP: 0, draw: 0.5 }]), /pick 0: topP must be in \(0, 1\]/);
    assert.throws(() => engine.feedPicked([seq], [[1]], []), /feedPicked: 0 picks for 1 sequences/);
    assert.equal(seq.length, prompt.length, 'a refused step feeds nothing');
    seq.release();
  });
});

/**
 * Each sequence's logits after a batched prefill and `steps` decode steps of all of them together: greedy, or fed the
 * tokens `fed` picks from another run's logits (so runs that may differ by rounding see the same inputs).
 */
function batchedRun(model: Model, prompts: number[][], steps: number, options: Omit<CudaEngineOptions, 'ctx'>, fed?: Float32Array[][]): Float32Array[][] {
  let out: Float32Array[][] = [];
  withEngine(model, { ...options, maxSequences: prompts.length }, (engine) => {
    const seqs = prompts.map((p) => engine.open(p.length + steps));
    out = [engine.feedBatch(seqs, prompts)];
    for (let s = 0; s < steps; s++) out.push(engine.decodeBatch(seqs, (fed ?? out)[s]!.map(argmax)));
    for (const q of seqs) q.release();
  });
  return out;
}

test('CUDA engine: decode steps with rope and the KV write folded into attention, with SwiGLU in the gate/up GEMM\'s epilogue, the rows of attention and SwiGLU quantized in their producer\'s last block or by the GEMM that reads them, with the RMSNorm in the o / down GEMM\'s last block, with attention merged by its last split block, and with the small ops launched to overlap the kernel before, give the separate kernels\' logits bit for bit (batched; GQA and a sliding window of 8 (mistral); later steps read the keys the fold stored)', { skip }, (t) => {
  const { model: quantized, prompt } = quantizedEmbedded();
  const fixture = (name: string) => ({ name, model: loadModel(fixturePath(name)).model, prompt: readReference(fixturePath(name)).inputIds.slice(0, 6) });
  const steps = 10;
  const variants = (p: number[], n: number) => Array.from({ length: n }, (_, i) => [...p.slice(i % 4), ...p.slice(0, i % 4)].slice(0, p.length - (i % 3)));
  const { model: quantizedW8Head } = quantizedEmbedded('w8a8');
  const cases: { name: string; model: Model; prompts: number[][]; option: 'ropeInAttention' | 'fuseSwiGLU' | 'normInGemm' | 'quantizeInTail' | 'quantizeInGemm' | 'mergeInAttention' | 'overlapSmallOps' }[] = [
    { name: 'quantized embedded, 3 sequences', model: quantized, prompts: variants(prompt, 3), option: 'ropeInAttention' },
    ...['mistral', 'qwen2'].map(fixture).map((f) => ({ ...f, prompts: variants(f.prompt, 3), option: 'ropeInAttention' as const })),
    // 3 rows: the decode kernel's one token half; 12 rows: two halves and two tiles a block; 20 rows: four halves
    { name: 'quantized embedded, 3 sequences', model: quantized, prompts: variants(prompt, 3), option: 'fuseSwiGLU' },
    { name: 'quantized embedded, 12 sequences', model: quantized, prompts: variants(prompt, 12), option: 'fuseSwiGLU' },
    { name: 'quantized embedded, 20 sequences', model: quantized, prompts: variants(prompt, 20), option: 'fuseSwiGLU' },
    // the norm in the o / down GEMM's last block: the final norm into the fp16 lm_head's row, or the W8A8 one's int8 row
    { name: 'quantized embedded, 1 sequence', model: quantized, prompts: variants(prompt, 1), option: 'normInGemm' },
    { name: 'quantized embedded (W8A8 lm_head), 3 sequences', model: quantizedW8Head, prompts: variants(prompt, 3), option: 'normInGemm' },
    { name: 'quantized embedded, 12 sequences', model: quantized, prompts: variants(prompt, 12), option: 'normInGemm' },
    { name: 'quantized embedded (W8A8 lm_head), 20 sequences', model: quantizedW8Head, prompts: variants(prompt, 20), option: 'normInGemm' },
    // the rows of attention_merge and of the SwiGLU GEMM quantized in their last block
    { name: 'quantized embedded, 1 sequence', model: quantized, prompts: variants(prompt, 1), option: 'quantizeInTail' },
    { name: 'quantized embedded, 12 sequences', model: quantized, prompts: variants(prompt, 12), option: 'quantizeInTail' },
    { name: 'quantized embedded, 20 sequences', model: quantized, prompts: variants(prompt, 20), option: 'quantizeInTail' },
    ...['mistral'].map(fixture).map((f) => ({ ...f, prompts: variants(f.prompt, 3), option: 'quantizeInTail' as const })), // fp16 rows
    // attention merged by the last split block of each (row, head): prefill passes and decode steps, GQA, a sliding
    // window (mistral: splits before the window hold no positions), qkv biases (qwen2)
    { name: 'quantized embedded, 1 sequence', model: quantized, prompts: variants(prompt, 1), option: 'mergeInAttention' },
    { name: 'quantized embedded, 12 sequences', model: quantized, prompts: variants(prompt, 12), option: 'mergeInAttention' },
    ...['mistral', 'qwen2'].map(fixture).map((f) => ({ ...f, prompts: variants(f.prompt, 3), option: 'mergeInAttention' as const })),
    // the small ops launched to overlap the kernel before them (decode steps and prefill passes; fp16 rows on mistral)
    { name: 'quantized embedded, 1 sequence', model: quantized, prompts: variants(prompt, 1), option: 'overlapSmallOps' },
    { name: 'quantized embedded (W8A8 lm_head), 12 sequences', model: quantizedW8Head, prompts: variants(prompt, 12), option: 'overlapSmallOps' },
    ...['mistral'].map(fixture).map((f) => ({ ...f, prompts: variants(f.prompt, 3), option: 'overlapSmallOps' as const })),
    // the same rows quantized by the o / down GEMM that reads them, each block for itself (one, two and four token
    // halves; prefill passes of up to 64 rows too)
    { name: 'quantized embedded, 1 sequence', model: quantized, prompts: variants(prompt, 1), option: 'quantizeInGemm' },
    { name: 'quantized embedded, 5 sequences', model: quantized, prompts: variants(prompt, 5), option: 'quantizeInGemm' },
    { name: 'quantized embedded, 12 sequences', model: quantized, prompts: variants(prompt, 12), option: 'quantizeInGemm' },
    { name: 'quantized embedded (W8A8 lm_head), 20 sequences', model: quantizedW8Head, prompts: variants(prompt, 20), option: 'quantizeInGemm' },
  ];
  for (const c of cases) {
    const separate = batchedRun(c.model, c.prompts, steps, { [c.option]: false });
    const fused = batchedRun(c.model, c.prompts, steps, { [c.option]: true });
    for (let s = 0; s <= steps; s++) {
      for (let i = 0; i < c.prompts.length; i++) assert.deepEqual(fused[s]![i], separate[s]![i], `${c.name}, ${c.option}: sequence ${i} step ${s}`);
    }
    t.diagnostic(`${c.option} on ${c.name}: ${steps} decode steps bit-identical`);
  }
});

test('CUDA engine: attention with 16-byte loads (wideAttention) gives the 4-byte loads\' logits (fed the same tokens) within the batch tolerance on float models (GQA and a sliding window (mistral), qwen2) and the fast path\'s on the quantized one (1, 12, 20 sequences: a rounding apart can flip an int8 activation), the same greedy picks but at near-ties; with it the rope fold still gives the separate kernels\' logits bit for bit', { skip }, (t) => {
  const { model: quantized, prompt } = quantizedEmbedded();
  const fixture = (name: string) => ({ name, model: loadModel(fixturePath(name)).model, prompt: readReference(fixturePath(name)).inputIds.slice(0, 6) });
  const steps = 8;
  const variants = (p: number[], n: number) => Array.from({ length: n }, (_, i) => [...p.slice(i % 4), ...p.slice(0, i % 4)].slice(0, p.length - (i % 3)));
  const cases = [
    ...[1, 12, 20].map((n) => ({ name: `quantized embedded, ${n} sequences`, model: quantized, prompts: variants(prompt, n), tolerance: QUANTIZED_TOLERANCE })),
    ...['mistral', 'qwen2'].map(fixture).map((f) => ({ name: f.name, model: f.model, prompts: variants(f.prompt, 3), tolerance: BATCH_TOLERANCE })),
  ];
  for (const c of cases) {
    const narrow = batchedRun(c.model, c.prompts, steps, { wideAttention: false });
    const wide = batchedRun(c.model, c.prompts, steps, { wideAttention: true }, narrow);
    let worst = 0;
    for (let s = 0; s <= steps; s++) {
      for (let i = 0; i < c.prompts.length; i++) {
        const e = relativeError(wide[s]![i]!, narrow[s]![i]!);
        worst = Math.max(worst, e);
        assert.ok(e <= c.tolerance, `${c.name}: sequence ${i} step ${s}: logit error ${e} of the largest`);
        assert.ok(sameGreedyWithin(wide[s]![i]!, narrow[s]![i]!, c.tolerance), `${c.name}: sequence ${i} step ${s}: greedy token`);
      }
    }
    t.diagnostic(`wide attention on ${c.name}: largest logit error ${worst.toExponential(1)} over ${steps} decode steps`);
  }
  const prompts = variants(prompt, 3);
  const separate = batchedRun(quantized, prompts, steps, { wideAttention: true, ropeInAttention: false });
  const folded = batchedRun(quantized, prompts, steps, { wideAttention: true, ropeInAttention: true });
  for (let s = 0; s <= steps; s++) for (let i = 0; i < prompts.length; i++) assert.deepEqual(folded[s]![i], separate[s]![i], `rope fold with wide attention: sequence ${i} step ${s}`);
});

/** The chooser with `patch` applied to the decode configs it gives at MT token halves (the others as it gives them). */
const decodeChooser = (MT: number, patch: Partial<DecodeConfig>) => (m: number, nOut: number, k: number): W4A8Config => {
  const c = chooseW4A8Config(m, nOut, k);
  return c.kind === 'decode' && c.MT === MT ? { ...c, ...patch } : c;
};

test('CUDA engine: the W4A8 decode kernel streaming its chunks through shared-memory slots (STAGES 1, 2, 4; MINB), with the activations in registers beside them (XREG), or loading more of them before its wait (PREW) gives the register pipeline\'s logits bit for bit at 1 and 5 sequences, through every decode entry (plain, adding into the residual, SwiGLU, the norm and quantize tails)', { skip }, (t) => {
  const { model, prompt } = quantizedEmbedded();
  const steps = 6;
  const tails = { normInGemm: true, quantizeInTail: true } as const;
  for (const n of [1, 5]) {
    const prompts = Array.from({ length: n }, (_, i) => [...prompt.slice(i % 4), ...prompt.slice(0, i % 4)]);
    for (const folds of [{}, tails]) {
      const registers = batchedRun(model, prompts, steps, folds);
      for (const [STAGES, MINB, PREW, XREG] of [[1, 1, 1, 0], [2, 3, 1, 0], [4, 2, 1, 0], [0, 1, 2, 0], [2, 3, 2, 0], [4, 2, 4, 0], [2, 3, 1, 1], [4, 2, 4, 1]] as const) {
        const slots = batchedRun(model, prompts, steps, { ...folds, chooseW4A8: decodeChooser(1, { STAGES, MINB, PREW, XREG }) });
        const label = `${n} sequences, STAGES ${STAGES} MINB ${MINB} PREW ${PREW} XREG ${XREG}${folds === tails ? ', tails on' : ''}`;
        for (let s = 0; s <= steps; s++) for (let i = 0; i < n; i++) assert.deepEqual(slots[s]![i], registers[s]![i], `${label}: sequence ${i} step ${s}`);
      }
    }
    t.diagnostic(`${n} sequence(s): ${steps} decode steps bit-identical with STAGES 1, 2, 4, PREW 2, 4 (chunks loaded before the wait) and XREG (activations in registers)`);
  }
});

test('CUDA engine: at 17-32 rows the decode kernel with 4, 8 or 16 k-warps a block (the chooser gives 4 on wide layers, 8 on the others) gives the same logits bit for bit, plain and SwiGLU entries (integer scale: its sums are exact in any k split)', { skip }, (t) => {
  const { model, prompt } = quantizedEmbedded();
  const steps = 4;
  const prompts = Array.from({ length: 20 }, (_, i) => [...prompt.slice(i % 4), ...prompt.slice(0, i % 4)]);
  const runs = [4, 8, 16].map((WK) => batchedRun(model, prompts, steps, { chooseW4A8: decodeChooser(4, { WK, MINB: WK === 4 ? 4 : WK === 8 ? 2 : 1 }) }));
  for (const [i, WK] of [[1, 8], [2, 16]] as const) {
    for (let s = 1; s <= steps; s++) for (let q = 0; q < prompts.length; q++) assert.deepEqual(runs[i]![s]![q], runs[0]![s]![q], `WK ${WK} against WK 4: sequence ${q} step ${s}`);
  }
  t.diagnostic(`20 sequences: ${steps} decode steps bit-identical at WK 4, 8 and 16`);
});

test('CUDA engine: bad use is refused with a message', { skip }, () => {
  const { model, prompt } = quantizedEmbedded();
  withEngine(model, { maxSequences: 1 }, (engine) => {
    const seq = engine.open(prompt.length);
    assert.throws(() => engine.open(4), /holds 1 sequences at once/);
    assert.throws(() => seq.feed([...prompt, 1]), /holds \d+ positions/);
    assert.throws(() => seq.feed([model.config.vocabSize]), /outside the vocabulary/);
    assert.throws(() => seq.feed([]), /no tokens/);
    seq.release();
    assert.throws(() => seq.feed([1]), /released/);
    engine.open(4).release();
  });
  withEngine(model, { maxSequences: 2 }, (engine) => {
    const [a, b] = [engine.open(8), engine.open(8)];
    assert.throws(() => engine.decodeBatch([a, a], [1, 2]), /appears twice/);
    assert.throws(() => engine.decodeBatch([a, b], [1]), /1 tokens for 2 sequences/);
    assert.throws(() => engine.feedBatch([a, b], [[1, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9]]), /holds 8 positions/);
    assert.equal(a.length, 0, 'a refused batch changes no sequence');
    b.release();
    assert.throws(() => engine.decodeBatch([a, b], [1, 2]), /did not open, or one already released/);
    assert.throws(() => engine.decodeBatch([modelEngine(model).open(4)], [1]), /did not open/);
    a.release();
  });
});
