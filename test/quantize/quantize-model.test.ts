/** quantizeModel reports progress per linear layer, in model order, for RTN and the calibrated methods. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quantizeModel } from '../../src/quantize/quantize-model.js';
import { DEFAULT_GPTQ_LAYER } from '../../src/quantize/gptq-layer.js';
import type { QuantSpec } from '../../src/quant/types.js';
import { fixturePath } from '../helpers/paths.js';
import { tempDir } from '../io/temp-dir.js';

const spec: QuantSpec = { wBits: 4, aBits: 8, groupSize: 32, scale: 'int', alpha: { kind: 'safe', maxLog2: 10 } };

test('onLinear is called once per linear layer, in order, for RTN and GPTQ', () => {
  const calib = path.join(tempDir(), 'calib.txt');
  fs.writeFileSync(calib, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(40));
  const calibration = { file: calib, samples: 2, seqLen: 16, seed: 0 };
  for (const recipe of [
    { method: 'rtn' as const, base: spec, overrides: {} },
    { method: 'gptq' as const, base: spec, overrides: {}, calibration, gptq: DEFAULT_GPTQ_LAYER },
  ]) {
    const seen: string[] = [];
    const { reports } = quantizeModel(fixturePath('llama'), recipe, { onLinear: (r) => seen.push(r.name) });
    assert.equal(seen.length, 2 * 7, recipe.method);
    assert.deepEqual(seen, reports.map((r) => r.name));
    assert.equal(seen[0], 'model.layers.0.self_attn.q_proj');
    assert.equal(seen.at(-1), 'model.layers.1.mlp.down_proj');
  }
});
