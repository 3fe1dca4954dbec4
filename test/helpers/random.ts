/** Seeded pseudo-random numbers for tests: mulberry32 uniforms and Box-Muller normals. */
import { seededRandom } from '../../src/tensor/random.js';

export interface Rng {
  /** uniform in [0, 1). */
  uniform(): number;
  /** standard normal. */
  normal(): number;
  /** integer uniform in [lo, hi]. */
  int(lo: number, hi: number): number;
}

export function makeRng(seed: number): Rng {
  const uniform = seededRandom(seed);
  const normal = (): number => {
    const u = 1 - uniform(); // (0, 1]
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
  return { uniform, normal, int: (lo, hi) => lo + Math.floor(uniform() * (hi - lo + 1)) };
}

/** A fresh seed per test run (printed by the caller on failure), unless TEST_SEED is set. */
export function freshSeed(): number {
  const fixed = process.env['TEST_SEED'];
  return fixed !== undefined ? Number(fixed) : (Math.random() * 2 ** 32) >>> 0;
}

/** Float32Array of normals times std. */
export function randomNormals(rng: Rng, length: number, std = 1): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.normal() * std;
  return out;
}
