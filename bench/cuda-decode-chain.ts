/**
 * The decode GEMMs of L LLaMA-2-7B layers (q/k/v, o, gate/up, down: 4 a layer) at M rows, two ways, interleaved in R
 * rounds on the same random W4A8 IS weights (speed only):
 *   launches  one w4a8_decode launch a GEMM with programmatic dependent launch, as the decode engine launches them;
 *   chain     one persistent launch for all of them (bench/kernels/decode-chain.cu): the same tiles and bits, a grid
 *             barrier between GEMMs instead of a launch boundary;
 *   stream    the chain without its barriers (BARRIER 0): a block starts its tiles of the next GEMM as soon as it is
 *             done with this one, so nothing drains between GEMMs. Not a schedule a model can run (the next GEMM
 *             would read its input before it is written); with the fixed inputs here its bits are the same, and its
 *             time is the most any overlap of the GEMMs could give.
 *   ring      (with --ring) the chain with the weights streamed ahead of its barriers (w4a8_decode_ring, decode-chain.cu): one block
 *             a SM, a producer warp bulk-copying its consumers' weight pieces of every stage into a ring of shared-memory
 *             slots, waiting only for free slots, so the weight stream runs on while a barrier waits. Variants (--ring
 *             takes a list, or all): ring (16 consumer warps a block, activations in shared memory), ring2 (two groups
 *             of 8 consumer warps + a producer each, activations from L2: the launches' two blocks a SM as one),
 *             ring2s (ring2 with each group's own copy of the activations in shared memory), ring2sd (ring2s with
 *             each next tile taken from a counter a stage instead of round robin), each also -nobar (its barriers
 *             left out, a bound like stream's) and -weights (the consumers only wait for each slot and give it back:
 *             the weight stream's own time; its outputs are not checked).
 *   --dependent  the GEMMs an MLP's (4096 → 11008 → 4096, no SwiGLU), each reading the previous one's output quantized
 *             (act_quant's definition: float64 division): the launches with an act_quant launch between GEMMs, the rings
 *             (ring, ring2s, ring2sd) quantizing each stage's rows in the kernel after its barrier, as a persistent
 *             step must; a ring that does not wait at a barrier reads stale rows and fails the bit check.
 * The chain's, the stream's and the rings' outputs (but -weights') are first checked bit for bit against the launches'. What it measures: whether a step-wide
 * kernel's boundaries (a barrier, the grid resident) cost less than launches do (cuda-read-chain: a plain read of the
 * same bytes loses 18% to launch boundaries with PDL). Each GEMM reads a fixed activation buffer (no quantization
 * between), so neither way includes the small ops. Timing: CudaTimer (events around each sample, queued behind a
 * spin). Usage:
 * --prew P: the weight chunks a warp loads before its wait (the launches' griddepcontrol.wait, the chain's barrier), 1 or
 * 2 (the engine's default since the 29th session: at K = 4096 a resident block's whole tile).
 *   node dist/bench/cuda-decode-chain.js [--layers 8] [--ms 1,8] [--rounds 4] [--prew 2] [--ring ring,ring2,…|all] [--dependent] [--out DIR]
 */
