/**
 * Plain-JS CPU kernels for quantized linear layers, bit for bit equal to int-linear-reference.ts:
 * the fallback of int-linear.ts when the WASM SIMD kernel cannot run (no shared arena), and the
 * A16 (weight-only) kernel. Main thread only; per-layer data made once by prepareIntLinearJs.
 *
 * Math (see the reference for the exact float op order, which is kept here):
 *   acc[m,n,g] = Σ_{k∈g} xq[m,k] · q[n,k]                                   (int, exact)
 *   A8 integer scale: y = fround(fround(fround(Σ_g acc·S[n,g]) · a[m]) · 2^-b)
 *   A8 float scale:   t = fround(t + fround(fround(acc) · s[n,g])) over g;  y = fround(a[m] · t)
 *   A16:              y = fround(Σ_k x[m,k] · (q[n,k] · s[n,g]))  (float64, k order)
 *   then y = fround(y + bias[n]) when the layer has a bias.
 *
 * Layout: xq [M, K] int8 + a [M]; q [N, K] int8; scales / intScales [N, K/G]; out [M, N] float32,
 * all row-major. The *Rows functions write only columns [nStart, nEnd) of out, so a worker pool
 * can split the output channels.
 *
 * Speed: each weight row is loaded once per block of 4 tokens and reused from registers; K is
 * unrolled; nothing is allocated inside loops. Integer sums are exact (JS numbers are exact
 * integers below 2^53).
 *
 * 4-bit weights, even G: two MACs per float64 multiply ("SWAR in a double"). Per layer, once,
 * weight pairs are packed as wp[n,j] = q[n,2j] + q[n,2j+1]·2^18 (Float32Array [N, K/2], exact:
 * 22 bits); per call, activation pairs as xp[m,j] = xq[m,2j+1] + xq[m,2j]·2^18 (Float64Array).
 *   wp · xp = q0·x1 + (q0·x0 + q1·x1)·2^18 + q1·x0·2^36
 * Summed over a chunk of c ≤ 128 inputs (c/2 pairs), |outer fields| ≤ (c/2)·1016 < 2^16 and
 * |middle field| ≤ c·1016 < 2^17, so the sum is an exact integer below 2^53 and the middle field —
 * the dot product — is recovered exactly: hi = round(T·2^-36), mid = round((T - hi·2^36)·2^-18).
 *
 * Overflow: Σ_g acc·S is summed in float64 (exact); per layer the int32 bound is proved once
 * (overflow.ts), and only a layer without that proof pays a per-group range check, throwing
 * exactly where the reference throws.
 */
import { unpackRow, unpackWeights } from '../../quant/int4-pack.js';
import type { QuantizedActivations } from '../../quant/activation-quant.js';
import { INT32_LIMIT, proveNoOverflow } from '../../quant/overflow.js';
import type { QuantizedLinear } from '../../quant/types.js';
import { int32OverflowError } from './int-linear-reference.js';

const TOKEN_BLOCK = 4;

/** What an A8 layer needs beyond its arrays, made once when the layer is prepared. */
export interface JsIntLinear {
  readonly groupCount: number;
  /** 4-bit weight pairs packed for the SWAR kernel ([N, K/2]); absent where it does not apply. */
  readonly packed?: PackedWeights;
  /** true when no input can overflow int32 (integer scale); float-scale layers: true. */
  readonly provenSafe: boolean;
  /** 2^-alphaLog2 (1 for float scale). */
  readonly invAlpha: number;
}

const SHIFT = 2 ** 18;
const INV_SHIFT = 2 ** -18;
const SHIFT2 = 2 ** 36;
const INV_SHIFT2 = 2 ** -36;
const MAX_CHUNK = 128;

interface PackedWeights {
  /** wp[n,j] = q[n,2j] + q[n,2j+1]·2^18, [N, K/2]. */
  readonly wp: Float32Array;
  /** pairs per decode chunk: half the largest even divisor of G that is ≤ 128. */
  readonly chunkPairs: number;
}

/** Packs a 4-bit layer with even G for the SWAR kernel; undefined where it does not apply. */
function packWeightPairs(w: QuantizedLinear): PackedWeights | undefined {
  if (w.aBits !== 8 || w.wBits !== 4 || w.groupSize % 2 !== 0) return undefined;
  let chunk = Math.min(MAX_CHUNK, w.groupSize);
  while (w.groupSize % chunk !== 0 || chunk % 2 !== 0) chunk--;
  const q = unpackWeights(w);
  const wp = new Float32Array((w.n * w.k) / 2);
  for (let j = 0; j < wp.length; j++) wp[j] = q[2 * j]! + q[2 * j + 1]! * SHIFT;
  return { wp, chunkPairs: chunk / 2 };
}

