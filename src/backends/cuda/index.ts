/**
 * The CUDA backend: bindings (driver, NVRTC, cuBLAS), device memory, kernels, W4A8 / W8A8 / W4A16
 * layers, createCudaBackend (a model Backend with its linear layers on the GPU, bit-exact with the CPU)
 * and createCudaEngine (the fast decode engine for generation).
 */
export { CudaUnavailableError, cudaLibraryDirs } from './libs.js';
export { CudaError } from './driver.js';
export { NvrtcError } from './nvrtc.js';
export { CublasError, Cublas } from './cublas.js';
export { DeviceBuffer } from './buffer.js';
export { CudaContext, type DeviceInfo } from './context.js';
export type { KernelArg, LaunchOptions } from './program.js';
export { CudaAllocator } from './allocator.js';
export { CudaPrograms } from './program.js';
export { CudaStream, type StreamObserver } from './stream.js';
export { getKernel, kernelsDir } from './kernel-cache.js';
export { outputBytes, type OutputFormat } from './output.js';
export { repackW4A8, repackW4, repackScales, paddedRows } from './repack.js';
export { uploadW4A8, freeW4A8, w4a8Linear, chooseW4A8Config, activationOrder, quantizeActivationsCuda, type W4A8Layer, type W4A8Config, type ActivationOrder } from './w4a8.js';
export { uploadW8A8, freeW8A8, w8a8Linear, chooseW8A8Config, repackW8A8, type W8A8Layer, type W8A8Config } from './w8a8.js';
export { createCudaBackend, type CudaBackend, type CudaBackendOptions, type LinearPlacements } from './cuda-backend.js';
export type { PassReplayStats } from './pass-tape.js';
export { createCudaEngine, type CudaEngine, type CudaEngineOptions } from './decode-engine.js';
export { uploadW4A16, freeW4A16, w4a16Linear, w4a16Gemm, w4a16Expand, w4a16ExpandedBytes, chooseW4A16Config, repackW4A16, type W4A16Layer, type W4A16Config } from './w4a16.js';

import { CudaContext } from './context.js';
import { CudaUnavailableError } from './libs.js';

/** A context on GPU 0, or the reason there is none (for tests that skip without a GPU). */
export function tryCudaContext(): { ctx: CudaContext } | { reason: string } {
  try {
    return { ctx: new CudaContext(0) };
  } catch (e) {
    if (e instanceof CudaUnavailableError) return { reason: e.message.split('\n')[0]! };
    return { reason: `CUDA init failed: ${(e as Error).message.split('\n')[0]}` };
  }
}
