/**
 * Typed arrays in shared memory, so the CPU worker pool can read and write them without copies
 * and the WASM SIMD kernels can address them. Weights and activation scratch that kernels touch
 * are allocated here.
 *
 * Two kinds of allocation:
 *  - by default each array gets a SharedArrayBuffer of its own, freed by the GC like any array:
 *    right for activations allocated per call;
 *  - inside withArenaAllocation(fn) (wrap model loading / quantization in it), arrays are carved
 *    from the arena: a bump allocator over one growable shared WebAssembly.Memory, whose buffer
 *    is a SharedArrayBuffer the WASM SIMD kernels address directly. Arena arrays are 16-byte
 *    aligned and zero-filled; the memory never shrinks, but a block given back with
 *    releaseArenaBlock is reused by the next allocation of its size or up to 1.5× smaller (calibration
 *    prepares and releases layers of the same shapes one after another; KV caches come in varying
 *    sizes): use it for weights and long-lived buffers only.
 *    When the arena cannot grow (4 GiB, the wasm32 limit) or shared wasm memory is unavailable,
 *    arrays silently get their own SharedArrayBuffer instead (kernels then take their JS path).
 *
 * Note: an arena array's `.buffer` is the whole arena; use byteOffset/byteLength (as in
 * `new Uint8Array(a.buffer, a.byteOffset, a.byteLength)`), never `.buffer` alone.
 * INTSCALE_ARENA=0 turns the arena off.
 */

const PAGE_BYTES = 65536;
/** wasm32 addresses at most 4 GiB. */
export const ARENA_MAX_PAGES = 65536;
const ALIGN = 16;

interface Arena {
  readonly memory: WebAssembly.Memory;
  /** next free byte */
  top: number;
  /** the memory's current SharedArrayBuffer (a new object after each grow) */
  buffer: SharedArrayBuffer;
  /** every buffer object handed out, to recognise arena views */
  readonly buffers: WeakSet<SharedArrayBuffer>;
  /** false for an arena adopted from another thread: only its owner allocates */
  readonly allocates: boolean;
  /** blocks given back, by their (aligned) size in bytes: offsets to reuse */
  readonly released: Map<number, number[]>;
  /** the size of every block reused from `released` that is larger than the view made of it (offset → bytes) */
  readonly reusedSizes: Map<number, number>;
}

let arena: Arena | null | undefined;
/** > 0 while inside withArenaAllocation */
let arenaScopeDepth = 0;

function createArena(memory?: WebAssembly.Memory): Arena | null {
  const allocates = memory === undefined;
  if (memory === undefined) {
    if (process.env['INTSCALE_ARENA'] === '0') return null;
    try {
      memory = new WebAssembly.Memory({ initial: 1, maximum: ARENA_MAX_PAGES, shared: true });
    } catch {
      return null;
    }
  }
  const buffer = memory.buffer as unknown as SharedArrayBuffer;
  const buffers = new WeakSet<SharedArrayBuffer>([buffer]);
  // keep the first bytes unused so that address 0 never names an allocation
  return { memory, top: ALIGN, buffer, buffers, allocates, released: new Map(), reusedSizes: new Map() };
}

function getArena(): Arena | null {
  if (arena === undefined) arena = createArena();
  return arena;
}

/** Byte address of a fresh 16-byte-aligned block in the arena, or -1 when it cannot grow. */
function arenaAlloc(a: Arena, bytes: number): number {
  const size = Math.ceil(bytes / ALIGN) * ALIGN;
  const block = reusableBlock(a, size);
  if (block >= 0) {
    const reused = a.released.get(block)!.pop()!;
    if (block > size) a.reusedSizes.set(reused, block);
    new Uint8Array(a.buffer, reused, size).fill(0);
    return reused;
  }
  const start = a.top;
  const end = start + size;
  if (end > a.buffer.byteLength) {
    const have = a.buffer.byteLength / PAGE_BYTES;
    const need = Math.ceil(end / PAGE_BYTES);
    // grow geometrically (by half) so that many small allocations do not grow page by page
    if (need > ARENA_MAX_PAGES) return -1;
    const want = Math.min(ARENA_MAX_PAGES, Math.max(need, Math.ceil(have * 1.5)));
    try {
      a.memory.grow(want - have);
    } catch {
      try {
        a.memory.grow(need - have);
      } catch {
        return -1;
      }
    }
    a.buffer = a.memory.buffer as unknown as SharedArrayBuffer;
    a.buffers.add(a.buffer);
  }
  a.top = end;
  return start;
}

/**
 * The size of the released block to reuse for `size` bytes, or -1: the smallest released block of at
 * least `size` and at most REUSE_SLACK times it (the same size when there is one; a larger block's
 * tail goes unused until it is released again whole), so blocks of varying sizes (KV caches of
 * requests of different lengths) are reused instead of growing the arena by one block per size.
 */
