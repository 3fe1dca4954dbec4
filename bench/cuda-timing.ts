/**
 * What the CUDA benchmarks share (cuda-kernels, cuda-prefill, cuda-sweep, cuda-w8-sweep):
 * command-line options, opening the GPU and cuBLAS (exit code 2 with a clear message when there is
 * no usable NVIDIA GPU), the timing method, and random device inputs rotated over more than L2.
 *
 * Timing method, one launch function (CudaTimer.time):
 *   1. 3 warm-up launches, then a stream synchronize.
 *   2. `blocks` (2) blocks of `samples` timed launches. A block first queues a spin kernel that
 *      holds the stream for 3 ms, so the launches queued behind it (host launch overhead and all)
 *      run back to back on the GPU. A CUDA event is recorded before every launch and one after the
 *      last; sample j = elapsed(event j, event j+1) is one launch's GPU time in µs, with no host
 *      gap inside it. The block is synchronized, then read.
 *   3. Result: the median of all blocks·samples samples (bench/stats.ts median), p10 and p90 (the
 *      sorted samples at index floor(0.1·n) and floor(0.9·n)) and spread = p90 − p10, all in µs.
 *
 * Interleaved timing, several variants of one shape and M (CudaTimer.timeInterleaved):
 *   3 warm-up launches of every variant, then `rounds` rounds. Round r times every variant once,
 *   one block (as in 2) of `samplesPerRound` launches each, in the variant order rotated by r
 *   (round r starts with variant r mod V). Each variant's median / p10 / p90 is taken over all its
 *   rounds·samplesPerRound samples. No variant is always the one right after another (e.g. after
 *   cuBLAS), nor always at the same distance from the warm-up, so slow drifts (clocks, power,
 *   cache and TLB state) fall on every variant alike and same-run ratios are fair.
 *
 * Back-to-back timing (CudaTimer with launchesPerSample L > 1): the same, but an event is recorded
 * before every L-th launch only, and a sample is the elapsed time of L consecutive launches / L:
 * each launch's share of a stream of launches, without the cost of the events between them (what
 * consecutive layers of a model pay). L = 1 is the per-launch timing above.
 *
 * Input rotation: every launch gets a rotation index i from one counter that runs over the timer's
 * whole life (warm-ups included), and launch(i) uses input copy i mod R. Consecutive launches, also
 * across blocks and variants, so read different copies; with R copies totalling more than 2.5× L2
 * (copiesFor), each launch reads its weights from DRAM. Inputs are random device data, never zeros.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import { CudaContext } from '../src/backends/cuda/context.js';
import { Cublas } from '../src/backends/cuda/cublas.js';
import { CudaUnavailableError } from '../src/backends/cuda/libs.js';
import { fillRandomF16, fillRandomF32, fillRandomI32, fillRandomI8, fillRandomU32, readStream, spin } from './cuda-util.js';
import type { W4A8Layer } from '../src/backends/cuda/w4a8.js';
import type { W8A8Layer } from '../src/backends/cuda/w8a8.js';
import { median, percentile } from './stats.js';

// ---------------------------------------------------------------------------------------------
// Command line

/** The three LLaMA-7B layer shapes K·N the benchmarks default to. */
export const DEFAULT_SHAPES = '4096x22016,4096x4096,11008x4096';

// ---------------------------------------------------------------------------------------------
// GPU, cuBLAS, log

/**
 * The device-to-device copy bandwidth of ctx's GPU, read + write bytes per second: the best of 5 timed
 * copies of 1 GiB (after one untimed), host wall time around each with the device idle before and after.
 * The benches' byte floors divide by it, so a floor is this card's, not a constant.
 */
export function copyBandwidth(ctx: CudaContext): number {
  const bytes = 1 << 30;
  const [a, b] = [ctx.alloc(bytes), ctx.alloc(bytes)];
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    ctx.synchronize();
    const t = performance.now();
    ctx.memory.copyOnStream(b, a, bytes);
    ctx.synchronize();
    if (i > 0) best = Math.min(best, (performance.now() - t) / 1000);
  }
  a.free();
  b.free();
  return (2 * bytes) / best;
}

/** The read-floor kernels timed by readFloor: [16-byte loads a thread, threads a block] (16, 32 and 64 KB a block). */
const READ_SHAPES: [4 | 8, number][] = [[4, 256], [4, 512], [8, 512]];

