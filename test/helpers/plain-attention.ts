/** The CPU attention row (src/backends/cpu/attention-kernel.ts) as plain float64 arithmetic, for the kernels' tests. */

/**
 * The header's arithmetic written plainly, one position at a time (float64, the kernel's order). The
 * outputs are float32, so this checks the result, not the float64 order (a reordering changes only
 * float64 last bits, which the rounding to float32 almost always hides).
 */
export function plainAttentionRow(q: Float32Array, qo: number, keys: Float32Array, values: Float32Array, kvo: number, kvDim: number, first: number, pos: number, D: number): Float64Array {
  const scores: number[] = [];
  for (let t = first; t <= pos; t++) {
    const part = [0, 0, 0, 0];
    const D4 = D & ~3;
    for (let i = 0; i < D4; i++) part[i & 3] += q[qo + i]! * keys[t * kvDim + kvo + i]!;
    for (let i = D4; i < D; i++) part[0] += q[qo + i]! * keys[t * kvDim + kvo + i]!;
    scores.push(((part[0]! + part[1]!) + (part[2]! + part[3]!)) * (1 / Math.sqrt(D)));
  }
  const max = Math.max(...scores);
  let sum = 0;
  const e = scores.map((s) => Math.exp(s - max));
  for (const x of e) sum += x;
  const acc = new Float64Array(D);
  e.forEach((x, j) => {
    const p = x / sum;
    for (let i = 0; i < D; i++) acc[i] += p * values[(first + j) * kvDim + kvo + i]!;
  });
  return acc;
}
