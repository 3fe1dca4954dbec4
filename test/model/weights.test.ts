import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openModelDir } from '../../src/model/model-dir.js';
import { LINEAR_SLOTS } from '../../src/model/layout.js';
import { readFloatLayer, releaseFloatLayer } from '../../src/model/weights.js';
import { denseLayers } from '../helpers/dense-layers.js';
import { withArenaAllocation } from '../../src/tensor/shared.js';
import { fixturePath } from '../helpers/paths.js';

const skip = process.env['INTSCALE_ARENA'] === '0' ? 'the shared arena is turned off (INTSCALE_ARENA=0)' : false;

test('releaseFloatLayer: the next layer read into the arena reuses the released layer\'s memory, and reads its own values', { skip }, () => {
  const source = openModelDir(fixturePath('llama-mlp-bias'));
  try {
    const { config, weights: src } = source;
    const first = withArenaAllocation(() => readFloatLayer(src, config, 0));
    const [first0] = denseLayers([first]);
    const offsets = LINEAR_SLOTS.map((s) => first0![s].w.byteOffset);
    releaseFloatLayer(first);
    const [second] = denseLayers([withArenaAllocation(() => readFloatLayer(src, config, 1))]);
    assert.deepEqual(LINEAR_SLOTS.map((s) => second![s].w.byteOffset).sort(), [...offsets].sort(), 'the same blocks, handed out again');
    const [fresh] = denseLayers([readFloatLayer(src, config, 1)]);
    for (const s of LINEAR_SLOTS) {
      assert.deepEqual(second![s].w, fresh![s].w, `${s} holds layer 1's weights`);
      assert.deepEqual(second![s].bias, fresh![s].bias, `${s} bias`);
    }
    assert.deepEqual(second!.inputNorm, fresh!.inputNorm);
  } finally {
    source.weights.close();
  }
});
