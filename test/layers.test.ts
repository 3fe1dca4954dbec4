/**
 * The shape of src: modules import one way, down the layers
 *   errors/version → tensor → io → quant → model → backends → quantize → eval → serve → cli   (index.ts: the public API, on top)
 * io reads and writes formats; quant is pure (weights in, quantized layers out); model is the
 * forward pass written against model/backend.ts; backends implement it; quantize streams a model
 * through it (calibration, GPTQ/AWQ per layer, the checkpoint writer). No import circle either.
 * Read from the TypeScript sources, static and dynamic imports alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoPath } from './helpers/paths.js';

const LAYERS = ['', 'tensor', 'io', 'quant', 'model', 'backends', 'quantize', 'eval', 'serve', 'cli'];
const SRC = repoPath('src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The layer of a source file: its first folder under src ('' for errors.ts and version.ts), index.ts above all. */
function rank(file: string): number {
  const rel = path.relative(SRC, file);
  if (rel === 'index.ts') return LAYERS.length;
  const top = rel.includes(path.sep) ? rel.split(path.sep)[0]! : '';
  const r = LAYERS.indexOf(top);
  assert.ok(r >= 0, `${rel}: a folder the layer list does not know (${top})`);
  return r;
}

function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, imports(f).filter((t) => files.includes(t))]));

test('every import in src points down the layers (or within its own)', () => {
  const upward: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) if (rank(to) > rank(from)) upward.push(`${path.relative(SRC, from)} → ${path.relative(SRC, to)}`);
  }
  assert.deepEqual(upward, []);
  assert.ok(graph.size > 100 && [...graph.values()].some((t) => t.length > 0), 'the graph was read');
});

test('src has no import circle', () => {
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (f: string, trail: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      circles.push([...trail.slice(trail.indexOf(f)), f].map((x) => path.relative(SRC, x)).join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f)!) visit(t, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(circles, []);
});
