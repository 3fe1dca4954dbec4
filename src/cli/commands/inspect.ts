/**
 * `intscale inspect --overflow`: is the integer-scale int32 accumulation safe, and by how much?
 *
 * For a float model quantized now (same flags as `quantize`) or an intscale checkpoint:
 *   - per layer α, the proven worst-case bound vs 2^31 and the largest int32 values actually seen
 *     on a few windows of calibration text (the paper's Figure 8)       → overflow.svg
 *   - histogram of the amplified integer scales' bit widths (Figure 4a) → scale-bits.svg
 *   - weight MSE float vs integer scale for α = 2^7 … 2^13 (Figure 4c)  → weight-mse.svg
 *     (float models only: a checkpoint no longer has the float weights)
 * Tables go to stdout, SVG files to --plots.
 */
import { printTable, type Row } from '../table.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import { barChartSvg, lineChartSvg } from '../../eval/svg.js';
import {
  createMseSweep,
  largestInt32Seen,
  overflowRows,
  scaleBitHistogram,
  traceCalibration,
  type BitWidthBin,
  type LayerOverflowRow,
  type MseRow,
} from '../../eval/overflow-audit.js';
import { isQuantizedCheckpoint } from '../../model/quantized-checkpoint.js';
import { openModelDir } from '../../model/model-dir.js';
import { loadModel, type LoadedModel } from '../../backends/load.js';
import { layerPrefix } from '../../model/layout.js';
import { linearEntries } from '../../model/layer-linears.js';
import { layerQuantizer, type LinearReport } from '../../quantize/quantize-model.js';
import { describeSpec, specFor } from '../../quantize/recipe.js';
import type { QuantizedLinear } from '../../quant/types.js';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../default-model.js';
import { positiveInt } from '../parse.js';
import { progressBar } from '../progress.js';
import { offlineOption, resolveModelArg, tokenizerFileOption } from '../model-source.js';
import { recipeFromOptions, type QuantCliOptions } from '../quant-options.js';
import { readTextFile } from '../text-file.js';
import { addQuantOptions } from './quantize.js';

const DEFAULT_CALIB = path.join(PACKAGE_ROOT, 'data', 'wikitext-2-test-excerpt.txt');
const QUANT_FLAGS = ['wBits', 'aBits', 'group', 'scale', 'alpha', 'override', 'lmHead', 'embedding'] as const;

interface InspectOptions extends QuantCliOptions {
  overflow?: boolean; json?: boolean; model: string; calib: string; calibWindows: number; seqLen: number; plots: string;
}

const short = (name: string) => name.replace('model.layers.', '');
const log2 = (v: number) => (v > 0 ? Math.log2(v) : Number.NaN);
const sci = (v: number) => v.toExponential(3);

function overflowTable(rows: readonly LayerOverflowRow[]): Row[] {
  return rows.map((r) => ({
    layer: short(r.name),
    α: r.alphaLog2 === null ? '-' : `2^${r.alphaLog2}${r.alphaLowered === true ? ' (lowered)' : r.alphaLowered === null ? ' (?)' : ''}`,
    'bound': r.proof?.maxBound ?? '-',
    'bound/2^31': r.boundRatio === null ? '-' : Number(r.boundRatio.toFixed(5)),
    proven: r.proof === null ? 'n/a (A16)' : r.proof.safe,
    'max |acc| group': r.seen?.maxGroupAcc ?? '-',
    'max |Σ acc·S|': r.seen?.maxTotal ?? '-',
    'max seen/2^31': r.seen === null ? '-' : Number((largestInt32Seen(r.seen) / 2 ** 31).toExponential(2)),
    'headroom bits': r.seen === null ? '-' : Number((31 - log2(largestInt32Seen(r.seen))).toFixed(1)),
  }));
}

function overflowSvg(rows: readonly LayerOverflowRow[], source: string): string {
  const seen = rows.filter((r) => r.proof !== null);
  return barChartSvg({
    title: 'Largest |int32| seen vs proven bound, per layer',
    subtitle: source,
    xLabel: 'layer',
    yLabel: 'log2 |value|',
    categories: seen.map((r) => short(r.name).replace(/self_attn\.|mlp\./, '')),
    series: [
      { label: 'max |acc| of a group, seen', values: seen.map((r) => (r.seen ? log2(r.seen.maxGroupAcc) : Number.NaN)) },
      { label: 'max |Σ acc·S| seen', values: seen.map((r) => (r.seen ? log2(largestInt32Seen(r.seen)) : Number.NaN)) },
      { label: 'proven bound', values: seen.map((r) => log2(r.proof!.maxBound)) },
    ],
    referenceLines: [{ label: 'int32 limit 2^31', value: 31 }],
  });
}

