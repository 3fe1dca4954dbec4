import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { threadId } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { CpuPool, defaultThreadCount } from '../../../src/backends/cpu/pool/index.js';
import { workerExecArgv } from '../../../src/backends/cpu/pool/pool.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KERNEL_POOL_SELF_TEST } from '../../../src/backends/cpu/pool/kernels.js';
import type { PoolSelfTestArgs } from '../../../src/backends/cpu/pool/self-test-kernel.js';

function selfTestArgs(rows: number, seed: number, extra: Partial<PoolSelfTestArgs> = {}): PoolSelfTestArgs {
  const input = new Float64Array(new SharedArrayBuffer(rows * 8));
  let s = seed;
  for (let r = 0; r < rows; r++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    input[r] = s / 2147483648 - 0.5;
  }
  return {
    input,
    out: new Float64Array(new SharedArrayBuffer(rows * 8)).fill(Number.NaN),
    who: new Int32Array(new SharedArrayBuffer(rows * 4)).fill(-1),
    sleepMs: 0,
    throwInWorker: false,
    throwAtRow: -1,
    ...extra,
  };
}

/** A node -e module script that starts a pool of `threads`, runs the self-test kernel on `rows` rows and prints 'done'. */
function poolScript(threads: number, rows: number): string {
  const poolUrl = new URL('../../../src/backends/cpu/pool/index.js', import.meta.url).href;
  return `
    import { CpuPool } from ${JSON.stringify(poolUrl)};
    const pool = new CpuPool({ threads: ${threads} });
    pool.waitUntilReady();
    const rows = ${rows}, sab = (b) => new SharedArrayBuffer(b);
    const args = { input: new Float64Array(sab(rows * 8)), out: new Float64Array(sab(rows * 8)),
      who: new Int32Array(sab(rows * 4)), sleepMs: 1, throwInWorker: false, throwAtRow: -1 };
    pool.run('pool.self-test', args, rows);
    console.log('done');`;
}

function assertAllRowsDone(args: PoolSelfTestArgs): void {
  for (let r = 0; r < args.input.length; r++) {
    assert.equal(args.out[r], 2 * args.input[r]! + 1, `row ${r}`);
    assert.ok(args.who[r]! >= 0, `row ${r} has no thread`);
  }
}

describe('CpuPool', () => {
  const pool = new CpuPool({ threads: 3 });
  pool.waitUntilReady();
  after(() => pool.close());

  it('runs every row exactly once, across several threads', () => {
    const args = selfTestArgs(997, 1, { sleepMs: 5 });
    pool.run(KERNEL_POOL_SELF_TEST, args, 997, { align: 4 });
    assertAllRowsDone(args);
    const threads = new Set(args.who);
    assert.ok(threads.size >= 2, `only threads ${[...threads]} ran rows`);
  });

  it('keeps chunks aligned to the block size', () => {
    const args = selfTestArgs(103, 2, { sleepMs: 2 });
    pool.run(KERNEL_POOL_SELF_TEST, args, 103, { align: 8, chunksPerThread: 3 });
    assertAllRowsDone(args);
    for (let r = 1; r < 103; r++) {
      if (args.who[r] !== args.who[r - 1]) assert.equal(r % 8, 0, `thread changes at row ${r}`);
    }
  });

  it('runs small jobs inline on the calling thread', () => {
    const args = selfTestArgs(50, 3);
    pool.run(KERNEL_POOL_SELF_TEST, args, 50, { workPerRow: 10, minWorkPerThread: 1000 });
    assertAllRowsDone(args);
    assert.deepEqual(new Set(args.who), new Set([threadId]));
  });

  it('rethrows a kernel error from a worker on the calling thread, and stays usable', () => {
    const bad = selfTestArgs(64, 4, { sleepMs: 20, throwInWorker: true });
    assert.throws(() => pool.run(KERNEL_POOL_SELF_TEST, bad, 64), /cpu pool worker \d+: self-test failure in worker/);
    const good = selfTestArgs(300, 5, { sleepMs: 1 });
    pool.run(KERNEL_POOL_SELF_TEST, good, 300);
    assertAllRowsDone(good);
  });

  it('rethrows a kernel error from the calling thread after the workers stop', () => {
    const args = selfTestArgs(64, 6, { throwAtRow: 0 });
    assert.throws(() => pool.run(KERNEL_POOL_SELF_TEST, args, 64), /self-test failure at row 0/);
    const good = selfTestArgs(64, 7);
    pool.run(KERNEL_POOL_SELF_TEST, good, 64);
    assertAllRowsDone(good);
  });

  it('rejects arrays that are not in shared memory, and unknown kernels', () => {
    const args = { ...selfTestArgs(64, 8), out: new Float64Array(64) };
    assert.throws(() => pool.run(KERNEL_POOL_SELF_TEST, args, 64), TypeError);
    assert.throws(() => pool.run('no-such-kernel', selfTestArgs(4, 9), 4), /unknown kernel id/);
  });

  it('with one thread runs everything inline', () => {
    const single = new CpuPool({ threads: 1 });
    const args = selfTestArgs(200, 10);
    single.run(KERNEL_POOL_SELF_TEST, args, 200);
    assertAllRowsDone(args);
    assert.deepEqual(new Set(args.who), new Set([threadId]));
    single.close();
  });

  it('does not keep the process alive', () => {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', poolScript(3, 32)], {
      timeout: 20_000,
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('.', import.meta.url)),
    });
    assert.equal(result.signal, null, 'child was killed by the timeout');
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'done');
  });
});

describe('workerExecArgv', () => {
  it('passes the process flags a worker takes and drops those it refuses (node -e, the tick profiler)', () => {
    assert.deepEqual(workerExecArgv(['--input-type=module', '--prof', '--logfile=x.log', '--no-logfile-per-isolate', '--max-old-space-size=4096', '--enable-source-maps']),
      ['--max-old-space-size=4096', '--enable-source-maps']);
  });

  it('lets a pool start and run under node --prof (the main thread profiled)', () => {
    const script = poolScript(2, 64);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'intscale-prof-'));
    try {
      const result = spawnSync(process.execPath, ['--prof', '--input-type=module', '-e', script], { timeout: 20_000, encoding: 'utf8', cwd: dir });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout.trim(), 'done');
      assert.ok(fs.readdirSync(dir).some((f) => f.endsWith('-v8.log')), 'the tick log was written');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('defaultThreadCount', () => {
  it('reads INTSCALE_THREADS, else the available cores', () => {
    assert.equal(defaultThreadCount({ INTSCALE_THREADS: '3' }), 3);
    assert.ok(defaultThreadCount({}) >= 1);
    assert.throws(() => defaultThreadCount({ INTSCALE_THREADS: '0' }), RangeError);
    assert.throws(() => defaultThreadCount({ INTSCALE_THREADS: 'many' }), RangeError);
  });
});
