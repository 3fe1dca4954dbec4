/**
 * GPTQ (Frantar et al. 2022) for one linear layer y = x·Wᵀ, W [N, K], through the shared group
 * quantizer (group-quant.ts): Integer Scale is only the scaler passed in, never a fork.
 *
 * Objective ‖X·Wᵀ − X·Ŵᵀ‖² with H = (2/T)·XᵀX (hessian.ts), in float64 throughout:
 *   1. dead inputs (H[i,i] = 0): H[i,i] = 1 and W[:,i] = 0 (they never affect the output);
 *   2. act-order (optional): columns in order of decreasing H[i,i];
 *   3. dampening: H += λ·I, λ = damp · mean_i H[i,i]   (damp = 0.01 by default);
 *   4. U = upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU); not positive definite → InputError;
 *   5. columns i = 0 … K−1 (in that order), lazily in blocks of B (128):
 *        q_i = Q(W[:,i]),  e = (W[:,i] − q_i) / U[i,i],
 *        W[:,j] −= e · U[i,j]   for j > i — at once for j in the block, for the rest of the
 *        columns once per block (W[:, i2:] −= E·U[i1:i2, i2:]), which is the same arithmetic.
 *   Static groups: the scale of group g (G consecutive *original* input channels) is fixed when
 *   the first column of g comes up, from the current — error-updated — values of g's columns
 *   (for columns past the block, the pending in-block updates are added exactly first), and
 *   every column of g is then quantized with it. Without act-order this is GPTQ's usual
 *   `groupsize` behaviour; with act-order groups stay contiguous in the checkpoint.
 *   Integer Scale: α is chosen once for the layer before the loop, by the spec's policy from the
 *   RTN float scales of the original weights, then every group scale is chooseGroupScale with
 *   integerScaler(α) — S = round(s·α), the group quantized with S/α. With the 'safe' policy the
 *   overflow bound is re-proved on the result (GPTQ's updates can grow a group's max) and α is
 *   lowered and the layer redone if it fails.
 */
import { packWeights } from '../int4-pack.js';
import { InputError } from '../../errors.js';
import { sharedFloat32, sharedFloat64, sharedInt32, sharedInt8 } from '../../tensor/shared.js';
import { type AlphaChoice, chooseAlpha } from '../amplifier.js';
import { floatGroupScale, floatScaler, groupAbsMax, integerScaler, type GroupScaler } from '../group-quant.js';
import { gptqBlockRows, type GptqBlockArgs } from './gptq-block.js';
import { proveNoOverflow } from '../overflow.js';
import { resolveGroupSize, type QuantizeReport } from '../quantize-linear.js';
import type { FloatLinear, QuantizedLinear, QuantSpec } from '../types.js';
import { SERIAL_KERNELS, upperCholeskyOfInverse, type TriangularKernels } from './cholesky.js';

export interface GptqSettings {
  /** dampening λ as a fraction of the mean diagonal of H (GPTQ's percdamp). */
  readonly damp: number;
  /** columns per lazy block update. */
  readonly blockSize: number;
  /** quantize columns in order of decreasing H[i,i]. */
  readonly actOrder: boolean;
}

export const DEFAULT_GPTQ: GptqSettings = { damp: 0.01, blockSize: 128, actOrder: false };

/**
 * The lazy block update W[:, i2:] −= E · U[i1:i2, i2:] with W [n, k] and E [n, i2 − i1] (row-major),
 * GPTQ's O(n·k²) part. lazyUpdateF64 is the reference (float64 loops); quant/ stays free of
 * backends, so a caller passes a faster one (quantize/gptq-products.ts: the CPU backend's matmul).
 */
export type LazyUpdate = (W: Float64Array, n: number, k: number, err: Float64Array, u: Float64Array, i1: number, i2: number) => void;

