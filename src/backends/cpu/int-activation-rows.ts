/**
 * The activations of an A8 integer linear in the layout the WASM kernel reads (int-linear-wasm-kernel.ts):
 * quantizeActivations (activation-quant.ts) bit for bit, as int16 rows of rowLength with input i of
 * group g at g·groupPadded + slots[i] (the kernel's block order; padding left as it is: its weights
 * are 0), and each row's scale. A row kernel, so the CPU pool can split a prefill's rows. Rows in the
 * arena (or copied to `stage` there) with unpadded groups run in WASM SIMD (int-activation-wasm-module.ts),
 * the others in JS (quantizeInt16RowsJs, the reference the WASM rows are tested against).
 */
import { activationScale, quantizeActivation } from '../../quant/activation-quant.js';
import { arenaAddress } from '../../tensor/shared.js';
import { buildIntActivationWasmModule, type QuantizeRowsWasm } from './int-activation-wasm-module.js';
import { instantiateOnArena } from './wasm-instance.js';

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
  /** the kernel's weight bits (4: slot order, 8: input order) */
  readonly bits: number;
  /** 1: the relaxed W4 kernel's int8 layout (int-linear-wasm-module.ts; WASM rows only), 0: int16 */
  readonly relaxed: number;
  /** [M, k] in the arena where x is not (its rows are copied there for the WASM rows), or empty */
  readonly stage: Float32Array;
  /**
   * Arena byte addresses, taken on the calling thread (a worker's copies of the arrays are other
   * objects, which arenaAddress does not know): where the WASM rows read x (x's own, or the stage's when
   * `staged`), write x16 and the scales; −1 where there is none (the JS rows run then).
   */
  readonly xAt: number;
  readonly x16At: number;
  readonly scalesAt: number;
  /** 1: x is outside the arena, each thread copies its rows into `stage` first */
  readonly staged: number;
}

/** The arena addresses of Int16ActivationArgs for these arrays (see there). */
export function int16ArenaAddresses(x: Float32Array, x16: Int16Array, scales: Float32Array, stage: Float32Array, m: number, k: number):
  Pick<Int16ActivationArgs, 'xAt' | 'x16At' | 'scalesAt' | 'staged'> {
  const own = arenaAddress(x);
  const stageAt = own < 0 && stage.length >= m * k ? arenaAddress(stage) : -1;
  return { xAt: stageAt >= 0 ? stageAt : own, x16At: arenaAddress(x16), scalesAt: arenaAddress(scales), staged: stageAt >= 0 ? 1 : 0 };
}

let wasm: { quantize_rows: QuantizeRowsWasm } | null | undefined;

/** Whether these rows run in WASM on this thread: the module instantiates, the arrays are in the arena, the groups unpadded. */
export function int16RowsInWasm(args: Int16ActivationArgs): boolean {
  const { groupSize: G, groupPadded: Gp, rowLength, bits } = args;
  if (Gp !== G || G % (bits === 4 ? 32 : 16) !== 0 || (rowLength * 2) % 16 !== 0) return false;
  if (args.xAt < 0 || args.x16At < 0 || args.scalesAt < 0) return false;
  return (wasm ??= instantiateOnArena<{ quantize_rows: QuantizeRowsWasm }>(buildIntActivationWasmModule)) !== null;
}

/**
 * The row kernel (pool/kernels.ts): rows [r0, r1) in WASM where int16RowsInWasm, else in JS; the same bits
 * either way. The relaxed layout has WASM rows only (its caller checks int16RowsInWasm first).
 */
export function quantizeInt16Rows(args: Int16ActivationArgs, r0: number, r1: number): void {
  if (r1 <= r0) return;
  if (!int16RowsInWasm(args)) {
    if (args.relaxed === 1) throw new Error('internal: the relaxed activation layout needs the WASM rows');
    return quantizeInt16RowsJs(args, r0, r1);
  }
  const { x, k: K, rowLength, bits, stage } = args;
  if (args.staged === 1) stage.set(x.subarray(r0 * K, r1 * K), r0 * K); // this thread's rows, into the arena
  const layout = args.relaxed === 1 ? 2 : bits === 4 ? 1 : 0;
  wasm!.quantize_rows(args.xAt + 4 * r0 * K, K, r1 - r0, layout, args.groupSize, args.x16At + 2 * r0 * rowLength, 2 * rowLength, args.scalesAt + 4 * r0);
}

/** The rows [r0, r1) in plain JS (any layout). */
export function quantizeInt16RowsJs(args: Int16ActivationArgs, r0: number, r1: number): void {
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
