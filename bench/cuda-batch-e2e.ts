/**
 * The paper's Table 7 on our engine: end-to-end latency of B sequences, each `--prompt-tokens` in
 * (one batched prefill) and `--out-tokens` out (the first picked from the prefill's last logits, the rest from
 * greedy decode steps of B rows; every argmax on the device, so no logits come back), for every precision the CUDA decode
 * engine runs (FP16, W8A8, W4A16, W4A8 float scale, W4A8 integer scale) at each batch size, all in
 * one run; and, where PyTorch is installed, the same protocol on a PyTorch FP16 model with a static
 * KV cache and each decode step one CUDA graph (bench/torch_llama_e2e.py: the cross-check of our
 * FP16 row). LLaMA-2-7B's shape (or --shape mixtral-8x7b: the paper's Figure 5c, 8 experts top 2;
 * no PyTorch reference there) with RANDOM weights: speed only, the text means nothing.
 *
 *   node dist/bench/cuda-batch-e2e.js [--shape llama2-7b|mixtral-8x7b] [--layers 32] [--batches 1,8,16,32,64] [--prompt-tokens 128] [--out-tokens 128]
 *        [--precisions fp16,w8a8,w4a16,w4a8-fs,w4a8-is] [--lm-head w8a8|f16] [--reps 3] [--no-torch] [--out DIR] [--json]
 *        [--rope-in-attention auto|on|off] [--fuse-swiglu …] [--norm-in-gemm …] [--quantize-in-tail …] [--quantize-in-gemm …] [--wide-attention …] [--merge-in-attention …] [--overlap-small-ops …]
 *
 * --lm-head: the lm_head of the precisions with 8-bit activations (w8a8, w4a8-fs, w4a8-is): w8a8
 * (the default, as `intscale quantize` writes it) or f16; fp16 and w4a16 run an fp16 lm_head.
 * The fold flags (bench/engine-folds.ts; one setting each, for every precision) override the engine's defaults;
 * each precision's log line names its engine's settings.
 *
 * Latency is the host's wall time from the prefill's start to the last token (median of --reps after
 * a warm-up run that also captures each batch size's graph). Decode tok/s = B · (out − 1) / decode
 * time. The floor: the decode step's weight bytes (every linear, a mixture's router and topK experts, and the lm_head) over the copy
 * bandwidth measured here (a device-to-device copy, read + write), i.e. the most tokens/s a batch-1
 * decode could reach. --out writes batch-e2e.json and batch-e2e.svg (latency by batch size, one bar
 * per precision, the speedup over FP16 on each bar).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CudaContext } from '../src/backends/cuda/context.js';
import { createCudaEngine } from '../src/backends/cuda/decode-engine.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { BenchArgumentError, benchArgs, positiveInt, positiveInts } from './args.js';
import { copyBandwidth, needsGpu } from './cuda-timing.js';
import { describeFoldVariant, foldFlagOptions, foldVariants } from './engine-folds.js';
import { benchOutput, machineLine, median } from './stats.js';
import { PRECISIONS, SHAPES, syntheticModelIn, type Precision } from './synthetic.js';
import { renderLatencySvg, type LatencyRow } from './batch-e2e-plot.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    shape: { type: 'string', default: 'llama2-7b' },
    layers: { type: 'string', default: '32' },
    batches: { type: 'string', default: '1,8,16,32,64' },
    'prompt-tokens': { type: 'string', default: '128' },
    'out-tokens': { type: 'string', default: '128' },
    precisions: { type: 'string', default: PRECISIONS.join(',') },
    'lm-head': { type: 'string', default: 'w8a8' },
    reps: { type: 'string', default: '3' },
    'no-torch': { type: 'boolean', default: false },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
    ...foldFlagOptions(),
  },
});
const folds = foldVariants(values);
if (folds.length !== 1) throw new BenchArgumentError('the fold flags take one setting each here (cuda-engine-step compares settings)');
const layers = positiveInt('layers', values.layers!);
const batches = positiveInts('batches', values.batches!);
const promptTokens = positiveInt('prompt-tokens', values['prompt-tokens']!);
const outTokens = positiveInt('out-tokens', values['out-tokens']!);
const reps = positiveInt('reps', values.reps!);
const precisions = values.precisions!.split(',') as Precision[];
for (const p of precisions) if (!PRECISIONS.includes(p)) throw new BenchArgumentError(`--precisions takes ${PRECISIONS.join(', ')}; got '${p}'`);
const lmHead = values['lm-head'] === 'f16' ? 'float' : values['lm-head'] === 'w8a8' ? 'w8a8' : null;
if (lmHead === null) throw new BenchArgumentError(`--lm-head takes w8a8 or f16; got '${values['lm-head']}'`);
/** Whether `p` runs the 8-bit lm_head (8-bit activations and --lm-head w8a8). */
const int8Head = (p: Precision): boolean => lmHead === 'w8a8' && p !== 'fp16' && p !== 'w4a16';
if (!(outTokens >= 2)) throw new BenchArgumentError('--out-tokens must be at least 2 (one from the prefill, one decode step)');