const REUSE_SLACK = 1.5;
function reusableBlock(a: Arena, size: number): number {
  let best = -1;
  for (const [s, offsets] of a.released) {
    if (offsets.length > 0 && s >= size && s <= size * REUSE_SLACK && (best < 0 || s < best)) best = s;
  }
  return best;
}

type SharedView<T> = new (buffer: SharedArrayBuffer, byteOffset: number, length: number) => T;

function allocate<T>(View: SharedView<T> & { BYTES_PER_ELEMENT: number }, length: number, inArena = arenaScopeDepth > 0): T {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`shared allocation length must be a non-negative integer, got ${length}`);
  const bytes = length * View.BYTES_PER_ELEMENT;
  const a = inArena ? getArena() : null;
  if (a !== null && a.allocates) {
    const at = arenaAlloc(a, bytes);
    if (at >= 0) return new View(a.buffer, at, length);
  }
  return new View(new SharedArrayBuffer(bytes), 0, length);
}

export function sharedFloat32(length: number): Float32Array {
  return allocate(Float32Array, length);
}

export function sharedFloat64(length: number): Float64Array {
  return allocate(Float64Array, length);
}

export function sharedInt8(length: number): Int8Array {
  return allocate(Int8Array, length);
}

export function sharedInt32(length: number): Int32Array {
  return allocate(Int32Array, length);
}

export function sharedUint8(length: number): Uint8Array {
  return allocate(Uint8Array, length);
}

/** The same values in shared memory (returns the input when it already is shared). */
export function toSharedFloat32(a: Float32Array): Float32Array {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const s = sharedFloat32(a.length);
  s.set(a);
  return s;
}

/**
 * Runs fn with the allocators above carving their arrays from the arena (permanently), e.g.
 * `const model = withArenaAllocation(() => loadModel(dir))`. Nests; returns fn's result.
 */
export function withArenaAllocation<T>(fn: () => T): T {
  arenaScopeDepth++;
  try {
    return fn();
  } finally {
    arenaScopeDepth--;
  }
}

/** A float array in the arena whatever the scope (scratch of the WASM kernels). */
export function arenaFloat32(length: number): Float32Array {
  return allocate(Float32Array, length, true);
}

/**
 * Scratch of at least `length` floats in the arena: `current` when it is large enough, else a new
 * block, `current` given back for reuse (releaseArenaBlock). For kernels' scratch kept between calls.
 */
export function arenaScratchFloat32(current: Float32Array, length: number): Float32Array {
  if (current.length >= length) return current;
  releaseArenaBlock(current);
  return arenaFloat32(length);
}

/** The arena's shared WebAssembly.Memory (created on first use), or null when there is none. */
export function arenaMemory(): WebAssembly.Memory | null {
  return getArena()?.memory ?? null;
}

/**
 * Makes this thread use an existing arena memory (a worker adopting the main thread's), before
 * it allocates anything. Only the owning thread allocates in the arena; allocations in a thread
 * that adopted it get SharedArrayBuffers of their own.
 */
export function adoptArenaMemory(memory: WebAssembly.Memory): void {
  if (arena !== undefined && arena !== null && arena.memory === memory) return;
  if (arena !== undefined && arena !== null && arena.top > ALIGN) throw new Error('adoptArenaMemory: this thread already allocated from its own arena');
  arena = createArena(memory);
}

/** Byte address of a view inside the arena (as the wasm kernels see it), or -1 when it is elsewhere. */
export function arenaAddress(view: ArrayBufferView): number {
  const a = getArena();
  if (a === null || !(view.buffer instanceof SharedArrayBuffer) || !a.buffers.has(view.buffer)) return -1;
  return view.byteOffset;
}

/**
 * Gives an arena array's block back for reuse by a later allocation of the same size (the view
 * must not be used after). Arrays outside the arena are left to the GC: nothing to do.
 */
export function releaseArenaBlock(view: ArrayBufferView): void {
  const a = getArena();
  if (a === null || !a.allocates || arenaAddress(view) < 0 || view.byteLength === 0) return;
  const size = a.reusedSizes.get(view.byteOffset) ?? Math.ceil(view.byteLength / ALIGN) * ALIGN;
  a.reusedSizes.delete(view.byteOffset);
  let list = a.released.get(size);
  if (list === undefined) a.released.set(size, (list = []));
  if (!list.includes(view.byteOffset)) list.push(view.byteOffset);
}

/** Whether every array given lives in shared memory (so the worker pool sees it, not a copy). */
export function allShared(...arrays: (ArrayBufferView | undefined)[]): boolean {
  for (const a of arrays) if (a !== undefined && !(a.buffer instanceof SharedArrayBuffer)) return false;
  return true;
}
