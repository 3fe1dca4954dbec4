/**
 * Device memory of a context: allocation (DeviceBuffer, freed by its owner) and copies between
 * host and device, in order on the context's stream where they say so.
 */
import { DeviceBuffer } from './buffer.js';
import type { DriverApi } from './driver.js';
import type { CudaStream } from './stream.js';

export class CudaAllocator {
  constructor(
    private readonly api: DriverApi,
    private readonly stream: CudaStream,
  ) {}

  alloc(bytes: number): DeviceBuffer {
    const p = new BigUint64Array(1);
    this.api.check(`cuMemAlloc(${bytes} B)`, this.api.fn.cuMemAlloc!(p, Math.max(1, bytes)) as number);
    return new DeviceBuffer(this.api, Number(p[0]!), bytes);
  }

  /** Allocates and uploads (synchronous copy on the legacy stream). */
  upload(src: ArrayBufferView): DeviceBuffer {
    const b = this.alloc(src.byteLength);
    b.upload(src);
    return b;
  }

  /**
   * Copies host values into dst (from byte 0) in order on the stream, so kernels queued after it
   * see them; the host array may be reused as soon as this returns (pageable memory is staged
   * before the call returns).
   */
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView): void {
    if (src.byteLength > dst.bytes) throw new RangeError(`copy of ${src.byteLength} B overflows a ${dst.bytes} B buffer`);
    this.api.check('cuMemcpyHtoDAsync', this.api.fn.cuMemcpyHtoDAsync!(dst.address, src, src.byteLength, this.stream.handle) as number);
  }

  /** Waits for the stream, then copies the first dst.byteLength bytes of src to the host. */
  copyToHost<T extends ArrayBufferView>(dst: T, src: DeviceBuffer): T {
    this.stream.synchronize();
    return src.download(dst);
  }

  /** Copies `bytes` (default: all of src) from src to dst in order on the stream (observed stream work). */
  copyOnStream(dst: DeviceBuffer, src: DeviceBuffer, bytes = src.bytes): void {
    if (bytes > dst.bytes || bytes > src.bytes) throw new RangeError(`device copy of ${bytes} B between buffers of ${src.bytes} and ${dst.bytes} B`);
    const [d, s] = [dst.address, src.address];
    this.stream.onStream(() => this.api.check('cuMemcpyDtoDAsync', this.api.fn.cuMemcpyDtoDAsync!(d, s, bytes, this.stream.handle) as number));
  }

  /** Synchronous device-to-device copy (legacy stream). */
  copyDtoD(dst: DeviceBuffer, src: DeviceBuffer, bytes = Math.min(dst.bytes, src.bytes)): void {
    this.api.check('cuMemcpyDtoD', this.api.fn.cuMemcpyDtoD!(dst.address, src.address, bytes) as number);
  }

  /** Free and total device memory in bytes. */
  memInfo(): { free: number; total: number } {
    const f = new BigUint64Array(1);
    const t = new BigUint64Array(1);
    this.api.check('cuMemGetInfo', this.api.fn.cuMemGetInfo!(f, t) as number);
    return { free: Number(f[0]!), total: Number(t[0]!) };
  }
}
