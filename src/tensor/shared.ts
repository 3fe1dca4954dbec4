/**
 * Typed arrays backed by SharedArrayBuffer, so the CPU worker pool can read and write them
 * without copies. Weights and activation scratch that kernels touch are allocated here.
 */
export function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * 4));
}

export function sharedInt8(length: number): Int8Array {
  return new Int8Array(new SharedArrayBuffer(length));
}

export function sharedInt32(length: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(length * 4));
}

export function sharedUint8(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}

/** The same values in shared memory (returns the input when it already is shared). */
export function toSharedFloat32(a: Float32Array): Float32Array {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const s = sharedFloat32(a.length);
  s.set(a);
  return s;
}
