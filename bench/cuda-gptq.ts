/**
 * GPTQ's matrices on the GPU (issue 25; backends/cuda/gptq-cuda.ts) for one LLaMA-2-7B-shaped decoder
 * layer: per input (q/k/v, o, gate/up, down) the Hessian summed from --windows windows of --seq-len
 * tokens, its factor, and the column loop of each linear reading it (W4A8 g128 Integer Scale, α by the
 * safe policy with its overflow proof), with wall times per phase, the layer's total and that total
 * times --layers. RANDOM data, speed only: one random window of float32 rows is uploaded and added
 * --windows times (the cost of the calibration's rows, not their values), and the weights are random.
 * Not in it: the calibration forward (running the layers on the windows).
 *
 * With --model-layers N, end to end instead: writes a LLaMA-2-7B-shaped checkpoint of N RANDOM f16 layers
 * into --dir (kept and reused), then quantizes it as `intscale quantize --method gptq --backend cuda` does
 * (quantizeToCheckpoint; the calibration stream on the exact CUDA backend, GPTQ's matrices on the GPU;
 * --windows × --seq-len tokens of --calib), timing each decoder layer; the whole 32-layer model's time is
 * the mean layer times 32 plus the fixed part (reading the embedding, the lm_head, writing). With --method
 * awq, AWQ instead (`intscale quantize --method awq --backend cuda`: the stream, the column statistics and
 * each grid point's scaling, RTN, products and loss on the GPU (Backend.scaleSearch); the choice of α and
 * of the best grid point on the host).
 *
 *   node dist/bench/cuda-gptq.js [--windows 128] [--seq-len 2048] [--layers 32] [--json]
 *   node dist/bench/cuda-gptq.js --model-layers 2 [--method gptq|awq] [--dir /tmp/intscale-7b-2l] [--calib FILE] [--windows 128] [--seq-len 2048]
 */
import { CudaContext } from '../src/backends/cuda/context.js';
import { cudaGptq } from '../src/backends/cuda/gptq-cuda.js';
import { DEFAULT_GPTQ, gptqQuantizeLinear } from '../src/quant/methods/gptq.js';
import { DEFAULT_SPEC } from '../src/quantize/recipe.js';
import type { FloatLinear } from '../src/quant/types.js';
import { printTable } from '../src/cli/table.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';
import { BenchArgumentError, benchArgs, positiveInt } from './args.js';
import { LLAMA2_7B_SHAPE } from './synthetic.js';
import { writeSynthetic7B } from './synthetic-checkpoint.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT, DEFAULT_MODEL_DIR } from '../src/cli/default-model.js';
import { createCudaBackend } from '../src/backends/cuda/cuda-backend.js';
import { quantizeToCheckpoint, type CalibrationPlacement } from '../src/quantize/quantize-model.js';
import { DEFAULT_GPTQ_LAYER } from '../src/quantize/gptq-layer.js';
import { DEFAULT_AWQ } from '../src/quantize/awq.js';
import { DEFAULT_LM_HEAD, type QuantRecipe } from '../src/quantize/recipe.js';
import { machineLine } from './stats.js';
import { needsGpu } from './cuda-timing.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    windows: { type: 'string', default: '128' },
    'seq-len': { type: 'string', default: '2048' },
    layers: { type: 'string', default: '32' },
    json: { type: 'boolean', default: false },
    'model-layers': { type: 'string' },
    method: { type: 'string', default: 'gptq' },
    dir: { type: 'string' },
    calib: { type: 'string', default: path.join(PACKAGE_ROOT, 'data', 'wikitext-2-test-excerpt.txt') },
  },
});
const windows = positiveInt('windows', values.windows!), seqLen = positiveInt('seq-len', values['seq-len']!), layers = positiveInt('layers', values.layers!);

const ctx = needsGpu('the GPU GPTQ bench', () => new CudaContext(0));
const gptq = cudaGptq(ctx);
if (values['model-layers'] !== undefined) {
  endToEnd(positiveInt('model-layers', values['model-layers']!));
  process.exit(0);
}
const { hidden: d, ffn: F } = LLAMA2_7B_SHAPE;
const inputs = [
  { input: 'q/k/v', k: d, linears: [['q_proj', d], ['k_proj', d], ['v_proj', d]] },
  { input: 'o', k: d, linears: [['o_proj', d]] },
  { input: 'gate/up', k: d, linears: [['gate_proj', F], ['up_proj', F]] },
  { input: 'down', k: F, linears: [['down_proj', d]] },
] as const;

let seed = 12345;
const random = (n: number, scale: number): Float32Array => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    a[i] = (seed / 2 ** 32 - 0.5) * scale;
  }
  return a;
};
const weights = random(d * F, 0.1); // every linear reads a view of it (speed only)

console.log(`# GPTQ on the GPU, one LLaMA-2-7B-shaped layer (hidden ${d}, ffn ${F}); ${ctx.info.name}; ${gptq.name}`);
console.log(`# ${machineLine(cpuPool().threads)}`);
console.log(`# Hessians from ${windows} windows × ${seqLen} tokens (one RANDOM window added ${windows} times); RANDOM weights; W4A8 g128 IS, α safe; speed only`);

