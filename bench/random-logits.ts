/** RANDOM logits of the shapes sampling meets, for the sampling benches and the tests of the host's and the device's pick. */

/** peaked: normal with σ 3 and a few tokens up to +14 above (an LLM's shape); flat: uniform in ±4; tied: normals rounded to halves. */
export type LogitShape = 'peaked' | 'flat' | 'tied';
export const LOGIT_SHAPES: readonly LogitShape[] = ['peaked', 'flat', 'tied'];

/** n logits of the shape, from `random` (uniform in [0, 1)). */
export function randomLogits(kind: LogitShape, n: number, random: () => number): Float32Array {
  const normal = (): number => Math.sqrt(-2 * Math.log(Math.max(1e-12, random()))) * Math.cos(2 * Math.PI * random());
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = kind === 'peaked' ? 3 * normal() + (random() < 0.002 ? 14 * random() : 0) : kind === 'flat' ? 8 * random() - 4 : Math.round(4 * normal()) / 2;
  }
  return out;
}
