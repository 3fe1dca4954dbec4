/**
 * One GPU, its primary context and one stream: allocation, copies, events, modules and launches.
 *
 * Kernel arguments are packed into one native buffer passed through cuLaunchKernel's `extra`
 * (CU_LAUNCH_PARAM_BUFFER_POINTER / _SIZE), with each argument at its natural alignment;
 * the driver copies them at launch, so the buffer is reused. A launch that may overlap the kernel
 * before it (programmatic dependent launch) goes through cuLaunchKernelEx with one attribute.
 *
 * Stream work (launches, device-to-device copies, and whatever a caller passes to onStream) can be
 * observed: while a StreamObserver is set (observeWith), each item is handed to it as a function
 * that issues it, just before the context issues it. The CUDA backend's pass tape observes a pass's
 * work to record it for replay as a CUDA graph (pass-tape.ts).
 */
import koffi from 'koffi';
import { DeviceBuffer } from './buffer.js';
import { CU_DEVICE_ATTRIBUTE, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, driverApi, type DriverApi } from './driver.js';
import { CudaUnavailableError } from './libs.js';

/** A kernel argument: a device pointer (or buffer), a 32-bit int, a float, a double, or a 64-bit integer. */
export type KernelArg = DeviceBuffer | { i32: number } | { f32: number } | { f64: number } | { u64: number };

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

/** Sees each item of stream work just before the context issues it (`issue` issues it again when called). */
export interface StreamObserver {
  issuing(issue: () => void): void;
}

/** How a kernel is launched, beyond grid, block and shared memory. */
export interface LaunchOptions {
  /**
   * Programmatic dependent launch: the kernel may start while the kernel before it on the stream
   * still runs, once that one lets it (pdl_launch_dependents in common.cuh). Only for kernels that
   * call pdl_wait before they read what earlier kernels wrote or write anything; a driver without
   * cuLaunchKernelEx launches plainly, which those kernels also run correctly under.
   */
  readonly overlapPrevious?: boolean;
}

export interface CudaFunction {
  readonly handle: bigint;
  readonly name: string;
}

const ARG_BYTES = 4096;
/** sizeof(CUlaunchConfig) and sizeof(CUlaunchAttribute) (cuda.h, 64-bit). */
const LAUNCH_CONFIG_BYTES = 56;
const LAUNCH_ATTRIBUTE_BYTES = 72;
const CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
type Dims = [number, number, number];

