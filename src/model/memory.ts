/**
 * How much memory loading a checkpoint takes, known before a byte of weights is read, so that a
 * load that cannot fit is refused with the numbers instead of being killed by the OS.
 *
 * Resident bytes as the loader holds them: float tensors (F32, F16, BF16, F64) as float32, 4 bytes
 * a value; integer tensors (a quantized layer's packed weights and scales) as stored. Available:
 * MemAvailable of /proc/meminfo (what the kernel can hand out without swapping), else os.freemem().
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { InputError } from '../errors.js';
import { FLOAT_DTYPES, dtypeBytes } from '../io/dtype.js';
import type { WeightSource } from '../io/weight-source.js';
import type { ModelConfig } from './config.js';

export interface LoadMemory {
  /** bytes the loaded weights take in memory. */
  readonly resident: number;
  /** of which float tensors stored in 16 bits and held as float32. */
  readonly widened: number;
}

/** The memory the weights of src take once loaded (see the header). */
export function loadMemory(src: WeightSource): LoadMemory {
  let resident = 0;
  let widened = 0;
  for (const name of src.names()) {
    const dtype = src.dtypeOf(name);
    const count = src.shapeOf(name).reduce((a, b) => a * b, 1);
    if (FLOAT_DTYPES.includes(dtype)) {
      resident += 4 * count;
      if (dtype === 'F16' || dtype === 'BF16') widened += 4 * count;
    } else {
      resident += dtypeBytes(dtype) * count;
    }
  }
  return { resident, widened };
}

/** Bytes of a float32 KV cache holding `positions` positions (capped at the model's context) of every layer. */
export function kvCacheBytes(config: ModelConfig, positions: number): number {
  return 2 * 4 * config.numLayers * config.numKvHeads * config.headDim * Math.min(positions, config.maxPositionEmbeddings);
}

/** Memory the OS can give this process now, in bytes. */
export function availableMemory(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return os.freemem();
}

const GB = 1e9;

/**
 * Throws an InputError naming the numbers when the weights, plus `reserved` bytes the run needs
 * beside them (its KV cache), cannot fit in `available` bytes.
 */
export function checkLoadFits(src: WeightSource, dir: string, reserved = 0, available = availableMemory()): void {
  const { resident: weights, widened } = loadMemory(src);
  const resident = weights + reserved;
  if (resident <= available) return;
  const kv = reserved > 0 ? ` (${(weights / GB).toFixed(1)} GB of weights, ${(reserved / GB).toFixed(1)} GB of KV cache: a smaller --seq-len or -n shrinks it)` : '';
  const advice = widened > 0
    ? `its ${((widened / 2) / GB).toFixed(1)} GB of 16-bit float weights are held as float32 (${(widened / GB).toFixed(1)} GB): ` +
      'quantize it first (`intscale quantize -m DIR -o OUT`, which reads one layer at a time) and run the quantized checkpoint'
    : 'free memory, or use a machine with more';
  throw new InputError(
    `${dir}: loading needs about ${(resident / GB).toFixed(1)} GB of memory${kv} but ${(available / GB).toFixed(1)} GB is available; ${advice} ` +
      '(or --no-memory-check to try anyway)',
    { file: dir },
  );
}
