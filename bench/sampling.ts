/**
 * Host sampling of one token (pickToken: temperature + top-p, exact) against its definition by a comparison sort of
 * the vocabulary (pickTokenBySort), on RANDOM logits (speed only) of three shapes: peaked (normal with σ 3 and a few
 * tokens up to +14, an LLM's shape), flat (uniform in ±4) and tied (normal rounded to halves). Every draw is checked to
 * be the same token from the same generator state before it is timed. Prints the median ms a token over --reps draws
 * after 3 warm-up draws, and the speed-up, for each shape and setting.
 *
 *   node dist/bench/sampling.js [--vocab 32000] [--reps 30] [--json]
 */
import { pickToken, pickTokenBySort, seededRandom, type SamplingOptions } from '../src/model/sampling.js';
import { benchArgs, positiveInt } from './args.js';
import { LOGIT_SHAPES, randomLogits } from './random-logits.js';
import { benchOutput, machineLine, median } from './stats.js';

const { values } = benchArgs(import.meta.url, {
  options: { vocab: { type: 'string', default: '32000' }, reps: { type: 'string', default: '30' }, json: { type: 'boolean', default: false } },
});
const n = positiveInt('vocab', values.vocab!);
const reps = positiveInt('reps', values.reps!);
const out = benchOutput(values.json === true);

const random = seededRandom(20261207);
const settings: SamplingOptions[] = [{ temperature: 0.7, topP: 0.9 }, { temperature: 1, topP: 0.95 }, { temperature: 1, topP: 1 }];

/** Median ms a draw of `sample` over reps draws after 3 warm-up ones, and the tokens drawn. */
function time(sample: typeof pickToken, logits: Float32Array, options: SamplingOptions): { ms: number; tokens: number[] } {
  const r = seededRandom(7);
  const ms: number[] = [];
  const tokens: number[] = [];
  for (let k = 0; k < reps + 3; k++) {
    const t0 = performance.now();
    const token = sample(logits, { ...options, draw: r() });
    if (k >= 3) ms.push(performance.now() - t0);
    tokens.push(token);
  }
  return { ms: median(ms), tokens };
}

out.say(machineLine(1));
out.say(`# one token from ${n} RANDOM logits (speed only), median of ${reps} draws after 3 warm-up; the same tokens checked for both`);
const rows = [];
for (const shape of LOGIT_SHAPES) {
  const logits = randomLogits(shape, n, random);
  for (const options of settings) {
    const fast = time(pickToken, logits, options), bySort = time(pickTokenBySort, logits, options);
    if (fast.tokens.join() !== bySort.tokens.join()) throw new Error(`pickToken drew other tokens than the comparison sort (${shape}, T ${options.temperature}, top-p ${options.topP})`);
    rows.push({ logits: shape, T: options.temperature, 'top-p': options.topP, 'pickToken ms': fast.ms.toFixed(2), 'comparison sort ms': bySort.ms.toFixed(2), 'speed-up': `${(bySort.ms / fast.ms).toFixed(1)}×` });
  }
}
out.table(rows);