export const lazyUpdateF64: LazyUpdate = (W, n, k, err, u, i1, i2) => {
  const count = i2 - i1;
  for (let r = 0; r < n; r++) {
    const wr = r * k;
    for (let c = 0; c < count; c++) {
      const e = err[r * count + c]!;
      if (e === 0) continue;
      const uc = (i1 + c) * k;
      for (let j = i2; j < k; j++) W[wr + j] -= e * u[uc + j]!;
    }
  }
};

/**
 * Runs gptqBlockRows over rows [0, rows) (the CPU backend splits them over its pool: quantize/gptq-products.ts).
 * The args' arrays are shared memory.
 */
export type BlockRows = (args: GptqBlockArgs, rows: number) => void;

/** The two parts of step 5 a caller may run faster; SERIAL_GPTQ is the reference (this thread, float64 loops). */
export interface GptqKernels {
  readonly blockRows: BlockRows;
  readonly lazyUpdate: LazyUpdate;
}

export const SERIAL_GPTQ: GptqKernels = { blockRows: (args, rows) => gptqBlockRows(args, 0, rows), lazyUpdate: lazyUpdateF64 };

/**
 * Step 5 with one scaler: w's columns quantized with the factor's U, G the group size. hostColumns runs
 * it on host arrays through GptqKernels; a GPU keeps W on the device (backends/cuda/gptq-cuda.ts).
 */
export type GptqColumns = (w: FloatLinear, factor: GptqFactor, spec: QuantSpec, G: number, scaler: GroupScaler, settings: GptqSettings, name: string) => QuantizedLinear;

/** One input's Hessian as it is accumulated, and the factor made of it (steps 1–4); X the rows' tensor type. */
export interface GptqAccumulator<X = Float32Array> {
  /** Adds the m rows of x [m, K]. */
  add(x: X, m: number): void;
  /** tokens seen. */
  readonly tokens: number;
  /** The factor of H = (2/T)·XᵀX (the accumulator is spent after it); `name` names the input in errors. */
  factor(settings: GptqSettings, name: string): GptqFactor;
  /** Frees what the accumulator holds (device memory); idempotent. */
  release(): void;
}

/**
 * Where GPTQ's Hessians, factors and column loops run: the CPU (quantize/gptq-products.ts) or a GPU; X is the
 * tensor type its accumulators take (the calibration stream's: host arrays, or a GPU's device buffers).
 */
export interface GptqEngine<X = Float32Array> {
  accumulator(k: number): GptqAccumulator<X>;
  readonly columns: GptqColumns;
  /** One line naming where it runs (progress output). */
  readonly name: string;
}

/**
 * GPTQ-quantizes one float layer given its Hessian H [K, K] (not modified), or the factor gptqFactor
 * made of it (linears that read the same input share one: the O(K³) part runs once).
 */
export function gptqQuantizeLinear(w: FloatLinear, hessian: Float64Array | GptqFactor, spec: QuantSpec,
  settings: GptqSettings = DEFAULT_GPTQ, name = 'layer', kernels: GptqKernels | GptqColumns = SERIAL_GPTQ): QuantizeReport {
  const run = typeof kernels === 'function' ? kernels : hostColumns(kernels);
  const { n, k } = w;
  if (w.w.length !== n * k) throw new InputError(`${name}: ${w.w.length} weights for shape [${n}, ${k}]`, { tensor: name });
  const factor = hessian instanceof Float64Array ? gptqFactor(hessian, k, settings, name) : hessian;
  if (factor.k !== k) throw new InputError(`${name}: a GPTQ factor of ${factor.k} inputs for a layer of ${k}`, { tensor: name });
  if (factor.settings.damp !== settings.damp || factor.settings.actOrder !== settings.actOrder) {
    throw new Error(`${name}: the GPTQ factor was made with other settings (damp, act-order)`);
  }
  const G = resolveGroupSize(k, spec.groupSize, name);
  if (spec.scale === 'float') return { layer: run(w, factor, spec, G, floatScaler, settings, name) };

  const groupCount = k / G;
  const floatScales = new Float32Array(n * groupCount);
  for (let i = 0; i < floatScales.length; i++) floatScales[i] = floatGroupScale(groupAbsMax(w.w, i * G, i * G + G), spec.wBits);
  let alpha: AlphaChoice = chooseAlpha({ scales: floatScales, n, groupCount, groupSize: G, wBits: spec.wBits }, spec.alpha, name);
  for (;;) {
    const layer = run(w, factor, spec, G, integerScaler(alpha.alphaLog2), settings, name);
    if (spec.alpha.kind !== 'safe' || alpha.alphaLog2 === 0 || (spec.aBits === 8 ? proveNoOverflow(layer).safe : true)) return { layer, alpha };
    const b = alpha.alphaLog2 - 1;
    alpha = { ...alpha, alphaLog2: b, lowered: b < alpha.requestedLog2 };
  }
}

