/**
 * The WASM SIMD A8 path of intLinear, on the main thread: quantizes the activations once per call
 * (exactly as quantizeActivations does; a prefill's rows split over the pool) straight into int16 (relaxed W4: int8) arena
 * scratch laid out per padded group, then runs the row kernel (int-linear-wasm-kernel.ts) over the output channels, split
 * across the CPU pool when the product is large enough, and copies the result out.
 *
 * Scratch (x16, a, out, ovf, and a stage for x when x is outside the arena) lives in the arena, grows
 * geometrically and is reused by every call (calls are synchronous and come from one thread).
 */
import { int32OverflowError } from './int-linear-reference.js';
import type { PreparedIntLinear } from './int-linear-prepared.js';
import { intLinearWasmRows, relaxedIntLinearAvailable, wasmIntLinearAvailable, type IntLinearWasmArgs } from './int-linear-wasm-kernel.js';
import { intActivationRowBytes, INT_RELAXED_MODES, INT_WASM_MODES } from './int-linear-wasm-module.js';
import { KERNEL_INT_LINEAR_WASM, KERNEL_QUANTIZE_INT16 } from './pool/kernels.js';
import { int16ArenaAddresses, quantizeInt16Rows, type Int16ActivationArgs } from './int-activation-rows.js';
import { copyRowsOnPool } from './copy-pool.js';
import type { CpuPool } from './pool/index.js';
import { arenaAddress, sharedUint8, withArenaAllocation } from '../../tensor/shared.js';
import { unpackRow } from '../../quant/int4-pack.js';
import type { QuantizedLinear } from '../../quant/types.js';

/** Below this many multiply-adds per thread the integer kernel is not worth a dispatch. */
export const INT_MIN_MACS_PER_THREAD = 1 << 18;
/** Below this many activations per thread their quantization runs on the calling thread (a decode step's row does). */
const QUANTIZE_MIN_VALUES_PER_THREAD = 1 << 14;

let scratchBytes: Uint8Array | undefined;

/** One arena block of at least `bytes` bytes (grown geometrically); undefined when the arena is full. */
function scratch(bytes: number): Uint8Array | undefined {
  if (scratchBytes === undefined || scratchBytes.length < bytes) {
    const grown = withArenaAllocation(() => sharedUint8(Math.max(bytes, 2 * (scratchBytes?.length ?? 0))));
    if (arenaAddress(grown) < 0) return undefined;
    scratchBytes = grown;
  }
  return scratchBytes;
}

const align16 = (v: number) => Math.ceil(v / 16) * 16;

/**
 * Whether intLinearWasm runs p on the relaxed W4 kernel: unpadded groups (its activation rows are WASM
 * only), a mode it serves, and a runtime whose relaxed SIMD passed the self-test.
 */
export function usesRelaxedKernel(p: PreparedIntLinear): boolean {
  return p.bits === 4 && p.groupPadded === p.groupSize && INT_RELAXED_MODES.includes(p.mode) && relaxedIntLinearAvailable();
}

/**
 * y = x · W'ᵀ (+ bias) for the A8 layer w prepared as p into out [M, N]; false (nothing written)
 * when the WASM path cannot run (no arena room). pool null: the calling thread only; threads get
 * at least minMacsPerThread multiply-adds each (fewer threads otherwise).
 */
