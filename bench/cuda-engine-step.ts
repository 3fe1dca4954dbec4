/**
 * Where a decode step of the CUDA engine goes, by layer count: the engine on synthetic LLaMA-2-7B-
 * shaped models of 1, 8 and 32 RANDOM W4A8 layers (speed only), `--batch` sequences of a 128-token
 * prompt (one batched prefill), then the host wall time per decode step of all of them
 * (feedPicked: row upload, graph launch, the tokens picked on the device, B tokens back) over `--steps`
 * steps after two warm-up steps, each pick of `--pick` in turn on the same engine: greedy (argmax_rows) or sampled
 * (sample_rows, temperature 0.7, top-p 0.9, seeded draws). The slope between layer counts is a layer's cost, the intercept
 * the fixed cost (embedding, final norm, lm_head, argmax, host).
 *
 *   node dist/bench/cuda-engine-step.js [--layers 1,8,32] [--batch 1] [--steps 40] [--lm-head f16|w8a8] [--no-graphs]
 *        [--rope-in-attention auto|on|off|on,off] [--fuse-swiglu auto|on|off|on,off] [--norm-in-gemm auto|on|off|on,off]
 *        [--quantize-in-tail auto|on|off|on,off] [--quantize-in-gemm auto|on|off|on,off] [--wide-attention auto|on|off|on,off] [--merge-in-attention auto|on|off|on,off]
 *        [--overlap-small-ops auto|on|off|on,off] [--decode default,WK:STAGES:MINB[:PREW],...]
 *        [--decode-mt 1] [--rounds 1] [--pick greedy|sample|greedy,sample]
 *
 * --lm-head: the fp16 lm_head (the default here, tied to the embedding) or RANDOM W8A8 g128 IS.
 * --rope-in-attention off: the separate rope_kv_write kernel in decode steps; on: the fold at every batch size
 * (auto folds at up to ROPE_FOLD_MAX_ROWS rows).
 * --fuse-swiglu off / on: silu_mul_rows after the gate/up GEMM, or SwiGLU in its epilogue at every decode-kernel
 * size (auto: up to SWIGLU_FOLD_MAX_ROWS rows).
 * --norm-in-gemm off / on: rmsnorm_to after the o and down GEMMs, or the norm in their last blocks at every
 * decode-kernel size (auto: up to NORM_FOLD_MAX_ROWS rows).
 * --quantize-in-tail off / on: quantize_rows after attention_merge and the SwiGLU GEMM, or their rows quantized
 * in their last blocks (auto: up to QUANTIZE_FOLD_MAX_ROWS rows; the GEMM's only where SwiGLU is in its epilogue).
 * --quantize-in-gemm off / on: quantize_rows after attention_merge and the SwiGLU GEMM, or their rows quantized by
 * the o and down GEMMs that read them, each block for itself (w4a8_decode_rows; auto: up to QUANTIZE_FOLD_MAX_ROWS rows).
 * --wide-attention off / on: attention_split's 4-byte loads (a warp a position) or attention_split_v8's 16-byte
 * loads (16 lanes a position at D = 128; auto: up to WIDE_ATTENTION_MAX_ROWS rows).
 * --merge-in-attention off / on: attention_merge after the split kernel, or each head merged by its last split block
 * (auto: up to MERGE_FOLD_MAX_ROWS rows).
 * --overlap-small-ops off / on: rmsnorm_to, attention and quantize_rows launched plainly, or to overlap the kernel
 * before them as the decode GEMMs are (auto: up to OVERLAP_SMALL_OPS_MAX_ROWS rows).
 * --decode: the W4A8 decode kernel at M <= 8 as the chooser gives it (default) or with WK k-warps, STAGES cp.async
 * slots a warp (0: the register pipeline) and MINB blocks a SM (bench/decode-variants.ts); --decode-mt T applies
 * them where the chooser gives T token halves instead (T = 4: 17-32 rows), e.g. --batch 32 --decode-mt 4 --decode 8:0:1,8:0:2;
 * tma32 / tma64 put the TMA wgmma kernel with 32 / 64 tokens a tile there (the engine then runs that layer as at 33+ rows).
 * A fold flag not given is the engine's default (CudaEngineOptions); the log prints each engine's settings.
 * Given both values (on,off) the settings are compared on the same model, alternating, `--rounds` times
 * (every pairing of the options' values).
 *
 * Per-kernel times: run it under Nsight Compute, e.g.
 *   ncu --clock-control none --launch-skip 28 --launch-count 30 --metrics gpu__time_duration.sum --csv \
 *     node dist/bench/cuda-engine-step.js --layers 1 --steps 3
 */