/** Steps 1–4 (gptqFactor): the (permuted) column order, the dead columns and U; made once per Hessian. */
export interface GptqFactor {
  readonly k: number;
  /** the settings it was made with (damp and act-order shape it). */
  readonly settings: GptqSettings;
  /** perm[i] = original column quantized at position i. */
  readonly perm: Int32Array;
  readonly dead: Uint8Array;
  /** upper Cholesky factor of the dampened, permuted H⁻¹, [K, K], in shared memory (the CPU pool's workers read it). */
  readonly u: Float64Array;
}

/**
 * The factor of H [K, K] (not modified); `name` names the layer or input group in errors; `kernels`
 * run its two O(K³) steps (the CPU pool's split them over threads, with the same bits).
 */
export function gptqFactor(hessian: Float64Array, k: number, settings: GptqSettings, name: string, kernels: TriangularKernels = SERIAL_KERNELS): GptqFactor {
  if (hessian.length !== k * k) throw new InputError(`${name}: Hessian of ${hessian.length} values for ${k} inputs`, { tensor: name });
  const diagonal = new Float64Array(k);
  for (let i = 0; i < k; i++) diagonal[i] = hessian[i * k + i]!;
  const { perm, dead, diag, lambda } = factorPlan(diagonal, settings, name);
  const h = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    const pi = perm[i]!;
    for (let j = 0; j < k; j++) h[i * k + j] = i === j ? diag[pi]! + lambda : hessian[pi * k + perm[j]!]!;
  }
  const f = upperCholeskyOfInverse(h, k, kernels);
  if (!f.ok) throw notPositiveDefinite(name, settings, perm[f.column]!, `with pivot ${f.pivot.toExponential(3)}`);
  return { k, settings, perm, dead, u: f.u };
}

/**
 * Steps 1–3 from H's diagonal: the dead inputs (H[i,i] = 0; their diagonal taken as 1), the column
 * order (act-order: decreasing H[i,i], ties by index) and λ. The dampened, permuted matrix is then
 * h[i, j] = i = j ? diag[perm[i]] + λ : H[perm[i], perm[j]].
 */
export function factorPlan(diagonal: Float64Array, settings: GptqSettings, name: string): { perm: Int32Array; dead: Uint8Array; diag: Float64Array; lambda: number } {
  if (!(settings.damp >= 0) || !Number.isInteger(settings.blockSize) || settings.blockSize < 1) {
    throw new InputError(`${name}: GPTQ needs damp ≥ 0 and a positive integer block size, got ${settings.damp} and ${settings.blockSize}`, { tensor: name });
  }
  const k = diagonal.length;
  const dead = new Uint8Array(k);
  const diag = Float64Array.from(diagonal);
  for (let i = 0; i < k; i++) {
    if (diag[i] === 0) {
      dead[i] = 1;
      diag[i] = 1;
    }
  }
  const perm = sharedInt32(k);
  for (let i = 0; i < k; i++) perm[i] = i;
  if (settings.actOrder) perm.sort((a, b) => diag[b]! - diag[a]! || a - b);
  let mean = 0;
  for (let i = 0; i < k; i++) mean += diag[i]!;
  return { perm, dead, diag, lambda: (settings.damp * mean) / k };
}

