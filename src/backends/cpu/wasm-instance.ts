/**
 * A generated WASM module instantiated on this thread's view of the arena (src/tensor/shared.ts),
 * as every CPU kernel does once per thread: its exports, or null when there is no shared arena or
 * the runtime refuses the module (no WASM SIMD), so the caller takes its JS path.
 */
import { arenaMemory, ARENA_MAX_PAGES } from '../../tensor/shared.js';

export function instantiateOnArena<T>(build: (maxPages: number) => Uint8Array<ArrayBuffer>): T | null {
  const memory = arenaMemory();
  if (memory === null) return null;
  try {
    return new WebAssembly.Instance(new WebAssembly.Module(build(ARENA_MAX_PAGES)), { env: { memory } }).exports as unknown as T;
  } catch {
    return null;
  }
}
