/**
 * Every kernels/*.cu compiles with nvcc for sm_90a (each parameterized kernel in the variants the
 * backend uses, f32 and f16 output), and so does every bench/kernels/*.cu (against the backend's
 * headers). Needs only nvcc, no GPU; skips with the reason when nvcc is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { kernelsDir, readKernelSource } from '../../../src/backends/cuda/kernel-cache.js';
import { benchKernelsDir } from '../../../bench/cuda-util.js';

function nvccPath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const VARIANTS: Record<string, string[][]> = {
  'w4a8-decode.cu': [[], ['-DSCALE_INT=0'], ['-DIS_SHIFT=0'], ['-DMT=2', '-DNTW=2', '-DWK=4'], ['-DMT=2', '-DNTW=2', '-DSCALE_INT=0', '-DGROUP=256'], ['-DMT=4', '-DWK=8'], ['-DMT=8', '-DWK=8'], ['-DNTW=4', '-DWK=4'], ['-DOUT_F16=1', '-DMT=2'], ['-DACCUMULATE=1', '-DMT=2', '-DNTW=2'], ['-DACCUMULATE=1', '-DWK=16'], ['-DACCUMULATE=1', '-DMT=4', '-DWK=8', '-DSCALE_INT=0'], ['-DACCUMULATE=1', '-DNTW=2', '-DWK=4', '-DIS_SHIFT=0'], ['-DSTAGES=2', '-DMINB=3', '-DWK=16'], ['-DSTAGES=4', '-DMT=2', '-DNTW=2', '-DSCALE_INT=0', '-DGROUP=256'], ['-DSTAGES=3', '-DACCUMULATE=1', '-DWK=8', '-DMINB=5']],
  'w4a8-wgmma-rs.cu': [[], ['-DSCALE_INT=0', '-DWGS=1', '-DMINB=2', '-DSTAGES=5'], ['-DIS_SHIFT=0', '-DGROUP=256', '-DSTAGES=3', '-DOUT_F16=1']],
  'w4a8-wgmma-tma.cu': [[], ['-DSCALE_INT=0', '-DSTAGES=6'], ['-DIS_SHIFT=0', '-DGROUP=256', '-DSTAGES=3'], ['-DOUT_F16=1'], ['-DSCALE_INT=0', '-DOUT_F16=1'], ['-DKS=3'], ['-DKS=2', '-DSCALE_INT=0', '-DOUT_F16=1']],
  'w8a8-wgmma.cu': [[], ['-DSCALE_INT=0', '-DWGS=2', '-DSTAGES=4'], ['-DPIPE=1', '-DSTAGES=4', '-DOUT_F16=1']],
  'w8a8-decode.cu': [[], ['-DSCALE_INT=0', '-DMT=2', '-DNTW=2', '-DGROUP=256', '-DOUT_F16=1'], ['-DSTAGES=4', '-DMINB=4', '-DWK=8']],
  'w4a16-decode.cu': [[], ['-DMT=2', '-DNTW=2', '-DWK=16', '-DGROUP=256'], ['-DOUT_F16=1']],
  'w4a16-dequant.cu': [[], ['-DGROUP=256']],
  'engine-ops.cu': [[], ['-DD_MAX=128']],
  'w4a8-mma.cu': [[], ['-DSCALE_INT=0'], ['-DIS_SHIFT=0'], ['-DBM=64', '-DBN=64', '-DWM=2', '-DWN=2', '-DSTAGES=4'], ['-DSTAGES=4', '-DOUT_F16=1']],
};

const nvcc = nvccPath();

test('every CUDA kernel compiles with nvcc for sm_90a', { skip: nvcc ? false : 'nvcc not found on PATH' }, () => {
  const dir = kernelsDir();
  const out = mkdtempSync(join(tmpdir(), 'intscale-nvcc-'));
  try {
    const files = readdirSync(dir).filter((f) => f.endsWith('.cu')).map((f) => join(dir, f));
    assert.ok(files.length >= 3, `expected kernels in ${dir}`);
    const bench = readdirSync(benchKernelsDir()).filter((f) => f.endsWith('.cu')).map((f) => join(benchKernelsDir(), f));
    assert.ok(bench.length >= 1, 'expected bench kernels');
    for (const path of [...files, ...bench]) {
      const f = basename(path);
      for (const defs of VARIANTS[f] ?? [[]]) {
        try {
          execFileSync(nvcc!, ['-cubin', '-gencode=arch=compute_90a,code=sm_90a', '-std=c++17', `-I${dir}`, ...defs, '-o', join(out, 'k.cubin'), path], {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
          });
        } catch (e) {
          const err = e as { stderr?: string };
          assert.fail(`nvcc failed on ${f} ${defs.join(' ')}:\n${err.stderr ?? String(e)}`);
        }
      }
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('NVRTC sources: every backend kernel and a bench kernel (an absolute path) get their headers inlined (NVRTC has no include path)', () => {
  const bench = readKernelSource(join(benchKernelsDir(), 'bench-util.cu'));
  const backend = readdirSync(kernelsDir()).filter((f) => f.endsWith('.cu')).map((f) => readKernelSource(f));
  assert.ok(backend.length >= 10);
  for (const src of [bench, ...backend]) assert.doesNotMatch(src, /^#include "/m, 'every local include is inlined');
  for (const src of [bench, readKernelSource('act-quant.cu'), readKernelSource('w4a8-decode.cu')]) {
    assert.match(src, /void pdl_launch_dependents\(\)/, 'common.cuh is inlined');
  }
  assert.match(readKernelSource('w4a8-decode.cu'), /typedef int scale_t;/, 'group-scale.cuh (a hyphenated name) is inlined');
});