/** A read floor at one block size: the bytes read (a multiple of the block's run, at most those asked), µs, TB/s. */
export interface ReadFloor { readonly kb: number; readonly bytes: number; readonly us: number; readonly tbs: number }

/**
 * The read floor of the first `bytes` of the buffers (rotated: copy i mod count): the same bytes read by a plain
 * streaming kernel, one load each, nothing else (cuda-util.ts readStream), at 16, 32 and 64 KB a block, each timed
 * like any kernel here. What a kernel that must stream those bytes can reach at that size, as a 1 GiB copy cannot say.
 * Block sizes larger than `bytes` are left out (none for less than 16 KB).
 */
export function readFloor(ctx: CudaContext, timer: CudaTimer, buffers: readonly DeviceBuffer[], bytes: number, samples: number): ReadFloor[] {
  const sink = ctx.alloc(4 * Math.ceil(bytes / (16 * 1024)));
  try {
    return READ_SHAPES.filter(([unit, threads]) => unit * threads * 16 <= bytes).map(([unit, threads]) => {
      const run = unit * threads * 16, read = Math.floor(bytes / run) * run;
      const t = timer.time((i) => readStream(ctx, buffers[i % buffers.length]!, read, unit, threads, sink), samples);
      return { kb: run / 1024, bytes: read, us: t.us, tbs: read / t.us / 1e6 };
    });
  } finally {
    sink.free();
  }
}

/** Runs `open`; when CUDA is unavailable, prints "`what` needs an NVIDIA GPU: …" and exits with 2. */
export function needsGpu<T>(what: string, open: () => T): T {
  try {
    return open();
  } catch (e) {
    if (!(e instanceof CudaUnavailableError)) throw e;
    console.error(`${what} needs an NVIDIA GPU: ${e.message}`);
    process.exit(2);
  }
}

/**
 * Device 0 with a CudaTimer on its stream, and cuBLAS on first use of `cublas`; a missing GPU,
 * driver or library exits with code 2 (needsGpu). close() releases all of it.
 */
export class CudaBench {
  readonly ctx: CudaContext;
  readonly timer: CudaTimer;
  private blas: Cublas | undefined;

  /** `what` names the benchmark in the "needs an NVIDIA GPU" message; launchesPerSample as CudaTimer's. */
  constructor(private readonly what: string, launchesPerSample = 1) {
    this.ctx = needsGpu(what, () => new CudaContext(0));
    this.timer = new CudaTimer(this.ctx, launchesPerSample);
  }

  get cublas(): Cublas {
    this.blas ??= needsGpu(this.what, () => new Cublas(this.ctx.stream));
    return this.blas;
  }

  close(): void {
    this.timer.destroy();
    this.blas?.destroy();
    this.ctx.release();
  }
}

/** Lines printed as they come and written to a log file at the end. */
export class BenchLog {
  readonly lines: string[] = [];

  line(text: string): void {
    this.lines.push(text);
    console.log(text);
  }

  /** Writes the lines to outDir/file (creating outDir). */
  write(outDir: string, file: string): void {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, file), this.lines.join('\n') + '\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Timing

/** One launch of the measured work; i is the rotation index (use input copy i mod R). */
export type Launch = (i: number) => void;

export interface Timing {
  /** Median, µs. */
  readonly us: number;
  readonly p10: number;
  readonly p90: number;
  /** p90 − p10, µs. */
  readonly spread: number;
  /** Number of samples. */
  readonly n: number;
}

const WARMUPS = 3;
const SPIN_US = 3000;

export function summarize(samples: readonly number[]): Timing {
  const s = [...samples].sort((a, b) => a - b);
  const p10 = percentile(s, 0.1), p90 = percentile(s, 0.9);
  return { us: median(s), p10, p90, spread: p90 - p10, n: s.length };
}

/** Times launches on ctx's stream with CUDA events (method: header of this file). destroy() frees the events. */
export class CudaTimer {
  private readonly events: bigint[] = [];
  /** Rotation index of the next launch. */
  private next = 0;

