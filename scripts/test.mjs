#!/usr/bin/env node
// `npm test` after the build: runs every compiled *.test.js under dist/test with node's test runner
// (helper modules beside them are not tests and are not run as such). Arguments are passed on
// (e.g. `node scripts/test.mjs --test-name-pattern=bias`).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every *.test.js below dir, sorted. */
function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : []))
    .sort();
}

const files = testFiles('dist/test');
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...process.argv.slice(2), ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