/** The error for a Hessian whose dampened Cholesky fails at (original) input `column`. */
export function notPositiveDefinite(name: string, settings: GptqSettings, column: number, detail: string): InputError {
  return new InputError(
    `${name}: the GPTQ Hessian is not positive definite after dampening by ${settings.damp} of its mean diagonal ` +
      `(Cholesky failed at input column ${column}${detail ? ` ${detail}` : ''}); ` +
      `pass a larger --damp (e.g. --damp ${settings.damp > 0 ? settings.damp * 10 : 0.01}) or more calibration data`,
    { tensor: name },
  );
}

/**
 * The column plan of step 5: position = perm's inverse, and groupAt[i] = g where position i is the first
 * of group g (G consecutive original inputs) to come up — its scales are fixed there — else −1.
 */
export function columnPlan(perm: Int32Array, G: number): { position: Int32Array; groupAt: Int32Array } {
  const k = perm.length;
  const position = sharedInt32(k);
  for (let i = 0; i < k; i++) position[perm[i]!] = i;
  const groupAt = sharedInt32(k).fill(-1);
  const fixed = new Uint8Array(k / G);
  for (let i = 0; i < k; i++) {
    const g = Math.floor(perm[i]! / G);
    if (!fixed[g]) {
      fixed[g] = 1;
      groupAt[i] = g;
    }
  }
  return { position, groupAt };
}

/** The error for a row whose integer scale does not fit int32. */
export const intScaleOverflow = (name: string, row: number): InputError =>
  new InputError(`${name}: an integer scale of row ${row} does not fit int32; lower α`, { tensor: name });

/** Step 5 on host arrays, its two hot parts run by `kernels`. */
export const hostColumns = (kernels: GptqKernels): GptqColumns => (w, { perm, dead, u }, spec, G, scaler, settings, name) => {
  const { n, k } = w;
  const bits = spec.wBits;
  const groupCount = k / G;
  // W in the permuted column order, float64, dead columns zeroed.
  const W = sharedFloat64(n * k);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) W[r * k + i] = dead[perm[i]!] ? 0 : w.w[r * k + perm[i]!]!;
  }
  const { position, groupAt } = columnPlan(perm, G);
  const q = sharedInt8(n * k);
  const scales = sharedFloat32(n * groupCount);
  const intScales = scaler.kind === 'int' ? sharedInt32(n * groupCount) : undefined;
  const B = settings.blockSize;
  const err = sharedFloat64(n * Math.min(B, k)); // E[r, c] for the block's columns
  const overflow = sharedInt32(1);
  const block = { W, u, err, q, scales, intScales, perm, position, groupAt, k, i1: 0, i2: 0, groupSize: G, bits,
    alphaLog2: scaler.kind === 'int' ? scaler.alphaLog2 : -1, overflow };
  for (let i1 = 0; i1 < k; i1 += B) {
    const i2 = Math.min(i1 + B, k);
    kernels.blockRows({ ...block, i1, i2 }, n);
    if (overflow[0] !== 0) throw intScaleOverflow(name, overflow[0]! - 1);
    // lazy update of the columns after the block: W[:, i2:] −= E · U[i1:i2, i2:]
    if (i2 < k) kernels.lazyUpdate(W, n, k, err, u, i1, i2);
  }
  return columnsResult(w, spec, G, scaler, q, scales, intScales);
};

/** The quantized layer step 5 made: codes q [n, k] (original column order), scales [n, k/G], S when integer. */
export function columnsResult(w: FloatLinear, spec: QuantSpec, G: number, scaler: GroupScaler, q: Int8Array, scales: Float32Array,
  intScales: Int32Array | undefined): QuantizedLinear {
  const { n, k } = w;
  return {
    kind: 'quantized', n, k, groupSize: G, wBits: spec.wBits, aBits: spec.aBits, packed: packWeights(q, n, k, spec.wBits), scale: spec.scale, scales,
    ...(intScales && scaler.kind === 'int' ? { intScales, alphaLog2: scaler.alphaLog2 } : {}),
    ...(w.bias ? { bias: w.bias } : {}),
  };
}