function histogramSvg(bins: readonly BitWidthBin[]): string {
  return barChartSvg({
    title: 'Bit widths of the amplified integer scales S (all layers)',
    subtitle: `${bins.reduce((s, b) => s + b.groups, 0)} groups, each layer at its own α`,
    xLabel: 'bits = ceil(log2(S + 1))',
    yLabel: 'groups',
    categories: bins.map((b) => String(b.bits)),
    series: [{ label: 'groups', values: bins.map((b) => b.groups) }],
  });
}

function mseSvg(rows: readonly MseRow[]): string {
  return lineChartSvg({
    title: 'Weight MSE: float scale vs integer scale at fixed α (all linear layers)',
    xLabel: 'amplifier α',
    yLabel: 'mean squared error',
    x: rows.map((r) => r.alphaLog2),
    xTickLabels: rows.map((r) => `2^${r.alphaLog2}`),
    yScale: 'log10',
    series: [
      { label: 'float scale vs W', values: rows.map((r) => r.floatMse) },
      { label: 'integer scale vs W', values: rows.map((r) => r.intMse) },
      { label: 'integer vs float scale', values: rows.map((r) => r.intVsFloatMse) },
    ],
  });
}

function writePlot(dir: string, file: string, svg: string, written: string[]): void {
  const p = path.join(dir, file);
  fs.writeFileSync(p, svg);
  written.push(p);
}

