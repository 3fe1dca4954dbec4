/** What every method records for each linear layer it quantizes: spec, α chosen, overflow proof. */
import type { AlphaChoice } from '../amplifier.js';
import { proveNoOverflow, type OverflowProof } from '../overflow.js';
import type { QuantizedLinear, QuantSpec } from '../types.js';

export interface LinearReport {
  /** Hugging Face module name, e.g. model.layers.0.mlp.down_proj */
  readonly name: string;
  readonly spec: QuantSpec;
  readonly alphaLog2: number | null;
  /** the safe policy chose a smaller α than asked, to rule out int32 overflow. */
  readonly alphaLowered: boolean;
  readonly overflow: OverflowProof | null;
  /** why the method fell back to plain RTN for this layer (a mixture-of-experts expert that too few calibration tokens reached). */
  readonly fallback?: string;
}

export type ReportSink = (report: LinearReport) => void;

export function linearReport(name: string, spec: QuantSpec, layer: QuantizedLinear, alpha?: AlphaChoice): LinearReport {
  return {
    name,
    spec,
    alphaLog2: alpha?.alphaLog2 ?? null,
    alphaLowered: alpha?.lowered ?? false,
    overflow: layer.scale === 'int' && layer.aBits === 8 ? proveNoOverflow(layer) : null,
  };
}
