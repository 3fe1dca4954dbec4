/**
 * RTN's two row passes (quant/rtn-rows.ts) split over the CPU pool by rows, with the same bits as one
 * thread (each row's arithmetic unchanged): for quantizeLinearReport when a whole layer is quantized at
 * once and often (AWQ's grid search, a model's RTN). A layer whose weights are not in shared memory runs
 * on this thread.
 */
import type { RtnRows } from '../../quant/quantize-linear.js';
import { cpuPool } from './pool/index.js';
import { KERNEL_RTN_CODES, KERNEL_RTN_SCALES } from './pool/kernels.js';

/** Weights a row of work must hold before a share of rows is worth a thread. */
const MIN_WEIGHTS_PER_THREAD = 1 << 16;

export const rtnRowsOnPool: RtnRows = (pass, args, rows) =>
  cpuPool().runWhereShared(pass === 'scales' ? KERNEL_RTN_SCALES : KERNEL_RTN_CODES, args, rows, { workPerRow: args.k, minWorkPerThread: MIN_WEIGHTS_PER_THREAD });