/** Packs activation pairs xp[m,j] = xq[m,2j+1] + xq[m,2j]·2^18 into out [M, K/2]. */
function packActivationPairs(xq: Int8Array, length: number, out: Float64Array): void {
  for (let j = 0, i = 0; i < length; j++, i += 2) out[j] = xq[i + 1]! + xq[i]! * SHIFT;
}

/** The middle field (the dot product) of a SWAR chunk sum. */
function middleField(total: number): number {
  const hi = Math.round(total * INV_SHIFT2);
  return Math.round((total - hi * SHIFT2) * INV_SHIFT);
}

/** SWAR group accumulators of 4 tokens (pair rows p0, p0+H, ...) against packed weight row wRow. */
function accumulatePacked4(
  xp: Float64Array, p0: number, H: number, wp: Float32Array, wRow: number,
  groupPairs: number, chunkPairs: number, groupCount: number, acc: Float64Array,
): void {
  const p1 = p0 + H;
  const p2 = p1 + H;
  const p3 = p2 + H;
  for (let g = 0; g < groupCount; g++) {
    let g0 = 0;
    let g1 = 0;
    let g2 = 0;
    let g3 = 0;
    const gEnd = (g + 1) * groupPairs;
    for (let c = g * groupPairs; c < gEnd; c += chunkPairs) {
      const cEnd = c + chunkPairs;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let j = c;
      for (; j + 1 < cEnd; j += 2) {
        const w0 = wp[wRow + j]!;
        const w1 = wp[wRow + j + 1]!;
        a0 += xp[p0 + j]! * w0 + xp[p0 + j + 1]! * w1;
        a1 += xp[p1 + j]! * w0 + xp[p1 + j + 1]! * w1;
        a2 += xp[p2 + j]! * w0 + xp[p2 + j + 1]! * w1;
        a3 += xp[p3 + j]! * w0 + xp[p3 + j + 1]! * w1;
      }
      if (j < cEnd) {
        const w0 = wp[wRow + j]!;
        a0 += xp[p0 + j]! * w0;
        a1 += xp[p1 + j]! * w0;
        a2 += xp[p2 + j]! * w0;
        a3 += xp[p3 + j]! * w0;
      }
      g0 += middleField(a0);
      g1 += middleField(a1);
      g2 += middleField(a2);
      g3 += middleField(a3);
    }
    acc[g] = g0;
    acc[groupCount + g] = g1;
    acc[2 * groupCount + g] = g2;
    acc[3 * groupCount + g] = g3;
  }
}

/** SWAR group accumulators of one token (pair row p0) against packed weight row wRow. */
function accumulatePacked1(
  xp: Float64Array, p0: number, wp: Float32Array, wRow: number,
  groupPairs: number, chunkPairs: number, groupCount: number, acc: Float64Array,
): void {
  for (let g = 0; g < groupCount; g++) {
    let g0 = 0;
    const gEnd = (g + 1) * groupPairs;
    for (let c = g * groupPairs; c < gEnd; c += chunkPairs) {
      const cEnd = c + chunkPairs;
      let a0 = 0;
      let a1 = 0;
      let j = c;
      for (; j + 3 < cEnd; j += 4) {
        a0 += xp[p0 + j]! * wp[wRow + j]! + xp[p0 + j + 1]! * wp[wRow + j + 1]!;
        a1 += xp[p0 + j + 2]! * wp[wRow + j + 2]! + xp[p0 + j + 3]! * wp[wRow + j + 3]!;
      }
      for (; j < cEnd; j++) a0 += xp[p0 + j]! * wp[wRow + j]!;
      g0 += middleField(a0 + a1);
    }
    acc[g] = g0;
  }
}

/**
 * What the A8 kernel needs beyond the layer's arrays; provenSafe: the layer's int32 overflow proof
 * (default: proved here; a backend passes the result it proved once).
 */
export function prepareIntLinearJs(w: QuantizedLinear, provenSafe = w.scale === 'int' ? proveNoOverflow(w).safe : true): JsIntLinear {
  const packed = packWeightPairs(w);
  return {
    groupCount: w.k / w.groupSize,
    ...(packed ? { packed } : {}),
    provenSafe: w.scale === 'int' ? provenSafe : true,
    invAlpha: w.scale === 'int' ? 2 ** -w.alphaLog2! : 1,
  };
}

function checkRows(w: QuantizedLinear, M: number, out: Float32Array, nStart: number, nEnd: number): void {
  if (!(0 <= nStart && nStart <= nEnd && nEnd <= w.n)) throw new RangeError(`row range [${nStart}, ${nEnd}) outside [0, ${w.n})`);
  if (out.length < M * w.n) throw new RangeError(`out holds ${out.length} values, need M·N = ${M}·${w.n}`);
}

/**
 * Group accumulators of 4 tokens (rows x0..x0+3K of xq) against weight row wRow:
 * writes acc[t·groupCount + g] for t = 0..3.
 */