  /** launchesPerSample: launches between two events (1: every launch timed alone; see the header). */
  constructor(private readonly ctx: CudaContext, private readonly launchesPerSample = 1) {
    if (!Number.isInteger(launchesPerSample) || launchesPerSample < 1) throw new RangeError(`launches per sample must be a positive integer, got ${launchesPerSample}`);
  }

  /** Warm-up, then `blocks` blocks of `samples` launches: one Timing over all of them. */
  time(launch: Launch, samples: number, blocks = 2): Timing {
    this.warmUp([launch]);
    const all: number[] = [];
    for (let b = 0; b < blocks; b++) all.push(...this.block(launch, samples));
    return summarize(all);
  }

  /** Warm-up of each, then `rounds` rounds of one block per variant in rotated order; Timings in input order. */
  timeInterleaved(variants: readonly Launch[], rounds: number, samplesPerRound: number): Timing[] {
    this.warmUp(variants);
    const samples = variants.map((): number[] => []);
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < variants.length; j++) {
        const v = (r + j) % variants.length;
        samples[v]!.push(...this.block(variants[v]!, samplesPerRound));
      }
    }
    return samples.map(summarize);
  }

  destroy(): void {
    for (const e of this.events.splice(0)) this.ctx.queue.destroyEvent(e);
  }

  private warmUp(launches: readonly Launch[]): void {
    for (const launch of launches) for (let i = 0; i < WARMUPS; i++) launch(this.next++);
    this.ctx.synchronize();
  }

  /** Spin, then `n` samples of launchesPerSample launches each between two events; GPU µs per launch. */
  private block(launch: Launch, n: number): number[] {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`samples per block must be a positive integer, got ${n}`);
    const { ctx, events } = this;
    const L = this.launchesPerSample;
    while (events.length < n + 1) events.push(ctx.queue.createEvent());
    spin(ctx, SPIN_US);
    for (let i = 0; i < n; i++) {
      ctx.queue.record(events[i]!);
      for (let j = 0; j < L; j++) launch(this.next++);
    }
    ctx.queue.record(events[n]!);
    ctx.synchronize();
    return Array.from({ length: n }, (_, i) => (ctx.queue.elapsedMs(events[i]!, events[i + 1]!) * 1000) / L);
  }
}

// ---------------------------------------------------------------------------------------------
// Random device inputs

/** Fills a device buffer with random data from a seed. */
export type Fill = (ctx: CudaContext, buffer: DeviceBuffer, seed: number) => void;

export const fill = {
  u32: fillRandomU32 as Fill,
  i8: fillRandomI8 as Fill,
  f16: fillRandomF16 as Fill,
  /** Integers uniform in [lo, hi]. */
  i32: (lo: number, hi: number): Fill => (ctx, b, seed) => fillRandomI32(ctx, b, seed, lo, hi),
  /** Floats uniform in [lo, hi). */
  f32: (lo: number, hi: number): Fill => (ctx, b, seed) => fillRandomF32(ctx, b, seed, lo, hi),
};
/** Integer group scales S, small enough that Σ_g S fits the shift-free bound. */
export const INT_SCALES = fill.i32(1, 8);
/** Float group scales s. */
export const FLOAT_SCALES = fill.f32(0.0005, 0.005);
/** Per-token activation scales a. */
export const ACT_SCALES = fill.f32(0.01, 0.02);

/** How many copies of `bytes` to rotate over so that together they exceed 2.5× L2 (at least 2). */
export function copiesFor(l2Bytes: number, bytes: number): number {
  return Math.max(2, Math.ceil((2.5 * l2Bytes) / bytes));
}

/** A counter of fill seeds, shared by the DeviceInputs of one run. */
export class Seeds {
  constructor(private nextSeed: number) {}
  next(): number {
    return this.nextSeed++;
  }
}

/** Buffers allocated (and randomly filled) together and freed together. */
export class DeviceInputs {
  private readonly buffers: DeviceBuffer[] = [];

  constructor(private readonly ctx: CudaContext, private readonly seeds: Seeds) {}

  /** An unfilled buffer (an output). */
  output(bytes: number): DeviceBuffer {
    const b = this.ctx.alloc(bytes);
    this.buffers.push(b);
    return b;
  }

  random(bytes: number, f: Fill): DeviceBuffer {
    const b = this.output(bytes);
    f(this.ctx, b, this.seeds.next());
    return b;
  }

