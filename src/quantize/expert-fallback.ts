/**
 * A mixture-of-experts expert that too few calibration tokens reach (the router sends each token to
 * only topK of the experts) has too little data for GPTQ's Hessian or AWQ's search: it is quantized
 * with plain RTN through the same group quantizer instead, and its report says so.
 */
import { quantizeLinearReport } from '../quant/quantize-linear.js';
import { rtnRowsOnPool } from '../backends/cpu/rtn-pool.js';
import { linearReport, type ReportSink } from '../quant/methods/report.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from '../quant/types.js';

/**
 * The default threshold: an expert reached by fewer calibration tokens than this falls back to RTN
 * (a heuristic: a Hessian from fewer rows than a few dozen is mostly dampening).
 */
export const DEFAULT_MIN_EXPERT_TOKENS = 64;

/** Why an expert that saw `tokens` calibration tokens falls back to RTN (always when none), or null when it does not. */
export function expertFallback(expert: number | null, tokens: number, minTokens: number): string | null {
  if (expert === null || (tokens >= minTokens && tokens > 0)) return null;
  return `RTN: expert ${expert} was routed ${tokens} calibration tokens, fewer than ${minTokens}`;
}

/** RTN of one linear, reported with the reason it fell back. */
export function quantizeFallback(w: FloatLinear, spec: QuantSpec, name: string, reason: string, report: ReportSink): QuantizedLinear {
  const { layer, alpha } = quantizeLinearReport(w, spec, name, rtnRowsOnPool);
  report({ ...linearReport(name, spec, layer, alpha), fallback: reason });
  return layer;
}
