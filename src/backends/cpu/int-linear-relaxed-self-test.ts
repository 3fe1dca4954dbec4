/**
 * The relaxed W4 kernels' self-test (int-linear-wasm-kernel.ts runs it once before they serve a process): an
 * experimental code generator once gave wrong sums in the larger register blocks, so every block function of
 * both modes runs on a random W4 layer and is compared with the sums in plain integers.
 */
import { arenaAddress, releaseArenaBlock, sharedUint8, withArenaAllocation } from '../../tensor/shared.js';
import { intActivationRowBytes, INT_RELAXED_MODES, INT_WASM_BLOCKS, relaxedActivationByte, type BlockTable } from './int-linear-wasm-module.js';

/**
 * Runs every relaxed block function on a random W4 layer (8 channels, 2 groups of 64, 4 tokens, a = 1,
 * 1/α = 1, integer scales and float scales 1) and compares with the sums in plain integers.
 */
export function relaxedSelfTest(is: BlockTable, fs: BlockTable): boolean {
  const [N, M, gc, bpg] = [8, 4, 2, 2];
  const K = gc * bpg * 32;
  let seed = 0x5eed;
  const int = (lo: number, hi: number): number => { // a small LCG: lo ≤ value < hi
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return lo + (seed >>> 8) % (hi - lo);
  };
  const q = Int8Array.from({ length: N * K }, () => int(-8, 8));
  const x = Int8Array.from({ length: M * K }, () => int(-127, 128));
  const S = Int32Array.from({ length: N * gc }, () => int(1, 200));
  const xRow = intActivationRowBytes(4, gc, bpg, true);
  const [wBytes, scBytes, xBytes, aBytes, outBytes] = [N * K / 2, 4 * N * gc, M * xRow, 4 * M, 4 * M * N];
  const block = withArenaAllocation(() => sharedUint8(wBytes + scBytes + xBytes + aBytes + outBytes));
  if (arenaAddress(block) < 0) return false;
  try {
    const base = block.byteOffset;
    const view = new DataView(block.buffer, base, block.length);
    for (let i = 0; i < N * K; i += 2) block[i / 2] = (q[i]! & 15) | ((q[i + 1]! & 15) << 4);
    const [w, sc, xAt, a, out] = [base, base + wBytes, base + wBytes + scBytes, base + wBytes + scBytes + xBytes, base + wBytes + scBytes + xBytes + aBytes];
    for (let m = 0; m < M; m++) {
      view.setFloat32(a - base + 4 * m, 1, true);
      for (let g = 0; g < gc; g++) {
        const at = xAt - base + m * xRow + g * (16 + 32 * bpg);
        let sum = 0;
        for (let i = 0; i < 32 * bpg; i++) {
          const k = g * 32 * bpg + i;
          sum += x[m * K + k]!;
          view.setInt8(at + 16 + relaxedActivationByte(i), x[m * K + k]!);
        }
        view.setInt32(at, -8 * sum, true);
        for (let l = 4; l < 16; l += 4) view.setInt32(at + l, 0, true);
      }
    }
    for (const mode of INT_RELAXED_MODES) {
      for (let n = 0; n < N * gc; n++) {
        if (mode === 'is') view.setInt32(sc - base + 4 * n, S[n]!, true);
        else view.setFloat32(sc - base + 4 * n, 1, true);
      }
      const table = mode === 'is' ? is : fs;
      for (let f = 0; f < table.length; f++) {
        const [C, T] = INT_WASM_BLOCKS[f]!; // the table's order
        new Float32Array(block.buffer, out, M * N).fill(NaN);
        for (let m = 0; m + T <= M; m += T) table[f]!(0, N - (N % C), xAt + m * xRow, a + 4 * m, out + 4 * m * N, 4 * N, w, sc, gc, bpg, 0, 1, 0);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let total = 0;
          for (let g = 0; g < gc; g++) {
            let acc = 0;
            for (let i = 0; i < 32 * bpg; i++) acc += x[m * K + g * 32 * bpg + i]! * q[n * K + g * 32 * bpg + i]!;
            total += acc * (mode === 'is' ? S[n * gc + g]! : 1);
          }
          if (view.getFloat32(out - base + 4 * (m * N + n), true) !== Math.fround(total)) return false;
        }
      }
    }
    return true;
  } finally {
    releaseArenaBlock(block);
  }
}