function accumulate4(xq: Int8Array, x0: number, K: number, q: Int8Array, wRow: number, G: number, groupCount: number, acc: Float64Array): void {
  const x1 = x0 + K;
  const x2 = x1 + K;
  const x3 = x2 + K;
  for (let g = 0; g < groupCount; g++) {
    const kStart = g * G;
    const kEnd = kStart + G;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let k = kStart;
    for (; k + 3 < kEnd; k += 4) {
      const w0 = q[wRow + k]!;
      const w1 = q[wRow + k + 1]!;
      const w2 = q[wRow + k + 2]!;
      const w3 = q[wRow + k + 3]!;
      a0 += xq[x0 + k]! * w0 + xq[x0 + k + 1]! * w1 + xq[x0 + k + 2]! * w2 + xq[x0 + k + 3]! * w3;
      a1 += xq[x1 + k]! * w0 + xq[x1 + k + 1]! * w1 + xq[x1 + k + 2]! * w2 + xq[x1 + k + 3]! * w3;
      a2 += xq[x2 + k]! * w0 + xq[x2 + k + 1]! * w1 + xq[x2 + k + 2]! * w2 + xq[x2 + k + 3]! * w3;
      a3 += xq[x3 + k]! * w0 + xq[x3 + k + 1]! * w1 + xq[x3 + k + 2]! * w2 + xq[x3 + k + 3]! * w3;
    }
    for (; k < kEnd; k++) {
      const wk = q[wRow + k]!;
      a0 += xq[x0 + k]! * wk;
      a1 += xq[x1 + k]! * wk;
      a2 += xq[x2 + k]! * wk;
      a3 += xq[x3 + k]! * wk;
    }
    acc[g] = a0;
    acc[groupCount + g] = a1;
    acc[2 * groupCount + g] = a2;
    acc[3 * groupCount + g] = a3;
  }
}

/** Group accumulators of one token (row x0 of xq) against weight row wRow into acc[g]. */
function accumulate1(xq: Int8Array, x0: number, q: Int8Array, wRow: number, G: number, groupCount: number, acc: Float64Array): void {
  for (let g = 0; g < groupCount; g++) {
    const kStart = g * G;
    const kEnd = kStart + G;
    let a0 = 0;
    let a1 = 0;
    let k = kStart;
    for (; k + 7 < kEnd; k += 8) {
      a0 += xq[x0 + k]! * q[wRow + k]! + xq[x0 + k + 1]! * q[wRow + k + 1]! + xq[x0 + k + 2]! * q[wRow + k + 2]! + xq[x0 + k + 3]! * q[wRow + k + 3]!;
      a1 += xq[x0 + k + 4]! * q[wRow + k + 4]! + xq[x0 + k + 5]! * q[wRow + k + 5]! + xq[x0 + k + 6]! * q[wRow + k + 6]! + xq[x0 + k + 7]! * q[wRow + k + 7]!;
    }
    for (; k < kEnd; k++) a0 += xq[x0 + k]! * q[wRow + k]!;
    acc[g] = a0 + a1;
  }
}

/** The epilogue of one output from its group accumulators acc[accBase .. accBase + groupCount). */
function epilogue(w: QuantizedLinear, p: JsIntLinear, acc: Float64Array, accBase: number, a: number, m: number, n: number): number {
  const groupCount = p.groupCount;
  const sBase = n * groupCount;
  let y: number;
  if (w.scale === 'int') {
    const S = w.intScales!;
    let total = 0;
    if (p.provenSafe) {
      for (let g = 0; g < groupCount; g++) total += acc[accBase + g]! * S[sBase + g]!;
    } else {
      for (let g = 0; g < groupCount; g++) {
        total += acc[accBase + g]! * S[sBase + g]!;
        if (Math.abs(total) >= INT32_LIMIT) throw int32OverflowError(m, n, total);
      }
    }
    y = Math.fround(Math.fround(Math.fround(total) * a) * p.invAlpha);
  } else {
    const s = w.scales;
    let t = 0;
    for (let g = 0; g < groupCount; g++) t = Math.fround(t + Math.fround(Math.fround(acc[accBase + g]!) * s[sBase + g]!));
    y = Math.fround(a * t);
  }
  return w.bias ? Math.fround(y + w.bias[n]!) : y;
}

