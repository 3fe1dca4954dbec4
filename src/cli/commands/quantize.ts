/** `intscale quantize`: a Hugging Face model → an intscale quantized checkpoint (RTN, GPTQ or AWQ). */
import { linearModules } from '../../model/layout.js';
import { DEFAULT_MIN_EXPERT_TOKENS } from '../../quantize/expert-fallback.js';
import { printTable } from '../table.js';
import { Command, Option } from 'commander';
import { quantizeToCheckpoint, type CalibrationPlacement, type LinearReport } from '../../quantize/quantize-model.js';
import { describeMethod, describeSpec, lmHeadSpec } from '../../quantize/recipe.js';
import { DEFAULT_MODEL_DIR } from '../default-model.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt } from '../parse.js';
import { progressBar } from '../progress.js';
import { offlineOption, resolveModelArg, tokenizerFileOption } from '../model-source.js';
import { CALIB_DEFAULTS, DEFAULT_CALIB_FILE, parseAlpha, parseOverride, recipeFromOptions, type QuantCliOptions } from '../quant-options.js';
import { openModelDir, type ModelDir } from '../../model/model-dir.js';
import { prepareOutputDir } from '../../io/output-dir.js';
import { openCalibrationPlacement, type BackendName } from '../backend-option.js';
import { w4a8KernelLine } from '../../backends/cpu/int-linear-wasm-kernel.js';

/** The quantization flags shared by `quantize` and `demo` (`demo` runs RTN only). */
export function addQuantOptions(cmd: Command, methods: readonly string[] = ['rtn']): Command {
  return cmd
    .addOption(new Option('--method <m>', 'quantization method').choices(methods).default('rtn'))
    .addOption(new Option('--w-bits <n>', 'weight bits').choices(['4', '8']).default('4'))
    .addOption(new Option('--a-bits <n>', 'activation bits (16 = weight-only)').choices(['8', '16']).default('8'))
    .option('--group <n>', 'input channels per group (0 = per-channel)', nonNegativeInt, 128)
    .addOption(new Option('--scale <kind>', 'group scales: int (Integer Scale) or float').choices(['int', 'float']).default('int'))
    .option('--alpha <a>', 'amplifier: a power of two, heuristic, safe or safe:<max>', parseAlpha, parseAlpha('safe'))
    .option('--override <module=settings>', 'per-module settings, repeatable, e.g. down_proj=w8a8 or lm_head=w8a8,g64', parseOverride, {})
    .addOption(new Option('--lm-head <kind>', 'the lm_head: w8a8 (integer path, the base\'s group and scale kind, α the largest overflow-safe ≤ 2^16; with --a-bits 8) or float').choices(['w8a8', 'float']).default('w8a8'))
    .addOption(new Option('--embedding <kind>', 'the token embedding: int8 (8 bits per row, one float scale a row; kept float while a float lm_head is tied to it) or float').choices(['int8', 'float']).default('int8'));
}

/** One line per distinct (spec, α) with how many layers use it and the worst overflow margin. */
export function summarizeReports(reports: readonly LinearReport[]): Record<string, string | number>[] {
  const rows = new Map<string, { layers: number; worst: number; lowered: number }>();
  for (const r of reports) {
    const key = `${describeSpec(r.spec)}${r.alphaLog2 === null ? '' : ` → α=2^${r.alphaLog2}`}`;
    const row = rows.get(key) ?? { layers: 0, worst: 0, lowered: 0 };
    row.layers++;
    row.worst = Math.max(row.worst, r.overflow?.maxBound ?? 0);
    if (r.alphaLowered) row.lowered++;
    rows.set(key, row);
  }
  return [...rows].map(([setting, r]) => ({
    setting,
    layers: r.layers,
    'α lowered for safety': r.lowered,
    'worst bound / 2^31': r.worst === 0 ? '-' : Number((r.worst / 2 ** 31).toFixed(4)),
  }));
}

/** GPTQ / AWQ calibration and method flags (`quantize` only). */
function addMethodOptions(cmd: Command): Command {
  return cmd
    .option('--calib <file>', `calibration text for gptq/awq (default ${DEFAULT_CALIB_FILE} when present, else required; never use the test set)`)
    .option('--calib-windows <n>', `calibration windows of --calib-seq-len tokens (default: ${CALIB_DEFAULTS.samples})`, positiveInt)
    .addOption(new Option('--calib-samples <n>', 'the old name of --calib-windows').argParser(positiveInt).hideHelp())
    .option('--calib-seq-len <n>', 'tokens per calibration window', positiveInt, CALIB_DEFAULTS.seqLen)
    .option('--seed <n>', 'seed of the calibration window sampler', nonNegativeInt, CALIB_DEFAULTS.seed)
    .option('--damp <f>', 'GPTQ dampening, fraction of the mean Hessian diagonal', nonNegativeNumber, 0.01)
    .option('--act-order', 'GPTQ: quantize columns in order of decreasing Hessian diagonal (groups stay static)')
    .option('--no-true-sequential', 'GPTQ: take every Hessian of a layer from the float layer in one pass')
    .option('--awq-clip', 'AWQ: also search a per-group weight clipping')
    .option('--min-expert-tokens <n>', `mixtral, GPTQ/AWQ: an expert routed fewer calibration tokens is quantized with RTN (default ${DEFAULT_MIN_EXPERT_TOKENS})`, nonNegativeInt);
}

