// W4A8 GEMM for larger M (prefill) on mma.sync.m16n8k32.s8: y[m,n] = x[m,:] . W'[n,:].
//
// Math and epilogues: exactly those of w4a8-decode.cu (SCALE_INT / IS_SHIFT, operands 16*q, FS
// scales uploaded as s/16, post = 2^-b or 2^-(b+4)). Same weight layout (wq[tile][step][lane],
// 16 bytes per lane per 64-k step) and scale layout (sc[tile][g][16]), same k permutation.
//
// Orientation: activations are the A operand (16 tokens x 32 k, row), weights the B operand
// (32 k x 8 rows, col). With the k permutation, a thread's A operands for one 64-k block are the
// 16 consecutive bytes xq[m][k0 + tig*16 ..] of rows m = gid and gid+8: two 16-byte shared loads
// per 16-row m-tile per block (word 2ks -> a0/a1, word 2ks+1 -> a2/a3). A weight lane's 16 bytes
// give both 8-row halves of a 16-row tile for both ks: b(rows gid) = {lo16, hi16}(w0 or w2),
// b(rows gid+8) = {lo16, hi16}(w1 or w3).
//
// Tiling: block tile BM x BN, k chunk 128 (one cp.async stage), STAGES-deep cp.async pipeline.
// WM x WN warps, warp tile (BM/WM) x (BN/WN): MI = BM/WM/16 m-tiles, NI = BN/WN/16 row tiles,
// 2*NI mma columns of 8. Shared A tile [BM][128] int8 with the 16-byte chunk index XOR-swizzled by
// (row & 1) << 2 (conflict-free 16-byte reads); shared B tile = the (BN/16) x 2 steps x 512 B of
// global layout, copied verbatim. Rows >= M are zero-filled (cp.async src-size 0) and not stored.
// Output y [M, N] row-major, out_t (f32, or f16 with OUT_F16). Requires K % 128 == 0, GROUP % 128 == 0, weights padded to BN rows.
#include "common.cuh"
#include "group-scale.cuh"

#ifndef BM
#define BM 128
#endif
#ifndef BN
#define BN 128
#endif
#ifndef WM
#define WM 2
#endif
#ifndef WN
#define WN 4
#endif
#ifndef STAGES
#define STAGES 3
#endif
#ifndef IS_SHIFT
#define IS_SHIFT 1
#endif

#define THREADS (WM * WN * 32)
#define MI (BM / WM / 16)
#define NI (BN / WN / 16)
#define A_U4 (BM * 8)          // uint4 per A stage
#define B_U4 ((BN / 16) * 64)  // uint4 per B stage
#define SMEM_BYTES (STAGES * (A_U4 + B_U4) * 16)  // dynamic shared bytes the host passes (w4a8.ts mmaLaunch)

extern "C" __global__ void __launch_bounds__(THREADS)
w4a8_mma(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
         const float* __restrict__ ascale, out_t* __restrict__ y, int M, int N, int K, float post) {
  extern __shared__ uint4 smem[];
  uint4* As = smem;
  uint4* Bs = smem + STAGES * A_U4;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gid = lane >> 2, tig = lane & 3;
  const int wm = warp / WN, wn = warp % WN;
  const int m0 = blockIdx.x * BM;
  const int tile0 = blockIdx.y * (BN / 16);
  const int steps = K >> 6, chunks = K >> 7, NG = K / GROUP;

  auto load_stage = [&](int stage, int c) {
#pragma unroll
    for (int i = tid; i < A_U4; i += THREADS) {
      const int r = i >> 3, cc = i & 7, row = m0 + r;
      const signed char* src = xq + (size_t)(row < M ? row : 0) * K + c * 128 + cc * 16;
      cp_async16(smem_u32(As + stage * A_U4 + r * 8 + (cc ^ ((r & 1) << 2))), src, row < M ? 16 : 0);
    }
#pragma unroll
    for (int i = tid; i < B_U4; i += THREADS) {
      const int t = i >> 6, j = i & 63;
      cp_async16(smem_u32(Bs + stage * B_U4 + i), wq + ((size_t)(tile0 + t) * steps + c * 2) * 32 + j, 16);
    }
  };

  int acc[MI][2 * NI][4];
  tot_t tot[MI][2 * NI][4];
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int j = 0; j < 2 * NI; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        acc[mi][j][i] = 0;
        tot[mi][j][i] = 0;
      }

  cp_async_prologue<STAGES - 1>(chunks, load_stage);

  for (int c = 0; c < chunks; ++c) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      const int cn = c + STAGES - 1;
      if (cn < chunks) load_stage(cn % STAGES, cn);
      cp_async_commit();
    }
    const bool closes = ((c + 1) * 128) % GROUP == 0;
    scale2_t sv[2 * NI];
    if (closes) {
      const int g = (c * 128) / GROUP;
#pragma unroll
      for (int j = 0; j < 2 * NI; ++j) {
        const int tile = tile0 + wn * NI + (j >> 1);
        sv[j] = *reinterpret_cast<const scale2_t*>(sc + ((size_t)tile * NG + g) * 16 + (j & 1) * 8 + tig * 2);
      }
    }
    const uint4* as = As + (c % STAGES) * A_U4;
    const uint4* bs = Bs + (c % STAGES) * B_U4;
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      uint4 al[MI], ah[MI], bw[NI];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        const int r = wm * (BM / WM) + mi * 16 + gid;
        const int pos = (s * 4 + tig) ^ ((r & 1) << 2);
        al[mi] = as[r * 8 + pos];
        ah[mi] = as[(r + 8) * 8 + pos];
      }
#pragma unroll
      for (int ni = 0; ni < NI; ++ni) bw[ni] = bs[(wn * NI + ni) * 64 + s * 32 + lane];
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
          const u32 w0 = ks ? bw[ni].z : bw[ni].x;
          const u32 w1 = ks ? bw[ni].w : bw[ni].y;
          const u32 b00 = lo16(w0), b01 = hi16(w0), b10 = lo16(w1), b11 = hi16(w1);
#pragma unroll
          for (int mi = 0; mi < MI; ++mi) {
            const u32 a0 = ks ? al[mi].z : al[mi].x, a2 = ks ? al[mi].w : al[mi].y;
            const u32 a1 = ks ? ah[mi].z : ah[mi].x, a3 = ks ? ah[mi].w : ah[mi].y;
            mma_s8(acc[mi][2 * ni], a0, a1, a2, a3, b00, b01);
            mma_s8(acc[mi][2 * ni + 1], a0, a1, a2, a3, b10, b11);
          }
        }
      }
    }
    if (closes) {
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int j = 0; j < 2 * NI; ++j)
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            add_group<IS_SHIFT ? 4 : 0>(tot[mi][j][i], acc[mi][j][i], (i & 1) ? sv[j].y : sv[j].x);
            acc[mi][j][i] = 0;
          }
    }
  }
  cp_async_wait<0>();

  // epilogue: C fragment c0,c1 -> (row gid, cols tig*2, +1); c2,c3 -> (row gid+8, same cols)
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = m0 + wm * (BM / WM) + mi * 16 + gid + h * 8;
      if (m >= M) continue;
      const float a = ascale[m];
#pragma unroll
      for (int j = 0; j < 2 * NI; ++j) {
        const int n = (tile0 + wn * NI + (j >> 1)) * 16 + (j & 1) * 8 + tig * 2;
        store_pair(y, m, n, N, out_scale(tot[mi][j][h * 2], a, post), out_scale(tot[mi][j][h * 2 + 1], a, post));
      }
    }
  }
}
