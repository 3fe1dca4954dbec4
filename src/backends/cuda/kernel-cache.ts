/**
 * Kernels are compiled with NVRTC at first use and cached on disk, keyed by a hash of the
 * source, the compile options, the architecture and the NVRTC version. The cache folder is
 * $INTSCALE_CUDA_CACHE, else $XDG_CACHE_HOME/intscale/cuda, else ~/.cache/intscale/cuda.
 * INTSCALE_NVRTC_LINEINFO=1 compiles with -lineinfo (for Nsight Compute source views).
 * Loaded modules and their functions are kept per context in memory (CudaPrograms, program.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CudaContext } from './context.js';
import type { CudaFunction } from './program.js';
import { compileToCubin, nvrtcVersion } from './nvrtc.js';

/** The folder holding kernels/*.cu: next to this module when shipped, else in the source tree. */
export function kernelsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'kernels'), join(here, '..', '..', '..', '..', 'src', 'backends', 'cuda', 'kernels')];
  for (const c of candidates) if (existsSync(join(c, 'w4a8-decode.cu'))) return c;
  throw new Error(`CUDA kernel sources not found (looked in ${candidates.join(', ')})`);
}

/**
 * A kernel's source with its `#include "x"` lines inlined (NVRTC has no -I here), nested ones too, each file
 * once (as `#pragma once` would: a later include of it is dropped). `file` names a file in kernels/, or is an
 * absolute path to a kernel kept elsewhere (bench/kernels); an include comes from the including file's own
 * folder when there, else from kernels/.
 */
export function readKernelSource(file: string): string {
  const dir = kernelsDir();
  const seen = new Set<string>();
  const inline = (path: string): string =>
    readFileSync(path, 'utf8')
      .replace(/^#pragma once$/m, '')
      .replace(/^#include "([\w.-]+)"$/gm, (_m, inc: string) => {
        const at = existsSync(join(dirname(path), inc)) ? join(dirname(path), inc) : join(dir, inc);
        if (seen.has(at)) return '';
        seen.add(at);
        return inline(at);
      });
  const top = isAbsolute(file) ? file : join(dir, file);
  seen.add(top);
  return inline(top);
}

function cacheDir(): string {
  if (process.env.INTSCALE_CUDA_CACHE) return process.env.INTSCALE_CUDA_CACHE;
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(base, 'intscale', 'cuda');
}

/** Compile statistics, for reports. */
export const compileStats = { compiled: 0, fromDisk: 0, compileMs: 0 };

/** The cubin for (source, defines, arch), from the disk cache or freshly compiled; `file` as readKernelSource takes it. */
export function cubinFor(file: string, defines: Record<string, number | string>, arch: string): Uint8Array {
  const source = readKernelSource(file);
  const name = basename(file);
  const options = [
    `--gpu-architecture=${arch}`,
    '--std=c++17',
    '-default-device',
    // line tables for profilers (Nsight Compute source view); part of the cache key like every option
    ...(process.env.INTSCALE_NVRTC_LINEINFO === '1' ? ['-lineinfo'] : []),
    ...Object.entries(defines).map(([k, v]) => `-D${k}=${v}`),
  ];
  const key = createHash('sha256')
    .update(source)
    .update('\0')
    .update(options.join('\0'))
    .update('\0')
    .update(nvrtcVersion())
    .digest('hex')
    .slice(0, 32);
  const dir = cacheDir();
  const path = join(dir, `${name.replace(/\W/g, '_')}-${arch}-${key}.cubin`);
  if (existsSync(path)) {
    compileStats.fromDisk++;
    return new Uint8Array(readFileSync(path));
  }
  const t0 = performance.now();
  const { cubin } = compileToCubin(source, name, options);
  compileStats.compiled++;
  compileStats.compileMs += performance.now() - t0;
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, cubin);
    renameSync(tmp, path);
  } catch {
    // a read-only cache folder only costs a recompile next time
  }
  return cubin;
}

/** Loads (compiling if needed) `kernel` from `file` built with `defines`, on `ctx` (module and function kept by ctx.programs). */
export function getKernel(
  ctx: CudaContext,
  file: string,
  kernel: string,
  defines: Record<string, number | string> = {},
  dynamicShared = 0,
): CudaFunction {
  const mod = ctx.programs.module(`${file}|${JSON.stringify(defines)}`, () => cubinFor(file, defines, ctx.arch));
  return ctx.programs.function(mod, kernel, dynamicShared);
}
