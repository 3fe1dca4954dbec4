/**
 * The MLP half of L LLaMA-2-7B decoder layers (RMSNorm, gate/up with SwiGLU, down adding into the residual h) at M
 * rows, several ways, interleaved in R rounds on the same random W4A8 IS weights (speed only):
 *   launches      the decode engine's four launches a layer as it runs them at M rows: rmsnorm_to, w4a8_decode_swiglu,
 *                 quantize_rows, w4a8_decode accumulating into h (the GEMMs with programmatic dependent launch; the
 *                 small ops so too from 2 rows up, as overlapSmallOps 'auto' launches them);
 *   launches-pdl  (at one row) the same with the small ops launched to overlap too (overlapSmallOps on);
 *   persistent    one launch for all of it (bench/kernels/persistent-mlp.cu): a grid barrier before each GEMM, every
 *                 block normalizing or quantizing the rows itself into its shared memory after it, instead of the
 *                 small ops' launches.
 *   persistent-staged  the same with each row its blocks read first copied whole into shared memory (STAGED 1: all of
 *                 it in flight at once, instead of a float4 at a time through L2), where two blocks a SM still fit.
 *   persistent-cluster2, persistent-cluster4  each prologue shared by a cluster of 2 or 4 blocks (CLUSTER_PRO): every
 *                 block normalizes or quantizes 1/C of the row and stores its codes into all the cluster's blocks'
 *                 shared memory (distributed shared memory), then a cluster barrier (the norm's sums in rmsnorm_to's order).
 *   persistent-noprologue  (--diagnose) the persistent kernel without the blocks' norm and quantization (PROLOGUE 0: the
 *                 barriers stay, x is whatever shared memory holds, the outputs are not checked): what the prologues cost.
 * Every launch first resets h to the same random rows (a fill kernel, in every variant's time alike). The persistent
 * h is first checked bit for bit against the launches' (and to be finite and changed). What it measures: whether a
 * persistent decode step, with each small op done by every block after a barrier, beats the launches it replaces.
 * Usage:
 *   node dist/bench/cuda-persistent-mlp.js [--layers 8] [--ms 1,8] [--rounds 4] [--variants persistent,…] [--diagnose] [--out DIR]
 * --variants: the persistent variants to run (default all but the diagnostic, which --diagnose adds); a variant whose
 * grid cannot be all resident traps at its first barrier after 10 s (grid-barrier.cuh) and ends the run, so leave it out.
 */
import { join } from 'node:path';
import { paddedRows } from '../src/backends/cuda/repack.js';
import { getKernel } from '../src/backends/cuda/kernel-cache.js';
import { rmsnormToCuda, quantizeRowsCuda, type RowOutput } from '../src/backends/cuda/engine-ops.js';
import { chooseW4A8Config, w4a8Linear, w4a8SwigluDecode, type DecodeConfig, type W4A8Layer } from '../src/backends/cuda/w4a8.js';
import { BenchArgumentError, benchArgs, positiveInt, positiveInts } from './args.js';
import { BenchLog, CudaBench, DeviceInputs, INT_SCALES, Seeds, fill, type Launch } from './cuda-timing.js';
import { benchKernelsDir, fillRandomF32 } from './cuda-util.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    layers: { type: 'string', default: '8' },
    ms: { type: 'string', default: '1,8' },
    rounds: { type: 'string', default: '4' },
    variants: { type: 'string', default: '' },
    diagnose: { type: 'boolean', default: false },
    out: { type: 'string', default: 'docs/bench' },
  },
});
const layers = positiveInt('layers', values.layers!);
const Ms = positiveInts('ms', values.ms!);
if (Ms.some((M) => M > 8)) throw new BenchArgumentError('--ms: the persistent MLP runs the one-token-half decode kernel, 1..8 rows');
const rounds = positiveInt('rounds', values.rounds!);
const SAMPLES = 10;
/** LLaMA-2-7B: hidden D, intermediate F. */
const D = 4096, F = 11008, EPS = 1e-5;
/** The persistent kernel's decode config (the engine's at M ≤ 8 on both shapes: chooseW4A8Config) and blocks a SM. */
const CONFIG: DecodeConfig = { kind: 'decode', MT: 1, NTW: 1, WK: 16, PREW: 2 };
const MINB = 2;
/** MlpLayer in persistent-mlp.cu: five pointers, two floats. */
const LAYER_BYTES = 48;
/** The persistent kernel's variants (persistent-mlp.cu's defines); PROLOGUE 0 is a diagnostic (--diagnose), not checked. */
const PERSISTENT_VARIANTS: { name: string; defines: { STAGED?: number; CLUSTER_PRO?: number; PROLOGUE?: number } }[] = [
  { name: 'persistent', defines: {} },
  { name: 'persistent-staged', defines: { STAGED: 1 } },
  { name: 'persistent-cluster2', defines: { CLUSTER_PRO: 2 } },
  { name: 'persistent-cluster4', defines: { CLUSTER_PRO: 4 } },
  { name: 'persistent-noprologue', defines: { PROLOGUE: 0 } },
];
const chosen = values.variants!.split(',').filter((n) => n !== '');
const unknown = chosen.filter((n) => !PERSISTENT_VARIANTS.some((v) => v.name === n));
if (unknown.length > 0) throw new BenchArgumentError(`--variants: no variant ${unknown.map((n) => `'${n}'`).join(', ')} (${PERSISTENT_VARIANTS.map((v) => v.name).join(', ')})`);
/** The variants this run takes: --variants, or all but the diagnostic; --diagnose adds it. */
const wanted = (v: { name: string; defines: { PROLOGUE?: number } }): boolean =>
  (chosen.length > 0 ? chosen.includes(v.name) : v.defines.PROLOGUE !== 0) || (values.diagnose === true && v.defines.PROLOGUE === 0);
