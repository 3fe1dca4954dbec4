/**
 * What the CUDA decode engine's GPU tests share: the context (or the reason to skip), an engine made
 * and disposed around a check, the fast path's stated tolerances and its error measure.
 */
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import { createCudaEngine, type CudaEngine, type CudaEngineOptions } from '../../../src/backends/cuda/decode-engine.js';
import type { Model } from '../../../src/model/forward.js';
import { argmax } from '../../../src/model/sampling.js';
import type { Reference } from '../../helpers/reference.js';

const cuda = tryCudaContext();
export const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
/** The context every engine of these tests runs on (withEngine). */
export const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

/** The fast path's accuracy: logits within this fraction of the largest reference logit. */
export const QUANTIZED_TOLERANCE = 5e-2;
export const FLOAT_TOLERANCE = 1e-2;
/**
 * A sequence in a batch against the same sequence alone: the integer GEMMs are exact at any M, but
 * the kernels chosen at M rows sum their float epilogues and cuBLAS its fp16 lm_head in other orders.
 */
export const BATCH_TOLERANCE = 1e-3;

export function withEngine(model: Model, options: Omit<CudaEngineOptions, 'ctx'>, run: (e: CudaEngine) => void): void {
  const engine = createCudaEngine(model.config, model.weights, { ctx: ctxOf(), ...options });
  try {
    run(engine);
  } finally {
    engine.dispose();
  }
}

export const largest = (a: Float32Array): number => a.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
/** The largest |got − want| as a fraction of the largest |want|. */
export const relativeError = (got: Float32Array, want: Float32Array): number => got.reduce((w, v, i) => Math.max(w, Math.abs(v - want[i]!)), 0) / largest(want);

/**
 * Whether greedy decoding from `got` may pick another token than from `want` within the tolerance:
 * the same argmax, or want's logit of got's pick within `tolerance` of the largest |want| below its best.
 */
export function sameGreedyWithin(got: Float32Array, want: Float32Array, tolerance: number): boolean {
  const [g, w] = [argmax(got), argmax(want)];
  return g === w || want[w]! - want[g]! <= tolerance * largest(want);
}

/** A transformers fixture on the engine: its reference's prompt token by token and as one prefill. */
export interface FixtureRun {
  /** the largest logit error as a fraction of the largest reference logit, fed token by token. */
  readonly tokenByToken: number;
  /** the same for the last row of one prefill of the whole prompt. */
  readonly prefillLast: number;
  /** `greedySteps` greedy tokens from the prompt's last logits (each fed back but the last). */
  readonly greedy: number[];
}

export function engineOnFixture(engine: CudaEngine, ref: Reference, greedySteps = 0): FixtureRun {
  const ids = ref.inputIds;
  const vocab = ref.logits.length / ids.length;
  const seq = engine.open(ids.length + greedySteps);
  const rows = ids.map((id) => seq.feed([id]));
  const got = new Float32Array(ref.logits.length);
  rows.forEach((r, i) => got.set(r, i * vocab));
  const greedy: number[] = [];
  let last = rows[rows.length - 1]!;
  for (let s = 0; s < greedySteps; s++) {
    greedy.push(argmax(last));
    if (s + 1 < greedySteps) last = seq.feed([greedy[s]!]);
  }
  seq.release();
  const whole = engine.open(ids.length);
  const prefillLast = relativeError(whole.feed(ids), ref.logits.subarray((ids.length - 1) * vocab));
  whole.release();
  return { tokenByToken: relativeError(got, ref.logits), prefillLast, greedy };
}
