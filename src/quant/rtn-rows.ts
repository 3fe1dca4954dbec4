/**
 * RTN's two passes over a layer (quantize-linear.ts) as row kernels, so a caller can split a layer's rows
 * over threads (the CPU pool: AWQ's grid search quantizes a whole layer per grid point) with the same bits:
 *   rtnScaleRows: absMax[n,g] = max|W[n, g·G .. g·G+G)|, floatScales[n,g] = fround(absMax / qmax);
 *   rtnCodeRows:  each group through chooseGroupScale (the scaler: float, or Integer Scale's α) and
 *                 quantizeValue, the codes written straight into the packed format (int4-pack.ts: W4 two a
 *                 byte, low nibble first; W8 a byte each). A row whose integer scale does not fit int32
 *                 records the first such group (overflow[0] = 1 + its index, the smallest wins) and stops.
 * Arrays are shared memory when the rows run on other threads.
 */
import { chooseGroupScale, floatGroupScale, groupAbsMax, quantizeValue } from './group-quant.js';
import type { WeightBits } from './types.js';

export interface RtnRowArgs {
  readonly [name: string]: Float32Array | Float64Array | Int32Array | Uint8Array | number;
  /** W [n, k] row-major. */
  readonly w: Float32Array;
  readonly k: number;
  readonly groupSize: number;
  readonly bits: WeightBits;
  /** [n, k/G] */
  readonly absMax: Float64Array;
  readonly floatScales: Float32Array;
  readonly scales: Float32Array;
  /** Integer Scale's S [n, k/G]; unused (length 0) for float scales. */
  readonly intScales: Int32Array;
  /** log2 α of Integer Scale; −1 for float scales. */
  readonly alphaLog2: number;
  /** packed codes (int4-pack.ts) */
  readonly packed: Uint8Array;
  /** [1]: 1 + the first group (row-major) whose integer scale does not fit int32, else 0. */
  readonly overflow: Int32Array;
}

export function rtnScaleRows(a: RtnRowArgs, rowStart: number, rowEnd: number): void {
  const { w, k, groupSize: G, bits, absMax, floatScales } = a;
  const groupCount = k / G;
  for (let i = rowStart * groupCount; i < rowEnd * groupCount; i++) {
    absMax[i] = groupAbsMax(w, i * G, i * G + G);
    floatScales[i] = floatGroupScale(absMax[i]!, bits);
  }
}

export function rtnCodeRows(a: RtnRowArgs, rowStart: number, rowEnd: number): void {
  const { w, k, groupSize: G, bits, absMax, scales, intScales, packed, overflow } = a;
  const groupCount = k / G;
  const scaler = a.alphaLog2 < 0 ? ({ kind: 'float' } as const) : ({ kind: 'int', alphaLog2: a.alphaLog2 } as const);
  for (let i = rowStart * groupCount; i < rowEnd * groupCount; i++) {
    const chosen = chooseGroupScale(scaler, absMax[i]!, bits);
    scales[i] = chosen.scale;
    if (scaler.kind === 'int') {
      const S = chosen.intScale!;
      if (S > 2 ** 31 - 1) {
        // the smallest index wins, whichever thread gets here first
        for (let seen = Atomics.load(overflow, 0); seen === 0 || seen > i + 1; seen = Atomics.load(overflow, 0)) {
          if (Atomics.compareExchange(overflow, 0, seen, i + 1) === seen) break;
        }
        return;
      }
      intScales[i] = S;
    }
    const s = chosen.scale, start = i * G;
    if (bits === 4 && G % 2 === 0) {
      for (let j = start; j < start + G; j += 2) packed[j >> 1] = (quantizeValue(w[j]!, s, 4) & 0x0f) | ((quantizeValue(w[j + 1]!, s, 4) & 0x0f) << 4);
    } else if (bits === 4) {
      // an odd group size: a group's first or last byte is shared with its neighbour (in the same row: K is even)
      for (let j = start; j < start + G; j++) {
        const q = quantizeValue(w[j]!, s, 4) & 0x0f, b = j >> 1;
        packed[b] = j & 1 ? (packed[b]! & 0x0f) | (q << 4) : (packed[b]! & 0xf0) | q;
      }
    } else {
      for (let j = start; j < start + G; j++) packed[j] = quantizeValue(w[j]!, s, 8) & 0xff;
    }
  }
}
