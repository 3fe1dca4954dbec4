/**
 * Continuous batching on the CPU: a decode step of several sequences gives each the logits it gets
 * alone, bit for bit (the W4A8 integer path, the float path, a mixtral's experts); generations that join and leave
 * at different times give the tokens generate() gives each alone, also through an engine's feedBatch
 * (joiners' prompts and the others' tokens in one call) and when that refuses, and through an engine that picks
 * tokens on its device (feedPicked), greedy and sampled, and when it refuses a joint call; a consumer that stops reading frees its sequence.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModel } from '../../src/backends/load.js';
import { createBatchGenerator } from '../../src/model/batch.js';
import { modelEngine, type Sequence, type SequenceEngine } from '../../src/model/engine.js';
import type { Model } from '../../src/model/forward.js';
import { generate } from '../../src/model/generate.js';
import { GenerationRun } from '../../src/model/generation-run.js';
import { pickToken } from '../../src/model/sampling.js';
import { quantizeModel } from '../../src/quantize/quantize-model.js';
import { DEFAULT_SPEC } from '../../src/quantize/recipe.js';
import { repoPath } from '../helpers/paths.js';
import { mixtralFromDense } from '../helpers/mixtral-dir.js';
import { freshSeed } from '../helpers/random.js';

const dir = repoPath('models/tiny-wikitext');
const float = loadModel(dir);
const tokenizer = float.tokenizer!;
let quantized: Model | undefined;
const quantizedModel = (): Model => (quantized ??= quantizeModel(dir, { method: 'rtn', base: DEFAULT_SPEC, overrides: {} }).loaded.model);

const prompts = ['The game began', 'In 2010 , the', 'Valkyria Chronicles', 'The music was composed by'].map((t) => tokenizer.encode(t));

const mixtral = (): Model => loadModel(mixtralFromDense('mistral', { experts: 4, topK: 2, seed: freshSeed(), noise: 0.5 })).model;

for (const [label, model] of [['float', () => float.model], ['W4A8 IS', quantizedModel], ['mixtral, 4 experts top 2', mixtral]] as const) {
  test(`decodeBatch (${label}): each sequence's logits are bit for bit those it gets alone, over 6 steps`, () => {
    const engine = modelEngine(model());
    const open = (): Sequence[] => prompts.map((p) => engine.open(p.length + 8));
    const [alone, together] = [open(), open()];
    prompts.forEach((p, i) => assert.deepEqual(together[i]!.feed(p), alone[i]!.feed(p)));
    for (let step = 0; step < 6; step++) {
      const tokens = prompts.map((_, i) => (17 * step + 31 * i + 5) % 2048);
      const batched = engine.decodeBatch(together, tokens);
      tokens.forEach((t, i) => assert.deepEqual(batched[i], alone[i]!.feed([t]), `step ${step}, sequence ${i}`));
    }
    assert.throws(() => engine.decodeBatch([together[0]!, together[0]!], [1, 2]), /appears twice/);
    for (const s of [...alone, ...together]) s.release();
    assert.throws(() => engine.decodeBatch(together.slice(0, 2), [1, 2]), /did not open, or one already released/);
  });
}

test('createBatchGenerator: runs that join at different times and stop at different lengths get generate()\'s tokens alone', async () => {
  const model = quantizedModel();
  const batch = createBatchGenerator(modelEngine(model));
  const options = (n: number, seed: number) => ({ maxNewTokens: n, temperature: seed === 0 ? 0 : 0.8, topP: 0.95, seed, stopTokens: [] });
  const plans = prompts.map((prompt, i) => ({ prompt, options: options(3 + 5 * i, i), delay: 3 * i }));
  let most = 0;
  const results = await Promise.all(plans.map(async ({ prompt, options: o, delay }) => {
    for (let i = 0; i < delay; i++) await new Promise((r) => setImmediate(r));
    const stream = batch.stream(prompt, o);
    const tokens: number[] = [];
    for (let step = await stream.next(); ; step = await stream.next()) {
      most = Math.max(most, batch.running);
      if (step.done) return { tokens, result: step.value };
      tokens.push(step.value);
    }
  }));
  assert.ok(most >= 3, `runs overlapped: at most ${most} at once`);
  plans.forEach(({ prompt, options: o }, i) => {
    const alone = generate(model, prompt, o);
    assert.deepEqual(results[i]!.tokens, alone.tokens, `run ${i}`);
    assert.deepEqual(results[i]!.result.tokens, alone.tokens);
    assert.equal(results[i]!.result.stoppedBy, 'max-new-tokens');
  });
  assert.equal(batch.running, 0);
});

test('createBatchGenerator: a consumer that stops reading, or an aborted signal, ends its run and frees its sequence', async () => {
  const engine = modelEngine(quantizedModel());
  let open = 0;
  const inner = new Map<Sequence, Sequence>();
  const counting: SequenceEngine = {
    config: engine.config,
    open: (capacity) => {
      const s = engine.open(capacity);
      open++;
      const w: Sequence = {
        get length() { return s.length; },
        capacity: s.capacity,
        feed: (t) => s.feed(t),
        release: () => {
          if (inner.delete(w)) {
            open--;
            s.release();
          }
        },
      };
      inner.set(w, s);
      return w;
    },
    decodeBatch: (seqs, tokens) => engine.decodeBatch(seqs.map((w) => inner.get(w)!), tokens),
  };
  const batch = createBatchGenerator(counting);
  const stream = batch.stream(prompts[0]!, { maxNewTokens: 50, temperature: 0, topP: 1, seed: 0, stopTokens: [] });
  await stream.next();
  await stream.return(undefined as never);
  const controller = new AbortController();
  const aborted = batch.stream(prompts[1]!, { maxNewTokens: 50, temperature: 0, topP: 1, seed: 0, stopTokens: [], signal: controller.signal });
  await aborted.next();
  controller.abort();
  let last = await aborted.next();
  while (!last.done) last = await aborted.next();
  assert.equal(last.value.stoppedBy, 'aborted');
  while (batch.running > 0) await new Promise((r) => setImmediate(r));
  assert.equal(open, 0, 'every sequence released');
});

test('createBatchGenerator with an engine\'s feedBatch: joiners\' prompts ride along the others\' decode tokens in one call, a refused call falls back to feeding apart; generate()\'s tokens alone either way', async () => {
  const model = quantizedModel();
  for (const refuse of [false, true]) {
    const inner = modelEngine(model);
    const calls = { mixed: 0, total: 0 };
    // a packing engine's contract, kept by feeding each sequence alone (what the CUDA engine gives bit for bit)
    const engine: SequenceEngine = {
      ...inner,
      feedBatch: (sequences, tokens) => {
        calls.total++;
        if (refuse) throw new RangeError('refused before anything ran');
        if (tokens.some((t) => t.length > 1) && tokens.some((t) => t.length === 1)) calls.mixed++;
        return sequences.map((s, i) => s.feed(tokens[i]!));
      },
    };
    const batch = createBatchGenerator(engine);
    const options = (n: number) => ({ maxNewTokens: n, temperature: 0, topP: 1, seed: 0, stopTokens: [] });
    const plans = prompts.map((prompt, i) => ({ prompt, options: options(4 + 3 * i), delay: 2 * i }));
    const results = await Promise.all(plans.map(async ({ prompt, options: o, delay }) => {
      for (let i = 0; i < delay; i++) await new Promise((r) => setImmediate(r));
      const tokens: number[] = [];
      for await (const t of batch.stream(prompt, o)) tokens.push(t);
      return tokens;
    }));
    plans.forEach(({ prompt, options: o }, i) => assert.deepEqual(results[i], generate(model, prompt, o).tokens, `refuse ${refuse}, run ${i}`));
    assert.ok(calls.total >= 2, `feedBatch called ${calls.total} times`);
    if (!refuse) assert.ok(calls.mixed >= 1, 'a joiner\'s prompt went in one call with decode tokens');
    assert.equal(batch.running, 0);
  }
});

test('an engine that picks on its device (feedPicked): greedy and sampled runs go through it, prefill and decode, alone (generate) and batched, with the tokens generate() gives each without it, also when it refuses a joint call; no logits come back', async () => {
  const model = quantizedModel();
  const inner = modelEngine(model);
  const calls = { picked: 0, refused: 0, logits: 0 };
  const GREEDY = { temperature: 0, topP: 1, draw: 0 };
  const engineThat = (refuseJoint: boolean): SequenceEngine => ({
    ...inner,
    decodeBatch: (sequences, tokens) => {
      calls.logits++;
      return inner.decodeBatch(sequences, tokens);
    },
    // the contract feedPicked keeps: pickToken's token from the logits feeding returns (the CUDA engine picks on the device)
    feedPicked: (sequences, tokens, picks) => {
      const prompts = tokens.some((t) => t.length > 1);
      if (refuseJoint && prompts && sequences.length > 1) {
        calls.refused++;
        throw new RangeError('refused before anything ran');
      }
      calls.picked++;
      const logits = prompts ? sequences.map((s, i) => s.feed(tokens[i]!)) : inner.decodeBatch(sequences, tokens.map((t) => t[0]!));
      return Int32Array.from(logits, (l, r) => pickToken(l, picks?.[r] ?? GREEDY));
    },
  });
  const greedy = (n: number) => ({ maxNewTokens: n, temperature: 0, topP: 1, seed: 0, stopTokens: [] });
  const sampled = { maxNewTokens: 7, temperature: 0.8, topP: 0.9, seed: 5, stopTokens: [] };
  const seq = inner.open(16);
  const run = new GenerationRun(seq, prompts[0]!, sampled);
  assert.throws(() => run.acceptPicked(3), /no pick was given for this step/);
  assert.equal(run.pick(), run.pick(), 'the same pick until its token is taken');
  seq.release();
  const engine = engineThat(false);
  for (const options of [greedy(6), sampled]) {
    Object.assign(calls, { picked: 0, refused: 0, logits: 0 });
    const alone = generate(engine, prompts[0]!, options).tokens;
    assert.deepEqual(alone, generate(model, prompts[0]!, options).tokens, `T ${options.temperature}`);
    assert.deepEqual(calls, { picked: alone.length, refused: 0, logits: 0 }, 'generate: every token picked on the device, the prompt\'s too');
  }
  for (const refuseJoint of [false, true]) {
    Object.assign(calls, { picked: 0, refused: 0, logits: 0 });
    const batch = createBatchGenerator(engineThat(refuseJoint));
    const plans = prompts.map((prompt, i) => ({ prompt, options: i === 1 ? sampled : i === 2 ? { ...sampled, seed: 11, temperature: 1.3 } : greedy(5 + i) }));
    const results = await Promise.all(plans.map(async ({ prompt, options }, i) => {
      // a later joiner meets runs already decoding: its prompt and their tokens go in one call
      if (i === plans.length - 1) await new Promise((resolve) => setTimeout(resolve, 5));
      const tokens: number[] = [];
      for await (const t of batch.stream(prompt, options)) tokens.push(t);
      return tokens;
    }));
    plans.forEach(({ prompt, options }, i) => assert.deepEqual(results[i], generate(model, prompt, options).tokens, `refuse joint ${refuseJoint}, run ${i}`));
    assert.equal(calls.logits, 0, 'no call brought logits back');
    if (refuseJoint) assert.ok(calls.refused > 0, 'a joint call was refused and the runs went apart, each keeping its draw');
  }
});