interface Row { readonly phase: string; readonly seconds: number }
const rows: Row[] = [];
const timed = <T>(phase: string, run: () => T): T => {
  const t0 = performance.now();
  const r = run();
  ctx.synchronize();
  rows.push({ phase, seconds: (performance.now() - t0) / 1000 });
  return r;
};

const started = performance.now();
for (const { input, k, linears } of inputs) {
  const x = random(seqLen * k, 2);
  const acc = gptq.accumulator(k);
  timed(`${input}: Hessian (${windows} × ${seqLen} rows of ${k})`, () => {
    for (let w = 0; w < windows; w++) acc.add(x, seqLen);
  });
  const factor = timed(`${input}: factor (${k}²)`, () => acc.factor(DEFAULT_GPTQ, input));
  for (const [name, n] of linears) {
    const w: FloatLinear = { kind: 'float', n, k, w: weights.subarray(0, n * k) };
    timed(`${input}: ${name} columns (${n} × ${k})`, () => gptqQuantizeLinear(w, factor, DEFAULT_SPEC, DEFAULT_GPTQ, name, gptq.columns));
  }
}
const layerSeconds = (performance.now() - started) / 1000;
gptq.dispose();
ctx.release();

if (values.json) {
  console.log(JSON.stringify({ gpu: ctx.info.name, windows, seqLen, rows, layerSeconds, modelSeconds: layerSeconds * layers }));
} else {
  printTable(rows.map((r) => ({ phase: r.phase, seconds: r.seconds.toFixed(2) })));
  console.log(`one layer: ${layerSeconds.toFixed(1)} s (including the random data made on the host); × ${layers} layers: ${(layerSeconds * layers / 60).toFixed(1)} min of GPTQ matrices`);
}

/** --model-layers: the whole quantize path on a written N-layer checkpoint (see the header). */
function endToEnd(layerCount: number): void {
  const method = values.method;
  if (method !== 'gptq' && method !== 'awq') throw new BenchArgumentError(`--method takes gptq or awq, got '${method}'`);
  const dir = values.dir ?? `/tmp/intscale-7b-${layerCount}l-f16`;
  console.log(`# ${method.toUpperCase()} end to end on the GPU: a LLaMA-2-7B-shaped checkpoint of ${layerCount} RANDOM f16 layers (${dir}); ${ctx.info.name}${method === 'gptq' ? `; ${gptq.name}` : ''}`);
  console.log(`# ${machineLine(cpuPool().threads)}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    const t = performance.now();
    writeSynthetic7B(dir, layerCount);
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(DEFAULT_MODEL_DIR, file), path.join(dir, file));
    console.log(`# wrote it in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const out = `${dir}-${method}`;
  const calibrationBackend = createCudaBackend({ ctx, graphs: false });
  const common = {
    base: DEFAULT_SPEC, overrides: { lmHead: DEFAULT_LM_HEAD }, embedding: 'int8' as const,
    calibration: { file: values.calib!, samples: windows, seqLen, seed: 0 },
  };
  const recipe: QuantRecipe = method === 'gptq' ? { ...common, method: 'gptq', gptq: DEFAULT_GPTQ_LAYER } : { ...common, method: 'awq', awq: DEFAULT_AWQ };
  console.log(`# W4A8 g128 IS (α safe ≤ 2^10), ${method === 'gptq' ? 'true-sequential' : `grid ${DEFAULT_AWQ.grid}, ${DEFAULT_AWQ.searchTokens} search tokens`}, ${windows} windows × ${seqLen} tokens of ${values.calib}; W8A8 lm_head, 8-bit embedding`);
  const started = performance.now();
  const layerEnds: number[] = [];
  let linears = 0;
  try {
    quantizeToCheckpoint(dir, out, recipe, {
      overwrite: true,
      calibrateOn: { backend: calibrationBackend, ...(method === 'gptq' ? { gptqEngine: gptq } : {}) } as CalibrationPlacement<unknown>,
      onLinear: () => { linears++; },
      onLayer: (i) => {
        layerEnds[i] = performance.now();
        const from = i === 0 ? started : layerEnds[i - 1]!;
        console.log(`layer ${i}: ${((layerEnds[i]! - from) / 1000).toFixed(1)} s (${linears} linears so far)`);
      },
    });
  } finally {
    calibrationBackend.dispose();
    gptq.dispose();
  }
  const total = (performance.now() - started) / 1000;
  const perLayer = layerEnds.map((t, i) => (t - (i === 0 ? started : layerEnds[i - 1]!)) / 1000);
  const later = perLayer.length > 1 ? perLayer.slice(1) : perLayer; // layer 0 also pays the embedding and the windows
  const mean = later.reduce((a, b) => a + b, 0) / later.length;
  const fixed = total - perLayer.reduce((a, b) => a + b, 0) + (perLayer[0]! - mean);
  console.log(`total ${total.toFixed(1)} s for ${layerCount} layers (${linears} linears); a layer ${mean.toFixed(1)} s (layers after the first), fixed ${fixed.toFixed(1)} s`);
  console.log(`projected for the 32-layer 7B: ${((32 * mean + fixed) / 60).toFixed(1)} min (32 × the layer time + the fixed part)`);
}