export class CudaContext {
  readonly api: DriverApi;
  readonly device: number;
  readonly info: DeviceInfo;
  readonly stream: bigint;
  private readonly argPtr: bigint;
  private readonly argView: DataView;
  private readonly sizeView: DataView;
  private readonly extraPtr: bigint;
  private readonly sizePtr: bigint;
  /** A CUlaunchConfig followed by its one CUlaunchAttribute (programmatic stream serialization). */
  private readonly launchExPtr: bigint;
  private readonly launchExView: DataView;
  private released = false;
  private observer: StreamObserver | null = null;

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
    const stream = new BigUint64Array(1);
    api.check('cuStreamCreate', api.fn.cuStreamCreate!(stream, 1 /* CU_STREAM_NON_BLOCKING */) as number);
    this.stream = stream[0]!;
    this.info = this.readInfo(ordinal);
    this.argPtr = koffi.alloc('uint8_t', ARG_BYTES) as unknown as bigint;
    this.argView = new DataView(koffi.view(this.argPtr as never, ARG_BYTES));
    this.sizePtr = koffi.alloc('uint64_t', 1) as unknown as bigint;
    this.sizeView = new DataView(koffi.view(this.sizePtr as never, 8));
    this.extraPtr = koffi.alloc('uint64_t', 5) as unknown as bigint;
    const extra = new DataView(koffi.view(this.extraPtr as never, 40));
    extra.setBigUint64(0, 1n, true); // CU_LAUNCH_PARAM_BUFFER_POINTER
    extra.setBigUint64(8, BigInt(this.argPtr), true);
    extra.setBigUint64(16, 2n, true); // CU_LAUNCH_PARAM_BUFFER_SIZE
    extra.setBigUint64(24, BigInt(this.sizePtr), true);
    extra.setBigUint64(32, 0n, true); // CU_LAUNCH_PARAM_END
    const exBytes = LAUNCH_CONFIG_BYTES + LAUNCH_ATTRIBUTE_BYTES;
    this.launchExPtr = koffi.alloc('uint64_t', exBytes / 8) as unknown as bigint;
    this.launchExView = new DataView(koffi.view(this.launchExPtr as never, exBytes));
    const ex = this.launchExView;
    ex.setBigUint64(32, this.stream, true); // hStream
    ex.setBigUint64(40, BigInt(this.launchExPtr) + BigInt(LAUNCH_CONFIG_BYTES), true); // attrs
    ex.setUint32(48, 1, true); // numAttrs
    ex.setUint32(LAUNCH_CONFIG_BYTES, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, true); // id
    ex.setInt32(LAUNCH_CONFIG_BYTES + 8, 1, true); // value.programmaticStreamSerializationAllowed
  }

  private readInfo(ordinal: number): DeviceInfo {
    const { api, device } = this;
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

  /** The NVRTC/nvcc architecture for this device, e.g. "sm_90a" on Hopper (the "a" enables wgmma). */
  get arch(): string {
    const [maj, min] = this.info.computeCapability;
    return `sm_${maj}${min}${maj === 9 && min === 0 ? 'a' : ''}`;
  }

  alloc(bytes: number): DeviceBuffer {
    const p = new BigUint64Array(1);
    this.api.check(`cuMemAlloc(${bytes} B)`, this.api.fn.cuMemAlloc!(p, Math.max(1, bytes)) as number);
    return new DeviceBuffer(this.api, Number(p[0]!), bytes);
  }

  /** Allocates and uploads. */
  upload(src: ArrayBufferView): DeviceBuffer {
    const b = this.alloc(src.byteLength);
    b.upload(src);
    return b;
  }

  /**
   * Copies host values into dst (from byte 0) in order on this context's stream, so kernels queued
   * after it see them; the host array may be reused as soon as this returns (pageable memory is
   * staged before the call returns).
   */
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView): void {
    if (src.byteLength > dst.bytes) throw new RangeError(`copy of ${src.byteLength} B overflows a ${dst.bytes} B buffer`);
    this.api.check('cuMemcpyHtoDAsync', this.api.fn.cuMemcpyHtoDAsync!(dst.address, src, src.byteLength, this.stream) as number);
  }

  /** Waits for this context's stream, then copies the first dst.byteLength bytes of src to the host. */
  copyToHost<T extends ArrayBufferView>(dst: T, src: DeviceBuffer): T {
    this.synchronize();
    return src.download(dst);
  }

  /** Copies `bytes` (default: all of src) from src to dst in order on this context's stream. */
  copyOnStream(dst: DeviceBuffer, src: DeviceBuffer, bytes = src.bytes): void {
    if (bytes > dst.bytes || bytes > src.bytes) throw new RangeError(`device copy of ${bytes} B between buffers of ${src.bytes} and ${dst.bytes} B`);
    const [d, s] = [dst.address, src.address];
    this.onStream(() => this.api.check('cuMemcpyDtoDAsync', this.api.fn.cuMemcpyDtoDAsync!(d, s, bytes, this.stream) as number));
  }

  copyDtoD(dst: DeviceBuffer, src: DeviceBuffer, bytes = Math.min(dst.bytes, src.bytes)): void {
    this.api.check('cuMemcpyDtoD', this.api.fn.cuMemcpyDtoD!(dst.address, src.address, bytes) as number);
  }

  synchronize(): void {
    this.api.check('cuStreamSynchronize', this.api.fn.cuStreamSynchronize!(this.stream) as number);
  }

  loadModule(cubin: Uint8Array): bigint {
    const m = new BigUint64Array(1);
    this.api.check('cuModuleLoadData', this.api.fn.cuModuleLoadData!(m, cubin) as number);
    return m[0]!;
  }

  getFunction(module: bigint, name: string, dynamicShared = 0): CudaFunction {
    const f = new BigUint64Array(1);
    this.api.check(`cuModuleGetFunction(${name})`, this.api.fn.cuModuleGetFunction!(f, module, name) as number);
    if (dynamicShared > 48 * 1024) {
      this.api.check(
        `cuFuncSetAttribute(${name}, max dynamic shared ${dynamicShared})`,
        this.api.fn.cuFuncSetAttribute!(f[0]!, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, dynamicShared) as number,
      );
    }
    return { handle: f[0]!, name };
  }

  /** Issues stream work now, after showing it to the observer when one is set. */
  onStream(issue: () => void): void {
    this.observer?.issuing(issue);
    issue();
  }

  /** Stream work from now on is shown to `observer` before it is issued (null: to none). */
  observeWith(observer: StreamObserver | null): void {
    this.observer = observer;
  }

  /** Launches `fn` on this context's stream; asynchronous. */
  launch(
    fn: CudaFunction, grid: [number, number?, number?], block: [number, number?, number?], args: readonly KernelArg[], sharedBytes = 0,
    options: LaunchOptions = {},
  ): void {
    const bytes = this.packArguments(args);
    const g: Dims = [grid[0], grid[1] ?? 1, grid[2] ?? 1];
    const b: Dims = [block[0], block[1] ?? 1, block[2] ?? 1];
    const overlap = options.overlapPrevious === true && this.api.fn.cuLaunchKernelEx !== undefined;
    if (!this.observer) {
      this.launchPacked(fn, g, b, sharedBytes, bytes, overlap);
      return;
    }
    // observed: the item must issue again later (graph capture), with its own copy of the arguments
    const packed = new Uint8Array(this.argView.buffer, this.argView.byteOffset, bytes).slice();
    this.onStream(() => {
      new Uint8Array(this.argView.buffer, this.argView.byteOffset, bytes).set(packed);
      this.launchPacked(fn, g, b, sharedBytes, bytes, overlap);
    });
  }

  /** Packs args into the argument buffer, each at its natural alignment; returns the bytes used. */
  private packArguments(args: readonly KernelArg[]): number {
    let off = 0;
    const v = this.argView;
    for (const a of args) {
      if (a instanceof DeviceBuffer || 'u64' in a) {
        off = (off + 7) & ~7;
        v.setBigUint64(off, BigInt(a instanceof DeviceBuffer ? a.address : a.u64), true);
        off += 8;
      } else if ('f64' in a) {
        off = (off + 7) & ~7;
        v.setFloat64(off, a.f64, true);
        off += 8;
      } else if ('i32' in a) {
        off = (off + 3) & ~3;
        v.setInt32(off, a.i32, true);
        off += 4;
      } else {
        off = (off + 3) & ~3;
        v.setFloat32(off, a.f32, true);
        off += 4;
      }
    }
    return off;
  }

  /** Launches with the first `bytes` of the argument buffer as the arguments (overlap: cuLaunchKernelEx, see LaunchOptions). */
  private launchPacked(fn: CudaFunction, grid: Dims, block: Dims, sharedBytes: number, bytes: number, overlap: boolean): void {
    this.sizeView.setBigUint64(0, BigInt(bytes), true);
    let code: number;
    if (overlap) {
      const ex = this.launchExView;
      [...grid, ...block, sharedBytes].forEach((v, i) => ex.setUint32(4 * i, v, true));
      code = this.api.fn.cuLaunchKernelEx!(this.launchExPtr, fn.handle, null, this.extraPtr) as number;
    } else {
      code = this.api.fn.cuLaunchKernel!(fn.handle, ...grid, ...block, sharedBytes, this.stream, null, this.extraPtr) as number;
    }
    if (code !== 0) this.api.check(`${overlap ? 'cuLaunchKernelEx' : 'cuLaunchKernel'}(${fn.name}, grid ${grid.join('x')}, block ${block.join('x')}, smem ${sharedBytes})`, code);
  }

  createEvent(): bigint {
    const e = new BigUint64Array(1);
    this.api.check('cuEventCreate', this.api.fn.cuEventCreate!(e, 0) as number);
    return e[0]!;
  }

  record(ev: bigint): void {
    this.api.check('cuEventRecord', this.api.fn.cuEventRecord!(ev, this.stream) as number);
  }

  /** Milliseconds between two recorded events (waits for the second). */
  elapsedMs(start: bigint, end: bigint): number {
    this.api.check('cuEventSynchronize', this.api.fn.cuEventSynchronize!(end) as number);
    const ms = new Float32Array(1);
    this.api.check('cuEventElapsedTime', this.api.fn.cuEventElapsedTime!(ms, start, end) as number);
    return ms[0]!;
  }

  destroyEvent(ev: bigint): void {
    this.api.check('cuEventDestroy', this.api.fn.cuEventDestroy!(ev) as number);
  }

  memInfo(): { free: number; total: number } {
    const f = new BigUint64Array(1);
    const t = new BigUint64Array(1);
    this.api.check('cuMemGetInfo', this.api.fn.cuMemGetInfo!(f, t) as number);
    return { free: Number(f[0]!), total: Number(t[0]!) };
  }

  /** Synchronizes, destroys the stream and releases the primary context. Buffers must be freed first. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.synchronize();
    this.api.check('cuStreamDestroy', this.api.fn.cuStreamDestroy!(this.stream) as number);
    this.api.check('cuDevicePrimaryCtxRelease', this.api.fn.cuDevicePrimaryCtxRelease!(this.device) as number);
    koffi.free(this.argPtr as never);
    koffi.free(this.sizePtr as never);
    koffi.free(this.extraPtr as never);
    koffi.free(this.launchExPtr as never);
  }
}