import { join } from 'node:path';
import { paddedRows } from '../src/backends/cuda/repack.js';
import { getKernel } from '../src/backends/cuda/kernel-cache.js';
import { quantizeActivationsCuda, w4a8Linear, type DecodeConfig, type W4A8Layer } from '../src/backends/cuda/w4a8.js';
import type { DeviceBuffer } from '../src/backends/cuda/buffer.js';
import { BenchArgumentError, benchArgs, positiveInt, positiveInts } from './args.js';
import { ACT_SCALES, BenchLog, CudaBench, DeviceInputs, INT_SCALES, Seeds, fill, type Launch } from './cuda-timing.js';
import { benchKernelsDir } from './cuda-util.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    layers: { type: 'string', default: '8' },
    ms: { type: 'string', default: '1,8' },
    rounds: { type: 'string', default: '4' },
    prew: { type: 'string', default: '2' },
    ring: { type: 'string', default: '' },
    dependent: { type: 'boolean', default: false },
    out: { type: 'string', default: 'docs/bench' },
  },
});
const layers = positiveInt('layers', values.layers!);
const Ms = positiveInts('ms', values.ms!);
if (Ms.some((M) => M > 8)) throw new BenchArgumentError('--ms: the chain runs the one-token-half decode kernel, 1..8 rows');
const rounds = positiveInt('rounds', values.rounds!);
const PREW = positiveInt('prew', values.prew!);
if (PREW > 2) throw new BenchArgumentError(`--prew takes 1 or 2 (the register pipeline's two buffers), got ${PREW}`);
/** A ring variant (w4a8_decode_ring's defines): GROUPS groups of WK consumer warps + a producer warp a block. */
interface RingVariant { name: string; groups: number; wk: number; xsmem: boolean; dynTiles: boolean; barrier: boolean; compute: boolean }
const RING_BASES = [
  { name: 'ring', groups: 1, wk: 16, xsmem: true, dynTiles: false },
  { name: 'ring2', groups: 2, wk: 8, xsmem: false, dynTiles: false },
  { name: 'ring2s', groups: 2, wk: 8, xsmem: true, dynTiles: false },
  { name: 'ring2sd', groups: 2, wk: 8, xsmem: true, dynTiles: true },
];
const RING_VARIANTS: RingVariant[] = RING_BASES.flatMap((v) => [
  { ...v, barrier: true, compute: true },
  { ...v, name: `${v.name}-nobar`, barrier: false, compute: true },
  { ...v, name: `${v.name}-weights`, barrier: true, compute: false },
]);
const ringNames = values.ring === 'all' ? RING_VARIANTS.map((v) => v.name) : values.ring!.split(',').filter((n) => n !== '');
const rings = ringNames.map((n) => {
  const v = RING_VARIANTS.find((r) => r.name === n);
  if (!v) throw new BenchArgumentError(`--ring: no variant '${n}' (${RING_VARIANTS.map((r) => r.name).join(', ')} or all)`);
  return v;
});
/** --dependent: each stage's rows the previous stage's output, quantized (act_quant's definition) between them. */
const dependent = values.dependent === true;
const DEPENDENT_RINGS = RING_VARIANTS.filter((v) => v.xsmem && v.barrier && v.compute).map((v) => v.name);
const notDependent = rings.filter((v) => !DEPENDENT_RINGS.includes(v.name)).map((v) => v.name);
if (dependent && notDependent.length > 0) throw new BenchArgumentError(`--dependent runs the rings that keep their barriers and their activations in shared memory (${DEPENDENT_RINGS.join(', ')}), not ${notDependent.join(', ')}`);
const SAMPLES = 10;
/** A layer's GEMMs [K, N]; with --dependent an MLP's two (up 4096 → 11008, down 11008 → 4096, no SwiGLU), so N_s = K_s+1. */
const LAYER: [K: number, N: number][] = dependent ? [[4096, 11008], [11008, 4096]] : [[4096, 12288], [4096, 4096], [4096, 22016], [11008, 4096]];
/** The engine's decode config at M <= 8 on these shapes (chooseW4A8Config), launched overlapping the launch before. */
const CONFIG: DecodeConfig = { kind: 'decode', MT: 1, NTW: 1, WK: 16, PREW, overlap: true };
/** Blocks a SM the chain asks for (its __launch_bounds__): 58 registers × 512 threads fit twice. */
const CHAIN_MINB = 2;
/** ChainStage in decode-chain.cu: five pointers, N, K, post, padding. */
const STAGE_BYTES = 56;

