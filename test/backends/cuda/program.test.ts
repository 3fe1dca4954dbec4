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

test('a launch with a struct argument takes the parameter layout from the driver once a function, and names what it lacks', () => {
  const asked: number[] = [];
  const launches: number[] = [];
  const slots = [{ offset: 48, size: 128 }, { offset: 176, size: 4 }];
  const api = (withInfo: boolean) => ({
    version: 13000,
    check: (call: string, code: number) => assert.equal(code, 0, call),
    fn: {
      cuLaunchKernel: () => (launches.push(1), 0),
      ...(withInfo ? {
        cuFuncGetParamInfo: (_f: bigint, i: number, offset: BigUint64Array, size: BigUint64Array) => {
          asked.push(i);
          offset[0] = BigInt(slots[i]!.offset);
          size[0] = BigInt(slots[i]!.size);
          return 0;
        },
      } : {}),
    },
  }) as unknown as DriverApi;
  const stream = { handle: 0n, observed: false } as unknown as CudaStream;
  const fn = { handle: 5n, name: 'tma_kernel' };
  const args = [{ struct: new Uint8Array(128) }, { i32: 1 }];
  const programs = new CudaPrograms(api(true), stream);
  programs.launch(fn, [1], [32], args);
  programs.launch(fn, [1], [32], args);
  assert.deepEqual(asked, [0, 1], 'asked once for the function');
  assert.equal(launches.length, 2);
  assert.throws(() => programs.launch(fn, [1], [32], [...args, { i32: 2 }]), /tma_kernel was launched with 2 arguments before, 3 now/);
  programs.dispose();
  const old = new CudaPrograms(api(false), stream);
  assert.throws(() => old.launch(fn, [1], [32], args), /tma_kernel takes a struct by value, which needs cuFuncGetParamInfo \(a CUDA 12.4 or newer driver\)/);
  assert.equal(launches.length, 2, 'nothing launched without the layout');
  old.dispose();
});
