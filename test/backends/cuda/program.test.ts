/**
 * CudaPrograms' function lookup without a GPU (a stub driver): the dynamic shared memory a function may use is
 * set for any size (static and dynamic together pass 48 KiB only with the opt-in), once a function handle, and
 * only ever raised, since every key that names the same module and kernel shares the handle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CudaPrograms } from '../../../src/backends/cuda/program.js';
import type { DriverApi } from '../../../src/backends/cuda/driver.js';
import type { CudaStream } from '../../../src/backends/cuda/stream.js';

test('a function is allowed the largest dynamic shared memory any of its lookups asked for, below 48 KiB too', () => {
  const limits: number[] = [];
  const api = {
    version: 13000,
    check: (call: string, code: number) => assert.equal(code, 0, call),
    fn: {
      cuModuleGetFunction: (f: BigUint64Array) => ((f[0] = 77n), 0),
      cuFuncSetAttribute: (_h: bigint, _attr: number, value: number) => (limits.push(value), 0),
    },
  } as unknown as DriverApi;
  const programs = new CudaPrograms(api, { handle: 0n } as unknown as CudaStream);
  programs.function(1n, 'k');
  assert.deepEqual(limits, [], 'no dynamic shared memory: nothing set');
  programs.function(1n, 'k', 40000);
  programs.function(1n, 'k', 90000);
  programs.function(1n, 'k', 60000);
  programs.function(1n, 'k', 40000);
  assert.deepEqual(limits, [40000, 90000], '40000 (with static shared memory it may pass 48 KiB), then raised once; never lowered');
});
