/**
 * Each row's next token picked on the device (kernels/sampling.cu, sample_rows): pickToken's definition
 * (model/sampling.ts) from the logits and a pick per row (greedy, or temperature + top-p with the run's uniform draw),
 * so a sampled run's token needs no logits on the host and stays the one its seed gives there.
 */
import { needBytes, type DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import { getKernel } from './kernel-cache.js';
import { MAX_SAMPLING_VOCAB, type TokenPick } from '../../model/sampling.js';

/** One row's pick on the device: { draw, temperature, topP }, float64 each. */
export const PICK_FIELDS = 3;
export const PICK_BYTES = PICK_FIELDS * 8;
/** Bytes of a row's scratch: its weights, uint64 a token. */
export const sampleScratchBytes = (vocab: number): number => vocab * 8;
/** sample_rows' dynamic shared memory: two histograms each (a block's own, the cluster's) of 2048 and 4096 uint64 bins. */
const SAMPLE_SHARED = 2 * (2048 + 4096) * 8;
/** The blocks a row may take (a thread block cluster; 8 is the portable limit). */
export const SAMPLE_CLUSTERS = [1, 2, 4, 8] as const;
export type SampleCluster = (typeof SAMPLE_CLUSTERS)[number];

/**
 * The blocks a row takes at m rows: as many as keep m · blocks within the device's multiprocessors (one 1024-thread
 * block fills one), up to 8; 1 before Hopper (no clusters). The token does not depend on it.
 */
export function sampleCluster(m: number, multiprocessors: number, computeMajor: number): SampleCluster {
  if (computeMajor < 9) return 1;
  return [...SAMPLE_CLUSTERS].reverse().find((c) => c === 1 || m * c <= multiprocessors)!;
}

/** The picks as sample_rows reads them, after checking each (a RangeError naming the row and the field). */
export function pickRows(picks: readonly TokenPick[]): Float64Array {
  const out = new Float64Array(PICK_FIELDS * picks.length);
  picks.forEach(({ draw, temperature, topP }, r) => {
    if (!Number.isFinite(temperature)) throw new RangeError(`pick ${r}: temperature must be a finite number, got ${temperature}`);
    if (temperature > 0 && !(topP > 0 && topP <= 1)) throw new RangeError(`pick ${r}: topP must be in (0, 1], got ${topP}`);
    if (temperature > 0 && !(draw >= 0 && draw < 1)) throw new RangeError(`pick ${r}: the draw must be in [0, 1), got ${draw}`);
    out.set([temperature > 0 ? draw : 0, temperature, temperature > 0 ? topP : 1], PICK_FIELDS * r);
  });
  return out;
}

/**
 * out [m] (int32) = the token pickToken picks from each row of logits [m, n] (f32) with the row's pick (picks: pickRows'
 * layout on the device); scratch holds m rows of sampleScratchBytes(n). `cluster`: the blocks a row takes (default
 * sampleCluster's; the same tokens whatever it is).
 */
export function sampleRowsCuda(
  ctx: CudaContext, logits: DeviceBuffer, picks: DeviceBuffer, scratch: DeviceBuffer, out: DeviceBuffer, m: number, n: number,
  cluster: SampleCluster = sampleCluster(m, ctx.info.multiprocessors, ctx.info.computeCapability[0]),
): void {
  if (!(Number.isInteger(n) && n >= 1 && n < MAX_SAMPLING_VOCAB)) throw new RangeError(`sampling on the device takes vocabularies of 1 to ${MAX_SAMPLING_VOCAB - 1} tokens, got ${n}`);
  if (!SAMPLE_CLUSTERS.includes(cluster)) throw new RangeError(`sample_rows takes a row on ${SAMPLE_CLUSTERS.join(', ')} blocks, got ${cluster}`);
  needBytes('sample logits', logits, m * n * 4);
  needBytes('sample picks', picks, m * PICK_BYTES);
  needBytes('sample scratch', scratch, m * sampleScratchBytes(n));
  needBytes('sample out', out, m * 4);
  const kernel = getKernel(ctx, 'sampling.cu', 'sample_rows', { CLUSTER: cluster }, SAMPLE_SHARED);
  ctx.launch(kernel, [m * cluster], [1024], [logits, picks, scratch, { i32: n }, out], SAMPLE_SHARED);
}