if (!(values.shape! in SHAPES)) throw new BenchArgumentError(`--shape takes ${Object.keys(SHAPES).join(', ')}; got '${values.shape}'`);
const shapeName = values.shape as keyof typeof SHAPES;
const shape = SHAPES[shapeName];

const ctx = needsGpu('the batched end-to-end bench', () => new CudaContext(0));
const out = benchOutput(values.json === true);

const bandwidth = copyBandwidth(ctx);
out.say(`# ${ctx.info.name}, driver ${ctx.info.driverVersion}; measured device copy ${(bandwidth / 1e12).toFixed(2)} TB/s (read + write); ${machineLine(cpuPool().threads)}`);
const experts = shape.moe ? `, ${shape.moe.numExperts} experts top ${shape.moe.topK}` : '';
out.say(`# ${shapeName} shape (hidden ${shape.hidden}, ffn ${shape.ffn}${experts}, ${shape.heads}/${shape.kvHeads ?? shape.heads} heads, vocab ${shape.vocab}), ${layers} layers, RANDOM weights (speed only)`);
out.say(`# each of B sequences: ${promptTokens} tokens in (one batched prefill), ${outTokens} out (greedy, argmax on the device); median of ${reps} runs after a warm-up; fp16 KV cache; lm_head ${lmHead === 'w8a8' ? 'W8A8 g128 IS in w8a8 / w4a8-fs / w4a8-is, fp16 in fp16 / w4a16' : 'fp16 in every precision'}\n`);

/** Bytes a batch-1 decode step reads for its weights: every linear and the lm_head in their formats. */
function weightBytes(p: Precision): number {
  const { hidden: d, ffn: f, vocab, moe } = shape;
  const kv = (shape.kvHeads ?? shape.heads) * (d / shape.heads);
  // attention, then the dense MLP or the topK experts a batch-1 token reads (the float32 router's bytes are negligible)
  const perLayer = 2 * d * d + 2 * d * kv + 3 * d * f * (moe ? moe.topK : 1);
  const perWeight: Record<Precision, number> = { 'fp16': 2, 'w8a8': 1 + 4 / d, 'w4a16': 0.5 + 2 / 128, 'w4a8-fs': 0.5 + 4 / 128, 'w4a8-is': 0.5 + 4 / 128 };
  return layers * perLayer * perWeight[p] + vocab * d * (int8Head(p) ? 1 + 4 / 128 : 2);
}

const prompts = (b: number): number[][] =>
  Array.from({ length: b }, (_, s) => Array.from({ length: promptTokens }, (_, i) => (i * 7919 + s * 104729 + 13) % shape.vocab));