import { CudaContext } from '../src/backends/cuda/context.js';
import { createCudaEngine } from '../src/backends/cuda/decode-engine.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { BenchArgumentError, benchArgs, positiveInt, positiveInts } from './args.js';
import { describeFoldVariant, foldFlagOptions, foldVariants } from './engine-folds.js';
import { decodeVariants, withDecodeVariant, type DecodeVariant } from './decode-variants.js';
import { chooseW4A8Config } from '../src/backends/cuda/w4a8.js';
import { hasTensorMaps } from '../src/backends/cuda/tensor-map.js';
import { machineLine } from './stats.js';
import { seededRandom } from '../src/model/sampling.js';
import { needsGpu } from './cuda-timing.js';
import { LLAMA2_7B_SHAPE, syntheticModel } from './synthetic.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    layers: { type: 'string', default: '1,8,32' },
    steps: { type: 'string', default: '40' },
    batch: { type: 'string', default: '1' },
    'lm-head': { type: 'string', default: 'f16' },
    'no-graphs': { type: 'boolean', default: false },
    ...foldFlagOptions(),
    decode: { type: 'string', default: 'default' },
    'decode-mt': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '1' },
    pick: { type: 'string', default: 'greedy' },
  },
});
const steps = positiveInt('steps', values.steps!);
const batch = positiveInt('batch', values.batch!);
const rounds = positiveInt('rounds', values.rounds!);
const decodeMT = positiveInt('decode-mt', values['decode-mt']!);
const lmHead = values['lm-head'] === 'w8a8' ? 'w8a8' : 'float';
const pickModes = values.pick!.split(',');
for (const p of pickModes) if (p !== 'greedy' && p !== 'sample') throw new BenchArgumentError(`--pick takes greedy, sample or both (comma-separated); got '${p}'`);
const SAMPLED = { temperature: 0.7, topP: 0.9 };
if (values['lm-head'] !== 'w8a8' && values['lm-head'] !== 'f16') throw new BenchArgumentError(`--lm-head takes f16 or w8a8; got '${values['lm-head']}'`);
/** The engine settings compared, each round in this order (every pairing of the options' values, then each decode kernel). */
const variants = foldVariants(values).flatMap((folds) => decodeVariants('decode', values.decode!).map((decode) => ({ folds, decode })));
type Variant = (typeof variants)[number];
const describeVariant = (v: Variant): string => `${describeFoldVariant(v.folds)}${v.decode.label === 'default' ? '' : `; decode ${v.decode.label}`}`;
const ctx = needsGpu('the CUDA engine step bench', () => new CudaContext(0));
console.log(`# ${ctx.info.name}, driver ${ctx.info.driverVersion}; ${machineLine(cpuPool().threads)}`);
console.log(`# synthetic LLaMA-2-7B shape, RANDOM W4A8 weights (speed only); ${batch} sequence(s), prompt 128 each, then ${steps} timed decode steps after 2 warm-up, picked ${pickModes.map((p) => (p === 'sample' ? `sampled (T ${SAMPLED.temperature}, top-p ${SAMPLED.topP})` : p)).join(', then ')}; graphs ${values['no-graphs'] ? 'off' : 'on'}; lm_head ${lmHead === 'w8a8' ? 'W8A8 g128 IS' : 'fp16'}; ${rounds} round(s) of: ${variants.map(describeVariant).join(' | ')}`);

const [wgmma, tma, sms] = [ctx.arch === 'sm_90a', hasTensorMaps(ctx), ctx.info.multiprocessors];
const chooser = (d: DecodeVariant) => (m: number, n: number, k: number) => withDecodeVariant(chooseW4A8Config(m, n, k, wgmma, tma, sms), d, decodeMT, { m, n, k, sms });
const described = new Set<Variant>();
/** Host wall time per decode step of `batch` sequences of an engine made with `v`, for each pick of --pick in turn. */
function stepMs(m: ReturnType<typeof syntheticModel>, v: Variant): number[] {
  const engine = createCudaEngine(m.config, m.weights, { ctx, graphs: !values['no-graphs'], maxSequences: batch, ...v.folds, chooseW4A8: chooser(v.decode) });
  if (!described.has(v)) console.log(`# ${describeVariant(v)}: ${engine.describe()}`);
  described.add(v);
  const seqs = Array.from({ length: batch }, () => engine.open(128 + (steps + 2) * pickModes.length));
  const prompt = (s: number) => Array.from({ length: 128 }, (_, i) => (i * 7919 + s * 104729 + 13) % m.config.vocabSize);
  engine.feedBatch(seqs, seqs.map((_, s) => prompt(s)));
  const tokens = seqs.map(() => [5]);
  const random = seededRandom(20261207);
  const ms = pickModes.map((mode) => {
    const picks = () => (mode === 'sample' ? seqs.map(() => ({ ...SAMPLED, draw: random() })) : undefined);
    for (let i = 0; i < 2; i++) engine.feedPicked(seqs, tokens, picks());
    const t = performance.now();
    for (let i = 0; i < steps; i++) engine.feedPicked(seqs, tokens, picks());
    return (performance.now() - t) / steps;
  });
  for (const s of seqs) s.release();
  engine.dispose();
  return ms;
}

const perLayers: [number, number][] = [];
for (const layers of positiveInts('layers', values.layers!)) {
  const m = syntheticModel(layers, LLAMA2_7B_SHAPE, lmHead);
  for (let r = 1; r <= rounds; r++) {
    for (const v of variants) {
      const times = stepMs(m, v);
      perLayers.push([layers, times[0]!]);
      const what = variants.length > 1 || rounds > 1 ? ` (${describeVariant(v)}; round ${r})` : '';
      times.forEach((ms, i) => {
        const how = pickModes.length > 1 || pickModes[i] !== 'greedy' ? ` [${pickModes[i]}]` : '';
        console.log(`layers ${layers}: ${ms.toFixed(3)} ms per decode step of ${batch} (${((1000 * batch) / ms).toFixed(0)} tok/s)${how}${what}`);
      });
    }
  }
}
if (variants.length === 1 && rounds === 1 && perLayers.length >= 2) {
  const [[l0, t0], [l1, t1]] = [perLayers[0]!, perLayers[perLayers.length - 1]!];
  const slope = (t1 - t0) / (l1 - l0);
  console.log(`per layer ${(slope * 1000).toFixed(1)} µs; fixed ${((t0 - slope * l0) * 1000).toFixed(0)} µs`);
}
ctx.release();