function runOverflow(o: InspectOptions, cmd: Command): void {
  const started = performance.now();
  // --json: the tables' rows are collected into one object printed at the end; the prose is left out
  const json: Record<string, unknown> = {};
  const say = (line: string) => { if (!o.json) console.log(line); };
  const table = (key: string, rows: Row[]) => { if (o.json) json[key] = rows; else printTable(rows); };
  const dir = openModelDir(o.model);
  const isCheckpoint = isQuantizedCheckpoint(dir.rawConfig);
  dir.weights.close();
  const calibText = readTextFile(o.calib);

  let loaded: LoadedModel;
  let reports: LinearReport[] | null = null;
  let mse: MseRow[] | null = null;
  if (isCheckpoint) {
    const given = QUANT_FLAGS.filter((f) => cmd.getOptionValueSource(f) === 'cli');
    if (given.length > 0) process.stderr.write(`note: ${o.model} is already quantized; ignoring quantization flags\n`);
    loaded = loadModel(o.model);
    say(`model: ${o.model} (intscale checkpoint, as stored)`);
  } else {
    const recipe = recipeFromOptions(o);
    const { transform, loadOptions, reports: r } = layerQuantizer(recipe);
    const sweep = createMseSweep();
    const bar = progressBar('quantize + MSE sweep', dir.config.numLayers);
    loaded = loadModel(o.model, {
      ...loadOptions,
      transformLayer: (l, linears) => {
        for (const { slot, module, weight } of linearEntries(linears)) sweep.add(weight, specFor(recipe, slot), layerPrefix(l) + module);
        bar.update(l + 1);
        return transform(l, linears);
      },
    });
    bar.stop();
    reports = r;
    mse = sweep.rows();
    say(`model: ${o.model}, quantized now: ${describeSpec(recipe.base)}${Object.keys(recipe.overrides).length ? ' (+ overrides)' : ''}`);
  }
  const { model, tokenizer } = loaded;
  const moe = model.config.moe;
  if (moe !== undefined) say(`mixture of experts: ${moe.numExperts} experts a layer, ${moe.topK} per token; each expert's linears below, the router stays float`);
  if (tokenizer === null) throw new InputError(`${o.model}: no tokenizer.json, cannot tokenize the calibration text`, { file: o.model });

  const seqLen = Math.min(o.seqLen, model.config.maxPositionEmbeddings);
  const tokens = tokenizer.encode(calibText);
  const bar = progressBar('calibration windows', o.calibWindows);
  const trace = traceCalibration(model, tokens, { seqLen, windows: o.calibWindows, onWindow: (d) => bar.update(d) });
  bar.stop();
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  let calibDesc = `${plural(trace.tokens, 'token')} of ${o.calib} (${plural(trace.windows, 'window')} of ${trace.seqLen})`;
  if (trace.stopped !== null) {
    calibDesc += ` + part of window ${trace.stopped.window + 1} up to ${trace.stopped.layer}`;
    process.exitCode = 1;
  }

  // 1. per layer
  const rows = overflowRows(model.weights, reports, trace.stats);
  say(`\nOverflow per layer: bound = 127·|qmin|·G·max_n Σ_g S[n,g] (proven for every input); max seen on ${calibDesc}:`);
  table('layers', overflowTable(rows));
  const a8 = rows.filter((r) => r.proof !== null);
  const proven = a8.filter((r) => r.proof!.safe).length;
  const worstSeen = Math.max(0, ...a8.map((r) => (r.seen ? largestInt32Seen(r.seen) : 0)));
  const worstBound = Math.max(0, ...a8.map((r) => r.proof!.maxBound));
  say(`${proven} of ${a8.length} int32-accumulating layers proven overflow-free` +
    `${a8.length - proven > 0 ? ` — ${a8.length - proven} NOT proven (their bound reaches 2^31)` : ''}.`);
  say(`largest |int32| seen: ${worstSeen} = 2^${log2(worstSeen).toFixed(2)} (${(worstSeen / 2 ** 31).toExponential(2)} of 2^31); ` +
    `largest bound: 2^${log2(worstBound).toFixed(2)}.`);
  if (trace.stopped !== null) {
    say(`INT32 OVERFLOW on real text: the integer kernel of ${trace.stopped.layer} refused window ${trace.stopped.window + 1}:\n  ${trace.stopped.message}\n` +
      `  the run stopped there; layers after it were not traced on that window (exit status 1).`);
  }
  if (rows.some((r) => r.alphaLowered === null && r.alphaLog2 !== null)) {
    say('(?) = a checkpoint does not record whether the safe policy lowered α.');
  }

  // 2. bit widths
  const intLayers: QuantizedLinear[] = rows.map((r) => r.layer).filter((w) => w.scale === 'int');
  const bins = scaleBitHistogram(intLayers);
  const totalGroups = bins.reduce((s, b) => s + b.groups, 0);
  if (bins.length > 0) {
    say(`\nBit widths of the amplified integer scales S (ceil(log2(S+1)), ${totalGroups} groups, at each layer's α):`);
    table('scaleBits', bins.map((b) => ({ bits: b.bits, groups: b.groups, share: `${((100 * b.groups) / totalGroups).toFixed(1)}%` })));
  } else {
    say('\nNo integer-scale layers: no scale bit-width histogram.');
  }

  // 3. weight MSE
  if (mse !== null) {
    say(`\nWeight MSE over all ${rows.length} linear layers (pooled over every weight), float scale vs integer scale at fixed α:`);
    table('weightMse', mse.map((r) => ({
      α: `2^${r.alphaLog2}`,
      'MSE float scale': sci(r.floatMse),
      'MSE integer scale': sci(r.intMse),
      'int / float': Number((r.intMse / r.floatMse).toFixed(4)),
      'MSE int vs float scale': sci(r.intVsFloatMse),
    })));
  } else {
    say('\nWeight MSE sweep skipped: a quantized checkpoint has no float weights (inspect the original model instead).');
  }

  fs.mkdirSync(o.plots, { recursive: true });
  const written: string[] = [];
  writePlot(o.plots, 'overflow.svg', overflowSvg(rows, `max seen on ${trace.tokens} tokens of ${path.basename(o.calib)} (${trace.windows}×${trace.seqLen}); bound = 127·|qmin|·G·max_n Σ_g S[n,g]`), written);
  if (bins.length > 0) writePlot(o.plots, 'scale-bits.svg', histogramSvg(bins), written);
  if (mse !== null) writePlot(o.plots, 'weight-mse.svg', mseSvg(mse), written);
  say(`\nplots: ${written.join(', ')}`);
  say(`inspect finished in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (o.json) console.log(JSON.stringify({ model: o.model, calibration: calibDesc, proven, layersWithInt32: a8.length, largestInt32Seen: worstSeen, ...json, plots: written }));
}

export const inspectCommand = addQuantOptions(
  new Command('inspect')
    .description('inspect a model\'s quantization: --overflow (α, int32 bounds vs values seen, scale bit widths, weight MSE vs α)')
    .option('--overflow', 'the int32 overflow audit (the paper\'s Figures 4 and 8)')
    .option('-m, --model <dir|id>', 'model directory (Hugging Face, quantized now with the flags below, or an intscale checkpoint), or a Hub id org/name[@revision]', DEFAULT_MODEL_DIR)
    .addOption(offlineOption())
    .addOption(tokenizerFileOption())
    .option('--calib <file>', 'calibration text for the values actually seen', DEFAULT_CALIB)
    .option('--calib-windows <n>', 'windows of calibration text to run', positiveInt, 2)
    .option('--seq-len <n>', 'tokens per calibration window (capped at the model context)', positiveInt, 256)
    .option('--plots <dir>', 'directory for the SVG plots', 'intscale-plots')
    .option('--json', 'print the tables as one JSON object (the plots are still written)'),
).action(async (o: InspectOptions & { offline?: boolean; tokenizer?: string }, cmd: Command) => {
  if (!o.overflow) throw new InputError('choose what to inspect: --overflow');
  o.model = (await resolveModelArg(o.model, o)).dir;
  runOverflow(o, cmd);
});
