/**
 * NVRTC through koffi: compiles CUDA C++ source to a cubin for one architecture (sm_90a here).
 * A failed compile throws NvrtcError with the compiler's full log; every NVRTC call is checked.
 */
import { loadCudaLibrary, requiredFunctions, type NativeFunction } from './libs.js';

export class NvrtcError extends Error {
  constructor(
    message: string,
    readonly log: string,
  ) {
    super(log ? `${message}\n--- NVRTC log ---\n${log}` : message);
    this.name = 'NvrtcError';
  }
}

const SIGS: Record<string, string> = {
  nvrtcVersion: 'int $NAME(_Out_ int *major, _Out_ int *minor)',
  nvrtcGetErrorString: 'const char *$NAME(int result)',
  nvrtcCreateProgram:
    'int $NAME(_Out_ uint64_t *prog, const char *src, const char *name, int numHeaders, void *headers, void *includeNames)',
  nvrtcCompileProgram: 'int $NAME(void *prog, int numOptions, const char **options)',
  nvrtcGetProgramLogSize: 'int $NAME(void *prog, _Out_ size_t *size)',
  nvrtcGetProgramLog: 'int $NAME(void *prog, _Out_ uint8_t *log)',
  nvrtcGetCUBINSize: 'int $NAME(void *prog, _Out_ size_t *size)',
  nvrtcGetCUBIN: 'int $NAME(void *prog, _Out_ uint8_t *cubin)',
  nvrtcDestroyProgram: 'int $NAME(_Inout_ uint64_t *prog)',
};

let fns: Record<string, NativeFunction> | undefined;

function nvrtc(): Record<string, NativeFunction> {
  if (fns) return fns;
  const sigs = Object.fromEntries(Object.entries(SIGS).map(([name, sig]) => [name, [[name], sig] as const]));
  fns = requiredFunctions(loadCudaLibrary('nvrtc'), sigs, ([name]) => `libnvrtc does not export ${name}`);
  return fns;
}

/** "major.minor" of the loaded NVRTC. */
export function nvrtcVersion(): string {
  const major = new Int32Array(1);
  const minor = new Int32Array(1);
  const f = nvrtc();
  check(f, 'nvrtcVersion', f.nvrtcVersion!(major, minor) as number);
  return `${major[0]}.${minor[0]}`;
}

function check(f: Record<string, NativeFunction>, call: string, code: number, log = ''): void {
  if (code !== 0) throw new NvrtcError(`${call} failed: ${f.nvrtcGetErrorString!(code) as string} (nvrtcResult ${code})`, log);
}

/** Compiles `source` (named `name` in messages) with the given options; returns the cubin bytes and the log. */
export function compileToCubin(source: string, name: string, options: readonly string[]): { cubin: Uint8Array; log: string } {
  const f = nvrtc();
  const prog = new BigUint64Array(1);
  check(f, 'nvrtcCreateProgram', f.nvrtcCreateProgram!(prog, source, name, 0, null, null) as number);
  const handle = prog[0]!;
  try {
    const rc = f.nvrtcCompileProgram!(handle, options.length, [...options]) as number;
    const logSize = new BigUint64Array(1);
    check(f, 'nvrtcGetProgramLogSize', f.nvrtcGetProgramLogSize!(handle, logSize) as number);
    const logBytes = new Uint8Array(Number(logSize[0]!));
    if (logBytes.length > 0) check(f, 'nvrtcGetProgramLog', f.nvrtcGetProgramLog!(handle, logBytes) as number);
    const log = Buffer.from(logBytes).toString('utf8').replace(/\0+$/, '').trim();
    check(f, `nvrtcCompileProgram(${name}, ${options.join(' ')})`, rc, log);
    const size = new BigUint64Array(1);
    check(f, 'nvrtcGetCUBINSize', f.nvrtcGetCUBINSize!(handle, size) as number, log);
    if (size[0] === 0n) throw new NvrtcError(`NVRTC produced no cubin for ${name}: is the architecture option a real sm_XX(a)?`, log);
    const cubin = new Uint8Array(Number(size[0]!));
    check(f, 'nvrtcGetCUBIN', f.nvrtcGetCUBIN!(handle, cubin) as number, log);
    return { cubin, log };
  } finally {
    f.nvrtcDestroyProgram!(prog);
  }
}
