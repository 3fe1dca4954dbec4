/**
 * Programs on a context: modules loaded from cubins (compiled by kernel-cache.ts), kernel functions
 * looked up in them (both kept for the context's life), and launches on the context's stream.
 *
 * Kernel arguments are packed into one native buffer passed through cuLaunchKernel's `extra`
 * (CU_LAUNCH_PARAM_BUFFER_POINTER / _SIZE), each at its natural alignment, or, for a kernel taking a struct
 * by value, at the offsets its compiled parameter layout gives (cuFuncGetParamInfo); the driver copies them at launch, so the buffer is reused. A launch that may overlap the kernel
 * before it (programmatic dependent launch) goes through cuLaunchKernelEx with one attribute.
 * While the stream is observed (stream.ts), each launch is handed to the observer with its own
 * copy of the arguments, so that it can issue again (graph capture).
 */
import koffi from 'koffi';
import { DeviceBuffer } from './buffer.js';
import { CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, type DriverApi } from './driver.js';
import type { CudaStream } from './stream.js';

/**
 * A kernel argument: a device pointer (or buffer), a 32-bit int, a float, a double, a 64-bit integer, or a
 * struct passed by value (a `const __grid_constant__ TmaMap`'s 128 bytes), placed where the kernel's compiled
 * parameter layout says (see paramLayout).
 */
export type KernelArg = DeviceBuffer | { i32: number } | { f32: number } | { f64: number } | { u64: number } | KernelStruct;
export interface KernelStruct { readonly struct: Uint8Array }

/** Where a kernel parameter lies in the parameter block, in bytes (cuFuncGetParamInfo). */
export interface ParamSlot { readonly offset: number; readonly size: number }

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

export class CudaPrograms {
  private readonly argPtr: bigint;
  private readonly argView: DataView;
  private readonly sizeView: DataView;
  private readonly extraPtr: bigint;
  private readonly sizePtr: bigint;
  /** A CUlaunchConfig followed by its one CUlaunchAttribute (programmatic stream serialization). */
  private readonly launchExPtr: bigint;
  private readonly launchExView: DataView;
  /** modules by the caller's key (source and defines), functions by module, name and shared memory. */
  private readonly modules = new Map<string, bigint>();
  private readonly functions = new Map<string, CudaFunction>();
  /** The dynamic shared memory each function handle has been allowed (getFunction). */
  private readonly dynamicLimits = new Map<bigint, number>();
  /** The parameter layouts of the functions launched with a struct argument, by handle. */
  private readonly paramLayouts = new Map<bigint, readonly ParamSlot[]>();

  constructor(
    private readonly api: DriverApi,
    private readonly stream: CudaStream,
  ) {
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
    ex.setBigUint64(32, stream.handle, true); // hStream
    ex.setBigUint64(40, BigInt(this.launchExPtr) + BigInt(LAUNCH_CONFIG_BYTES), true); // attrs
    ex.setUint32(48, 1, true); // numAttrs
    ex.setUint32(LAUNCH_CONFIG_BYTES, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, true); // id
    ex.setInt32(LAUNCH_CONFIG_BYTES + 8, 1, true); // value.programmaticStreamSerializationAllowed
  }

  /** The module loaded under `key`, loading `cubin()` the first time. */
  module(key: string, cubin: () => Uint8Array): bigint {
    let mod = this.modules.get(key);
    if (mod === undefined) {
      mod = this.loadModule(cubin());
      this.modules.set(key, mod);
    }
    return mod;
  }

  /** Kernel `name` of `module`, allowed `dynamicShared` bytes of dynamic shared memory; looked up once. */
  function(module: bigint, name: string, dynamicShared = 0): CudaFunction {
    const key = `${module}|${name}|${dynamicShared}`;
    let fn = this.functions.get(key);
    if (!fn) {
      fn = this.getFunction(module, name, dynamicShared);
      this.functions.set(key, fn);
    }
    return fn;
  }

  private loadModule(cubin: Uint8Array): bigint {
    const m = new BigUint64Array(1);
    this.api.check('cuModuleLoadData', this.api.fn.cuModuleLoadData!(m, cubin) as number);
    return m[0]!;
  }

  /**
   * The function `name` of `module`, allowed `dynamicShared` bytes of dynamic shared memory. The limit is the
   * handle's (one per module and name, however many keys share it), so it is only ever raised: a launch with
   * less still fits. It is set for any dynamic size, not only past 48 KiB: static and dynamic shared memory
   * together may pass 48 KiB only with the opt-in (the decode kernels' slots beside their static reduction).
   */
  private getFunction(module: bigint, name: string, dynamicShared: number): CudaFunction {
    const f = new BigUint64Array(1);
    this.api.check(`cuModuleGetFunction(${name})`, this.api.fn.cuModuleGetFunction!(f, module, name) as number);
    const handle = f[0]!;
    if (dynamicShared > (this.dynamicLimits.get(handle) ?? 0)) {
      this.api.check(
        `cuFuncSetAttribute(${name}, max dynamic shared ${dynamicShared})`,
        this.api.fn.cuFuncSetAttribute!(handle, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, dynamicShared) as number,
      );
      this.dynamicLimits.set(handle, dynamicShared);
    }
    return { handle, name };
  }

