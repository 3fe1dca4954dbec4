/**
 * The README's library example runs as written: its first TypeScript block importing 'intscale' is
 * type-checked with --strict, transpiled and run from the repository root (the package resolves
 * its own name through package.json "exports").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { repoPath } from './helpers/paths.js';
import { tempDir } from './io/temp-dir.js';

function libraryExample(): string {
  const readme = fs.readFileSync(repoPath('README.md'), 'utf8');
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("from 'intscale';"));
  assert.ok(block, 'the README has a library example');
  return block;
}

test('the README library example type-checks (--strict) and runs from the repository root', () => {
  const source = libraryExample();
  const dir = tempDir();
  const file = path.join(dir, 'example.mts');
  fs.writeFileSync(file, source);
  const program = ts.createProgram([file], {
    strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022, types: ['node'], typeRoots: [repoPath('node_modules/@types')], skipLibCheck: true,
    paths: { intscale: [repoPath('dist/src/index.d.ts')] }, baseUrl: repoPath('.'),
  });
  const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  assert.deepEqual(problems, []);

  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', js], { cwd: repoPath('.'), encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const [ppl] = r.stdout.trim().split('\n');
  assert.ok(Number(ppl) > 1 && Number(ppl) < 1000, `perplexity ${ppl}`);
});
