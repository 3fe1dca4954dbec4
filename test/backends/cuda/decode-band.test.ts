/**
 * The band decode kernel (w4a8-decode-band.cu) in the engine's two fused forms against the decode kernel's: adding into
 * the residual (ACCUMULATE) and SwiGLU in the epilogue (y and each row's max |y| over its partial maxima), bit for bit
 * with integer scales, on fresh random inputs, ragged N, 9-32 rows, K split 1-6 ways, two rounds (the split-K counters
 * left at zero for the next launch). Its plain output against the CPU reference: gpu-linear.test.ts (SHAPES).
 * Skips with the reason when no CUDA driver or GPU is present (CI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tryCudaContext } from '../../../src/backends/cuda/index.js';
import type { CudaContext } from '../../../src/backends/cuda/context.js';
import type { DeviceBuffer } from '../../../src/backends/cuda/buffer.js';
import { freeW4A8, uploadW4A8, w4a8Linear, w4a8SwigluDecode, type DecodeConfig } from '../../../src/backends/cuda/w4a8.js';
import { quantizeActivations } from '../../../src/quant/activation-quant.js';
import { randomActivations, randomW4Layer } from './helpers.js';

const cuda = tryCudaContext();
const skip = 'reason' in cuda ? `no CUDA driver/GPU: ${cuda.reason}` : false;
const ctxOf = (): CudaContext => (cuda as { ctx: CudaContext }).ctx;

/** [M, N, K, decode config, band config] */
const CASES: [number, number, number, DecodeConfig, DecodeConfig][] = [
  [9, 1008, 1024, { kind: 'decode', MT: 2, NTW: 2, WK: 8 }, { kind: 'decode', MT: 2, NTW: 1, WK: 8, band: 3 }],
  [20, 528, 1408, { kind: 'decode', MT: 4, NTW: 1, WK: 8, MINB: 2 }, { kind: 'decode', MT: 3, NTW: 1, WK: 4, band: 1 }],
  [32, 2080, 2816, { kind: 'decode', MT: 4, NTW: 1, WK: 8, MINB: 2 }, { kind: 'decode', MT: 4, NTW: 1, WK: 8, MINB: 2, PREW: 2, band: 6 }],
];

test('band decode kernel: the residual add and the SwiGLU epilogue give the decode kernel\'s bits (y, and each row\'s max |y|), twice', { skip }, () => {
  const ctx = ctxOf();
  for (const [M, N, K, decode, band] of CASES) {
    const what = `M=${M} N=${N} K=${K} band=${band.band} WK=${band.WK}`;
    const w = randomW4Layer(N, K, 128, 300 + M);
    const layer = uploadW4A8(ctx, w);
    const act = quantizeActivations(randomActivations(M, K, 400 + M), M, K);
    const h0 = randomActivations(M, N, 500 + M);
    const buffers: DeviceBuffer[] = [];
    const keep = (b: DeviceBuffer): DeviceBuffer => (buffers.push(b), b);
    const F = N / 2, tiles = Math.ceil(N / 128) * 8, blocks = Math.ceil(N / 16 / decode.NTW);
    try {
      const [xq, a, hDecode, hBand] = [ctx.upload(act.xq), ctx.upload(act.scales), ctx.upload(h0), ctx.upload(h0)].map(keep);
      const [yDecode, yBand, amaxDecode, amaxBand] = [M * F * 4, M * F * 4, M * blocks * 4, M * tiles * 4].map((b) => keep(ctx.alloc(b)));
      for (const b of [yDecode!, yBand!, amaxBand!]) b.fill(0xff);
      ctx.landUploads();
      for (const round of [1, 2]) {
        w4a8Linear(ctx, layer, xq!, a!, hDecode!, M, { ...decode, accumulate: true, overlap: true });
        w4a8Linear(ctx, layer, xq!, a!, hBand!, M, { ...band, accumulate: true, overlap: true });
        const Pd = w4a8SwigluDecode(ctx, layer, xq!, a!, yDecode!, amaxDecode!, M, decode);
        const Pb = w4a8SwigluDecode(ctx, layer, xq!, a!, yBand!, amaxBand!, M, { ...band, overlap: true });
        assert.equal(Pb, tiles, `${what}: the band's partial maxima are its tiles`);
        ctx.synchronize();
        const hd = hDecode!.download(new Uint8Array(M * N * 4));
        assert.ok(!Buffer.from(hd).equals(Buffer.from(new Float32Array(h0).buffer)), `${what}: the residual changed`);
        assert.deepEqual(hBand!.download(new Uint8Array(M * N * 4)), hd, `${what}, round ${round}: residual`);
        assert.deepEqual(yBand!.download(new Uint8Array(M * F * 4)), yDecode!.download(new Uint8Array(M * F * 4)), `${what}, round ${round}: SwiGLU rows`);
        const [md, mb] = [amaxDecode!.download(new Float32Array(M * Pd)), amaxBand!.download(new Float32Array(M * Pb))];
        for (let r = 0; r < M; r++) {
          const rowMax = (m: Float32Array, P: number): number => Math.max(...m.subarray(r * P, (r + 1) * P));
          assert.ok(rowMax(md, Pd) > 0, `${what}: row ${r}'s max is positive`);
          assert.equal(rowMax(mb, Pb), rowMax(md, Pd), `${what}, round ${round}: row ${r}'s max |y|`);
        }
      }
    } finally {
      for (const b of buffers) b.free();
      freeW4A8(layer);
    }
  }
});
