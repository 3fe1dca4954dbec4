/**
 * CUDA driver API through koffi: the calls intscale needs, each return code checked.
 *
 * Handles (CUcontext, CUmodule, CUfunction, CUstream, CUevent) are kept as bigint (koffi's pointer
 * type); device pointers (CUdeviceptr) are plain numbers (they fit in 2^53). Out-parameters go
 * through one-element typed arrays. Every call goes through check(), which turns a nonzero
 * CUresult into a CudaError naming the call and the driver's own error name and text.
 */
import { CudaUnavailableError, loadCudaLibrary, optionalFunc, requiredFunctions, type NativeFunction } from './libs.js';

/** A CUDA driver call returned an error. */
export class CudaError extends Error {
  constructor(
    readonly call: string,
    readonly code: number,
    detail: string,
  ) {
    super(`${call} failed: ${detail} (CUresult ${code})`);
    this.name = 'CudaError';
  }
}

export interface DriverApi {
  readonly fn: Record<string, NativeFunction>;
  /** throws CudaError when code is not CUDA_SUCCESS. */
  check(call: string, code: number): void;
  /** the driver version as an integer, e.g. 13000. */
  readonly version: number;
}

/** CUdevice_attribute values used here. */
export const CU_DEVICE_ATTRIBUTE = {
  MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 97,
  MULTIPROCESSOR_COUNT: 16,
  COMPUTE_CAPABILITY_MAJOR: 75,
  COMPUTE_CAPABILITY_MINOR: 76,
  L2_CACHE_SIZE: 38,
  CLOCK_RATE: 13,
  MEMORY_CLOCK_RATE: 36,
  GLOBAL_MEMORY_BUS_WIDTH: 37,
} as const;

export const CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

/** Functions newer drivers have and older ones lack (fn[key] is then undefined). */
const OPTIONAL_SIGNATURES: Record<string, [names: string[], signature: string]> = {
  // CUDA 12+: TMA descriptors (CUtensorMap, 128 bytes, 64-byte aligned) for cp.async.bulk.tensor
  cuTensorMapEncodeTiled: [
    ['cuTensorMapEncodeTiled'],
    'int $NAME(void *map, int dtype, uint32_t rank, void *address, const uint64_t *dims, const uint64_t *strides, const uint32_t *box, const uint32_t *elementStrides, int interleave, int swizzle, int l2promotion, int oobFill)',
  ],
  // CUDA 12.4+: where a kernel's parameter lies in its parameter block (a struct passed by value is placed as the
  // kernel's compiled layout says, which aligns it in the constant bank, not from the block's start: program.ts)
  cuFuncGetParamInfo: [['cuFuncGetParamInfo'], 'int $NAME(void *f, size_t index, _Out_ uint64_t *offset, _Out_ uint64_t *size)'],
  // CUDA 12+: launches with attributes (programmatic dependent launch, context.ts); config is a CUlaunchConfig
  cuLaunchKernelEx: [['cuLaunchKernelEx'], 'int $NAME(void *config, void *f, void *params, void *extra)'],
  // CUDA 12+: stream capture into graphs (graphs.ts)
  cuStreamBeginCapture: [['cuStreamBeginCapture_v2'], 'int $NAME(void *stream, int mode)'],
  cuStreamEndCapture: [['cuStreamEndCapture'], 'int $NAME(void *stream, _Out_ uint64_t *graph)'],
  cuGraphInstantiateWithFlags: [['cuGraphInstantiateWithFlags'], 'int $NAME(_Out_ uint64_t *exec, void *graph, uint64_t flags)'],
  cuGraphLaunch: [['cuGraphLaunch'], 'int $NAME(void *exec, void *stream)'],
  cuGraphDestroy: [['cuGraphDestroy'], 'int $NAME(void *graph)'],
  cuGraphExecDestroy: [['cuGraphExecDestroy'], 'int $NAME(void *exec)'],
};

