/**
 * The decode engine's unit of work: one resident GEMM with its bias and shape, and a group of
 * GEMMs that read one input (q/k/v, gate/up), stacked into one where their formats allow.
 */
import type { DeviceBuffer } from './buffer.js';
import type { ResidentLinear } from './resident-linear.js';

/** One GEMM of the engine: a layer (or a stack of layers reading the same input), its bias, its output widths. */
export interface EngineLinear {
  readonly resident: Exclude<ResidentLinear, { kind: 'cpu' }>;
  readonly bias: DeviceBuffer | null;
  readonly n: number;
  readonly k: number;
}

/** q/k/v (or gate/up) as one stacked GEMM, or one GEMM per part when their formats differ. */
export interface LinearGroup {
  readonly stacked: boolean;
  readonly linears: readonly EngineLinear[];
  /** the parts' output widths (q, k, v or gate, up). */
  readonly widths: readonly number[];
  /** stacked with the parts' rows interleaved in blocks of this many (quant/concat.ts): gate/up, 8; 0: one part after the other. */
  readonly interleave: number;
}
