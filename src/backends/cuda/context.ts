/**
 * One GPU, its primary context and one stream, composed the way tinygrad composes a device:
 *   queue     the stream, its events and the observer of stream work   (stream.ts)
 *   memory    device buffers, host↔device copies                       (allocator.ts)
 *   programs  modules, kernel functions, launches                      (program.ts)
 * (the compiler, NVRTC with its disk cache, is kernel-cache.ts). The context itself opens the device,
 * reads what it is (DeviceInfo, arch) and releases it; the common calls (alloc, upload, copies,
 * launch, synchronize) are passed through so that call sites read `ctx.launch(...)`.
 */
import type { DeviceBuffer } from './buffer.js';
import { CU_DEVICE_ATTRIBUTE, driverApi, type DriverApi } from './driver.js';
import { CudaUnavailableError } from './libs.js';
import { CudaAllocator } from './allocator.js';
import { CudaPrograms, type CudaFunction, type KernelArg, type LaunchOptions } from './program.js';
import { CudaStream } from './stream.js';

export interface DeviceInfo {
  readonly name: string;
  readonly ordinal: number;
  readonly computeCapability: [number, number];
  readonly multiprocessors: number;
  readonly l2Bytes: number;
  readonly totalBytes: number;
  readonly maxSharedPerBlockOptin: number;
  readonly driverVersion: number;
}

export class CudaContext {
  readonly api: DriverApi;
  readonly device: number;
  readonly info: DeviceInfo;
  readonly queue: CudaStream;
  readonly memory: CudaAllocator;
  readonly programs: CudaPrograms;
  private released = false;

  constructor(ordinal = 0) {
    const api = driverApi();
    this.api = api;
    const count = new Int32Array(1);
    api.check('cuDeviceGetCount', api.fn.cuDeviceGetCount!(count) as number);
    if (count[0]! <= ordinal) throw new CudaUnavailableError(`no CUDA device ${ordinal}: the driver sees ${count[0]} device(s)`);
    const dev = new Int32Array(1);
    api.check('cuDeviceGet', api.fn.cuDeviceGet!(dev, ordinal) as number);
    this.device = dev[0]!;
    const ctx = new BigUint64Array(1);
    api.check('cuDevicePrimaryCtxRetain', api.fn.cuDevicePrimaryCtxRetain!(ctx, this.device) as number);
    api.check('cuCtxSetCurrent', api.fn.cuCtxSetCurrent!(ctx[0]!) as number);
    this.queue = new CudaStream(api);
    this.info = readDeviceInfo(api, this.device, ordinal);
    this.memory = new CudaAllocator(api, this.queue);
    this.programs = new CudaPrograms(api, this.queue);
  }

  /** The NVRTC/nvcc architecture for this device, e.g. "sm_90a" on Hopper (the "a" enables wgmma). */
  get arch(): string {
    const [maj, min] = this.info.computeCapability;
    return `sm_${maj}${min}${maj === 9 && min === 0 ? 'a' : ''}`;
  }

  /** The CUstream all work of this context goes to. */
  get stream(): bigint {
    return this.queue.handle;
  }

  alloc(bytes: number): DeviceBuffer {
    return this.memory.alloc(bytes);
  }

  /** Allocates and uploads. */
  upload(src: ArrayBufferView): DeviceBuffer {
    return this.memory.upload(src);
  }

  /** Host values into dst, in stream order (CudaAllocator.copyToDevice). */
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView): void {
    this.memory.copyToDevice(dst, src);
  }

  /** Waits for the stream, then copies src to the host (CudaAllocator.copyToHost). */
  copyToHost<T extends ArrayBufferView>(dst: T, src: DeviceBuffer): T {
    return this.memory.copyToHost(dst, src);
  }

  synchronize(): void {
    this.queue.synchronize();
  }

  /**
   * Waits for all of the context's work (cuCtxSynchronize): ctx.upload and DeviceBuffer.fill go on the
   * legacy stream, not ordered with ours, so they must land before our stream reads what they wrote.
   */
  landUploads(): void {
    this.api.check('cuCtxSynchronize', this.api.fn.cuCtxSynchronize!() as number);
  }

  /** Issues stream work now, after showing it to the observer when one is set (CudaStream.onStream). */
  onStream(issue: () => void): void {
    this.queue.onStream(issue);
  }

  /** Launches `fn` on this context's stream; asynchronous (CudaPrograms.launch). */
  launch(
    fn: CudaFunction, grid: [number, number?, number?], block: [number, number?, number?], args: readonly KernelArg[], sharedBytes = 0,
    options: LaunchOptions = {},
  ): void {
    this.programs.launch(fn, grid, block, args, sharedBytes, options);
  }

  /** Synchronizes, destroys the stream and releases the primary context. Buffers must be freed first. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.queue.synchronize();
    this.queue.destroy();
    this.api.check('cuDevicePrimaryCtxRelease', this.api.fn.cuDevicePrimaryCtxRelease!(this.device) as number);
    this.programs.dispose();
  }
}

function readDeviceInfo(api: DriverApi, device: number, ordinal: number): DeviceInfo {
  const attr = (a: number): number => {
    const v = new Int32Array(1);
    api.check('cuDeviceGetAttribute', api.fn.cuDeviceGetAttribute!(v, a, device) as number);
    return v[0]!;
  };
  const nameBytes = new Uint8Array(256);
  api.check('cuDeviceGetName', api.fn.cuDeviceGetName!(nameBytes, 256, device) as number);
  const total = new BigUint64Array(1);
  api.check('cuDeviceTotalMem', api.fn.cuDeviceTotalMem!(total, device) as number);
  return {
    name: Buffer.from(nameBytes).toString('utf8').replace(/\0.*$/s, ''),
    ordinal,
    computeCapability: [attr(CU_DEVICE_ATTRIBUTE.COMPUTE_CAPABILITY_MAJOR), attr(CU_DEVICE_ATTRIBUTE.COMPUTE_CAPABILITY_MINOR)],
    multiprocessors: attr(CU_DEVICE_ATTRIBUTE.MULTIPROCESSOR_COUNT),
    l2Bytes: attr(CU_DEVICE_ATTRIBUTE.L2_CACHE_SIZE),
    totalBytes: Number(total[0]!),
    maxSharedPerBlockOptin: attr(CU_DEVICE_ATTRIBUTE.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
    driverVersion: api.version,
  };
}
