/**
 * Every kernels/*.cu compiles with nvcc for sm_90a (each parameterized kernel in the variants the
 * backend uses, f32 and f16 output), and so does every bench/kernels/*.cu (against the backend's
 * headers). Needs only nvcc, no GPU; skips with the reason when nvcc is absent. And the W4A8 decode kernel at the
 * configs the chooser picks for a decode step keeps the blocks a SM its registers allow (ptxas -v), without spills, and
 * so do the W8A8 and W4A16 decode kernels at theirs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { kernelsDir, readKernelSource } from '../../../src/backends/cuda/kernel-cache.js';
import { benchKernelsDir } from '../../../bench/cuda-util.js';
import { chooseW4A8Config, type DecodeConfig } from '../../../src/backends/cuda/w4a8.js';
import { chooseW8A8Config } from '../../../src/backends/cuda/w8a8.js';
import { chooseW4A16Config } from '../../../src/backends/cuda/w4a16.js';

function nvccPath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** decode-chain.cu's defines as cuda-decode-chain.ts sets them (but WK, which a ring variant sets). */
const CHAIN = ['-DGROUP=128', '-DSCALE_INT=1', '-DIS_SHIFT=0', '-DMT=1', '-DNTW=1', '-DMINB=2', '-DPREW=2'];
const VARIANTS: Record<string, string[][]> = {
  'w4a8-decode.cu': [[], ['-DSCALE_INT=0'], ['-DIS_SHIFT=0'], ['-DMT=2', '-DNTW=2', '-DWK=4'], ['-DMT=2', '-DNTW=2', '-DSCALE_INT=0', '-DGROUP=256'], ['-DMT=4', '-DWK=8'], ['-DMT=8', '-DWK=8'], ['-DNTW=4', '-DWK=4'], ['-DOUT_F16=1', '-DMT=2'], ['-DACCUMULATE=1', '-DMT=2', '-DNTW=2'], ['-DACCUMULATE=1', '-DWK=16'], ['-DACCUMULATE=1', '-DMT=4', '-DWK=8', '-DSCALE_INT=0'], ['-DACCUMULATE=1', '-DNTW=2', '-DWK=4', '-DIS_SHIFT=0'], ['-DSTAGES=2', '-DMINB=3', '-DWK=16'], ['-DSTAGES=4', '-DMT=2', '-DNTW=2', '-DSCALE_INT=0', '-DGROUP=256'], ['-DSTAGES=3', '-DACCUMULATE=1', '-DWK=8', '-DMINB=5'], ['-DPREW=2', '-DACCUMULATE=1', '-DWK=16'], ['-DSTAGES=4', '-DPREW=4', '-DMINB=3', '-DWK=16']],
  'w4a8-wgmma-rs.cu': [[], ['-DSCALE_INT=0', '-DWGS=1', '-DMINB=2', '-DSTAGES=5'], ['-DIS_SHIFT=0', '-DGROUP=256', '-DSTAGES=3', '-DOUT_F16=1']],
  'w4a8-wgmma-tma.cu': [[], ['-DSCALE_INT=0', '-DSTAGES=6'], ['-DIS_SHIFT=0', '-DGROUP=256', '-DSTAGES=3'], ['-DOUT_F16=1'], ['-DSCALE_INT=0', '-DOUT_F16=1'], ['-DKS=3'], ['-DKS=2', '-DSCALE_INT=0', '-DOUT_F16=1'], ['-DBT=32'], ['-DBT=64', '-DKS=2', '-DIS_SHIFT=0'], ['-DBT=32', '-DKS=4', '-DSCALE_INT=0', '-DOUT_F16=1']],
  'w8a8-wgmma.cu': [[], ['-DSCALE_INT=0', '-DWGS=2', '-DSTAGES=4'], ['-DPIPE=1', '-DSTAGES=4', '-DOUT_F16=1']],
  'w8a8-decode.cu': [[], ['-DSCALE_INT=0', '-DMT=2', '-DNTW=2', '-DGROUP=256', '-DOUT_F16=1'], ['-DSTAGES=4', '-DMINB=4', '-DWK=8'], ['-DPREW=2', '-DWK=16']],
  'w4a16-decode.cu': [[], ['-DMT=2', '-DNTW=2', '-DWK=16', '-DGROUP=256'], ['-DOUT_F16=1']],
  'w4a16-dequant.cu': [[], ['-DGROUP=256']],
  'engine-ops.cu': [[], ['-DD_MAX=128'], ['-DMERGE_FOLD=1']],
  'w4a8-mma.cu': [[], ['-DSCALE_INT=0'], ['-DIS_SHIFT=0'], ['-DBM=64', '-DBN=64', '-DWM=2', '-DWN=2', '-DSTAGES=4'], ['-DSTAGES=4', '-DOUT_F16=1']],
  'sampling.cu': [[], ['-DCLUSTER=2'], ['-DCLUSTER=8']],
  // bench/kernels: the chain as cuda-decode-chain.ts compiles it, with and without the ring variant (one group of 16 consumer warps, two of 8, two with their own activations and tiles from a counter, quantizing each stage's rows from the last)
  'decode-chain.cu': [
    [...CHAIN, '-DWK=16'],
    [...CHAIN, '-DWK=16', '-DRING=12', '-DXS_BYTES=11008'],
    [...CHAIN, '-DWK=8', '-DRING=12', '-DGROUPS=2', '-DXSMEM=0'],
    [...CHAIN, '-DWK=8', '-DRING=11', '-DGROUPS=2', '-DXS_BYTES=11008', '-DDYN_TILES=1', '-DDEP=1'],
  ],
  // the persistent MLP as cuda-persistent-mlp.ts compiles it
  'persistent-mlp.cu': [[...CHAIN, '-DWK=16', '-DOUT_F16=0'], [...CHAIN, '-DWK=16', '-DOUT_F16=0', '-DSTAGED=1'], [...CHAIN, '-DWK=16', '-DOUT_F16=0', '-DPROLOGUE=0'], [...CHAIN, '-DWK=16', '-DOUT_F16=0', '-DCLUSTER_PRO=4']],
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

test('NVRTC sources: every backend kernel and a bench kernel (an absolute path) get their headers inlined, nested ones once (NVRTC has no include path)', () => {
  const bench = readKernelSource(join(benchKernelsDir(), 'bench-util.cu'));
  const backend = readdirSync(kernelsDir()).filter((f) => f.endsWith('.cu')).map((f) => readKernelSource(f));
  assert.ok(backend.length >= 10);
  for (const src of [bench, ...backend]) assert.doesNotMatch(src, /^#include "/m, 'every local include is inlined');
  for (const src of [bench, readKernelSource('act-quant.cu'), readKernelSource('w4a8-decode.cu')]) {
    assert.match(src, /void pdl_launch_dependents\(\)/, 'common.cuh is inlined');
  }
  assert.match(readKernelSource('w4a8-decode.cu'), /typedef int scale_t;/, 'group-scale.cuh (a hyphenated name) is inlined');
  // a bench kernel that includes a backend kernel: the nested includes inlined too, each file once
  const chain = readKernelSource(join(benchKernelsDir(), 'decode-chain.cu'));
  assert.doesNotMatch(chain, /^#include "/m);
  assert.equal(chain.match(/void pdl_launch_dependents\(\)/g)?.length, 1, 'common.cuh once');
  assert.match(chain, /w4a8_decode_chain/);
  assert.match(chain, /extern "C" __global__ void __launch_bounds__\(WK \* 32, MINB\)\nw4a8_decode\(/, 'w4a8-decode.cu inlined');
});

/** ptxas -v's registers and spill stores of each entry of `file` compiled with `defs`. */
function ptxasUsage(file: string, defs: string[]): Map<string, { registers: number; spills: number }> {
  const dir = kernelsDir();
  const out = mkdtempSync(join(tmpdir(), 'intscale-ptxas-'));
  try {
    const r = spawnSync(nvcc!, ['-cubin', '-gencode=arch=compute_90a,code=sm_90a', '-std=c++17', `-I${dir}`, '-Xptxas', '-v', ...defs, '-o', join(out, 'k.cubin'), join(dir, file)], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const usage = new Map<string, { registers: number; spills: number }>();
    let entry = '', spills = 0;
    for (const line of r.stderr.split('\n')) {
      const e = /Compiling entry function '(\w+)'/.exec(line);
      if (e) entry = e[1]!;
      const sp = /(\d+) bytes spill stores/.exec(line);
      if (sp) spills = Number(sp[1]);
      const u = /Used (\d+) registers/.exec(line);
      if (u) usage.set(entry, { registers: Number(u[1]), spills });
    }
    return usage;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Blocks of `threads` a Hopper SM's 64K registers hold at `registers` a thread (allocated 256 a warp at a time). */
const blocksByRegisters = (registers: number, threads: number): number => Math.floor(65536 / (Math.ceil((registers * 32) / 256) * 256) / (threads / 32));

test('the W4A8 decode kernel (and its grouped-expert entry) at the chooser\'s decode-step configs keeps its blocks a SM (registers from ptxas -v), without spills', { skip: nvcc ? false : 'nvcc not found on PATH' }, () => {
  // [rows, K, N] of a 7B decode step (q/k/v, o, gate/up, down) at 1, 16 and 32 rows; the blocks a SM each config had
  // when its speed was measured, its MINB where it names one (MT 4: two of 8 warps, lost to 130-132 registers once,
  // docs/cuda-notes.md 26th session; four of 4 warps on gate/up, 38th session)
  const want = (c: DecodeConfig): number => c.MINB ?? (c.MT === 2 && c.WK === 16 ? 1 : 2);
  const seen = new Set<string>();
  for (const M of [1, 16, 32]) {
    for (const [K, N] of [[4096, 12288], [4096, 4096], [4096, 22016], [11008, 4096]] as const) {
      const c = chooseW4A8Config(M, N, K) as DecodeConfig;
      assert.equal(c.kind, 'decode');
      const key = `${c.MT}/${c.NTW}/${c.WK}/${c.MINB ?? 1}/${c.PREW ?? 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      for (const scale of [['-DSCALE_INT=1', '-DIS_SHIFT=0'], ['-DSCALE_INT=1', '-DIS_SHIFT=1'], ['-DSCALE_INT=0']]) {
        for (const acc of ['-DACCUMULATE=0', '-DACCUMULATE=1']) {
          const defs = [`-DMT=${c.MT}`, `-DNTW=${c.NTW}`, `-DWK=${c.WK}`, ...(c.MINB ? [`-DMINB=${c.MINB}`] : []), ...(c.PREW ? [`-DPREW=${c.PREW}`] : []), ...scale, acc];
          const usage = ptxasUsage('w4a8-decode.cu', defs);
          // the grouped-expert entry (MoE, not accumulating) at the same config, MINB in its launch bounds too
          for (const entry of acc === '-DACCUMULATE=0' ? ['w4a8_decode', 'w4a8_decode_experts'] : ['w4a8_decode']) {
            const u = usage.get(entry);
            assert.ok(u, `no ${entry} entry for ${defs.join(' ')}`);
            const blocks = blocksByRegisters(u.registers, c.WK * 32);
            assert.ok(blocks >= want(c), `${entry} ${defs.join(' ')}: ${u.registers} registers give ${blocks} blocks a SM, want ${want(c)}`);
            assert.equal(u.spills, 0, `${entry} ${defs.join(' ')}: ${u.spills} bytes spilled`);
          }
        }
      }
    }
  }
  assert.deepEqual([...seen].sort(), ['1/1/16/1/2', '2/2/16/1/1', '2/2/8/1/1', '4/1/4/4/1', '4/1/8/2/1'], 'the configs a decode step takes');
});

test('the W8A8 and W4A16 decode kernels at their choosers\' configs keep their blocks a SM, without spills (W8A8 up to 32 rows, W4A16 up to 64)', { skip: nvcc ? false : 'nvcc not found on PATH' }, () => {
  // the blocks a SM each had when Table 7 was measured (12-06-e and 12-07); W4A16 at 33-64 rows runs the 32-row
  // config twice (MT 8 spilled: 255 registers, 416 B; docs/cuda-notes.md, 27th session)
  const cases: [file: string, entry: string, c: { MT: number; NTW: number; WK: number }, blocks: number, extra: string[][]][] = [];
  for (const M of [1, 16, 32, 48, 64]) {
    const w8 = chooseW8A8Config(M, 32000, 4096);
    if (M <= 32) assert.equal(w8.kind, 'decode');
    if (w8.kind === 'decode' && M <= 32) cases.push(['w8a8-decode.cu', 'w8a8_decode', w8, { 1: 3, 2: 2, 4: 1 }[w8.MT]!, [['-DSCALE_INT=1'], ['-DSCALE_INT=0']]]);
    for (const N of [4096, 22016]) {
      const w4 = chooseW4A16Config(M, N, 4096);
      cases.push(['w4a16-decode.cu', 'w4a16_decode', w4, w4.MT === 4 ? 1 : w4.MT === 2 ? 2 : 3, [[]]]);
    }
  }
  const seen = new Set<string>();
  for (const [file, entry, c, want, extras] of cases) {
    const key = `${file} ${c.MT}/${c.NTW}/${c.WK}`;
    if (seen.has(key)) continue;
    seen.add(key);
    for (const extra of extras) {
      const defs = [`-DMT=${c.MT}`, `-DNTW=${c.NTW}`, `-DWK=${c.WK}`, ...extra];
      const u = ptxasUsage(file, defs).get(entry);
      assert.ok(u, `no ${entry} entry for ${defs.join(' ')}`);
      const blocks = blocksByRegisters(u.registers, c.WK * 32);
      assert.ok(blocks >= want, `${file} ${defs.join(' ')}: ${u.registers} registers give ${blocks} blocks a SM, want ${want}`);
      assert.equal(u.spills, 0, `${file} ${defs.join(' ')}: ${u.spills} bytes spilled`);
    }
  }
  assert.equal(seen.size, 7, [...seen].join(', '));
});