/** A fixed seed for h's rows, so that every launch starts from the same h. */
const H_SEED = 4242;

const bench = new CudaBench('bench/cuda-persistent-mlp');
const { ctx, timer } = bench;
const log = new BenchLog();
const grid = MINB * ctx.info.multiprocessors;
for (const [n, k] of [[2 * F, D], [D, F]] as const) {
  const c = chooseW4A8Config(1, n, k);
  if (c.kind !== 'decode' || c.WK !== CONFIG.WK || c.NTW !== 1 || c.MT !== 1) throw new Error(`the engine's decode config at ${k}x${n} changed (${JSON.stringify(c)}); the persistent kernel's must follow it`);
}
log.line(`# ${ctx.info.name}, ${ctx.info.multiprocessors} SMs, driver ${ctx.info.driverVersion}; RANDOM W4A8 IS weights (speed only)`);
log.line(`# ${layers} layers × (RMSNorm, gate/up ${D}x${2 * F} + SwiGLU, down ${F}x${D} + residual); decode kernel MT1 NTW1 WK16 PREW2; persistent grid ${grid} (${MINB} a SM); medians of ${rounds} interleaved rounds × ${SAMPLES} samples; every launch resets h first (a fill kernel)`);

const inputs = new DeviceInputs(ctx, new Seeds(17));
const layer = (n: number, k: number): W4A8Layer => ({
  n, k, groupSize: 128, scale: 'int', post: 2 ** -14, isShift: false,
  weights: inputs.random((paddedRows(n) * k) / 2, fill.u32), scales: inputs.random(paddedRows(n) * (k / 128) * 4, INT_SCALES),
});
const gateUp = Array.from({ length: layers }, () => layer(2 * F, D));
const down = Array.from({ length: layers }, () => layer(D, F));
const normW = Array.from({ length: layers }, () => inputs.random(D * 4, fill.f32(0.5, 1.5)));
const weightBytes = [...gateUp, ...down].reduce((s, l) => s + (paddedRows(l.n) * l.k) / 2, 0);
const table = new DataView(new ArrayBuffer(layers * LAYER_BYTES));
for (let l = 0; l < layers; l++) {
  const at = l * LAYER_BYTES;
  [gateUp[l]!.weights, gateUp[l]!.scales, down[l]!.weights, down[l]!.scales, normW[l]!].forEach((b, i) => table.setBigUint64(at + 8 * i, BigInt(b.address), true));
  table.setFloat32(at + 40, gateUp[l]!.post, true);
  table.setFloat32(at + 44, down[l]!.post, true);
}
const layerTable = inputs.output(table.byteLength);
layerTable.upload(new Uint8Array(table.buffer));
const counter = inputs.output(4);
ctx.synchronize();
counter.fill(0);
let arrivals = 0;

