/**
 * The activations of an A8 integer linear in the layout the WASM kernel reads (int-linear-wasm-kernel.ts):
 * quantizeActivations (activation-quant.ts) bit for bit, as int16 rows of rowLength with input i of
 * group g at g·groupPadded + slots[i] (the kernel's block order; padding left as it is: its weights
 * are 0), and each row's scale. A row kernel, so the CPU pool can split a prefill's rows.
 */
import { activationScale, quantizeActivation } from '../../quant/activation-quant.js';

export interface Int16ActivationArgs {
  readonly [name: string]: Float32Array | Int16Array | Int32Array | number;
  /** x [M, k] */
  readonly x: Float32Array;
  /** out: [M, rowLength] */
  readonly x16: Int16Array;
  /** out: [M] */
  readonly scales: Float32Array;
  /** the kernel's slot of each of a group's inputs [groupSize] */
  readonly slots: Int32Array;
  readonly k: number;
  readonly groupSize: number;
  readonly groupCount: number;
  readonly groupPadded: number;
  readonly rowLength: number;
}

export function quantizeInt16Rows(args: Int16ActivationArgs, r0: number, r1: number): void {
  const { x, x16, scales, slots, k: K, groupSize: G, groupCount, groupPadded: Gp, rowLength } = args;
  for (let row = r0; row < r1; row++) {
    const src = row * K;
    const a = activationScale(x, src, K);
    scales[row] = a;
    const dst = row * rowLength;
    if (a === 0) {
      x16.fill(0, dst, dst + rowLength);
      continue;
    }
    for (let g = 0; g < groupCount; g++) {
      const s = src + g * G;
      const d = dst + g * Gp;
      for (let i = 0; i < G; i++) x16[d + slots[i]!] = quantizeActivation(x[s + i]!, a);
    }
  }
}
