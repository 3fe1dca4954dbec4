/**
 * The plain, exact reference of every quantized linear y = x · W'ᵀ (+ bias). Clarity over speed;
 * the fast kernels (int-linear.ts) must match it bit for bit.
 *
 * Layouts: x [M, K] float32, xq [M, K] int8 with per-token scales a [M], q [N, K] int8,
 * scales / intScales [N, K/G], output y [M, N] float32, all row-major. g = k / G.
 *
 *   acc[m,n,g] = Σ_{k∈g} xq[m,k] · q[n,k]                                   (int32, exact)
 *   A8, integer scale: total = Σ_g acc[m,n,g] · S[n,g]  in int32 — every partial sum is checked
 *                      and |total| ≥ 2^31 throws (never wraps);
 *                      y = fround( fround( fround(total) · a[m] ) · 2^-b )
 *                      (× 2^-b is exact, so cvt.rn.f32.s32 + two f32 multiplies on a GPU agree)
 *   A8, float scale:   t = 0; for g: t = fround( t + fround( fround(acc) · s[n,g] ) );  y = fround(a[m] · t)
 *   A16 (weight-only): y = fround( Σ_k x[m,k] · (q[n,k] · s[n,g]) )   summed in float64 in k order
 *   bias, if any, last: y = fround(y + bias[n]).
 */
import { INT32_LIMIT } from '../../quant/overflow.js';
import { unpackWeights } from '../../quant/int4-pack.js';
import { quantizeActivations, type QuantizedActivations } from '../../quant/activation-quant.js';
import type { QuantizedLinear } from '../../quant/types.js';

/** Throws when an integer-scale partial sum leaves int32. */
export function int32OverflowError(m: number, n: number, value: number): RangeError {
  return new RangeError(
    `int32 overflow in the integer-scale epilogue at token ${m}, output channel ${n}: |${value}| ≥ 2^31 ` +
      `(the layer is not overflow-safe; choose it with the 'safe' amplifier policy)`,
  );
}

/** acc[m,n,g] = Σ_{k∈g} xq[m,k]·q[n,k], Int32Array [M, N, K/G]. */
export function groupAccumulators(act: QuantizedActivations, w: QuantizedLinear): Int32Array {
  const { m: M, k: K } = act;
  const { n: N, groupSize: G } = w;
  if (K !== w.k) throw new RangeError(`activations have K = ${K}, layer has K = ${w.k}`);
  const groupCount = K / G;
  const q = unpackWeights(w);
  const out = new Int32Array(M * N * groupCount);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groupCount; g++) {
        let acc = 0;
        for (let k = g * G; k < (g + 1) * G; k++) acc += act.xq[m * K + k]! * q[n * K + k]!;
        out[(m * N + n) * groupCount + g] = acc;
      }
    }
  }
  return out;
}

/** A8 reference from already quantized activations; y [M, N]. */
export function referenceIntLinear(act: QuantizedActivations, w: QuantizedLinear): Float32Array {
  if (w.aBits !== 8) throw new RangeError('referenceIntLinear needs an 8-bit-activation layer');
  const { m: M } = act;
  const { n: N } = w;
  const groupCount = w.k / w.groupSize;
  const acc = groupAccumulators(act, w);
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    const a = act.scales[m]!;
    for (let n = 0; n < N; n++) {
      const base = (m * N + n) * groupCount;
      let value: number;
      if (w.scale === 'int') {
        const S = w.intScales!;
        let total = 0;
        for (let g = 0; g < groupCount; g++) {
          total += acc[base + g]! * S[n * groupCount + g]!;
          if (Math.abs(total) >= INT32_LIMIT) throw int32OverflowError(m, n, total);
        }
        value = Math.fround(Math.fround(Math.fround(total) * a) * 2 ** -w.alphaLog2!);
      } else {
        let t = 0;
        for (let g = 0; g < groupCount; g++) {
          t = Math.fround(t + Math.fround(Math.fround(acc[base + g]!) * w.scales[n * groupCount + g]!));
        }
        value = Math.fround(a * t);
      }
      y[m * N + n] = w.bias ? Math.fround(value + w.bias[n]!) : value;
    }
  }
  return y;
}

/** A16 (weight-only) reference; y [M, N]. */
export function referenceWeightOnlyLinear(x: Float32Array, M: number, w: QuantizedLinear): Float32Array {
  const { n: N, k: K, groupSize: G } = w;
  const groupCount = K / G;
  const q = unpackWeights(w);
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) {
        sum += x[m * K + k]! * (q[n * K + k]! * w.scales[n * groupCount + Math.floor(k / G)]!);
      }
      const value = Math.fround(sum);
      y[m * N + n] = w.bias ? Math.fround(value + w.bias[n]!) : value;
    }
  }
  return y;
}

/** y = x · W'ᵀ (+ bias) for x [M, K] float32, dispatching on the layer's activation bits. */
export function referenceLinear(x: Float32Array, M: number, w: QuantizedLinear): Float32Array {
  if (x.length < M * w.k) throw new RangeError(`x holds ${x.length} values, need M·K = ${M}·${w.k}`);
  switch (w.aBits) {
    case 8:
      return referenceIntLinear(quantizeActivations(x, M, w.k), w);
    case 16:
      return referenceWeightOnlyLinear(x, M, w);
  }
}