const bench = new CudaBench('bench/cuda-decode-chain');
const { ctx, timer } = bench;
const log = new BenchLog();
const grid = CHAIN_MINB * ctx.info.multiprocessors;
log.line(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, driver ${ctx.info.driverVersion}; RANDOM W4A8 IS weights (speed only)`);
log.line(`# ${layers} layers × ${LAYER.map(([K, N]) => `${K}x${N}`).join(', ')} = ${layers * LAYER.length} GEMMs; decode kernel MT1 NTW1 WK16 PREW${PREW}; chain grid ${grid} (${CHAIN_MINB} a SM); medians of ${rounds} interleaved rounds × ${SAMPLES} samples`);
if (dependent) log.line('# --dependent: each GEMM reads the previous one\'s output quantized: the launches with an act_quant launch between GEMMs, the rings quantizing in the kernel after each barrier (bits checked against the launches\'); the chain and the stream read the launches\' quantized rows as fixed inputs (no quantization in their time)');

const inputs = new DeviceInputs(ctx, new Seeds(11));
const stages = Array.from({ length: layers }, () => LAYER).flat().map(([K, N]): W4A8Layer => {
  const nPad = paddedRows(N);
  return { n: N, k: K, groupSize: 128, scale: 'int', post: 2 ** -14, isShift: false, weights: inputs.random((nPad * K) / 2, fill.u32), scales: inputs.random(nPad * (K / 128) * 4, INT_SCALES) };
});
const weightBytes = stages.reduce((s, l) => s + (paddedRows(l.n) * l.k) / 2, 0);
const chainDefines = { GROUP: 128, SCALE_INT: 1, IS_SHIFT: 0, OUT_F16: 0, MT: 1, NTW: 1, WK: 16, MINB: CHAIN_MINB, PREW };
const chainFn = getKernel(ctx, join(benchKernelsDir(), 'decode-chain.cu'), 'w4a8_decode_chain', chainDefines);
const streamFn = getKernel(ctx, join(benchKernelsDir(), 'decode-chain.cu'), 'w4a8_decode_chain', { ...chainDefines, BARRIER: 0 });
const kMax = Math.max(...LAYER.map(([K]) => K));
/** A variant's slot: its consumers' chunks of weights (1 KB) and scales (64 B). */
const ringSlotBytes = (v: RingVariant): number => v.wk * (1024 + 64);
/** Slots a group: as many as fit beside the activations (M × the largest K, XSMEM) and the static arrays, at most 16. */
const ringSlots = (v: RingVariant, M: number): number => {
  // mbarriers and tile indices (≤ 16 slots), reduction, the quantization's scales and maxima (8 rows), x
  const fixed = v.groups * (2 * 8 * 16 + 4 * 16 + v.wk * 4 * 32 * 4 + 8 * 4 * (1 + v.wk) + (v.xsmem ? M * kMax : 0));
  return Math.min(16, Math.floor((ctx.info.maxSharedPerBlockOptin - fixed) / (v.groups * ringSlotBytes(v))));
};
const ringSharedBytes = (v: RingVariant, M: number): number => v.groups * (ringSlots(v, M) * ringSlotBytes(v) + (v.xsmem ? M * kMax : 0));
const ringFn = (v: RingVariant, M: number) => {
  if (ringSlots(v, M) < 2) throw new BenchArgumentError(`--ring ${v.name} at M=${M}: ${ctx.info.maxSharedPerBlockOptin} B of shared memory a block hold fewer than two slots a group`);
  const defines = {
    ...chainDefines, WK: v.wk, RING: ringSlots(v, M), GROUPS: v.groups, XSMEM: v.xsmem ? 1 : 0, ...(v.xsmem ? { XS_BYTES: M * kMax } : {}),
    DYN_TILES: v.dynTiles ? 1 : 0, BARRIER: v.barrier ? 1 : 0, RING_COMPUTE: v.compute ? 1 : 0, DEP: dependent ? 1 : 0,
  };
  return getKernel(ctx, join(benchKernelsDir(), 'decode-chain.cu'), 'w4a8_decode_ring', defines, ringSharedBytes(v, M));
};
const counter = inputs.output(4);
/** Each ring's counters (the barrier's arrivals, then each stage's tiles taken) and the arrivals and launches so far (host-kept, never reset). */
const ringCounters = rings.map(() => ({ buffer: inputs.output(4 * (1 + layers * LAYER.length)), arrivals: 0, launches: 0 }));
ctx.synchronize();
counter.fill(0);
ringCounters.forEach((c) => c.buffer.fill(0));
let arrivals = 0;

for (const M of Ms) {
  const acts = new DeviceInputs(ctx, new Seeds(100 + M));
  const xq = stages.map((l) => acts.random(M * l.k, fill.i8));
  const a = stages.map(() => acts.random(M * 4, ACT_SCALES));
  const yLaunch = stages.map((l) => acts.output(M * l.n * 4));
  const yChain = stages.map((l) => acts.output(M * l.n * 4));
  const yStream = stages.map((l) => acts.output(M * l.n * 4));
  const yRings = rings.map(() => stages.map((l) => acts.output(M * l.n * 4)));
  const table = new DataView(new ArrayBuffer(stages.length * STAGE_BYTES));
  stages.forEach((l, s) => {
    const at = s * STAGE_BYTES;
    [l.weights, l.scales, xq[s]!, a[s]!, yChain[s]!].forEach((b: DeviceBuffer, i) => table.setBigUint64(at + 8 * i, BigInt(b.address), true));
    table.setInt32(at + 40, l.n, true);
    table.setInt32(at + 44, l.k, true);
    table.setFloat32(at + 48, l.post, true);
  });
  const stageTable = acts.output(table.byteLength);
  stageTable.upload(new Uint8Array(table.buffer));
  stages.forEach((_, s) => table.setBigUint64(s * STAGE_BYTES + 32, BigInt(yStream[s]!.address), true));
  const streamTable = acts.output(table.byteLength);
  streamTable.upload(new Uint8Array(table.buffer));
  const ringTables = yRings.map((ys) => {
    ys.forEach((y, s) => table.setBigUint64(s * STAGE_BYTES + 32, BigInt(y.address), true));
    const t = acts.output(table.byteLength);
    t.upload(new Uint8Array(table.buffer));
    return t;
  });

  // --dependent: act_quant writes the next stage's rows (the chain and the stream read them as fixed inputs after)
  const launches: Launch = () => stages.forEach((l, s) => {
    w4a8Linear(ctx, l, xq[s]!, a[s]!, yLaunch[s]!, M, CONFIG);
    if (dependent && s + 1 < stages.length) quantizeActivationsCuda(ctx, yLaunch[s]!, xq[s + 1]!, a[s + 1]!, M, l.n);
  });
  const chain: Launch = () => {
    ctx.launch(chainFn, [grid], [CONFIG.WK * 32], [stageTable, { i32: stages.length }, { i32: M }, counter, { i32: arrivals | 0 }]);
    arrivals = (arrivals + stages.length * grid) >>> 0;
  };
  const stream: Launch = () => ctx.launch(streamFn, [grid], [CONFIG.WK * 32], [streamTable, { i32: stages.length }, { i32: M }, counter, { i32: 0 }]);
  const ringLaunches = rings.map((v, i): Launch => {
    const fn = ringFn(v, M);
    const c = ringCounters[i]!;
    const blocks = ctx.info.multiprocessors;
    return () => {
      ctx.launch(fn, [blocks], [v.groups * (v.wk + 1) * 32], [ringTables[i]!, { i32: stages.length }, { i32: M }, c.buffer, { i32: c.arrivals | 0 }, { i32: c.launches | 0 }], ringSharedBytes(v, M));
      if (v.barrier) c.arrivals = (c.arrivals + stages.length * blocks * v.groups) >>> 0;
      c.launches = (c.launches + 1) >>> 0;
    };
  });
  // the same bits first (outputs poisoned with NaN bytes, so an unwritten one fails)
  ctx.synchronize();
  for (const y of [...yLaunch, ...yChain, ...yStream, ...yRings.flat()]) y.fill(0xff);
  launches(0);
  chain(0);
  stream(0);
  ringLaunches.forEach((l) => l(0));
  ctx.synchronize();
  const bytesOf = (y: DeviceBuffer, n: number): Buffer => Buffer.from(y.download(new Uint8Array(M * n * 4)));
  const checked: [string, DeviceBuffer[]][] = [['chain', yChain], ['stream', yStream], ...rings.flatMap((v, i) => (v.compute ? [[v.name, yRings[i]!] as [string, DeviceBuffer[]]] : []))];
  for (const [name, ys] of checked) {
    const mismatched = stages.filter((l, s) => !bytesOf(yLaunch[s]!, l.n).equals(bytesOf(ys[s]!, l.n))).length;
    if (mismatched > 0) throw new Error(`M=${M}: the ${name}'s output differs from the launches' in ${mismatched} of ${stages.length} GEMMs`);
  }
  const [t1, t2, t3, ...tRings] = timer.timeInterleaved([launches, chain, stream, ...ringLaunches], rounds, SAMPLES);
  const line = (name: string, us: number, p10: number, p90: number): string =>
    `M=${M} ${name.padEnd(13)} ${(us / layers).toFixed(2).padStart(7)} µs a layer (p10 ${(p10 / layers).toFixed(2)}, p90 ${(p90 / layers).toFixed(2)}), ${(weightBytes / us / 1e6).toFixed(2)} TB/s of weights`;
  log.line(`M=${M} ${checked.map(([n]) => n).join(', ')} outputs bit-identical to the launches' in all ${stages.length} GEMMs`);
  log.line(line('launches', t1!.us, t1!.p10, t1!.p90));
  log.line(`${line('chain', t2!.us, t2!.p10, t2!.p90)}; ${(t1!.us / t2!.us).toFixed(3)}x the launches`);
  log.line(`${line('stream', t3!.us, t3!.p10, t3!.p90)}; ${(t1!.us / t3!.us).toFixed(3)}x the launches (no barriers: not a valid schedule, the bound)`);
  rings.forEach((v, i) => {
    const t = tRings[i]!;
    const what = `${ctx.info.multiprocessors} blocks of ${v.groups} × (${v.wk} + 1) warps, ${ringSlots(v, M)} slots of ${ringSlotBytes(v)} B a group, activations from ${v.xsmem ? 'shared memory' : 'L2'}, tiles ${v.dynTiles ? 'from a counter' : 'round robin'}${v.barrier ? '' : ', no barriers (a bound)'}${v.compute ? '' : ', weights only (outputs not computed)'}`;
    log.line(`${line(v.name, t.us, t.p10, t.p90)}; ${(t1!.us / t.us).toFixed(3)}x the launches (${what})`);
  });
  acts.free();
}
log.write(values.out!, 'cuda-decode-chain.log');
inputs.free();
bench.close();
