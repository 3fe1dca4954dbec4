// W4A16 (weight-only) decode-shaped GEMM, the Marlin-like baseline (M <= 8*MT tokens):
//   y[m,n] = sum_k x[m,k] * w[n,k],  w[n,k] = fp16( q[n,k] * s16[n,g] ),  g = k / GROUP
// x fp16 [M, K] row-major, q int4 in [-8, 7], s16 the group scale rounded to fp16 on the host;
// the dequantization happens in registers (exact int4 -> fp16 by the 0x6400 magic number, one
// HSUB2, then one HMUL2 by the scale, rounded to fp16 like Marlin), the products go through
// mma.sync.m16n8k16 f16 x f16 with f32 accumulation over all of K (no group epilogue), and
// y is written [M, N] as out_t (f32, or f16 rounded from it with OUT_F16, common.cuh). So the f32 y
// differs from the exact sum of x*q*s (CPU reference) by the fp16 rounding of s and of q*s (each
// <= 2^-11 relative per term) plus f32 accumulation rounding.
//
// Weights: the SAME repacked int4 buffer as the W4A8 kernels (repack.ts, w4a8-decode.cu):
//   wq[tile][step][lane] 16 B, words w0 = (row gid, ks 0), w1 = (row gid+8, ks 0), w2 = (gid, ks 1),
//   w3 = (gid+8, ks 1); byte j of word (r, ks) = q[r][k0+tig*16+ks*8+j] | q[...+4+j] << 4.
// Scales: s16[tile][g][16] fp16 (the rows of a 16-row tile contiguous per group).
// k mapping: lane (gid, tig) owns natural k = tig*16 .. +15 of every 64-k block (as in
// w4a8-decode.cu). With u = word ^ 0x88888888 (nibble = q+8), the four fp16 pairs of a word are
//   P0 = (k0,k2) = (u & 0x000F000F) | 0x64006400,  P1 = (k1,k3) from u >> 8,
//   P2 = (k4,k6) from u >> 4,                       P3 = (k5,k7) from u >> 12   (k relative to ks*8)
// each = 1024 + q + 8 exactly; minus 1032 gives q. m16n8k16 step t (0,1) of half ks uses
// a0/a1 = P(2t) of rows gid/gid+8 (fragment k 2tig, 2tig+1) and a2/a3 = P(2t+1) (fragment k
// 8+2tig, +1); the activations' halves are permuted the same way: b0 = (x[k0+4t], x[k2+4t]),
// b1 = (x[k1+4t], x[k3+4t]) by byte_perm of the natural 16-byte load.
// Work split as w4a8-decode.cu: WK warps per block split K, NTW 16-row tiles per block, f32
// partial sums added in shared memory in warp order.
// Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, M <= 8*MT, x rows 16-byte aligned.
#include "common.cuh"
#include "decode.cuh"

#ifndef GROUP
#define GROUP 128
#endif

__device__ __forceinline__ void mma_f16(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// pair p (0..3) of word u (already ^ 0x88888888), dequantized and scaled: fp16x2 (q*s)
__device__ __forceinline__ u32 deq(u32 u, int p, u32 s2) {
  const int sh = p == 0 ? 0 : p == 1 ? 8 : p == 2 ? 4 : 12;
  const u32 h = ((u >> sh) & 0x000F000Fu) | 0x64006400u;
  u32 q, w;
  asm("sub.rn.f16x2 %0, %1, %2;\n" : "=r"(q) : "r"(h), "r"(0x64086408u));  // - (1024 + 8): exact
  asm("mul.rn.f16x2 %0, %1, %2;\n" : "=r"(w) : "r"(q), "r"(s2));
  return w;
}

// one 128-k chunk in registers: w[nt][s] = tile nt's 16 bytes of 64-k step s; x[mt][s][ks] = token
// half mt's 8 fp16 of step s, half ks (the lane's k tig*16 + ks*8 ..)
struct Chunk {
  uint4 w[NTW][2];
  uint4 x[MT][2][2];
};

// fp16 activations of chunk c (coherent loads: the kernel before this one wrote them; decode_pipeline)
__device__ __forceinline__ void load_x16(Chunk& b, const uint4* const (&xp)[MT], const bool (&xv)[MT], int c) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      if (xv[mt]) {
        b.x[mt][s][0] = ld_coherent(xp[mt] + c * 16 + s * 8);
        b.x[mt][s][1] = ld_coherent(xp[mt] + c * 16 + s * 8 + 1);
      } else {
        b.x[mt][s][0] = make_uint4(0, 0, 0, 0);
        b.x[mt][s][1] = make_uint4(0, 0, 0, 0);
      }
    }
}

__device__ __forceinline__ void compute_chunk(float (&acc)[NTW][MT][4], u32 (&s2)[NTW][2], const Chunk& ch, const unsigned short* __restrict__ sc,
                                              int tile0, int NG, int gid, int c) {
  if ((c * 128) % GROUP == 0) {
    const int g = (c * 128) / GROUP;
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt) {
      const unsigned short* sp = sc + ((size_t)(tile0 + nt) * NG + g) * 16;
      const u32 lo = __ldg(sp + gid), hi = __ldg(sp + gid + 8);
      s2[nt][0] = lo | (lo << 16);
      s2[nt][1] = hi | (hi << 16);
    }
  }
