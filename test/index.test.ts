/**
 * The package's public entry points: quantizeModel is exported and agrees with the lower-level
 * layerQuantizer + loadModel path, and the published file list carries what the code loads at run
 * time (the CUDA kernel sources, the embedded model) and every `exports` / `bin` target.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import test from 'node:test';
import { kernelsDir } from '../src/backends/cuda/kernel-cache.js';
import * as intscale from '../src/index.js';
import { fixturePath, REPO_ROOT, repoPath } from './helpers/paths.js';

const recipe: intscale.QuantRecipe = {
  method: 'rtn',
  base: { ...intscale.DEFAULT_SPEC, groupSize: 32 },
  overrides: {},
};

function lastLogits(model: intscale.Model, tokens: number[]): Float32Array {
  return intscale.forwardLastLogits(model, tokens, intscale.createKvCache(model.config, tokens.length, model.backend));
}

test('quantizeModel (RTN) gives the same model as layerQuantizer + loadModel, and one report per linear', () => {
  const dir = fixturePath('llama');
  const tokens = [3, 17, 42, 5, 99, 7];
  const viaApi = intscale.quantizeModel(dir, recipe);
  const { transform, reports } = intscale.layerQuantizer(recipe);
  const viaLayers = intscale.loadModel(dir, { transformLayer: transform });
  assert.equal(viaApi.reports.length, viaApi.loaded.model.config.numLayers * 7);
  assert.deepEqual(viaApi.reports.map((r) => r.name), reports.map((r) => r.name));
  const a = lastLogits(viaApi.loaded.model, tokens);
  const b = lastLogits(viaLayers.model, tokens);
  assert.deepEqual(a, b);

  // quantized, so not the float model's logits but close to them, and closer with 8-bit weights
  const f = lastLogits(intscale.loadModel(dir).model, tokens);
  const w8 = lastLogits(intscale.quantizeModel(dir, { ...recipe, base: { ...recipe.base, wBits: 8 } }).loaded.model, tokens);
  const cosine = (x: Float32Array): number => {
    let dot = 0, nx = 0, nf = 0;
    for (let i = 0; i < f.length; i++) {
      dot += x[i]! * f[i]!;
      nx += x[i]! * x[i]!;
      nf += f[i]! * f[i]!;
    }
    return dot / Math.sqrt(nx * nf);
  };
  assert.ok(a.some((v, i) => v !== f[i]), 'quantized logits equal the float logits');
  const c4 = cosine(a), c8 = cosine(w8);
  console.log(`cosine to float logits: W4A8 ${c4.toFixed(4)}, W8A8 ${c8.toFixed(4)}`);
  assert.ok(c4 > 0.9 && c8 > c4, `cosine to float logits: W4A8 ${c4}, W8A8 ${c8}`);
});

test('the published package holds the kernel sources, the embedded model and every entry point', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  const dir = kernelsDir();
  const kernels = readdirSync(dir).filter((f) => /\.cuh?$/.test(f));
  assert.ok(kernels.length > 0);
  for (const k of kernels) assert.ok(files.has(relative(REPO_ROOT, join(dir, k))), `kernel ${k} not published`);
  for (const f of readdirSync(repoPath('models/tiny-wikitext'))) assert.ok(files.has(`models/tiny-wikitext/${f}`), `models/tiny-wikitext/${f} not published`);
  const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { exports: Record<string, Record<string, string>>; bin: Record<string, string> };
  const targets = [...Object.values(pkg.exports).flatMap((e) => Object.values(e)), ...Object.values(pkg.bin)];
  for (const t of targets) assert.ok(files.has(t.replace(/^\.\//, '')), `${t} not published`);
});
