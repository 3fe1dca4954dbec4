/**
 * Per-layer data of the WASM integer kernels, made once when the backend prepares the layer (on
 * the main thread; int-linear.ts's prepareIntLinear). Workers never see the layer object: a job
 * carries only the arena byte addresses below.
 *
 * The kernel reads the layer's packed weights (src/quant/int4-pack.ts) in place, with its scales
 * and bias, when all of them are in the shared arena and G is a multiple of the kernel's block
 * (32 inputs for W4, 16 for W8): then nothing is copied, and a loaded model holds each weight
 * once. Otherwise (a layer built outside the arena, or a ragged G) the data is copied into the
 * arena, each group zero-padded to the block (see int-linear-wasm-module.ts); releasing the
 * preparation gives those blocks back to the arena.
 */
import type { QuantizedLinear } from '../../quant/types.js';
import { unpackRow } from '../../quant/int4-pack.js';
import { arenaAddress, releaseArenaBlock, sharedFloat32, sharedInt32, sharedUint8, withArenaAllocation } from '../../tensor/shared.js';
import { activationSlot, inputsPerBlock, type IntKernelBits, type IntKernelMode } from './int-linear-wasm-module.js';

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
  /** the packed weights, [N, gc·Gp/2] (W4) or [N, gc·Gp] (W8) bytes: the layer's own when Gp = G. */
  readonly weights: Uint8Array;
  /** activation slot of each input of a group (activationSlot), [G]. */
  readonly slots: Int32Array;
  /** whether weights, scales and bias are the layer's own arrays (nothing copied). */
  readonly inPlace: boolean;
  /** S [N, gc] (int32) for integer scale, s [N, gc] (f32) for float scale. */
  readonly scales: Int32Array | Float32Array;
  readonly bias: Float32Array | undefined;
  /** arena byte addresses of weights / scales / bias; all -1 when any of them is outside the arena. */
  readonly wAddress: number;
  readonly scAddress: number;
  /** 0 when the layer has no bias. */
  readonly biasAddress: number;
}

/**
 * The kernel data of an A8 layer; provenSafe: the layer's int32 overflow proof (quant/overflow.ts)
 * holds, so the kernel skips the per-output check. wAddress is -1 when the arena had no room.
 */
export function prepareIntLinearWasm(w: QuantizedLinear, provenSafe: boolean): PreparedIntLinear {
  return withArenaAllocation(() => prepare(w, provenSafe));
}

/** Gives back the arena blocks a preparation made: its slot table, and its copies (none when it read the layer in place). */
export function releaseIntLinearWasm(p: PreparedIntLinear): void {
  releaseArenaBlock(p.slots);
  if (p.inPlace) return;
  releaseArenaBlock(p.weights);
  releaseArenaBlock(p.scales);
  if (p.bias !== undefined) releaseArenaBlock(p.bias);
}

function prepare(w: QuantizedLinear, provenSafe: boolean): PreparedIntLinear {
  if (w.aBits !== 8) throw new RangeError('the integer kernels need an 8-bit-activation layer');
  const { n, k, groupSize: G, wBits: bits } = w;
  const groupCount = k / G;
  const perBlock = inputsPerBlock(bits);
  const blocksPerGroup = Math.ceil(G / perBlock);
  const groupPadded = blocksPerGroup * perBlock;
  const ownScales = w.scale === 'int' ? w.intScales!.subarray(0, n * groupCount) : w.scales.subarray(0, n * groupCount);
  const own = [w.packed, ownScales, ...(w.bias ? [w.bias] : [])];
  const inPlace = groupPadded === G && own.every((a) => arenaAddress(a) >= 0);
  const weights = inPlace ? w.packed : paddedCopy(w, groupCount, blocksPerGroup);
  let scales: Int32Array | Float32Array = ownScales;
  let bias = w.bias;
  if (!inPlace) {
    scales = w.scale === 'int' ? sharedInt32(n * groupCount) : sharedFloat32(n * groupCount);
    scales.set(ownScales);
    if (w.bias !== undefined) {
      bias = sharedFloat32(n);
      bias.set(w.bias.subarray(0, n));
    }
  }
  const mode: IntKernelMode = w.scale === 'float' ? 'fs' : provenSafe ? 'is' : 'is-checked';
  const addresses = [arenaAddress(weights), arenaAddress(scales), bias === undefined ? 0 : arenaAddress(bias)];
  const inArena = addresses.every((a) => a >= 0);
  return {
    n, k, groupSize: G, groupCount, bits, mode,
    invAlpha: w.scale === 'int' ? 2 ** -w.alphaLog2! : 1,
    groupPadded, blocksPerGroup, weights, scales, bias, inPlace,
    slots: activationSlots(bits, G),
    wAddress: inArena ? addresses[0]! : -1,
    scAddress: inArena ? addresses[1]! : -1,
    biasAddress: inArena ? addresses[2]! : -1,
  };
}

/** Each of a group's G inputs' slot in the kernel's block order (activationSlot), shared so pool threads read it. */
function activationSlots(bits: IntKernelBits, G: number): Int32Array {
  const slots = sharedInt32(G);
  for (let i = 0; i < G; i++) slots[i] = activationSlot(bits, i);
  return slots;
}

/** The packed weights with each group zero-padded to blocksPerGroup blocks, in the arena. */
function paddedCopy(w: QuantizedLinear, groupCount: number, blocksPerGroup: number): Uint8Array {
  const { n, k, groupSize: G, wBits: bits } = w;
  const Gp = blocksPerGroup * inputsPerBlock(bits);
  const rowBytes = bits === 4 ? (groupCount * Gp) / 2 : groupCount * Gp;
  const out = sharedUint8(n * rowBytes);
  const q = new Int8Array(k);
  for (let row = 0; row < n; row++) {
    unpackRow(w, row, q);
    const at = row * rowBytes;
    for (let g = 0; g < groupCount; g++) {
      for (let i = 0; i < G; i++) {
        const v = q[g * G + i]!;
        const j = g * Gp + i; // input index in the padded row
        if (bits === 8) out[at + j] = v & 0xff;
        else out[at + (j >> 1)]! |= (v & 0x0f) << ((j & 1) * 4);
      }
    }
  }
  return out;
}
