/**
 * Calibration windows are deterministic for a seed and differ across seeds; the layer-by-layer
 * stream with an identity method reproduces the float model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../src/errors.js';
import { forwardHidden } from '../../src/model/forward.js';
import { createKvCache } from '../../src/model/kv-cache.js';
import { loadModel } from '../../src/backends/load.js';
import { calibrationWindows, quantizeCalibrated, type FloatLayerWeights } from '../../src/quantize/calibration.js';
import type { LinearObserver } from '../../src/model/forward.js';
import type { LayerWeights } from '../../src/model/weights.js';
import type { FloatLinear } from '../../src/quant/types.js';
import { quantizeLinear } from '../../src/quant/quantize-linear.js';
import { DEFAULT_SPEC } from '../../src/quantize/recipe.js';
import { fixturePath } from '../helpers/paths.js';
import { readReference } from '../helpers/reference.js';

const tokens = Array.from({ length: 5000 }, (_, i) => (i * 7919) % 2048);

test('calibration windows: same seed → same windows; another seed → others; all inside the text', () => {
  const a = calibrationWindows(tokens, 16, 64, 42);
  const b = calibrationWindows(tokens, 16, 64, 42);
  const c = calibrationWindows(tokens, 16, 64, 43);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(a.length, 16);
  for (const w of a) {
    assert.equal(w.length, 64);
    const start = tokens.indexOf(w[0]!); // tokens are distinct within 2048 steps
    assert.deepEqual(Array.from(w), tokens.slice(start, start + 64));
  }
  // a text exactly one window long gives that window
  assert.deepEqual(Array.from(calibrationWindows(tokens.slice(0, 64), 2, 64, 1)[1]!), tokens.slice(0, 64));
});

test('calibration windows: too short a text or bad counts are InputErrors naming the file', () => {
  assert.throws(() => calibrationWindows(tokens.slice(0, 10), 4, 64, 0, 'tiny.txt'), (e: unknown) => e instanceof InputError && /tiny\.txt/.test(e.message));
  assert.throws(() => calibrationWindows(tokens, 0, 64, 0), InputError);
  assert.throws(() => calibrationWindows(tokens, 4, 0, 0), InputError);
});

test('the calibration stream with an identity method gives the float model, and observes every linear input', () => {
  const dir = fixturePath('llama');
  const windows = calibrationWindows(tokens, 3, 16, 7);
  const seen: string[] = [];
  const streamed = quantizeCalibrated(dir, windows, (calib) => {
    calib.observe(calib.layer, (input, x, m) => {
      assert.equal(m, 16);
      assert.equal(x.length >= m * (input === 'down' ? calib.config.intermediateSize : calib.config.hiddenSize), true);
      seen.push(`${calib.index}:${input}`);
    });
    return calib.layer;
  });
  assert.deepEqual(seen.slice(0, 4), ['0:qkv', '0:o', '0:gateUp', '0:down']);
  assert.equal(seen.length, 2 * 3 * 4);
  const ref = loadModel(dir);
  const ids = readReference(dir).inputIds;
  const a = forwardHidden(ref.model, ids, createKvCache(ref.model.config, ids.length, ref.model.backend));
  const b = forwardHidden(streamed.model, ids, createKvCache(streamed.model.config, ids.length, streamed.model.backend));
  // equal up to float32 summation order (the streamed model's linears are outside the WASM arena)
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  assert.ok(diff < 1e-5 * scale, `max |Δ| ${diff} of ${scale}`);
});

test('observing with stopAfter sees the same inputs, bit for bit, up to that one and none after; the stream goes on unchanged', () => {
  const dir = fixturePath('llama');
  const windows = calibrationWindows(tokens, 2, 16, 11);
  const order = ['qkv', 'o', 'gateUp', 'down'] as const;
  const streamed = quantizeCalibrated(dir, windows, (calib) => {
    const whole = new Map<string, Float32Array[]>();
    calib.observe(calib.layer, (input, x, m) => {
      const width = m * (input === 'down' ? calib.config.intermediateSize : calib.config.hiddenSize);
      whole.set(input, [...(whole.get(input) ?? []), x.slice(0, width)]);
    });
    for (const [i, stopAfter] of order.entries()) {
      const seen: string[] = [];
      calib.observe(calib.layer, (input, x, m) => {
        seen.push(input);
        const width = m * (input === 'down' ? calib.config.intermediateSize : calib.config.hiddenSize);
        const sample = seen.filter((s) => s === input).length - 1;
        assert.deepEqual(x.slice(0, width), whole.get(input)![sample], `layer ${calib.index} ${input} (stop after ${stopAfter})`);
      }, stopAfter);
      // every window observes the inputs up to stopAfter, in order, and nothing after
      assert.deepEqual(seen, windows.flatMap(() => order.slice(0, i + 1)));
    }
    return calib.layer;
  });
  const plain = quantizeCalibrated(dir, windows, (calib) => calib.layer);
  assert.deepEqual(streamed.model.layers.length, plain.model.layers.length);
  const ids = readReference(dir).inputIds;
  const a = forwardHidden(plain.model, ids, createKvCache(plain.model.config, ids.length, plain.model.backend));
  const b = forwardHidden(streamed.model, ids, createKvCache(streamed.model.config, ids.length, streamed.model.backend));
  assert.deepEqual(b, a);
});

test('walking a layer input by input (its linears replaced between steps) observes what re-observing from the start does, and leaves the same hidden states', () => {
  const dir = fixturePath('llama');
  const windows = calibrationWindows(tokens, 3, 16, 5);
  const order = ['qkv', 'o', 'gateUp', 'down'] as const;
  const replacedUpTo = (layer: FloatLayerWeights, step: number): LayerWeights => {
    const q = (w: FloatLinear) => quantizeLinear(w, { ...DEFAULT_SPEC, groupSize: 32 });
    const l = layer as FloatLayerWeights & { q: FloatLinear; k: FloatLinear; v: FloatLinear; o: FloatLinear; gate: FloatLinear; up: FloatLinear; down: FloatLinear };
    return {
      ...l,
      ...(step >= 1 ? { q: q(l.q), k: q(l.k), v: q(l.v) } : {}),
      ...(step >= 2 ? { o: q(l.o) } : {}),
      ...(step >= 3 ? { gate: q(l.gate), up: q(l.up) } : {}),
      ...(step >= 4 ? { down: q(l.down) } : {}),
    } as LayerWeights;
  };
  const run = (walk: boolean) => {
    const seen: Float32Array[] = [];
    const result = quantizeCalibrated(dir, windows, (calib) => {
      order.forEach((input, step) => {
        const layer = replacedUpTo(calib.layer, step);
        const observer: LinearObserver = (at, x, m) => {
          if (at === input) seen.push(x.slice(0, m * (at === 'down' ? calib.config.intermediateSize : calib.config.hiddenSize)));
        };
        if (walk) calib.walk(layer, observer, input);
        else calib.observe(layer, observer, input);
      });
      const final = replacedUpTo(calib.layer, 4);
      if (walk) calib.walk(final);
      return final;
    });
    return { seen, result };
  };
  const [walked, observed] = [run(true), run(false)];
  assert.equal(walked.seen.length, 2 * 4 * 3);
  assert.deepEqual(walked.seen, observed.seen);
  const ids = readReference(dir).inputIds;
  const hidden = (m: typeof walked.result) => forwardHidden(m.model, ids, createKvCache(m.model.config, ids.length, m.model.backend));
  assert.deepEqual(hidden(walked.result), hidden(observed.result));
  // a walk left part-way is an error naming the layer
  assert.throws(() => quantizeCalibrated(dir, windows, (calib) => {
    calib.walk(calib.layer, undefined, 'o');
    return calib.layer;
  }), /model\.layers\.0\..*part-way/);
  // and observing once the walk has begun is refused
  assert.throws(() => quantizeCalibrated(dir, windows, (calib) => {
    calib.walk(calib.layer, undefined, 'qkv');
    calib.observe(calib.layer, () => {});
    return calib.layer;
  }), /observe after walk/);
});
