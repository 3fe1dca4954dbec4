/**
 * Per-layer data of the WASM integer kernels, computed once per QuantizedLinear object (on the main
 * thread, lazily on its first call or eagerly with prepareIntLinear at load time) and kept in the
 * shared arena (src/tensor/shared.ts). Workers never see the layer object: a job carries only the
 * arena byte addresses below, so nothing is rebuilt per call or per thread.
 *
 * Weight layout: see int-linear-wasm-module.ts (16-byte blocks of int16x8-ready nibbles / bytes,
 * each group padded to Gp = G rounded up to 32 (W4) or 16 (W8) inputs, padding q = 0).
 * W4 weights take N·gc·Gp/2 bytes, W8 N·gc·Gp bytes, next to the layer's own int8 q.
 *
 * The layer must not be mutated after its first call (its cached preparation would be stale).
 */
import { proveNoOverflow } from '../../quant/overflow.js';
import type { QuantizedLinear } from '../../quant/types.js';
import { arenaAddress, sharedFloat32, sharedInt32, sharedUint8, withArenaAllocation } from '../../tensor/shared.js';
import { inputsPerBlock, type IntKernelBits, type IntKernelMode } from './int-linear-wasm-module.js';

/** Everything the WASM A8 kernel needs of one layer, in the arena. */
export interface PreparedIntLinear {
  readonly n: number;
  readonly k: number;
  readonly groupSize: number;
  readonly groupCount: number;
  readonly bits: IntKernelBits;
  /** 'is' for a proved overflow-free integer-scale layer, 'is-checked' without proof, 'fs' for float scale. */
  readonly mode: IntKernelMode;
  /** 2^-alphaLog2 (1 for float scale). */
  readonly invAlpha: number;
  /** G rounded up to the weight block (32 inputs for W4, 16 for W8). */
  readonly groupPadded: number;
  /** 16-byte weight blocks per group. */
  readonly blocksPerGroup: number;
  /** the laid-out weights, [N, gc·Gp/2] (W4) or [N, gc·Gp] (W8) bytes. */
  readonly weights: Uint8Array;
  /** S [N, gc] (int32) for integer scale, s [N, gc] (f32) for float scale. */
  readonly scales: Int32Array | Float32Array;
  readonly bias: Float32Array | undefined;
  /** arena byte addresses of weights / scales / bias; all -1 when any of them is outside the arena. */
  readonly wAddress: number;
  readonly scAddress: number;
  /** 0 when the layer has no bias. */
  readonly biasAddress: number;
}

const cache = new WeakMap<QuantizedLinear, PreparedIntLinear>();
let preparations = 0;

/** How many layers were prepared so far in this thread (tests check it does not grow per call). */
export function intLinearPreparationCount(): number {
  return preparations;
}

/** The prepared data of an A8 layer (built on the first call for this layer object). */
export function preparedIntLinear(w: QuantizedLinear): PreparedIntLinear {
  let p = cache.get(w);
  if (p === undefined) {
    p = withArenaAllocation(() => prepare(w));
    cache.set(w, p);
    preparations++;
  }
  return p;
}

function prepare(w: QuantizedLinear): PreparedIntLinear {
  if (w.aBits !== 8) throw new RangeError('the integer kernels need an 8-bit-activation layer');
  const { n, k, groupSize: G, wBits: bits } = w;
  const groupCount = k / G;
  const perBlock = inputsPerBlock(bits);
  const blocksPerGroup = Math.ceil(G / perBlock);
  const groupPadded = blocksPerGroup * perBlock;
  const rowBytes = groupCount * blocksPerGroup * 16;
  const weights = sharedUint8(n * rowBytes);
  for (let row = 0; row < n; row++) layoutRow(w.q, row * k, G, groupCount, bits, weights, row * rowBytes, blocksPerGroup);
  let scales: Int32Array | Float32Array;
  if (w.scale === 'int') {
    scales = sharedInt32(n * groupCount);
    scales.set(w.intScales!.subarray(0, n * groupCount));
  } else {
    scales = sharedFloat32(n * groupCount);
    scales.set(w.scales.subarray(0, n * groupCount));
  }
  let bias: Float32Array | undefined;
  if (w.bias !== undefined) {
    bias = sharedFloat32(n);
    bias.set(w.bias.subarray(0, n));
  }
  const mode: IntKernelMode = w.scale === 'float' ? 'fs' : proveNoOverflow(w).safe ? 'is' : 'is-checked';
  const addresses = [arenaAddress(weights), arenaAddress(scales), bias === undefined ? 0 : arenaAddress(bias)];
  const inArena = addresses.every((a) => a >= 0);
  return {
    n, k, groupSize: G, groupCount, bits, mode,
    invAlpha: w.scale === 'int' ? 2 ** -w.alphaLog2! : 1,
    groupPadded, blocksPerGroup, weights, scales, bias,
    wAddress: inArena ? addresses[0]! : -1,
    scAddress: inArena ? addresses[1]! : -1,
    biasAddress: inArena ? addresses[2]! : -1,
  };
}

/** Lays out one weight row (q[src .. src+K)) into 16-byte blocks at out[dst ..]. */
function layoutRow(
  q: Int8Array, src: number, G: number, groupCount: number, bits: IntKernelBits,
  out: Uint8Array, dst: number, blocksPerGroup: number,
): void {
  const perBlock = inputsPerBlock(bits);
  for (let g = 0; g < groupCount; g++) {
    for (let b = 0; b < blocksPerGroup; b++) {
      const k0 = b * perBlock; // within the group
      const at = dst + (g * blocksPerGroup + b) * 16;
      const get = (i: number): number => (k0 + i < G ? q[src + g * G + k0 + i]! : 0);
      for (let l = 0; l < 8; l++) {
        let lane: number;
        if (bits === 4) lane = (get(l) & 15) | ((get(8 + l) & 15) << 4) | ((get(16 + l) & 15) << 8) | ((get(24 + l) & 15) << 12);
        else lane = (get(l) & 255) | ((get(8 + l) & 255) << 8);
        out[at + 2 * l] = lane & 255;
        out[at + 2 * l + 1] = lane >>> 8;
      }
    }
  }
}
