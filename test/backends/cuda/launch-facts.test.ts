/**
 * The launch facts the TypeScript launchers hold (block tiles, threads, dynamic shared memory) equal
 * the #defines of the kernels' .cu files: each .cu's object-like #defines are evaluated with the
 * launch's -D values, as the compiler would (integer arithmetic), and compared. No GPU or nvcc needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelsDir } from '../../../src/backends/cuda/kernel-cache.js';
import { MOE_MAX_EXPERTS } from '../../../src/backends/cuda/moe-ops.js';
import { DECODE_SMEM } from '../../../src/backends/cuda/decode-slots.js';
import { SCALED_RTN_THREADS, SQUARED_ERROR_PARTS } from '../../../src/backends/cuda/scaled-rtn.js';
import { ACT_QUANT, mmaLaunch, WGMMA_RS, WGMMA_TMA, wgmmaRsSharedBytes, wgmmaTmaSharedBytes } from '../../../src/backends/cuda/w4a8.js';
import { W8_WGMMA, w8a8WgmmaSharedBytes } from '../../../src/backends/cuda/w8a8.js';
import { ATTENTION_MAX_HEAD_DIM, ATTENTION_MAX_SPLITS, ATTENTION_THREADS, ATTENTION_TILE, MODEL_OPS_THREADS } from '../../../src/backends/cuda/model-ops.js';

/** The value of macro `name` in `file` built with `-D` values `defs` (which win over the file's defaults). */
function macros(file: string, defs: Record<string, number> = {}): (name: string) => number {
  const text = readFileSync(join(kernelsDir(), file), 'utf8');
  const table = new Map<string, string>();
  for (const m of text.matchAll(/^#define (\w+)(?!\()[ \t]+(.*?)\s*(?:\/\/.*)?$/gm)) if (!table.has(m[1]!)) table.set(m[1]!, m[2]!);
  for (const [k, v] of Object.entries(defs)) table.set(k, String(v));
  const expand = (expr: string, depth: number): string => {
    assert.ok(depth < 20, `${file}: macro expansion too deep in ${expr}`);
    return expr.replace(/[A-Za-z_]\w*/g, (id) => {
      const body = table.get(id);
      assert.ok(body !== undefined, `${file}: ${id} is not an object-like #define`);
      return `(${expand(body, depth + 1)})`;
    });
  };
  return (name) => {
    const expr = expand(name, 0);
    assert.match(expr, /^[\d\s()+\-*/%&|~<>=!?:]+$/, `${file}: ${name} = ${expr} is not plain integer arithmetic`);
    // the launch facts divide exactly, so JS arithmetic gives C's integer result (a fraction fails below)
    const value = Function(`"use strict"; return (${expr});`)() as number;
    assert.ok(Number.isInteger(value), `${file}: ${name} = ${value} is not an integer (a division that does not divide)`);
    return value;
  };
}

/** Every __launch_bounds__(N) with a literal N in `file`. */
function literalLaunchBounds(file: string): number[] {
  const text = readFileSync(join(kernelsDir(), file), 'utf8');
  return [...text.matchAll(/__launch_bounds__\((\d+)\)/g)].map((m) => Number(m[1]));
}

test('w4a8_mma: threads and dynamic shared memory of the launcher equal THREADS and SMEM_BYTES', () => {
  for (const c of [{ BM: 128, BN: 128, WM: 2, WN: 4, STAGES: 4 }, { BM: 64, BN: 64, WM: 2, WN: 2, STAGES: 4 }, { BM: 128, BN: 128, WM: 2, WN: 4, STAGES: 3 }]) {
    const cu = macros('w4a8-mma.cu', c);
    const ts = mmaLaunch({ kind: 'mma', ...c });
    assert.deepEqual([ts.threads, ts.sharedBytes], [cu('THREADS'), cu('SMEM_BYTES')], JSON.stringify(c));
  }
});

test('decode kernels: the shared-memory pipeline\'s scale bytes and row pad equal decode.cuh\'s, its tile bytes the kernels\' WB', () => {
  const cu = macros('decode.cuh');
  assert.deepEqual([DECODE_SMEM.SCALE_BYTES, DECODE_SMEM.X_PAD], [cu('DECODE_SCALE_BYTES'), cu('DECODE_X_PAD')]);
  for (const [file, bytes] of [['w4a8-decode.cu', DECODE_SMEM.W4_TILE], ['w8a8-decode.cu', DECODE_SMEM.W8_TILE]] as const) {
    const wb = readFileSync(join(kernelsDir(), file), 'utf8').match(/constexpr int WB = (\d+);/);
    assert.equal(Number(wb?.[1]), bytes, `${file}: WB`);
  }
});

test('w4a8_wgmma_rs: BT, BW, THREADS and SMEM_BYTES', () => {
  for (const WGS of [1, 2]) {
    for (const STAGES of [3, 4, 5]) {
      const cu = macros('w4a8-wgmma-rs.cu', { WGS, STAGES });
      assert.deepEqual([WGMMA_RS.BT, WGMMA_RS.BW(WGS), WGMMA_RS.THREADS(WGS), WGMMA_RS.X_BYTES, wgmmaRsSharedBytes(STAGES)],
        [cu('BT'), cu('BW'), cu('THREADS'), cu('X_BYTES'), cu('SMEM_BYTES')], `WGS ${WGS} STAGES ${STAGES}`);
    }
  }
});

test('w4a8_wgmma_tma: tile, threads, stage layout and SMEM_BYTES', () => {
  for (const STAGES of [3, 4, 5, 6]) {
    const cu = macros('w4a8-wgmma-tma.cu', { STAGES });
    assert.equal(wgmmaTmaSharedBytes(STAGES), cu('SMEM_BYTES'), `STAGES ${STAGES}`);
  }
  const cu = macros('w4a8-wgmma-tma.cu');
  const { BT, BW, CONSUMERS, THREADS, X_BYTES, W_BYTES, S_BYTES, OUT_SLOT, CONSUMER_WARPS } = WGMMA_TMA;
  assert.deepEqual({ BT, BW, CONSUMERS, THREADS, X_BYTES, W_BYTES, S_BYTES, OUT_SLOT },
    Object.fromEntries(['BT', 'BW', 'CONSUMERS', 'THREADS', 'X_BYTES', 'W_BYTES', 'S_BYTES', 'OUT_SLOT'].map((k) => [k, cu(k)])));
  assert.equal(CONSUMER_WARPS, cu('CONSUMERS') / 32);
  assert.equal(CONSUMER_WARPS, cu('TILES'), 'one consumer warp per 16-row weight tile');
});

test('w8a8_wgmma: BM, BN, THREADS and SMEM_BYTES', () => {
  for (const WGS of [1, 2]) {
    for (const STAGES of [3, 4]) {
      const cu = macros('w8a8-wgmma.cu', { WGS, STAGES });
      assert.deepEqual([W8_WGMMA.BM(WGS), W8_WGMMA.BN, W8_WGMMA.THREADS(WGS), w8a8WgmmaSharedBytes(WGS, STAGES)],
        [cu('BM'), cu('BN'), cu('THREADS'), cu('SMEM_BYTES')], `WGS ${WGS} STAGES ${STAGES}`);
    }
  }
});

test('attention, model ops and act_quant: head dimension, splits, tile and threads per block', () => {
  const cu = macros('attention.cu');
  assert.deepEqual([ATTENTION_MAX_HEAD_DIM, ATTENTION_MAX_SPLITS, ATTENTION_TILE, ATTENTION_THREADS], [cu('D_MAX'), cu('MAX_SPLITS'), cu('TILE'), cu('THREADS')]);
  for (const [file, threads] of [['model-ops.cu', MODEL_OPS_THREADS], ['attention.cu', MODEL_OPS_THREADS], ['act-quant.cu', ACT_QUANT.THREADS]] as const) {
    const bounds = literalLaunchBounds(file);
    assert.ok(bounds.length > 0, `${file} has literal launch bounds`);
    for (const b of bounds) assert.equal(b, threads, `${file}: __launch_bounds__(${b})`);
  }
});

test('moe kernels: the most experts they take', () => {
  assert.equal(MOE_MAX_EXPERTS, macros('moe.cu')('MAX_EXPERTS'));
});

test('scaled RTN kernels: threads per block and the squared error\'s partial sums', () => {
  assert.equal(SQUARED_ERROR_PARTS, macros('scaled-rtn.cu')('PARTS'));
  const bounds = literalLaunchBounds('scaled-rtn.cu');
  assert.equal(bounds.length, 5);
  for (const b of bounds) assert.equal(b, SCALED_RTN_THREADS);
});