  /** `count` independently filled copies, for rotation (copy i mod count). */
  copies(count: number, bytes: number, f: Fill): DeviceBuffer[] {
    return Array.from({ length: count }, () => this.random(bytes, f));
  }

  free(): void {
    for (const b of this.buffers.splice(0)) b.free();
  }
}

/** Rotated copies of quantized weights [nPad, k] with integer and float group scales. */
export interface QuantCopies {
  readonly count: number;
  readonly weights: readonly DeviceBuffer[];
  readonly intScales: readonly DeviceBuffer[];
  readonly floatScales: readonly DeviceBuffer[];
}

/** `count` copies of `bits`-bit weights (random words) and int32 / f32 group scales of nPad rows. */
export function quantCopies(inputs: DeviceInputs, count: number, bits: 4 | 8, nPad: number, k: number, groupSize: number): QuantCopies {
  const scaleBytes = nPad * (k / groupSize) * 4;
  return {
    count,
    weights: inputs.copies(count, (nPad * k * bits) / 8, fill.u32),
    intScales: inputs.copies(count, scaleBytes, INT_SCALES),
    floatScales: inputs.copies(count, scaleBytes, FLOAT_SCALES),
  };
}

/** W4A8 variants: integer scale without and with the per-group shift, float scale. */
export type W4A8Variant = 'is' | 'is-shift' | 'fs';

/** The W4A8 layer of variant v on weight copy i mod count. */
export function w4a8Layer(w: QuantCopies, n: number, k: number, groupSize: number, v: W4A8Variant, i: number): W4A8Layer {
  const r = i % w.count;
  return {
    n, k, groupSize, scale: v === 'fs' ? 'float' : 'int', post: v === 'is' ? 2 ** -14 : v === 'is-shift' ? 2 ** -10 : 1,
    isShift: v === 'is-shift', weights: w.weights[r]!, scales: v === 'fs' ? w.floatScales[r]! : w.intScales[r]!,
  };
}

/** The W8A8 layer, integer or float scale, on weight copy i mod count. */
export function w8a8Layer(w: QuantCopies, n: number, k: number, groupSize: number, v: 'is' | 'fs', i: number): W8A8Layer {
  const r = i % w.count;
  return {
    n, k, groupSize, scale: v === 'fs' ? 'float' : 'int', post: v === 'fs' ? 1 : 2 ** -10,
    weights: w.weights[r]!, scales: v === 'fs' ? w.floatScales[r]! : w.intScales[r]!,
  };
}

/** Per-M buffers: `count` rotated copies of the activations, one copy of each output. */
export interface Activations {
  readonly count: number;
  /** int8 activations [M, K]. */
  readonly xq: readonly DeviceBuffer[];
  /** f32 per-token scales [M]. */
  readonly a: readonly DeviceBuffer[];
  /** fp16 activations [M, K]. */
  readonly x16: readonly DeviceBuffer[];
  /** f32 output [M, N]. */
  readonly y: DeviceBuffer;
  /** fp16 output [M, N] (cuBLAS). */
  readonly y16: DeviceBuffer;
}

export function activations(inputs: DeviceInputs, count: number, m: number, k: number, n: number): Activations {
  return {
    count,
    xq: inputs.copies(count, m * k, fill.i8),
    a: inputs.copies(count, m * 4, ACT_SCALES),
    x16: inputs.copies(count, m * k * 2, fill.f16),
    y: inputs.output(m * n * 4),
    y16: inputs.output(m * n * 2),
  };
}

/** Rotated copies of fp16 weights [n, k], together more than 2.5× L2. */
export function fp16Copies(inputs: DeviceInputs, l2Bytes: number, n: number, k: number): DeviceBuffer[] {
  return inputs.copies(copiesFor(l2Bytes, n * k * 2), n * k * 2, fill.f16);
}

/** cuBLAS FP16 GEMM y16 = x16 · Wᵀ, on weight copy i mod w.length and activation copy i mod act.count. */
export function fp16Gemm(cublas: Cublas, w: readonly DeviceBuffer[], act: Activations, m: number, n: number, k: number): Launch {
  return (i) => cublas.gemmF16(act.y16.address, act.x16[i % act.count]!.address, w[i % w.length]!.address, m, n, k);
}