  /** Launches `fn` on the stream; asynchronous. */
  launch(
    fn: CudaFunction, grid: [number, number?, number?], block: [number, number?, number?], args: readonly KernelArg[], sharedBytes = 0,
    options: LaunchOptions = {},
  ): void {
    const bytes = packKernelArguments(this.argView, args, args.some((a) => 'struct' in a) ? this.paramLayout(fn, args.length) : undefined);
    const g: Dims = [grid[0], grid[1] ?? 1, grid[2] ?? 1];
    const b: Dims = [block[0], block[1] ?? 1, block[2] ?? 1];
    const overlap = options.overlapPrevious === true && this.api.fn.cuLaunchKernelEx !== undefined;
    if (!this.stream.observed) {
      this.launchPacked(fn, g, b, sharedBytes, bytes, overlap);
      return;
    }
    // observed: the item must issue again later (graph capture), with its own copy of the arguments
    const packed = new Uint8Array(this.argView.buffer, this.argView.byteOffset, bytes).slice();
    this.stream.onStream(() => {
      new Uint8Array(this.argView.buffer, this.argView.byteOffset, bytes).set(packed);
      this.launchPacked(fn, g, b, sharedBytes, bytes, overlap);
    });
  }

  /**
   * Where `fn`'s `count` parameters lie (asked of the driver once a function): a struct's place depends on the constant
   * bank the block is copied into (a 64-byte-aligned TmaMap starts at offset 48 on sm_90, whose block starts at bank
   * byte 0x210), so it cannot be worked out from the arguments alone.
   */
  private paramLayout(fn: CudaFunction, count: number): readonly ParamSlot[] {
    let layout = this.paramLayouts.get(fn.handle);
    if (layout === undefined) {
      const info = this.api.fn.cuFuncGetParamInfo;
      if (!info) throw new RangeError(`${fn.name} takes a struct by value, which needs cuFuncGetParamInfo (a CUDA 12.4 or newer driver)`);
      const offset = new BigUint64Array(1), size = new BigUint64Array(1);
      layout = Array.from({ length: count }, (_, i) => {
        this.api.check(`cuFuncGetParamInfo(${fn.name}, ${i})`, info(fn.handle, i, offset, size) as number);
        return { offset: Number(offset[0]), size: Number(size[0]) };
      });
      this.paramLayouts.set(fn.handle, layout);
    }
    if (layout.length !== count) throw new RangeError(`${fn.name} was launched with ${layout.length} arguments before, ${count} now`);
    return layout;
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
      code = this.api.fn.cuLaunchKernel!(fn.handle, ...grid, ...block, sharedBytes, this.stream.handle, null, this.extraPtr) as number;
    }
    if (code !== 0) this.api.check(`${overlap ? 'cuLaunchKernelEx' : 'cuLaunchKernel'}(${fn.name}, grid ${grid.join('x')}, block ${block.join('x')}, smem ${sharedBytes})`, code);
  }

  /** Frees the native argument buffers (modules stay with the context). */
  dispose(): void {
    koffi.free(this.argPtr as never);
    koffi.free(this.sizePtr as never);
    koffi.free(this.extraPtr as never);
    koffi.free(this.launchExPtr as never);
  }
}

/**
 * Packs `args` into `view` as a kernel's parameter block (CU_LAUNCH_PARAM_BUFFER_POINTER): at the offsets of `layout`
 * (the kernel's own, each argument's size checked against its parameter's), or without one each at its natural
 * alignment, which is right only for kernels without struct parameters (a struct's offset depends on where the
 * constant bank holds the block, paramLayout); returns the bytes used.
 */
export function packKernelArguments(view: DataView, args: readonly KernelArg[], layout?: readonly ParamSlot[]): number {
  let end = 0;
  args.forEach((a, i) => {
    const size = a instanceof DeviceBuffer || 'u64' in a || 'f64' in a ? 8 : 'struct' in a ? a.struct.byteLength : 4;
    const slot = layout?.[i];
    if (layout !== undefined && slot?.size !== size) throw new RangeError(`kernel argument ${i} is ${size} bytes, its parameter ${slot === undefined ? 'does not exist' : `is ${slot.size}`}`);
    if (slot === undefined && 'struct' in a) throw new RangeError(`kernel argument ${i} is a struct: it needs the kernel's parameter layout`);
    const off = slot?.offset ?? Math.ceil(end / size) * size;
    if (off + size > view.byteLength) throw new RangeError(`kernel arguments pass the ${view.byteLength}-byte parameter buffer`);
    if (a instanceof DeviceBuffer || 'u64' in a) view.setBigUint64(off, BigInt(a instanceof DeviceBuffer ? a.address : a.u64), true);
    else if ('f64' in a) view.setFloat64(off, a.f64, true);
    else if ('i32' in a) view.setInt32(off, a.i32, true);
    else if ('f32' in a) view.setFloat32(off, a.f32, true);
    else new Uint8Array(view.buffer, view.byteOffset + off, size).set(a.struct);
    end = Math.max(end, off + size);
  });
  return end;
}