export const quantizeCommand = addMethodOptions(addQuantOptions(
  new Command('quantize')
    .description('quantize a Hugging Face model with Integer Scale (default RTN W4A8, g128, α = largest overflow-safe ≤ 2^10; --method gptq|awq calibrates)')
    .option('-m, --model <dir|id>', 'Hugging Face model directory, or a Hub id org/name[@revision] (downloaded into the Hugging Face cache)', DEFAULT_MODEL_DIR)
    .addOption(offlineOption())
    .addOption(tokenizerFileOption())
    .requiredOption('-o, --out <dir>', 'output directory for the quantized checkpoint')
    .option('--overwrite', 'replace a checkpoint already in --out')
    .addOption(new Option('--backend <name>', 'where GPTQ and AWQ calibrate: cpu, or cuda (an NVIDIA GPU: the calibration forward; GPTQ\'s Hessians, factors and column updates; AWQ\'s statistics and its grid search: each point\'s scaling, RTN, products and loss; rtn runs on the CPU)').choices(['cpu', 'cuda']).default('cpu'))
    .option('--json', 'print the result (settings per layer group, the overflow proof) as one JSON object'),
  ['rtn', 'gptq', 'awq'],
)).action(async (opts: QuantCliOptions & { model: string; offline?: boolean; tokenizer?: string; out: string; overwrite?: boolean; json?: boolean; calibSamples?: number; backend: BackendName }) => {
  opts.model = (await resolveModelArg(opts.model, opts)).dir;
  opts.calibWindows ??= opts.calibSamples;
  const layers = openModelDir(opts.model);
  layers.weights.close();
  if (opts.backend === 'cuda' && opts.method === 'rtn') process.stderr.write('note: --backend cuda places GPTQ and AWQ; --method rtn runs on the CPU\n');
  // the GPU first: a machine without one is told so before the output directory is made
  const placed = await openCalibrationPlacement(opts.method === 'rtn' ? 'cpu' : opts.backend);
  try {
    quantizeWith(opts, placed.placement && { ...placed.placement, name: placed.name }, layers);
  } finally {
    placed.close();
  }
});

/** The rest of `quantize` once the GPU (if asked) is open. */
function quantizeWith(opts: QuantCliOptions & { model: string; out: string; overwrite?: boolean; json?: boolean },
  calibrateOn: (CalibrationPlacement<unknown> & { readonly name: string }) | undefined, layers: ModelDir): void {
  const { numLayers, maxPositionEmbeddings: context, moe } = layers.config;
  // refuse a bad output directory before any work (the write at the end checks it again)
  prepareOutputDir(opts.out, { sourceDir: opts.model, overwrite: opts.overwrite === true });
  if (layers.tokenizerPath === null) {
    process.stderr.write(`warning: ${opts.model} has no tokenizer.json, so the checkpoint will have none: eval and generate need one (copy it into ${opts.out})\n`);
  }
  if (opts.method !== 'rtn' && (opts.calibSeqLen ?? 0) > context) {
    process.stderr.write(`note: --calib-seq-len ${opts.calibSeqLen} capped at the model's context, ${context}\n`);
    opts.calibSeqLen = context;
  }
  const recipe = recipeFromOptions(opts);
  if (!opts.json) console.log(`${describeMethod(recipe)}, ${describeSpec(recipe.base)}${calibrateOn ? `; on ${calibrateOn.name}` : ''}`);
  // AWQ's grid search runs W4A8 products: on the CPU, say which kernel (Node 24 runs the relaxed one about twice as fast)
  if (!opts.json && recipe.method === 'awq' && !calibrateOn) process.stderr.write(`cpu: ${w4a8KernelLine()}\n`);
  const t0 = performance.now();
  // per linear layer: GPTQ and AWQ spend minutes on each decoder layer of a 7B (and the lm_head, when the recipe quantizes it)
  const bar = progressBar(`${recipe.method} linear layers`, numLayers * linearModules(moe?.numExperts).length + (lmHeadSpec(recipe) === null ? 0 : 1));
  let linears = 0;
  // each layer goes to the checkpoint as it is made: memory holds about one layer, whatever the model
  let reports: LinearReport[];
  try {
    reports = quantizeToCheckpoint(opts.model, opts.out, recipe, { overwrite: opts.overwrite === true, onLinear: () => bar.update(++linears), ...(calibrateOn ? { calibrateOn } : {}) });
  } finally {
    bar.stop();
  }
  const seconds = Number(((performance.now() - t0) / 1000).toFixed(1));
  const unsafe = reports.filter((r) => r.overflow !== null && !r.overflow.safe);
  const fallbacks = reports.filter((r) => r.fallback !== undefined).map((r) => ({ name: r.name, reason: r.fallback! }));
  if (opts.json) {
    console.log(JSON.stringify({
      model: opts.model, out: opts.out, method: describeMethod(recipe), spec: describeSpec(recipe.base), linearLayers: reports.length, seconds,
      settings: summarizeReports(reports), notProvenOverflowFree: unsafe.map((r) => r.name), fallbacks,
    }));
    return;
  }
  console.log(`quantized ${reports.length} linear layers of ${opts.model} in ${seconds} s → ${opts.out}`);
  printTable(summarizeReports(reports));
  if (fallbacks.length > 0) {
    console.log(`${fallbacks.length} expert linear layers fell back to RTN (too few calibration tokens routed to their expert):`);
    for (const f of fallbacks) console.log(`  ${f.name}: ${f.reason}`);
  }
  if (unsafe.length > 0) console.log(`warning: ${unsafe.length} integer-scale layers are NOT proven overflow-free (fixed α): ${unsafe.slice(0, 5).map((r) => r.name).join(', ')}…`);
}