const rows: LatencyRow[] = [];
for (const precision of precisions) {
  let t = performance.now();
  const model = syntheticModelIn(precision, layers, shape, lmHead);
  const built = performance.now() - t;
  t = performance.now();
  const engine = createCudaEngine(model.config, model.weights, { ctx, maxSequences: Math.max(...batches), maxChunk: 1024, ...folds[0] });
  out.say(`${precision}: built in ${(built / 1000).toFixed(1)} s, uploaded in ${((performance.now() - t) / 1000).toFixed(1)} s; ${engine.describe()}`);
  /** One run of B sequences with `steps` decode steps: prefill and decode wall ms. */
  const runOnce = (b: number, steps: number): { prefill: number; decode: number } => {
    const seqs = Array.from({ length: b }, () => engine.open(promptTokens + outTokens));
    try {
      ctx.synchronize();
      const t0 = performance.now();
      let next = engine.feedPicked(seqs, prompts(b)); // the first token picked on the device too: no logits come back
      const t1 = performance.now();
      for (let s = 0; s < steps; s++) next = engine.feedPicked(seqs, Array.from(next, (t) => [t]));
      return { prefill: t1 - t0, decode: performance.now() - t1 };
    } finally {
      for (const s of seqs) s.release();
    }
  };
  for (const b of batches) {
    runOnce(b, 3); // kernels loaded, the decode graph of b rows captured
    const runs = Array.from({ length: reps }, () => runOnce(b, outTokens - 1));
    const prefill = median(runs.map((r) => r.prefill)), decode = median(runs.map((r) => r.decode));
    const latency = median(runs.map((r) => r.prefill + r.decode));
    const row: LatencyRow = {
      system: `intscale ${precision}`, batch: b, 'latency ms': Number(latency.toFixed(1)), 'prefill ms': Number(prefill.toFixed(1)),
      'decode tok/s': Math.round((b * (outTokens - 1)) / (decode / 1000)),
      'floor tok/s (batch 1)': Math.round(bandwidth / weightBytes(precision)),
    };
    rows.push(row);
    out.say(`# ${row.system} batch ${b}: ${row['latency ms']} ms (prefill ${row['prefill ms']} ms), decode ${row['decode tok/s']} tok/s`);
  }
  engine.dispose();
}
ctx.release();

// the PyTorch FP16 reference (a separate process: its own CUDA context and memory)
if (shape.moe && !values['no-torch']) out.say('# PyTorch FP16 reference not run: bench/torch_llama_e2e.py builds dense LLaMA models only');
if (!values['no-torch'] && !shape.moe) {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'torch_llama_e2e.py');
  const r = spawnSync('python3', [script, '--layers', String(layers), '--batches', batches.join(','), '--prompt-tokens', String(promptTokens),
    '--out-tokens', String(outTokens), '--reps', String(reps)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('{'));
  if (r.status !== 0 || lines.length === 0) {
    out.say(`# PyTorch FP16 reference not run: ${r.error?.message ?? (r.stderr || 'no output').trim().split('\n').slice(-3).join(' | ')}`);
  } else {
    for (const line of lines) {
      const j = JSON.parse(line) as { info?: string; batch?: number; latency_ms?: number; prefill_ms?: number; decode_tok_s?: number };
      if (j.info) {
        out.say(`# PyTorch reference: ${j.info}`);
        continue;
      }
      rows.push({ system: 'PyTorch fp16 (CUDA graphs)', batch: j.batch!, 'latency ms': j.latency_ms!, 'prefill ms': j.prefill_ms!, 'decode tok/s': j.decode_tok_s!, 'floor tok/s (batch 1)': Math.round(bandwidth / weightBytes('fp16')) });
    }
  }
}

// speedup of every row over our FP16 row at the same batch size
const fp16 = new Map(rows.filter((r) => r.system === 'intscale fp16').map((r) => [r.batch, r['latency ms']]));
const table = rows.map((r) => ({ ...r, 'vs intscale fp16': fp16.has(r.batch) ? `${(fp16.get(r.batch)! / r['latency ms']).toFixed(2)}×` : '-' }));
out.table(table);
if (values.out) {
  fs.mkdirSync(values.out, { recursive: true });
  const report = { gpu: ctx.info.name, driver: ctx.info.driverVersion, date: new Date().toISOString().slice(0, 10), bandwidthTBs: bandwidth / 1e12, shape: shapeName, layers, promptTokens, outTokens, reps, folds: describeFoldVariant(folds[0]!), weights: 'random (speed only)', rows: table };
  fs.writeFileSync(path.join(values.out, 'batch-e2e.json'), JSON.stringify(report, null, 1) + '\n');
  fs.writeFileSync(path.join(values.out, 'batch-e2e.svg'), renderLatencySvg(report));
  out.say(`wrote ${path.join(values.out, 'batch-e2e.json')} and batch-e2e.svg`);
}
process.exit(0);