const SIGNATURES: Record<string, [names: string[], signature: string]> = {
  cuInit: [['cuInit'], 'int $NAME(unsigned int flags)'],
  cuDriverGetVersion: [['cuDriverGetVersion'], 'int $NAME(_Out_ int *v)'],
  cuGetErrorName: [['cuGetErrorName'], 'int $NAME(int err, _Out_ const char **s)'],
  cuGetErrorString: [['cuGetErrorString'], 'int $NAME(int err, _Out_ const char **s)'],
  cuDeviceGetCount: [['cuDeviceGetCount'], 'int $NAME(_Out_ int *n)'],
  cuDeviceGet: [['cuDeviceGet'], 'int $NAME(_Out_ int *dev, int ordinal)'],
  cuDeviceGetName: [['cuDeviceGetName'], 'int $NAME(_Out_ uint8_t *name, int len, int dev)'],
  cuDeviceGetAttribute: [['cuDeviceGetAttribute'], 'int $NAME(_Out_ int *v, int attr, int dev)'],
  cuDeviceTotalMem: [['cuDeviceTotalMem_v2'], 'int $NAME(_Out_ uint64_t *bytes, int dev)'],
  cuDevicePrimaryCtxRetain: [['cuDevicePrimaryCtxRetain'], 'int $NAME(_Out_ uint64_t *ctx, int dev)'],
  cuDevicePrimaryCtxRelease: [['cuDevicePrimaryCtxRelease_v2', 'cuDevicePrimaryCtxRelease'], 'int $NAME(int dev)'],
  cuCtxSetCurrent: [['cuCtxSetCurrent'], 'int $NAME(void *ctx)'],
  cuCtxSynchronize: [['cuCtxSynchronize'], 'int $NAME()'],
  cuMemGetInfo: [['cuMemGetInfo_v2'], 'int $NAME(_Out_ uint64_t *free, _Out_ uint64_t *total)'],
  cuMemAlloc: [['cuMemAlloc_v2'], 'int $NAME(_Out_ uint64_t *dptr, size_t bytes)'],
  cuMemFree: [['cuMemFree_v2'], 'int $NAME(uint64_t dptr)'],
  cuMemcpyHtoD: [['cuMemcpyHtoD_v2'], 'int $NAME(uint64_t dst, const void *src, size_t bytes)'],
  cuMemcpyDtoH: [['cuMemcpyDtoH_v2'], 'int $NAME(_Out_ void *dst, uint64_t src, size_t bytes)'],
  cuMemcpyHtoDAsync: [['cuMemcpyHtoDAsync_v2'], 'int $NAME(uint64_t dst, const void *src, size_t bytes, void *stream)'],
  cuMemcpyDtoDAsync: [['cuMemcpyDtoDAsync_v2'], 'int $NAME(uint64_t dst, uint64_t src, size_t bytes, void *stream)'],
  cuMemcpyDtoD: [['cuMemcpyDtoD_v2'], 'int $NAME(uint64_t dst, uint64_t src, size_t bytes)'],
  cuMemsetD8: [['cuMemsetD8_v2'], 'int $NAME(uint64_t dst, uint8_t value, size_t count)'],
  cuModuleLoadData: [['cuModuleLoadData'], 'int $NAME(_Out_ uint64_t *mod, const void *image)'],
  cuModuleUnload: [['cuModuleUnload'], 'int $NAME(void *mod)'],
  cuModuleGetFunction: [['cuModuleGetFunction'], 'int $NAME(_Out_ uint64_t *fn, void *mod, const char *name)'],
  cuFuncSetAttribute: [['cuFuncSetAttribute'], 'int $NAME(void *fn, int attr, int value)'],
  cuLaunchKernel: [
    ['cuLaunchKernel'],
    'int $NAME(void *f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem, void *stream, void *params, void *extra)',
  ],
  cuStreamCreate: [['cuStreamCreate'], 'int $NAME(_Out_ uint64_t *stream, unsigned int flags)'],
  cuStreamSynchronize: [['cuStreamSynchronize'], 'int $NAME(void *stream)'],
  cuStreamDestroy: [['cuStreamDestroy_v2'], 'int $NAME(void *stream)'],
  cuEventCreate: [['cuEventCreate'], 'int $NAME(_Out_ uint64_t *ev, unsigned int flags)'],
  cuEventRecord: [['cuEventRecord'], 'int $NAME(void *ev, void *stream)'],
  cuEventSynchronize: [['cuEventSynchronize'], 'int $NAME(void *ev)'],
  cuEventElapsedTime: [['cuEventElapsedTime_v2', 'cuEventElapsedTime'], 'int $NAME(_Out_ float *ms, void *start, void *end)'],
  cuEventDestroy: [['cuEventDestroy_v2'], 'int $NAME(void *ev)'],
};

let cached: DriverApi | undefined;

/** Loads libcuda, declares the functions and runs cuInit(0); throws CudaUnavailableError when impossible. */
export function driverApi(): DriverApi {
  if (cached) return cached;
  const lib = loadCudaLibrary('cuda');
  const fn = requiredFunctions(lib, SIGNATURES, (names) => `the CUDA driver exports none of ${names.join(', ')}: driver too old?`);
  for (const [key, [names, sig]] of Object.entries(OPTIONAL_SIGNATURES)) {
    const f = optionalFunc(lib, names, sig);
    if (f) fn[key] = f;
  }
  const errText = (code: number): string => {
    const name: [string | null] = [null];
    const text: [string | null] = [null];
    fn.cuGetErrorName!(code, name);
    fn.cuGetErrorString!(code, text);
    return `${name[0] ?? 'unknown error'}: ${text[0] ?? ''}`;
  };
  const check = (call: string, code: number): void => {
    if (code !== 0) throw new CudaError(call, code, errText(code));
  };
  const init = fn.cuInit!(0) as number;
  if (init !== 0) {
    // 100 = CUDA_ERROR_NO_DEVICE, 35 = CUDA_ERROR_INSUFFICIENT_DRIVER, 999 = unknown
    throw new CudaUnavailableError(`cuInit failed: ${errText(init)} (CUresult ${init}): no usable NVIDIA GPU or driver`);
  }
  const v = new Int32Array(1);
  check('cuDriverGetVersion', fn.cuDriverGetVersion!(v) as number);
  cached = { fn, check, version: v[0]! };
  return cached;
}
