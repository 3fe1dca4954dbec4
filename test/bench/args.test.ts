/**
 * The benches' command line (bench/args.ts): every script's --help is its header comment as written
 * in its source (the compiled script keeps it), a mistyped or incomplete option stops the script with
 * one line naming it (exit 1) instead of running on defaults, and `intscale bench NAME --help` reaches
 * the script.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { headerComment, nonNegativeInt, positiveInt, positiveIntTuple, positiveInts, positiveNumber, shapeList } from '../../bench/args.js';
import { repoPath } from '../helpers/paths.js';

const run = (...args: string[]) => spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
const benchScripts = fs.readdirSync(repoPath('bench')).filter((f) => f.endsWith('.ts') && fs.readFileSync(repoPath(`bench/${f}`), 'utf8').includes('benchArgs(import.meta.url'));

test('every bench script parses its options through benchArgs, and its compiled form keeps the header --help prints', () => {
  assert.ok(benchScripts.length >= 20, `${benchScripts.length} scripts`);
  for (const f of fs.readdirSync(repoPath('bench')).filter((f) => f.endsWith('.ts'))) {
    const source = fs.readFileSync(repoPath(`bench/${f}`), 'utf8');
    assert.ok(!/process\.argv\.(includes|indexOf)|from 'node:util'/.test(source) || f === 'args.ts', `${f} reads the command line itself`);
  }
  for (const f of benchScripts) {
    const header = headerComment(fs.readFileSync(repoPath(`bench/${f}`), 'utf8'));
    assert.ok(header.length > 80, `${f}: a header comment with its usage`);
    const compiled = repoPath(`dist/bench/${path.basename(f, '.ts')}.js`);
    assert.equal(headerComment(fs.readFileSync(compiled, 'utf8')), header, `${f}: the compiled script's first comment is its header`);
  }
});

test('headerComment takes the first block comment without its margins', () => {
  assert.equal(headerComment('/**\n * One line.\n *   indented usage\n */\nconst x = 1; /** later */'), 'One line.\n  indented usage');
  assert.equal(headerComment('const x = 1;'), '');
});

test('the shared value parsers: positive integers, lists of them, fixed-length tuples, KxN shapes; anything else names the flag', () => {
  assert.deepEqual(positiveInts('ms', '1,16,128'), [1, 16, 128]);
  assert.throws(() => positiveInts('batches', '1,0,8'), /--batches takes positive integers separated by commas; got '1,0,8'/);
  assert.throws(() => positiveInts('ms', '1,,2'), /--ms/);
  assert.equal(positiveInt('rounds', '3'), 3);
  assert.throws(() => positiveInt('rounds', '1,2'), /--rounds takes a positive integer; got '1,2'/);
  assert.throws(() => positiveInt('back-to-back', '2.5'), /--back-to-back/);
  assert.deepEqual(shapeList('shapes', '4096x22016,11008x4096'), [[4096, 22016], [11008, 4096]]);
  assert.throws(() => shapeList('shapes', '4096x'), /--shapes takes KxN shapes separated by commas \(4096x4096\); got '4096x'/);
  assert.throws(() => shapeList('shapes', '4096x4096x2'), /--shapes/);
  assert.deepEqual(positiveIntTuple('layer', '2048,512', ['n', 'k']), [2048, 512]);
  assert.throws(() => positiveIntTuple('layer', '2048', ['n', 'k']), /--layer takes 2 positive integers n,k; got '2048'/);
  assert.throws(() => positiveIntTuple('hessian', '4096,-1', ['k', 'tokens']), /--hessian takes 2 positive integers k,tokens/);
  assert.equal(nonNegativeInt('seed', '0'), 0);
  assert.equal(nonNegativeInt('warmup', '200'), 200);
  assert.throws(() => nonNegativeInt('layer', '-1'), /--layer takes an integer of 0 or more; got '-1'/);
  assert.throws(() => nonNegativeInt('seed', 'x'), /--seed/);
  assert.equal(positiveNumber('seconds', '2.5'), 2.5);
  assert.throws(() => positiveNumber('seconds', '0'), /--seconds takes a number above 0; got '0'/);
  assert.throws(() => positiveNumber('q-scale', ''), /--q-scale/);
  assert.throws(() => positiveNumber('seconds', 'Infinity'), /--seconds/);
});

test('a bench script: --help prints its usage (exit 0); an unknown option or a missing value exits 1 naming it', () => {
  const script = repoPath('dist/bench/cpu-matmul.js');
  const help = run(script, '--help');
  assert.equal(help.status, 0, help.stderr);
  assert.equal(help.stdout.trim(), headerComment(fs.readFileSync(script, 'utf8')));
  assert.match(help.stdout, /--quick/);
  const typo = run(script, '--quik');
  assert.equal(typo.status, 1);
  assert.match(typo.stderr, /^cpu-matmul\.js: Unknown option '--quik'/);
  assert.match(typo.stderr, /--help lists the options/);
  assert.equal(typo.stdout, '', 'nothing ran');
  const missing = run(repoPath('dist/bench/cpu-e2e.js'), '--model');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--model.*argument missing/);
});

