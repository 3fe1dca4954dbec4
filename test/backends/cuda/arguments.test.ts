/**
 * The CUDA layer entry points reject bad arguments before touching the GPU, with messages that name
 * the problem: output buffers too small for the output format, a decode config too small for M,
 * the sm_90a kernels on another GPU, too many TMA stages for the device's shared memory, a bad TMA
 * block or split-K count, tensor maps with bad strides, boxes, swizzle widths or bounds, device
 * buffer views that do not fit (or are freed), and attention shapes the kernel cannot take. Runs without a GPU: the context is a stub
 * whose every other use fails the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import type { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import type { KernelArg } from '../../../src/backends/cuda/program.js';
import { w4a8DecodeNorm, w4a8DecodeRows, w4a8Linear, w4a8SwigluDecode, wgmmaTmaSharedBytes, type W4A8Layer } from '../../../src/backends/cuda/w4a8.js';
import { attentionToCuda, ENGINE_MAX_ROW, mergeCounterBytes, wideLoadsFit, type AttentionRowsBy, type RowOutput } from '../../../src/backends/cuda/engine-ops.js';
import { w8a8Linear, type W8A8Layer } from '../../../src/backends/cuda/w8a8.js';
import { w4a16Linear, type W4A16Layer } from '../../../src/backends/cuda/w4a16.js';
import { tensorMapU8 } from '../../../src/backends/cuda/tensor-map.js';
import { outputBytes } from '../../../src/backends/cuda/output.js';
import { DeviceBuffer as DeviceBufferClass } from '../../../src/backends/cuda/buffer.js';
import { attentionCuda } from '../../../src/backends/cuda/model-ops.js';
import { DECODE_SMEM, decodeSharedBytes } from '../../../src/backends/cuda/decode-slots.js';

const unreachable = (): never => assert.fail('the stub context was used past the argument checks');
function stubContext(arch: string, maxSharedPerBlockOptin = 232448): CudaContext {
  return {
    arch,
    info: { maxSharedPerBlockOptin },
    api: { fn: { cuTensorMapEncodeTiled: unreachable } },
    launch: unreachable,
    upload: unreachable,
    programs: { module: unreachable, function: unreachable },
  } as unknown as CudaContext;
}
const buffer = (bytes: number): DeviceBuffer => ({ bytes, address: 4096, ptr: 4096 }) as unknown as DeviceBuffer;

const M = 5, N = 300, K = 1024;
const w4: W4A8Layer = { n: N, k: K, groupSize: 128, scale: 'int', post: 1 / 1024, isShift: false, weights: buffer(N * K), scales: buffer(N * 8 * 4) };
const xq = buffer(M * K), a = buffer(M * 4);

test('outputBytes: 4 for f32, 2 for f16', () => {
  assert.equal(outputBytes('f32'), 4);
  assert.equal(outputBytes('f16'), 2);
});

test('w4a8Linear / w8a8Linear / w4a16Linear name an output buffer too small for the output format', () => {
  const ctx = stubContext('sm_90a');
  const decode = { kind: 'decode', MT: 1, NTW: 1, WK: 8 } as const;
  // M*N*2 bytes hold an f16 output but not an f32 one
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, buffer(M * N * 2), M, decode, 'f32'), /w4a8Linear: buffers too small for M=5, N=300, K=1024 \(f32 output\)/);
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, buffer(M * N * 2 - 1), M, decode, 'f16'), /\(f16 output\)/);
  assert.throws(() => w4a8Linear(ctx, w4, buffer(M * K - 1), a, buffer(M * N * 4), M, decode), /buffers too small/);
  const w8 = { ...w4, weights: buffer(N * K) } as unknown as W8A8Layer;
  assert.throws(() => w8a8Linear(ctx, w8, xq, a, buffer(M * N * 2), M, decode, 'f32'), /w8a8Linear: buffers too small .*\(f32 output\)/);
  const w16: W4A16Layer = { n: N, k: K, groupSize: 128, weights: buffer(N * K), scales: buffer(N * 16) };
  assert.throws(() => w4a16Linear(ctx, w16, buffer(M * K * 2), buffer(M * N * 2 - 2), M, { MT: 1, NTW: 1, WK: 8 }, 'f16'), /w4a16Linear: buffers too small .*\(f16 output\)/);
});

test('w4a8Linear rejects a decode config too small for M and the sm_90a kernels on another GPU', () => {
  const y = buffer(17 * N * 4);
  assert.throws(() => w4a8Linear(stubContext('sm_90a'), w4, buffer(17 * K), buffer(17 * 4), y, 17, { kind: 'decode', MT: 2, NTW: 1, WK: 8 }), /decode config MT=2 serves M <= 16, got 17/);
  for (const config of [{ kind: 'wgmma-tma', STAGES: 4 }, { kind: 'wgmma-rs', WGS: 2, STAGES: 4, MINB: 1 }] as const) {
    assert.throws(() => w4a8Linear(stubContext('sm_86'), w4, xq, a, buffer(M * N * 4), M, config), /needs sm_90a \(device is sm_86\)/);
  }
});

test('w4a8Linear names a bad decode STAGES, MINB or PREW and the shared memory a slotted decode launch needs past the device limit', () => {
  const ctx = stubContext('sm_90a');
  const y = buffer(M * N * 4);
  const decode = { kind: 'decode', MT: 1, NTW: 1, WK: 8 } as const;
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, y, M, { ...decode, STAGES: 9 }), /decode STAGES must be an integer in 0..8, got 9/);
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, y, M, { ...decode, STAGES: 1.5 }), /decode STAGES must be an integer/);
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, y, M, { ...decode, MINB: 9 }), /decode MINB must be an integer in 1..8 at WK=8, got 9/);
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, y, M, { ...decode, PREW: 3 }), /decode PREW must be an integer in 1..2 with STAGES=0, got 3/);
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, y, M, { ...decode, STAGES: 4, PREW: 5 }), /decode PREW must be an integer in 1..4 with STAGES=4, got 5/);
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, y, M, { ...decode, PREW: 0 }), /decode PREW must be an integer/);
  // 16 rows of K = 11008 a warp's range at WK 4 (22 chunks: 16·(22·128 + 64) B) and 8 slots of two tiles: past 227 KiB
  const wide: W4A8Layer = { ...w4, k: 11008, weights: buffer(N * 11008), scales: buffer(N * 86 * 4) };
  const need = decodeSharedBytes(16, 11008, { NTW: 2, WK: 4, STAGES: 8 }, DECODE_SMEM.W4_TILE);
  assert.equal(need, 4 * (16 * (22 * 128 + 64) + 8 * 2 * 1088));
  assert.throws(() => w4a8Linear(ctx, wide, buffer(16 * 11008), buffer(16 * 4), buffer(16 * N * 4), 16, { kind: 'decode', MT: 2, NTW: 2, WK: 4, STAGES: 8 }),
    /decode STAGES=8 at M=16, K=11008, WK=4 needs \d+ B of shared memory, the device allows 232448/);
  assert.equal(decodeSharedBytes(M, K, decode, DECODE_SMEM.W4_TILE), 0, 'the register pipeline takes no dynamic shared memory');
  assert.equal(decodeSharedBytes(32, 11008, { NTW: 1, WK: 8, STAGES: 6, XREG: 1 }, DECODE_SMEM.W4_TILE), 8 * 6 * 1088, 'XREG: the slots only, no rows');
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, y, M, { ...decode, XREG: 1 }), /decode XREG=1 keeps the activations in registers beside STAGES slots of weights: give STAGES > 0/);
  assert.throws(() => w4a8Linear(ctx, w4, xq, a, y, M, { ...decode, STAGES: 2, XREG: 2 as 1 }), /decode XREG must be 0 or 1, got 2/);
  const w8 = { ...w4, weights: buffer(N * K) } as unknown as W8A8Layer;
  assert.throws(() => w8a8Linear(ctx, w8, xq, a, y, M, { ...decode, STAGES: 2, MINB: 0 }), /decode MINB must be an integer in 1..8 at WK=8, got 0/);
});

test('w4a8Linear names the shared memory too many TMA stages need against the device limit', () => {
  const stages = 9;
  const need = wgmmaTmaSharedBytes(stages);
  assert.ok(need > 232448, 'nine stages exceed the H100 limit');
  assert.throws(
    () => w4a8Linear(stubContext('sm_90a'), w4, xq, a, buffer(M * N * 4), M, { kind: 'wgmma-tma', STAGES: stages }),
    new RegExp(`wgmma-tma with 9 stages needs ${need} B of shared memory, the device allows 232448`),
  );
});

test('w4a8Linear names a wgmma-tma token tile other than 32, 64 or 128, and the shared memory of a narrower one', () => {
  for (const BT of [48, 256, 0]) {
    assert.throws(() => w4a8Linear(stubContext('sm_90a'), w4, xq, a, buffer(M * N * 4), M, { kind: 'wgmma-tma', STAGES: 4, BT: BT as 32 }), new RegExp(`wgmma-tma BT \\(tokens a tile\\) must be 32, 64 or 128, got ${BT}`));
  }
  // 32-token stages are 12 KB instead of 24: sixteen of them fit where nine 128-token ones do not
  assert.equal(wgmmaTmaSharedBytes(16, 32), 1024 + 16 * 13 * 1024 + 8 * 8192 + 16 * 16);
  assert.throws(() => w4a8Linear(stubContext('sm_90a', 100000), w4, xq, a, buffer(M * N * 4), M, { kind: 'wgmma-tma', STAGES: 4, BT: 32 }),
    new RegExp(`wgmma-tma with 4 stages needs ${wgmmaTmaSharedBytes(4, 32)} B of shared memory, the device allows 100000`));
});

test('w4a8Linear rejects a wgmma-tma block count that is not a positive integer', () => {
  for (const blocks of [0, 2.5, -1]) {
    assert.throws(() => w4a8Linear(stubContext('sm_90a'), w4, xq, a, buffer(M * N * 4), M, { kind: 'wgmma-tma', STAGES: 4, blocks }), /wgmma-tma blocks must be a positive integer, 'tiles' or 'sms', got/);
  }
});

test('w4a8Linear rejects a split-K count that is not an integer in 1..K/128', () => {
  for (const KS of [0, 1.5, 9]) {
    assert.throws(() => w4a8Linear(stubContext('sm_90a'), w4, xq, a, buffer(M * N * 4), M, { kind: 'wgmma-tma', STAGES: 4, KS }), new RegExp(`wgmma-tma KS \\(K splits\\) must be an integer in 1..8 for K=1024, got ${KS}`));
  }
});

test('tensorMapU8 rejects bad ranks, strides, boxes, swizzle widths and bounds before encoding', () => {
  const ctx = stubContext('sm_90a');
  const buf = buffer(1 << 20);
  const ok = { dims: [1024, 512], strides: [1024], box: [128, 128], swizzle: 'sw128' } as const;
  assert.throws(() => tensorMapU8(ctx, buf, { ...ok, strides: [] }), /tensor map needs 1-5 dims with rank-1 strides/);
  assert.throws(() => tensorMapU8(ctx, buf, { ...ok, strides: [1000] }), /TMA strides must be multiples of 16 bytes, got 1000/);
  assert.throws(() => tensorMapU8(ctx, buf, { ...ok, box: [120, 128] }), /TMA box 120,128 must be 1-256 per dim/);
  assert.throws(() => tensorMapU8(ctx, buf, { ...ok, box: [128, 512] }), /TMA box 128,512/);
  assert.throws(() => tensorMapU8(ctx, buf, { ...ok, box: [64, 128], swizzle: 'sw32' }), /the sw32 swizzle takes boxes at most 32 bytes wide, got 64/);
  assert.throws(() => tensorMapU8(ctx, buf, { ...ok, dims: [1024, 1025] }), /reach byte 1049600 of a 1048576 B buffer/);
  const noDriver = { ...ctx, api: { fn: {} } } as unknown as CudaContext;
  assert.throws(() => tensorMapU8(noDriver, buf, ok), /no cuTensorMapEncodeTiled/);
});

test('DeviceBuffer views: a view that does not fit, and free() on a view, are named errors', () => {
  const parent = new DeviceBufferClass({} as never, 4096, 1024);
  const v = parent.view(256, 512);
  assert.equal(v.address, 4096 + 256);
  assert.equal(v.view(16, 32).address, 4096 + 256 + 16);
  assert.throws(() => parent.view(768, 512), /view of 512 B at 768 does not fit a 1024 B buffer/);
  assert.throws(() => parent.view(-1, 8), /view of 8 B at -1 does not fit/);
  assert.throws(() => v.free(), /free\(\) on a view: free the buffer it was taken from/);
});

test('the attention launcher names a head dimension past the kernel and heads that do not group', () => {
  const ctx = stubContext('sm_90a');
  const base = { m: 1, startPos: 0, position: buffer(4), capacity: 16, numHeads: 8, numKvHeads: 2, window: 0 };
  assert.throws(() => attentionCuda(ctx, buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), { ...base, headDim: 320 }, buffer(1 << 20)),
    /the CUDA attention kernel takes head dimensions up to 256, got 320/);
  assert.throws(() => attentionCuda(ctx, buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), { ...base, numKvHeads: 3, headDim: 64 }, buffer(1 << 20)),
    /8 query heads do not split evenly over 3 kv heads/);
  assert.throws(() => attentionCuda(ctx, buffer(64), buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), { ...base, headDim: 64 }, buffer(1 << 20)),
    /attention q: buffer of 64 B, the shape needs 2048 B/);
  assert.throws(() => attentionCuda(ctx, buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), { ...base, headDim: 64, startPos: 16 }, buffer(1 << 20)),
    /attention: positions up to 17 in a cache of 16/);
  assert.throws(() => attentionCuda(ctx, buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), buffer(1 << 20), { ...base, headDim: 64 }, buffer(8)),
    /attention partials: buffer of 8 B, the shape needs 4224 B/);
});

test('the engine attention takes 16-byte loads only where D/8 lanes (a power of two, at most a warp) hold a position\'s key', () => {
  assert.deepEqual([64, 128, 256].map(wideLoadsFit), [true, true, true]);
  assert.deepEqual([8, 96, 100, 200, 512].map(wideLoadsFit), [true, false, false, false, false]);
  const ctx = stubContext('sm_90a');
  const a = { numHeads: 4, numKvHeads: 4, headDim: 96, window: 0, kv: buffer(64), layer: 0, numLayers: 1 };
  const out: RowOutput = { form: 'int8', values: buffer(1 << 12), scales: buffer(64) };
  const scratch = { values: buffer(1 << 16), amax: buffer(1 << 10) };
  assert.throws(() => attentionToCuda(ctx, buffer(1 << 16), 384, buffer(64), 1, a, { splits: 1, chunk: 16, loads: 16 }, buffer(1 << 16), scratch, out),
    /16-byte loads need the head dimension a multiple of 8 with D\/8 a power of two up to 32, got 96/);
});

test('attentionToCuda launches split, merge and quantize_rows as its run says: who writes the rows (a launch, the merge\'s tail, the reader), the merge fold, the overlap; short merge counters and a tail under the fold are named', () => {
  const launched: { kernel: string; module: string; tail: boolean; overlap: boolean }[] = [];
  const ctx = {
    ...stubContext('sm_90a'),
    programs: { module: (key: string) => key, function: (mod: string, kernel: string) => ({ kernel, module: mod }) },
    launch: (fn: { kernel: string; module: string }, _grid: unknown, _block: unknown, args: KernelArg[], _smem: number, options: { overlapPrevious?: boolean }) =>
      launched.push({ ...fn, tail: fn.kernel === 'attention_merge' && (args[args.length - 1] as DeviceBuffer).bytes === 8, overlap: options.overlapPrevious === true }),
  } as unknown as CudaContext;
  const a = { numHeads: 4, numKvHeads: 4, headDim: 64, window: 0, kv: buffer(64), layer: 0, numLayers: 1 };
  const out: RowOutput = { form: 'int8', values: buffer(1 << 12), scales: buffer(64) };
  const scratch = { values: buffer(1 << 16), amax: buffer(1 << 10) };
  const split = { splits: 2, chunk: 16, loads: 16 as const };
  const run = (merged: DeviceBuffer | undefined, rowsBy?: AttentionRowsBy, overlap = false) => {
    launched.length = 0;
    attentionToCuda(ctx, buffer(1 << 16), 256, buffer(64), 2, a, { ...split, ...(merged ? { merged } : {}) }, buffer(1 << 16), scratch, out,
      { ...(rowsBy ? { rowsBy } : {}), launch: { overlapPrevious: overlap } });
    return launched.map((l) => l.kernel + (l.tail ? '+tail' : ''));
  };
  assert.deepEqual(run(undefined), ['attention_split_v8', 'attention_merge', 'quantize_rows']);
  assert.deepEqual(run(undefined, 'reader'), ['attention_split_v8', 'attention_merge']);
  assert.deepEqual(run(undefined, { tail: buffer(8) }), ['attention_split_v8', 'attention_merge+tail']);
  assert.deepEqual(run(buffer(32)), ['attention_split_v8', 'quantize_rows'], 'the merge fold: no attention_merge');
  assert.match(launched[0]!.module, /"MERGE_FOLD":1/, 'the split kernel compiled with the fold');
  assert.deepEqual(run(buffer(32), 'reader'), ['attention_split_v8']);
  run(undefined);
  assert.doesNotMatch(launched[0]!.module, /MERGE_FOLD/);
  assert.deepEqual(launched.map((l) => l.overlap), [false, false, false]);
  run(undefined, 'launch', true);
  assert.deepEqual(launched.map((l) => l.overlap), [true, true, true], 'every kernel of the run launched to overlap');
  assert.throws(() => run(buffer(mergeCounterBytes(2, 4) - 4)), /attention merge counters: buffer of 28 B, the shape needs 32 B/);
  assert.throws(() => run(buffer(32), { tail: buffer(8) }), /the merge fold writes no rows; it takes no quantize tail/);
  assert.throws(() => run(undefined, { tail: buffer(4) }), /attention arrivals/);
});

test('w4a8DecodeNorm / w4a8SwigluDecode / attentionToCuda name a tail they cannot write: no accumulate, WK not dividing 32, short counters, a norm row too small or too long', () => {
  const ctx = stubContext('sm_90a');
  const config = { kind: 'decode', MT: 1, NTW: 1, WK: 8, accumulate: true } as const;
  const h = buffer(M * N * 4);
  const norm = (out: RowOutput, weight = buffer(N * 4)) => ({ weight, out, eps: 1e-5 });
  const row = (bytes: number): RowOutput => ({ form: 'int8', values: buffer(bytes), scales: buffer(M * 4) });
  assert.throws(() => w4a8DecodeNorm(ctx, w4, xq, a, h, M, { ...config, accumulate: false }, norm(row(M * N)), buffer(8)), /its config must accumulate/);
  assert.throws(() => w4a8DecodeNorm(ctx, w4, xq, a, h, M, { ...config, WK: 3 }, norm(row(M * N)), buffer(8)), /WK dividing 32, got 3/);
  assert.throws(() => w4a8DecodeNorm(ctx, w4, xq, a, h, M, config, norm(row(M * N)), buffer(4)), /decode norm arrivals/);
  assert.throws(() => w4a8DecodeNorm(ctx, w4, xq, a, h, M, config, norm(row(M * N - 1)), buffer(8)), /decode norm output/);
  assert.throws(() => w4a8DecodeNorm(ctx, w4, xq, a, h, M, config, norm(row(M * N), buffer(N * 4 - 4)), buffer(8)), /decode norm weight/);
  const wide: W4A8Layer = { ...w4, n: ENGINE_MAX_ROW + 4 };
  assert.throws(() => w4a8DecodeNorm(ctx, wide, xq, a, buffer(M * wide.n * 4), M, config, norm(row(M * wide.n), buffer(wide.n * 4)), buffer(8)), /rows up to 32768 values, got 32772/);
  const gu: W4A8Layer = { ...w4, n: 2 * 160 };
  const swiglu = { kind: 'decode', MT: 1, NTW: 1, WK: 8 } as const;
  assert.throws(() => w4a8SwigluDecode(ctx, gu, xq, a, buffer(M * 160 * 4), buffer(M * 20 * 4), M, swiglu, { out: row(M * 160), arrivals: buffer(4) }), /swiglu tail arrivals/);
  assert.throws(() => w4a8SwigluDecode(ctx, gu, xq, a, buffer(M * 160 * 4), buffer(M * 20 * 4), M, swiglu, { out: row(M * 160 - 1), arrivals: buffer(8) }), /swiglu tail output/);
});

test('w4a16Linear past its config\'s 8·MT rows launches once per 8·MT rows, each on views of its rows of x and y', () => {
  const launches: { m: number; x: number; y: number }[] = [];
  const ctx = {
    arch: 'sm_90a',
    info: { maxSharedPerBlockOptin: 232448 },
    programs: { module: () => ({}), function: () => ({}) },
    launch: (_fn: unknown, _grid: unknown, _block: unknown, args: unknown[]) =>
      launches.push({ x: (args[2] as DeviceBuffer).address, y: (args[3] as DeviceBuffer).address, m: (args[4] as { i32: number }).i32 }),
  } as unknown as CudaContext;
  const at = (ptr: number, bytes: number): DeviceBuffer => new DeviceBufferClass({} as never, ptr, bytes);
  const w16: W4A16Layer = { n: N, k: K, groupSize: 128, weights: buffer(N * K), scales: buffer(N * 16) };
  const [x0, y0] = [1 << 20, 1 << 26];
  w4a16Linear(ctx, w16, at(x0, 45 * K * 2), at(y0, 45 * N * 4), 45, { MT: 2, NTW: 1, WK: 8 });
  assert.deepEqual(launches, [
    { m: 16, x: x0, y: y0 },
    { m: 16, x: x0 + 16 * K * 2, y: y0 + 16 * N * 4 },
    { m: 13, x: x0 + 32 * K * 2, y: y0 + 32 * N * 4 },
  ]);
  launches.length = 0;
  w4a16Linear(ctx, w16, at(x0, 8 * K * 2), at(y0, 8 * N * 2), 8, { MT: 1, NTW: 1, WK: 8 }, 'f16');
  assert.deepEqual(launches, [{ m: 8, x: x0, y: y0 }], 'within its rows: one launch on the buffers themselves');
});

test('w4a8DecodeRows names what it cannot take: a slotted config, a bad P, short buffers, rows past the shared memory', () => {
  const ctx = stubContext('sm_90a');
  const decode = { kind: 'decode', MT: 1, NTW: 1, WK: 16 } as const;
  const rows = { values: buffer(M * K * 4), amax: buffer(M * 32 * 4) };
  const y = buffer(M * N * 4);
  assert.throws(() => w4a8DecodeRows(ctx, w4, rows, 32, y, M, { ...decode, STAGES: 2 }), /quantizing its rows takes the register pipeline, got STAGES=2/);
  assert.throws(() => w4a8DecodeRows(ctx, w4, rows, 0, y, M, decode), /P \(partial maxima a row\) must be a positive integer, got 0/);
  assert.throws(() => w4a8DecodeRows(ctx, w4, rows, 33, y, M, decode), /decode rows maxima/);
  assert.throws(() => w4a8DecodeRows(ctx, w4, { ...rows, values: buffer(M * K * 4 - 4) }, 32, y, M, decode), /decode rows values/);
  assert.throws(() => w4a8DecodeRows(ctx, w4, rows, 32, buffer(M * N * 4 - 4), M, decode), /decode rows y/);
  assert.throws(() => w4a8DecodeRows(ctx, w4, { values: buffer(9 * K * 4), amax: buffer(9 * 32 * 4) }, 32, buffer(9 * N * 4), 9, decode), /decode config MT=1 serves M <= 8, got 9/);
  // 8 rows of K = 32768 (256 KiB) past the 227 KiB a block may have
  const wide: W4A8Layer = { ...w4, k: 32768, weights: buffer(N * 32768), scales: buffer(N * 256 * 4) };
  assert.throws(() => w4a8DecodeRows(ctx, wide, { values: buffer(8 * 32768 * 4), amax: buffer(8 * 4) }, 1, buffer(8 * N * 4), 8, decode),
    /a decode GEMM quantizing 8 rows of K=32768 needs \d+ B of shared memory, the device allows 232448/);
});
