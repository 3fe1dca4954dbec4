/**
 * Finds the CUDA shared libraries (driver, NVRTC, cuBLAS, cuSOLVER) and loads them through koffi.
 *
 * Search order for the toolkit libraries: $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64,
 * /usr/local/cuda-*\/lib64 (newest first), then the bare sonames (the dynamic loader's own path).
 * The driver (libcuda.so.1) comes with the GPU driver, so it is looked up by soname first.
 * Every failure becomes a CudaUnavailableError that names what was tried.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';

/** No usable CUDA driver, GPU or library: the CUDA backend cannot run here. */
export class CudaUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CudaUnavailableError';
  }
}

export type CudaLibrary = 'cuda' | 'nvrtc' | 'cublas' | 'cusolver';

const SONAMES: Record<CudaLibrary, readonly string[]> = {
  cuda: ['libcuda.so.1', 'libcuda.so'],
  nvrtc: ['libnvrtc.so', 'libnvrtc.so.13', 'libnvrtc.so.12'],
  cublas: ['libcublas.so', 'libcublas.so.13', 'libcublas.so.12'],
  cusolver: ['libcusolver.so', 'libcusolver.so.12', 'libcusolver.so.11'],
};

/** Toolkit library folders to search, most specific first. */
export function cudaLibraryDirs(): string[] {
  const dirs: string[] = [];
  for (const v of [process.env.CUDA_HOME, process.env.CUDA_PATH]) {
    if (v) dirs.push(join(v, 'lib64'), join(v, 'lib'));
  }
  dirs.push('/usr/local/cuda/lib64');
  try {
    const versions = readdirSync('/usr/local')
      .filter((d) => /^cuda-\d+(\.\d+)?$/.test(d))
      .sort((a, b) => parseFloat(b.slice(5)) - parseFloat(a.slice(5)));
    for (const d of versions) dirs.push(join('/usr/local', d, 'lib64'));
  } catch {
    // no /usr/local: nothing to add
  }
  return [...new Set(dirs)];
}

const loaded = new Map<CudaLibrary, LibraryHandle>();

/** Loads one CUDA library (cached); throws CudaUnavailableError listing every path tried. */
export function loadCudaLibrary(which: CudaLibrary): LibraryHandle {
  const hit = loaded.get(which);
  if (hit) return hit;
  const candidates: string[] = [];
  if (which === 'cuda') candidates.push(...SONAMES.cuda);
  for (const dir of cudaLibraryDirs()) {
    for (const so of SONAMES[which]) {
      const p = join(dir, so);
      if (existsSync(p)) candidates.push(p);
    }
  }
  if (which !== 'cuda') candidates.push(...SONAMES[which]);
  const errors: string[] = [];
  for (const c of candidates) {
    try {
      const lib = koffi.load(c);
      loaded.set(which, lib);
      return lib;
    } catch (e) {
      errors.push(`${c}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const hint =
    which === 'cuda'
      ? 'no CUDA driver (libcuda.so.1) could be loaded: is an NVIDIA GPU and its driver present?'
      : `no ${which} library found: set CUDA_HOME to the CUDA toolkit (searched ${cudaLibraryDirs().join(', ')})`;
  throw new CudaUnavailableError(`${hint}${errors.length ? `\n  tried: ${errors.join('\n  tried: ')}` : ''}`);
}

/** Declares a function, trying several exported names (e.g. a _v2 first); undefined if none exists. */
/** A function declared through koffi. */
export type NativeFunction = ReturnType<LibraryHandle['func']>;

export function optionalFunc(lib: LibraryHandle, names: readonly string[], signature: string): NativeFunction | undefined {
  for (const name of names) {
    try {
      return lib.func(signature.replace('$NAME', name));
    } catch {
      // not exported under this name
    }
  }
  return undefined;
}

/**
 * Declares every function of `sigs` (key → [names to try, signature with $NAME]); a function the library
 * lacks under all its names is a CudaUnavailableError with `missing(names)` as its message.
 */
export function requiredFunctions(lib: LibraryHandle, sigs: Readonly<Record<string, readonly [readonly string[], string]>>,
  missing: (names: readonly string[]) => string): Record<string, NativeFunction> {
  const out: Record<string, NativeFunction> = {};
  for (const [key, [names, sig]] of Object.entries(sigs)) {
    const fn = optionalFunc(lib, names, sig);
    if (!fn) throw new CudaUnavailableError(missing(names));
    out[key] = fn;
  }
  return out;
}
