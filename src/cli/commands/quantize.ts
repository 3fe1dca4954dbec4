/** `intscale quantize`: a Hugging Face model → an intscale quantized checkpoint (RTN). */
import { Command, Option } from 'commander';
import { writeQuantizedCheckpoint } from '../../io/quantized-checkpoint.js';
import { loadModel } from '../../model/load.js';
import { layerQuantizer, type LinearReport } from '../../quant/quantize-model.js';
import { describeSpec } from '../../quant/recipe.js';
import { DEFAULT_MODEL_DIR } from '../default-model.js';
import { nonNegativeInt } from '../parse.js';
import { progressBar } from '../progress.js';
import { parseAlpha, parseOverride, recipeFromOptions, type QuantCliOptions } from '../quant-options.js';
import { openModelDir } from '../../io/model-dir.js';

/** The quantization flags shared by `quantize` and `demo`. */
export function addQuantOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--method <m>', 'quantization method').choices(['rtn']).default('rtn'))
    .addOption(new Option('--w-bits <n>', 'weight bits').choices(['4', '8']).default('4'))
    .addOption(new Option('--a-bits <n>', 'activation bits (16 = weight-only)').choices(['8', '16']).default('8'))
    .option('--group <n>', 'input channels per group (0 = per-channel)', nonNegativeInt, 128)
    .addOption(new Option('--scale <kind>', 'group scales: int (Integer Scale) or float').choices(['int', 'float']).default('int'))
    .option('--alpha <a>', 'amplifier: a power of two, heuristic, safe or safe:<max>', parseAlpha, parseAlpha('safe'))
    .option('--override <module=settings>', 'per-module settings, repeatable, e.g. down_proj=w8a8', parseOverride, {});
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
    'worst bound / 2^31': r.worst === 0 ? '-' : (r.worst / 2 ** 31).toFixed(4),
  }));
}

export const quantizeCommand = addQuantOptions(
  new Command('quantize')
    .description('quantize a Hugging Face model with Integer Scale (default W4A8, g128, α = largest overflow-safe ≤ 2^10)')
    .option('-m, --model <dir>', 'Hugging Face model directory', DEFAULT_MODEL_DIR)
    .requiredOption('-o, --out <dir>', 'output directory for the quantized checkpoint')
    .option('--overwrite', 'replace a checkpoint already in --out'),
).action((opts: QuantCliOptions & { model: string; out: string; overwrite?: boolean }) => {
  const recipe = recipeFromOptions(opts);
  const layers = openModelDir(opts.model);
  const numLayers = layers.config.numLayers;
  layers.weights.close();
  const bar = progressBar('layers', numLayers);
  const { transform, reports } = layerQuantizer(recipe, (l) => bar.update(l + 1));
  const t0 = performance.now();
  const { model, source } = loadModel(opts.model, { transformLayer: transform });
  bar.stop();
  writeQuantizedCheckpoint(opts.out, source, model.weights, recipe, opts.overwrite === true);
  console.log(`quantized ${reports.length} linear layers of ${opts.model} in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${opts.out}`);
  console.table(summarizeReports(reports));
  const unsafe = reports.filter((r) => r.overflow !== null && !r.overflow.safe);
  if (unsafe.length > 0) console.log(`warning: ${unsafe.length} integer-scale layers are NOT proven overflow-free (fixed α): ${unsafe.slice(0, 5).map((r) => r.name).join(', ')}…`);
});
