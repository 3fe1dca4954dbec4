/**
 * CPU f32 matmul bench: out[M, N] = x[M, K] · W[N, K]ᵀ for K = N ∈ {2048, 4096}, M ∈ {1, 8, 64},
 * for both kernels (WASM SIMD, plain JS), on 1 thread vs all threads of the pool (same run, same
 * buffers, all in the shared arena), plus the pool's dispatch round trip (a job of a few trivial
 * rows, posted to every worker).
 *
 *   npx tsc -p . && node dist/bench/cpu-matmul.js [--quick] [--json]
 *   INTSCALE_THREADS=4 node dist/bench/cpu-matmul.js     # another thread count
 */
import { matmulF32, type MatmulKernel } from '../src/backends/cpu/matmul.js';
import type { Row } from '../src/cli/table.js';
import { CpuPool, defaultThreadCount } from '../src/backends/cpu/pool/index.js';
import { KERNEL_POOL_SELF_TEST } from '../src/backends/cpu/pool/kernels.js';
import type { PoolSelfTestArgs } from '../src/backends/cpu/pool/self-test-kernel.js';
import { sharedFloat32, withArenaAllocation } from '../src/tensor/shared.js';

import { benchArgs } from './args.js';
import { machineLine, median, benchOutput } from './stats.js';

const { values } = benchArgs(import.meta.url, { options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
const quick = values.quick;
const SIZES = quick ? [2048] : [2048, 4096];
const TOKENS = [1, 8, 64];
/** Time budget per measured configuration; at least MIN_REPS repetitions run regardless. */
const BUDGET_MS = quick ? 300 : 1500;
const MIN_REPS = 3;
const MAX_REPS = 200;

function randomShared(length: number, seed: number): Float32Array {
  const a = withArenaAllocation(() => sharedFloat32(length));
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

/** Median ms of fn over repetitions that fit the budget (after one warm-up call). */
function timeIt(fn: () => void): { ms: number; reps: number } {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < MIN_REPS || (times.length < MAX_REPS && performance.now() - start < BUDGET_MS)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), reps: times.length };
}

function dispatchRoundTripUs(pool: CpuPool): number {
  const rows = 4 * pool.threads;
  const sab = (bytes: number) => new SharedArrayBuffer(bytes);
  const args: PoolSelfTestArgs = {
    input: new Float64Array(sab(rows * 8)),
    out: new Float64Array(sab(rows * 8)),
    who: new Int32Array(sab(rows * 4)),
    sleepMs: 0,
    throwInWorker: false,
    throwAtRow: -1,
  };
  const inline = new CpuPool({ threads: 1 });
  const calls = 20_000;
  const per = (p: CpuPool) => timeIt(() => {
    for (let i = 0; i < calls; i++) p.run(KERNEL_POOL_SELF_TEST, args, rows, { chunksPerThread: 1 });
  }).ms * 1000 / calls;
  const dispatched = per(pool);
  const baseline = per(inline);
  return dispatched - baseline;
}

function main(): void {
  const threads = defaultThreadCount();
  const out = benchOutput(values.json);
  out.say(`${machineLine(threads)} (other processes skew the multi-thread numbers)`);
  const pool = new CpuPool({ threads });
  pool.waitUntilReady();
  const single = new CpuPool({ threads: 1 });

  out.say(`dispatch round trip (post to ${pool.workerCount} worker(s), wake, run, wait), minus an inline call: ${dispatchRoundTripUs(pool).toFixed(1)} µs\n`);
  const rows: Row[] = [];
  const kernels: MatmulKernel[] = ['wasm', 'js'];
  for (const kernel of kernels) {
    for (const size of SIZES) {
      const k = size;
      const n = size;
      const w = randomShared(n * k, size);
      for (const m of TOKENS) {
        const x = randomShared(m * k, m);
        const y = randomShared(m * n, 0);
        const flop = 2 * m * n * k;
        const one = timeIt(() => matmulF32(x, m, k, w, n, y, undefined, { pool: single, kernel }));
        const all = timeIt(() => matmulF32(x, m, k, w, n, y, undefined, { pool, kernel }));
        const gf = (ms: number) => Number((flop / ms / 1e6).toFixed(2));
        rows.push({
          kernel, 'K=N': size, M: m, [`reps (1T / ${threads}T)`]: `${one.reps} / ${all.reps}`,
          '1 thread ms': Number(one.ms.toFixed(2)), '1 thread GFLOP/s': gf(one.ms),
          [`${threads} threads ms`]: Number(all.ms.toFixed(2)), [`${threads} threads GFLOP/s`]: gf(all.ms), 'speed-up': Number((one.ms / all.ms).toFixed(2)),
        });
      }
    }
  }
  out.table(rows);
  pool.close();
}

main();
