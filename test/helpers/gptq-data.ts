/** Calibration-like inputs for GPTQ tests: strongly correlated channels and a few loud ones, and their Hessian. */
import { HessianAccumulator } from '../../src/quant/methods/hessian.js';
import { randomNormals, type Rng } from './random.js';

/** X [t, k] = Z·A with A mixing channels (rank max(4, k/4)) and about one channel in 20 eight times louder. */
export function correlatedInputs(rng: Rng, t: number, k: number): Float32Array {
  const rank = Math.max(4, k / 4);
  const a = randomNormals(rng, rank * k);
  const loud = new Float32Array(k).map(() => (rng.uniform() < 0.05 ? 8 : 1));
  const x = new Float32Array(t * k);
  for (let r = 0; r < t; r++) {
    const z = randomNormals(rng, rank);
    for (let c = 0; c < k; c++) {
      let v = 0.1 * rng.normal();
      for (let i = 0; i < rank; i++) v += z[i]! * a[i * k + c]!;
      x[r * k + c] = v * loud[c]! / Math.sqrt(rank);
    }
  }
  return x;
}

/** H = (2/T)·XᵀX of x [t, k], float64, the reference accumulation. */
export function hessianOf(x: Float32Array, t: number, k: number): Float64Array {
  const acc = new HessianAccumulator(k);
  acc.add(x, t);
  return acc.hessian();
}