/** A8 kernel: out[m, n] for all tokens m and channels n in [nStart, nEnd); p: w's prepareIntLinearJs (made here when absent). */
export function intLinearRows(act: QuantizedActivations, w: QuantizedLinear, out: Float32Array, nStart: number, nEnd: number,
  p?: JsIntLinear): void {
  if (w.aBits !== 8) throw new RangeError('intLinearRows needs an 8-bit-activation layer; use weightOnlyLinearRows');
  if (act.k !== w.k) throw new RangeError(`activations have K = ${act.k}, layer has K = ${w.k}`);
  const M = act.m;
  checkRows(w, M, out, nStart, nEnd);
  p ??= prepareIntLinearJs(w);
  const { k: K, n: N, groupSize: G } = w;
  const { xq, scales: a } = act;
  const groupCount = p.groupCount;
  const acc = new Float64Array(TOKEN_BLOCK * groupCount);
  const mBlocked = M - (M % TOKEN_BLOCK);
  const packed = p.packed;
  if (packed) {
    const H = K / 2;
    const xp = new Float64Array(M * H);
    packActivationPairs(xq, M * K, xp);
    const groupPairs = G / 2;
    for (let n = nStart; n < nEnd; n++) {
      const wRow = n * H;
      let m = 0;
      for (; m < mBlocked; m += TOKEN_BLOCK) {
        accumulatePacked4(xp, m * H, H, packed.wp, wRow, groupPairs, packed.chunkPairs, groupCount, acc);
        for (let t = 0; t < TOKEN_BLOCK; t++) {
          out[(m + t) * N + n] = epilogue(w, p, acc, t * groupCount, a[m + t]!, m + t, n);
        }
      }
      for (; m < M; m++) {
        accumulatePacked1(xp, m * H, packed.wp, wRow, groupPairs, packed.chunkPairs, groupCount, acc);
        out[m * N + n] = epilogue(w, p, acc, 0, a[m]!, m, n);
      }
    }
    return;
  }
  const q = new Int8Array(K); // one weight row, unpacked
  const wRow = 0;
  for (let n = nStart; n < nEnd; n++) {
    unpackRow(w, n, q);
    let m = 0;
    for (; m < mBlocked; m += TOKEN_BLOCK) {
      accumulate4(xq, m * K, K, q, wRow, G, groupCount, acc);
      for (let t = 0; t < TOKEN_BLOCK; t++) {
        out[(m + t) * N + n] = epilogue(w, p, acc, t * groupCount, a[m + t]!, m + t, n);
      }
    }
    for (; m < M; m++) {
      accumulate1(xq, m * K, q, wRow, G, groupCount, acc);
      out[m * N + n] = epilogue(w, p, acc, 0, a[m]!, m, n);
    }
  }
}

/** A16 (weight-only) kernel: out[m, n] for x [M, K] float32 and channels n in [nStart, nEnd). */
export function weightOnlyLinearRows(x: Float32Array, M: number, w: QuantizedLinear, out: Float32Array, nStart: number, nEnd: number): void {
  const { k: K, n: N, groupSize: G, scales } = w;
  if (x.length < M * K) throw new RangeError(`x holds ${x.length} values, need M·K = ${M}·${K}`);
  checkRows(w, M, out, nStart, nEnd);
  const groupCount = K / G;
  const bias = w.bias;
  const mBlocked = M - (M % TOKEN_BLOCK);
  const q = new Int8Array(K); // one weight row, unpacked
  const wRow = 0;
  for (let n = nStart; n < nEnd; n++) {
    unpackRow(w, n, q);
    let m = 0;
    for (; m < mBlocked; m += TOKEN_BLOCK) {
      const x0 = m * K;
      const x1 = x0 + K;
      const x2 = x1 + K;
      const x3 = x2 + K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let g = 0; g < groupCount; g++) {
        const s = scales[n * groupCount + g]!;
        const kEnd = (g + 1) * G;
        for (let k = g * G; k < kEnd; k++) {
          const wk = q[wRow + k]! * s;
          s0 += x[x0 + k]! * wk;
          s1 += x[x1 + k]! * wk;
          s2 += x[x2 + k]! * wk;
          s3 += x[x3 + k]! * wk;
        }
      }
      out[m * N + n] = bias ? Math.fround(Math.fround(s0) + bias[n]!) : Math.fround(s0);
      out[(m + 1) * N + n] = bias ? Math.fround(Math.fround(s1) + bias[n]!) : Math.fround(s1);
      out[(m + 2) * N + n] = bias ? Math.fround(Math.fround(s2) + bias[n]!) : Math.fround(s2);
      out[(m + 3) * N + n] = bias ? Math.fround(Math.fround(s3) + bias[n]!) : Math.fround(s3);
    }
    for (; m < M; m++) {
      const x0 = m * K;
      let s0 = 0;
      for (let g = 0; g < groupCount; g++) {
        const s = scales[n * groupCount + g]!;
        const kEnd = (g + 1) * G;
        for (let k = g * G; k < kEnd; k++) s0 += x[x0 + k]! * (q[wRow + k]! * s);
      }
      out[m * N + n] = bias ? Math.fround(Math.fround(s0) + bias[n]!) : Math.fround(s0);
    }
  }
}
