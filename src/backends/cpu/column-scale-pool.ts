/**
 * W·diag(s) (quant/column-scale.ts) split over the CPU pool by rows, the same bits as one thread: AWQ scales
 * every searched linear's weights at each of its grid points. Arrays not all in shared memory run on this thread.
 */
import { scaleColumnsRows, type ColumnScaleArgs } from '../../quant/column-scale.js';
import { allShared } from '../../tensor/shared.js';
import { cpuPool } from './pool/index.js';
import { KERNEL_SCALE_COLUMNS } from './pool/kernels.js';

/** Weights a thread's share of rows must hold before the pool splits the layer. */
const MIN_WEIGHTS_PER_THREAD = 1 << 18;

export function scaleColumnsOnPool(args: ColumnScaleArgs, n: number): void {
  if (!allShared(args.w, args.s, args.out) || n * args.k < 2 * MIN_WEIGHTS_PER_THREAD) return scaleColumnsRows(args, 0, n);
  cpuPool().run(KERNEL_SCALE_COLUMNS, args, n, { workPerRow: args.k, minWorkPerThread: MIN_WEIGHTS_PER_THREAD });
}