test('a bench script given a bad value prints one line naming the option (no stack) and exits 1 before running', () => {
  const bad = run(repoPath('dist/bench/cpu-e2e.js'), '--reps', '0');
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, "cpu-e2e.js: --reps takes a positive integer; got '0'\n(cpu-e2e.js --help lists the options)\n");
  assert.equal(bad.stdout, '', 'nothing ran');
});

test('a GPU bench checks its values before it looks for a GPU: cuda-attention\'s split count past the merge, kv heads that do not divide the heads; cuda-engine-step\'s pick; cuda-decode-chain\'s prew, ring variants and --dependent; cuda-persistent-mlp\'s rows and variants; cuda-sweep\'s configs', () => {
  const notJson = run(repoPath('dist/bench/cuda-sweep.js'), '--configs', '[{kind:1}]');
  assert.equal(notJson.status, 1);
  assert.match(notJson.stderr, /^cuda-sweep\.js: --configs takes a JSON array of W4A8 configs: /);
  const noKind = run(repoPath('dist/bench/cuda-sweep.js'), '--configs', '[{"STAGES":4}]');
  assert.equal(noKind.status, 1);
  assert.match(noKind.stderr, /^cuda-sweep\.js: --configs takes a non-empty JSON array of W4A8 configs, each with a kind \(decode, mma, wgmma-rs, wgmma-tma\); got \[\{"STAGES":4\}\]\n/);
  const withDecode = run(repoPath('dist/bench/cuda-sweep.js'), '--configs', '[{"kind":"wgmma-tma","STAGES":4}]', '--decode', 'default', '--ms', '1');
  assert.equal(withDecode.status, 1);
  assert.match(withDecode.stderr, /^cuda-sweep\.js: --configs times W4A8 configs against the chooser's: not with --decode or --w8\n/);
  const splits = run(repoPath('dist/bench/cuda-attention.js'), '--splits', '4,65');
  assert.equal(splits.status, 1);
  assert.equal(splits.stderr, 'cuda-attention.js: --splits: the merge takes at most 64\n(cuda-attention.js --help lists the options)\n');
  const heads = run(repoPath('dist/bench/cuda-attention.js'), '--kv-heads', '5');
  assert.equal(heads.status, 1);
  assert.match(heads.stderr, /^cuda-attention\.js: --kv-heads: 5 does not divide the 32 query heads\n/);
  const pick = run(repoPath('dist/bench/cuda-engine-step.js'), '--pick', 'greedy,top-k');
  assert.equal(pick.status, 1);
  assert.equal(pick.stderr, "cuda-engine-step.js: --pick takes greedy, sample or both (comma-separated); got 'top-k'\n(cuda-engine-step.js --help lists the options)\n");
  const prew = run(repoPath('dist/bench/cuda-decode-chain.js'), '--prew', '3');
  assert.equal(prew.status, 1);
  assert.equal(prew.stderr, "cuda-decode-chain.js: --prew takes 1 or 2 (the register pipeline's two buffers), got 3\n(cuda-decode-chain.js --help lists the options)\n");
  const ring = run(repoPath('dist/bench/cuda-decode-chain.js'), '--ring', 'ring2,ring9');
  assert.equal(ring.status, 1);
  assert.match(ring.stderr, /^cuda-decode-chain\.js: --ring: no variant 'ring9' \(ring, ring-nobar, .* or all\)\n/);
  const dependent = run(repoPath('dist/bench/cuda-decode-chain.js'), '--dependent', '--ring', 'ring2s,ring2-nobar');
  assert.equal(dependent.status, 1);
  assert.match(dependent.stderr, /^cuda-decode-chain\.js: --dependent runs the rings that keep their barriers and their activations in shared memory \(ring, ring2s, ring2sd\), not ring2-nobar\n/);
  const rows = run(repoPath('dist/bench/cuda-persistent-mlp.js'), '--ms', '1,9');
  assert.equal(rows.status, 1);
  assert.equal(rows.stderr, 'cuda-persistent-mlp.js: --ms: the persistent MLP runs the one-token-half decode kernel, 1..8 rows\n(cuda-persistent-mlp.js --help lists the options)\n');
  const variant = run(repoPath('dist/bench/cuda-persistent-mlp.js'), '--variants', 'persistent,persistent-cluster8');
  assert.equal(variant.status, 1);
  assert.match(variant.stderr, /^cuda-persistent-mlp\.js: --variants: no variant 'persistent-cluster8' \(persistent, persistent-staged, .*persistent-noprologue\)\n/);
});

test('intscale bench: NAME --help is the script\'s usage; --help alone is the command\'s; no name is an error', () => {
  const cli = repoPath('dist/src/cli/main.js');
  const script = run(cli, 'bench', 'cpu-int-linear', '--help');
  assert.equal(script.status, 0, script.stderr);
  assert.match(script.stdout, /^CPU quantized linear bench/);
  const own = run(cli, 'bench', '--help');
  assert.equal(own.status, 0, own.stderr);
  assert.match(own.stdout, /Usage: intscale bench/);
  assert.match(own.stdout.replace(/\s+/g, ' '), /intscale bench NAME --help/, 'the help of the command, however it wraps');
  const none = run(cli, 'bench');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /Usage: intscale bench/);
});
