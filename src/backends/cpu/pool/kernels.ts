/**
 * Every row kernel the pool can run, registered by id. Imported by the main thread and by each
 * worker, so both resolve the same ids. Add a kernel with one line:
 *   registerKernel('int-linear', (a: IntLinearArgs, s, e) => intLinearRows(a.xq, a.w, a.out, s, e));
 */
import { registerKernel } from './registry.js';
import { matmulF32Rows } from '../matmul-f32-kernel.js';
import { matmulF32WasmRows } from '../matmul-f32-wasm-kernel.js';
import { poolSelfTestRows } from './self-test-kernel.js';
import { intLinearWasmRows } from '../int-linear-wasm-kernel.js';
import { quantizeInt16Rows } from '../int-activation-rows.js';
import { copyRowsRange } from '../copy-rows.js';
import { attentionRows, decodeAttentionRows } from '../attention-kernel.js';
import { attentionWasmRows, decodeAttentionWasmRows } from '../attention-wasm-kernel.js';
import { choleskyColumnRows, invertLowerBlockRows } from '../triangular-kernel.js';
import { gptqBlockRows } from '../../../quant/methods/gptq-block.js';
import { choleskyPanelRows, inverseBlockColumns, subtractRows } from '../../../quant/methods/cholesky-blocked.js';
import { rtnCodeRows, rtnScaleRows } from '../../../quant/rtn-rows.js';
import { f32ToF16Range } from '../../../io/dtype.js';
import { repackPackedW4Rows } from '../../cuda/repack.js';
import { scaleColumnsRows } from '../../../quant/column-scale.js';

export const KERNEL_MATMUL_F32 = 'matmul.f32';
export const KERNEL_MATMUL_F32_WASM = 'matmul.f32.wasm';
export const KERNEL_POOL_SELF_TEST = 'pool.self-test';
export const KERNEL_INT_LINEAR_WASM = 'int-linear.wasm';
export const KERNEL_QUANTIZE_INT16 = 'int-linear.quantize-int16';
export const KERNEL_COPY_ROWS = 'copy.rows';
export const KERNEL_ATTENTION = 'attention';
export const KERNEL_DECODE_ATTENTION = 'attention.decode';
export const KERNEL_ATTENTION_WASM = 'attention.wasm';
export const KERNEL_DECODE_ATTENTION_WASM = 'attention.decode.wasm';
export const KERNEL_CHOLESKY_COLUMN = 'cholesky.column';
export const KERNEL_INVERT_LOWER = 'invert-lower.columns';
export const KERNEL_GPTQ_BLOCK = 'gptq.block';
export const KERNEL_CHOLESKY_PANEL = 'cholesky.panel';
export const KERNEL_INVERSE_BLOCK = 'inverse.block';
export const KERNEL_SUBTRACT_ROWS = 'subtract.rows';
export const KERNEL_RTN_SCALES = 'rtn.scales';
export const KERNEL_RTN_CODES = 'rtn.codes';
export const KERNEL_F32_TO_F16 = 'convert.f32-to-f16';
export const KERNEL_REPACK_W4 = 'repack.w4';
export const KERNEL_SCALE_COLUMNS = 'scale.columns';

registerKernel(KERNEL_MATMUL_F32, matmulF32Rows);
registerKernel(KERNEL_MATMUL_F32_WASM, matmulF32WasmRows);
registerKernel(KERNEL_POOL_SELF_TEST, poolSelfTestRows);
registerKernel(KERNEL_INT_LINEAR_WASM, intLinearWasmRows);
registerKernel(KERNEL_QUANTIZE_INT16, quantizeInt16Rows);
registerKernel(KERNEL_COPY_ROWS, copyRowsRange);
registerKernel(KERNEL_ATTENTION, attentionRows);
registerKernel(KERNEL_DECODE_ATTENTION, decodeAttentionRows);
registerKernel(KERNEL_ATTENTION_WASM, attentionWasmRows);
registerKernel(KERNEL_DECODE_ATTENTION_WASM, decodeAttentionWasmRows);
registerKernel(KERNEL_CHOLESKY_COLUMN, choleskyColumnRows);
registerKernel(KERNEL_INVERT_LOWER, invertLowerBlockRows);
registerKernel(KERNEL_GPTQ_BLOCK, gptqBlockRows);
registerKernel(KERNEL_CHOLESKY_PANEL, choleskyPanelRows);
registerKernel(KERNEL_INVERSE_BLOCK, inverseBlockColumns);
registerKernel(KERNEL_SUBTRACT_ROWS, subtractRows);
registerKernel(KERNEL_RTN_SCALES, rtnScaleRows);
registerKernel(KERNEL_RTN_CODES, rtnCodeRows);
registerKernel(KERNEL_REPACK_W4, repackPackedW4Rows);
registerKernel(KERNEL_SCALE_COLUMNS, scaleColumnsRows);
registerKernel(KERNEL_F32_TO_F16, (a: { src: Float32Array; out: Uint16Array }, s, e) => f32ToF16Range(a.src, a.out, s, e));