for (const M of Ms) {
  const bufs = new DeviceInputs(ctx, new Seeds(100 + M));
  const h = bufs.output(M * D * 4);
  const y = bufs.output(M * F * 4);
  const amax = bufs.output(M * Math.max(grid, Math.ceil((2 * F) / 16)) * 4);
  const rows: RowOutput = { form: 'int8', values: bufs.output(M * F), scales: bufs.output(M * 4) };
  const sharedBytes = M * Math.max(D, F);
  const resetH = (): void => fillRandomF32(ctx, h, H_SEED, -1, 1);
  const engineLaunches = (overlapSmall: boolean): Launch => () => {
    resetH();
    const small = { overlapPrevious: overlapSmall };
    for (let l = 0; l < layers; l++) {
      rmsnormToCuda(ctx, h, normW[l]!, rows, M, D, EPS, small);
      const P = w4a8SwigluDecode(ctx, gateUp[l]!, rows.values, rows.scales, y, amax, M, { ...CONFIG, overlap: true });
      quantizeRowsCuda(ctx, { values: y, amax }, P, rows, M, F, small);
      w4a8Linear(ctx, down[l]!, rows.values, rows.scales, h, M, { ...CONFIG, overlap: true, accumulate: true });
    }
  };
  // the persistent variants that fit (STAGED adds a row of f32, max(D, F) floats; two blocks a SM must fit beside the
  // static arrays, < 10 KB)
  const persistentDefines = { GROUP: 128, SCALE_INT: 1, IS_SHIFT: 0, OUT_F16: 0, MT: 1, NTW: 1, WK: CONFIG.WK, MINB, PREW: CONFIG.PREW! };
  const persistents = PERSISTENT_VARIANTS.filter(wanted).flatMap((v) => {
    const bytes = sharedBytes + (v.defines.STAGED === 1 ? 4 * Math.max(D, F) : 0);
    if (MINB * (bytes + (10 << 10)) > ctx.info.maxSharedPerBlockOptin) {
      log.line(`# M=${M}: ${v.name} left out (${bytes} B of shared memory a block: two blocks a SM do not fit)`);
      return [];
    }
    const fn = getKernel(ctx, join(benchKernelsDir(), 'persistent-mlp.cu'), 'w4a8_mlp_persistent', { ...persistentDefines, ...v.defines }, bytes);
    const barriers = 2 * layers * grid;
    const launch: Launch = () => {
      resetH();
      ctx.launch(fn, [grid], [CONFIG.WK * 32],
        [layerTable, { i32: layers }, { i32: M }, { i32: D }, { i32: F }, { f32: EPS }, h, y, amax, counter, { i32: arrivals | 0 }], bytes);
      arrivals = (arrivals + barriers) >>> 0;
    };
    return [{ ...v, launch }];
  });
  // the same bits first: h after the launches, then after each persistent variant (but the diagnostic)
  const hBytes = (): Buffer => {
    ctx.synchronize();
    return Buffer.from(h.download(new Uint8Array(M * D * 4)));
  };
  resetH();
  const h0 = hBytes();
  const launches = engineLaunches(M >= 2);
  launches(0);
  const hLaunch = hBytes();
  const finite = new Float32Array(hLaunch.buffer, hLaunch.byteOffset, M * D).every(Number.isFinite);
  if (!finite || hLaunch.equals(h0)) throw new Error(`M=${M}: the launches' h is ${finite ? 'unchanged' : 'not finite'}: the check would prove nothing`);
  const checked = persistents.filter((v) => v.defines.PROLOGUE !== 0);
  for (const v of checked) {
    y.fill(0xff);
    v.launch(0);
    if (!hBytes().equals(hLaunch)) throw new Error(`M=${M}: ${v.name}'s h differs from the launches'`);
  }
  log.line(`M=${M} ${checked.map((v) => v.name).join(', ')}: h bit-identical to the launches' after ${layers} layers`);
  const variants: [string, Launch][] = [
    ['launches', launches], ...(M === 1 ? [['launches-pdl', engineLaunches(true)] as [string, Launch]] : []),
    ...persistents.map((v): [string, Launch] => [v.name, v.launch]),
  ];
  const times = timer.timeInterleaved(variants.map(([, v]) => v), rounds, SAMPLES);
  variants.forEach(([name, _], i) => {
    const t = times[i]!;
    log.line(`M=${M} ${name.padEnd(24)} ${(t.us / layers).toFixed(2).padStart(7)} µs a layer (p10 ${(t.p10 / layers).toFixed(2)}, p90 ${(t.p90 / layers).toFixed(2)}), ${(weightBytes / t.us / 1e6).toFixed(2)} TB/s of weights; ${(times[0]!.us / t.us).toFixed(3)}x the launches`);
  });
  bufs.free();
}
log.write(values.out!, 'cuda-persistent-mlp.log');
inputs.free();
bench.close();
