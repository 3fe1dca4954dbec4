/**
 * Where AWQ's time goes on one decoder layer (#25): the statistics pass (gatherInputStats: the float
 * layer over every calibration token), then for each input group the search's float reference
 * (once a search) and one grid point's three parts: the column scaling (awqScales + scaleColumns into
 * the buffer the search reuses),
 * the RTN quantization (quantizeLinearReport) and the W4A8 product on the sampled rows (linearOnce).
 * A search is 20 grid points (DEFAULT_AWQ.grid). One run, the parts timed in turn; on the random
 * 7B checkpoint of bench/quantize-7b (speed only). Usage:
 *   node dist/bench/awq-layer-parts.js [--model /tmp/intscale-7b-f16] [--calib FILE] [--windows 16] [--seq-len 512] [--layer 0]
 */
import * as path from 'node:path';
import { openModelDir } from '../src/model/model-dir.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { calibrateLayers, readCalibrationWindows } from '../src/quantize/calibration.js';
import { DEFAULT_AWQ, awqScales, gatherInputStats, scaleColumns } from '../src/quantize/awq.js';
import { linearOnce } from '../src/model/prepare.js';
import { linearAt } from '../src/model/layer-linears.js';
import type { LinearSlot } from '../src/model/layout.js';
import { quantizeLinearReport } from '../src/quant/quantize-linear.js';
import { rtnRowsOnPool } from '../src/backends/cpu/rtn-pool.js';
import { DEFAULT_SPEC } from '../src/quantize/recipe.js';
import { PACKAGE_ROOT } from '../src/cli/default-model.js';
import { defaultThreadCount } from '../src/backends/cpu/pool/index.js';
import { benchArgs, nonNegativeInt, positiveInt } from './args.js';
import { machineLine } from './stats.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    model: { type: 'string', default: '/tmp/intscale-7b-f16' },
    calib: { type: 'string', default: path.join(PACKAGE_ROOT, 'data', 'wikitext-2-test-excerpt.txt') },
    windows: { type: 'string', default: '16' },
    'seq-len': { type: 'string', default: '512' },
    layer: { type: 'string', default: '0' },
  },
});
const source = openModelDir(values.model!);
const { config } = source;
const target = nonNegativeInt('layer', values.layer!);
const windows = readCalibrationWindows(loadTokenizer(values.model!), { file: values.calib!, samples: positiveInt('windows', values.windows!), seqLen: positiveInt('seq-len', values['seq-len']!), seed: 0 });
console.log(`# ${machineLine(defaultThreadCount())}`);
console.log(`# ${values.model} layer ${target}, ${windows.length} x ${windows[0]!.length} calibration tokens, ${DEFAULT_AWQ.searchTokens} search tokens, W4A8 g128 IS; one run`);
const embedding = source.weights.float32('model.embed_tokens.weight', [config.vocabSize, config.hiddenSize]);
const since = (t: number): number => performance.now() - t;
const GROUPS: readonly (readonly [string, readonly LinearSlot[]])[] = [['qkv', ['q', 'k', 'v']], ['o', ['o']], ['gateUp', ['gate', 'up']], ['down', ['down']]];
const STOP = new Error('measured');
try {
  calibrateLayers(source, embedding, windows, (calib) => {
    if (calib.index < target) return calib.layer;
    if (calib.layer.moe !== undefined) throw new Error('a dense layer is needed');
    let t = performance.now();
    const stats = gatherInputStats(calib, DEFAULT_AWQ.searchTokens);
    console.log(`statistics pass (the float layer over every calibration token): ${since(t).toFixed(0)} ms`);
    let perPoint = 0;
    for (const [key, slots] of GROUPS) {
      const st = stats.get(key)!;
      let ref = 0, scale = 0, rtn = 0, product = 0;
      for (const slot of slots) {
        const w = linearAt(calib.layer, slot, null);
        t = performance.now(); linearOnce(calib.backend, w, st.rows, st.t); ref += since(t);
        // the search scales into one buffer a linear for all its grid points: time a point after the first
        const room = scaleColumns(w, awqScales(st.meanAbs, 0.45)).w;
        t = performance.now(); const scaled = scaleColumns(w, awqScales(st.meanAbs, 0.5), room); scale += since(t);
        t = performance.now(); const q = quantizeLinearReport(scaled, DEFAULT_SPEC, slot, rtnRowsOnPool).layer; rtn += since(t); // as searchScales runs it
        t = performance.now(); linearOnce(calib.backend, q, st.rows, st.t); product += since(t);
      }
      perPoint += scale + rtn + product;
      console.log(`${key.padEnd(7)} (t = ${st.t}): float reference ${ref.toFixed(0)} ms (once a search); a grid point: column scaling ${scale.toFixed(0)} ms, RTN ${rtn.toFixed(0)} ms, W4A8 product ${product.toFixed(0)} ms`);
    }
    console.log(`one grid point of every group: ${perPoint.toFixed(0)} ms; ${DEFAULT_AWQ.grid} of them: ${(perPoint * DEFAULT_AWQ.grid / 1000).toFixed(0)} s`);
    throw STOP;
  }, () => {});
} catch (e) {
  if (e !== STOP) throw e;
}
process.exit(0);