export function intLinearWasm(
  x: Float32Array, M: number, w: QuantizedLinear, p: PreparedIntLinear, out: Float32Array, pool: CpuPool | null,
  minMacsPerThread = INT_MIN_MACS_PER_THREAD,
): boolean {
  if (p.wAddress < 0 || !wasmIntLinearAvailable()) return false;
  const N = p.n;
  const relaxed = usesRelaxedKernel(p);
  const xRow = intActivationRowBytes(p.bits, p.groupCount, p.blocksPerGroup, relaxed);
  const checked = p.mode === 'is-checked';
  const xBytes = align16(M * xRow);
  const aBytes = align16(4 * M);
  const outBytes = align16(4 * M * N);
  const ovfBytes = checked ? align16(M * N) : 0;
  // x outside the arena (an op's fresh output) is staged into it row by row, where the WASM quantization reads it
  const stageBytes = arenaAddress(x) < 0 ? align16(4 * M * p.k) : 0;
  const block = scratch(xBytes + aBytes + outBytes + ovfBytes + stageBytes);
  if (block === undefined) return false;
  const base = block.byteOffset;
  const x16 = new Int16Array(block.buffer, base, xBytes / 2);
  const a = new Float32Array(block.buffer, base + xBytes, M);
  const y = new Float32Array(block.buffer, base + xBytes + aBytes, M * N);
  const stage = new Float32Array(block.buffer, base + xBytes + aBytes + outBytes + ovfBytes, stageBytes > 0 ? M * p.k : 0);
  quantizeToInt16(x, M, p, x16, xRow / 2, a, stage, relaxed, pool);
  const args: IntLinearWasmArgs = {
    x: base, a: base + xBytes, out: base + xBytes + aBytes,
    ovf: checked ? base + xBytes + aBytes + outBytes : 0,
    w: p.wAddress, sc: p.scAddress, bias: p.biasAddress,
    m: M, n: N, groupCount: p.groupCount, blocksPerGroup: p.blocksPerGroup, invAlpha: p.invAlpha,
    bits: p.bits, mode: INT_WASM_MODES.indexOf(p.mode), relaxed: relaxed ? 1 : 0,
  };
  if (pool === null || pool.threads === 1) intLinearWasmRows(args, 0, N);
  else pool.run(KERNEL_INT_LINEAR_WASM, args, N, { align: 2, workPerRow: M * p.k, minWorkPerThread: minMacsPerThread });
  if (checked) throwOnOverflow(new Uint8Array(block.buffer, args.ovf, M * N), x16, xRow / 2, w, p);
  copyRowsOnPool(y, out, M, N, pool);
  return true;
}

/**
 * The activations in the kernel's layout (int-activation-rows.ts: int16, or the relaxed kernel's int8), a prefill's
 * rows split over the pool; `stage`: arena room for x's rows when x is outside the arena (else empty).
 */
function quantizeToInt16(x: Float32Array, M: number, p: PreparedIntLinear, x16: Int16Array, rowLength: number, scales: Float32Array,
  stage: Float32Array, relaxed: boolean, pool: CpuPool | null): void {
  const { k, groupSize, groupCount, groupPadded, slots, bits } = p;
  if (x.length < M * k) throw new RangeError(`x holds ${x.length} values, need M·K = ${M}·${k}`);
  const args: Int16ActivationArgs = {
    x, x16, scales, slots, k, groupSize, groupCount, groupPadded, rowLength, bits, relaxed: relaxed ? 1 : 0, stage,
    ...int16ArenaAddresses(x, x16, scales, stage, M, k),
  };
  if (pool === null) quantizeInt16Rows(args, 0, M);
  else pool.runWhereShared(KERNEL_QUANTIZE_INT16, args, M, { workPerRow: k, minWorkPerThread: QUANTIZE_MIN_VALUES_PER_THREAD });
}

/** Throws the reference's error for the first flagged output in token-major order, if any. */
function throwOnOverflow(ovf: Uint8Array, x16: Int16Array, rowLength: number, w: QuantizedLinear, p: PreparedIntLinear): void {
  const at = ovf.indexOf(1);
  if (at < 0) return;
  const m = Math.floor(at / p.n);
  const n = at % p.n;
  const { groupSize: G, groupCount, groupPadded: Gp, slots } = p;
  const S = w.intScales!;
  const q = unpackRow(w, n, new Int8Array(w.k));
  let total = 0;
  for (let g = 0; g < groupCount; g++) {
    let acc = 0;
    for (let i = 0; i < G; i++) acc += x16[m * rowLength + g * Gp + slots[i]!]! * q[g * G + i]!;
    total += acc * S[n * groupCount + g]!;
    if (Math.abs(total) >= 2 ** 31) throw int32OverflowError(m, n, total);
  }
  throw new Error(`internal: the integer kernel flagged an overflow at token ${m}, channel ${n} that does not reproduce`);
}