#pragma unroll
  for (int s = 0; s < 2; ++s) {       // 64-k step of the chunk
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {  // 8-k half of the lane's 16 k
      u32 b[MT][2][2];                // [mt][t][b0/b1]
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const uint4 v = ch.x[mt][s][ks];
        b[mt][0][0] = __byte_perm(v.x, v.y, 0x5410);
        b[mt][0][1] = __byte_perm(v.x, v.y, 0x7632);
        b[mt][1][0] = __byte_perm(v.z, v.w, 0x5410);
        b[mt][1][1] = __byte_perm(v.z, v.w, 0x7632);
      }
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt) {
        const u32 u0 = (ks ? ch.w[nt][s].z : ch.w[nt][s].x) ^ 0x88888888u;  // row gid
        const u32 u8 = (ks ? ch.w[nt][s].w : ch.w[nt][s].y) ^ 0x88888888u;  // row gid+8
#pragma unroll
        for (int t = 0; t < 2; ++t) {
          const u32 a0 = deq(u0, 2 * t, s2[nt][0]), a1 = deq(u8, 2 * t, s2[nt][1]);
          const u32 a2 = deq(u0, 2 * t + 1, s2[nt][0]), a3 = deq(u8, 2 * t + 1, s2[nt][1]);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) mma_f16(acc[nt][mt], a0, a1, a2, a3, b[mt][t][0], b[mt][t][1]);
        }
      }
    }
  }
}

// The tiles [tile0, tile0 + NTW) of y [M, N] (one block's work; both kernels below).
__device__ __forceinline__ void decode_tiles(const uint4* __restrict__ wq, const unsigned short* __restrict__ sc, const unsigned short* __restrict__ x,
                                             out_t* __restrict__ y, int M, int N, int K, int tile0) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int steps = K >> 6, chunks = K >> 7, NG = K / GROUP;
  const int c0 = (int)((long long)warp * chunks / WK), c1 = (int)((long long)(warp + 1) * chunks / WK);

  float acc[NTW][MT][4];
#pragma unroll
  for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][mt][i] = 0.f;

  const uint4* wp[NTW];
  decode_w4_rows(wp, wq, tile0, steps, lane);
  const uint4* xp[MT];
  bool xv[MT];
  decode_x_rows(xp, xv, x, M, K, gid, tig);
  // scales of the group containing chunk c0 (a warp's range may start inside a group)
  u32 s2[NTW][2];
  {
    const int g = (c0 * 128) / GROUP;
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt) {
      const unsigned short* sp = sc + ((size_t)(tile0 + nt) * NG + (c0 < chunks ? g : 0)) * 16;
      const u32 lo = __ldg(sp + gid), hi = __ldg(sp + gid + 8);
      s2[nt][0] = lo | (lo << 16);
      s2[nt][1] = hi | (hi << 16);
    }
  }

  Chunk ca, cb;
  decode_pipeline(
      c0, c1, ca, cb, [&](Chunk& b, int c) { decode_load_w4(b.w, wp, c); }, [&](Chunk& b, int c) { load_x16(b, xp, xv, c); },
      [&](const Chunk& b, int c) { compute_chunk(acc, s2, b, sc, tile0, NG, gid, c); });

  __shared__ float red[WK][NTW * MT * 4][32];
  decode_reduce(red, acc, warp, lane, tile0, M, N, [&](int token, int n, float sum) { y[(size_t)token * N + n] = to_out(sum); });
}

extern "C" __global__ void __launch_bounds__(WK * 32)
w4a16_decode(const uint4* __restrict__ wq, const unsigned short* __restrict__ sc, const unsigned short* __restrict__ x, out_t* __restrict__ y,
             int M, int N, int K) {
  decode_tiles(wq, sc, x, y, M, N, K, blockIdx.x * NTW);
}

// Grouped experts, as w4a8_decode_experts (w4a8-decode.cu): expert e's rows [offsets[e], offsets[e+1])
// of x / y, its weights wqs[e] and scales scs[e]; grid (tiles / NTW, A, row chunks of 8*MT), block y
// serving expert active[y] (-1: none).
extern "C" __global__ void __launch_bounds__(WK * 32)
w4a16_decode_experts(const uint4* const* __restrict__ wqs, const unsigned short* const* __restrict__ scs, const int* __restrict__ offsets,
                     const int* __restrict__ active, const unsigned short* __restrict__ x, out_t* __restrict__ y, int N, int K) {
  const int e = active[blockIdx.y];
  if (e < 0) return;
  const int r0 = offsets[e] + blockIdx.z * (8 * MT);
  const int M = min(8 * MT, offsets[e + 1] - r0);
  if (M <= 0) return;
  decode_tiles(wqs[e], scs[e], x + (size_t)r0 * K, y + (size_t)r0 * N, M, N, K, blockIdx.x * NTW);
}
