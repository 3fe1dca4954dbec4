/**
 * Device memory with explicit ownership: whoever allocates a DeviceBuffer frees it with free().
 * No finalizers: GPU memory is released when the code says so, never at a GC's whim.
 */
import type { DriverApi } from './driver.js';

/** How many buffers have been freed so far (process-wide): a recorded pass replays only while this is unchanged. */
let freedBuffers = 0;
export const freedBufferCount = (): number => freedBuffers;

export class DeviceBuffer {
  private freed = false;

  constructor(
    private readonly api: DriverApi,
    /** the device address (CUdeviceptr). */
    readonly ptr: number,
    readonly bytes: number,
    /** set on views: they share their parent's memory and are never freed themselves. */
    private readonly parent: DeviceBuffer | null = null,
  ) {}

  /** `bytes` of this buffer from byte `offset`, as a buffer that kernels accept; free() on it throws. */
  view(offset: number, bytes: number): DeviceBuffer {
    if (!Number.isInteger(offset) || !Number.isInteger(bytes) || offset < 0 || bytes < 0 || offset + bytes > this.bytes) {
      throw new RangeError(`view of ${bytes} B at ${offset} does not fit a ${this.bytes} B buffer`);
    }
    return new DeviceBuffer(this.api, this.address + offset, bytes, this.parent ?? this);
  }

  /** Throws when used after free(). */
  get address(): number {
    if (this.freed || this.parent?.freed) throw new Error('DeviceBuffer used after free()');
    return this.ptr;
  }

  /** Whether the memory is gone: this buffer freed, or, for a view, the buffer it was taken from. */
  get isFreed(): boolean {
    return this.freed || (this.parent?.freed ?? false);
  }

  /** Copies host bytes into the buffer at byte offset `offset`. */
  upload(src: ArrayBufferView, offset = 0): void {
    if (offset + src.byteLength > this.bytes) throw new RangeError(`upload of ${src.byteLength} B at ${offset} overflows a ${this.bytes} B buffer`);
    this.api.check('cuMemcpyHtoD', this.api.fn.cuMemcpyHtoD!(this.address + offset, src, src.byteLength) as number);
  }

  /** Copies the buffer (or its first dst.byteLength bytes from `offset`) to the host; synchronous. */
  download<T extends ArrayBufferView>(dst: T, offset = 0): T {
    if (offset + dst.byteLength > this.bytes) throw new RangeError(`download of ${dst.byteLength} B at ${offset} overflows a ${this.bytes} B buffer`);
    this.api.check('cuMemcpyDtoH', this.api.fn.cuMemcpyDtoH!(dst, this.address + offset, dst.byteLength) as number);
    return dst;
  }

  /** Sets every byte to `value` (0xFF poisons float outputs with NaN). */
  fill(value: number): void {
    this.api.check('cuMemsetD8', this.api.fn.cuMemsetD8!(this.address, value & 0xff, this.bytes) as number);
  }

  free(): void {
    if (this.parent) throw new Error('free() on a view: free the buffer it was taken from');
    if (this.freed) return;
    this.freed = true;
    freedBuffers++;
    this.api.check('cuMemFree', this.api.fn.cuMemFree!(this.ptr) as number);
  }
}

/** Throws a RangeError naming `what` when buf holds fewer than `bytes` bytes (the launchers' shape check). */
export function needBytes(what: string, buf: DeviceBuffer, bytes: number): void {
  if (buf.bytes < bytes) throw new RangeError(`${what}: buffer of ${buf.bytes} B, the shape needs ${bytes} B`);
}

/** The device addresses of `buffers` as a host u64 array (a kernel's table of pointers, uploaded by the caller). */
export function addressTable(buffers: readonly DeviceBuffer[]): BigUint64Array {
  return BigUint64Array.from(buffers, (b) => BigInt(b.address));
}
