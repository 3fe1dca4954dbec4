/**
 * W·diag(s) (quant/column-scale.ts) split over the CPU pool by rows, the same bits as one thread: AWQ scales
 * every searched linear's weights at each of its grid points. Arrays not all in shared memory run on this thread.
 */
import type { ColumnScaleArgs } from '../../quant/column-scale.js';
import { cpuPool } from './pool/index.js';
import { KERNEL_SCALE_COLUMNS } from './pool/kernels.js';

/** Weights a thread's share of rows must hold before the pool splits the layer. */
const MIN_WEIGHTS_PER_THREAD = 1 << 18;

export function scaleColumnsOnPool(args: ColumnScaleArgs, n: number): void {
  cpuPool().runWhereShared(KERNEL_SCALE_COLUMNS, args, n, { workPerRow: args.k, minWorkPerThread: MIN_WEIGHTS_PER_THREAD });
}
