// W8A8 decode-shaped GEMM (M <= 8*MT tokens): y[m,n] = x[m,:] . W'[n,:], streaming int8 weights.
//
// Math (DESIGN.md §1), 8-bit weights q in [-128, 127], int8 activations:
//   acc[m,n,g] = sum_{k in g} xq[m,k]*q[n,k] (int32), then per output:
//   SCALE_INT=1 (integer scale): T = sum_g acc*S[n,g] (int32), y = fround(fround(float(T))*a[m]) * post
//                (post = 2^-b; plain epilogue: the 16*q trick of the W4 kernels does not apply;
//                exact when 127*128*G*sum_g S < 2^31, checked by the host)
//   SCALE_INT=0 (float scale):   t = sum_g float(acc)*s[n,g] (f32, FMA),  y = a[m]*t
//
// Tensor-core mapping ("swap AB", as w4a8_decode.cu): mma.m16n8k32 with the weights as the
// 16-row A operand and the tokens as the 8-column B operand; MT token halves of 8.
// k permutation: inside each 64-k block lane (gid = lane/4, tig = lane%4) owns natural
// k = tig*16 .. tig*16+15 of its rows and tokens; for mma step ks (0,1) fragment position p
// (0..31) holds natural k = (p%16/4)*16 + ks*8 + (p/16)*4 + p%4. So every operand is one 16-byte
// load of natural order: word 2ks of a row's 16 bytes is a0/a1 (rows gid, gid+8), word 2ks+1 is
// a2/a3, and the activations' words 2ks, 2ks+1 are b0, b1.
//
// Inputs: the same buffers as w8a8_wgmma.cu: weights wq [Npad, K] int8 row-major (rows padded to
// 128 with zeros; a warp's load of one 64-k block covers 16 rows x 64 B), scales sc[tile][g][16]
// (int32 S or f32 s), xq [M, K] int8, a [M], y [M, N] f32.
// Work split as w4a8_decode.cu: a block of WK warps owns NTW 16-row tiles over all of K; warp w
// takes the 128-k chunks [w*C/WK, (w+1)*C/WK), double-buffering its loads in registers; group sums
// close at group ends and at the end of a warp's range; warps' totals are added in shared memory.
// Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, M <= 8*MT.
#include "common.cuh"

#ifndef MT
#define MT 1
#endif
#ifndef NTW
#define NTW 1
#endif
#ifndef WK
#define WK 8
#endif
#ifndef GROUP
#define GROUP 128
#endif
#ifndef SCALE_INT
#define SCALE_INT 1
#endif

#if SCALE_INT
typedef int scale_t;
#else
typedef float scale_t;
#endif

struct DecodeAcc {
  int acc[NTW][MT][4];
#if SCALE_INT
  int tot[NTW][MT][4];
#else
  float tot[NTW][MT][4];
#endif
  scale_t s[NTW][2];
};

// w[nt][s][h]: tile nt, 64-k step s of the chunk, row gid (h=0) or gid+8 (h=1)
__device__ __forceinline__ void decode_load(uint4 (&w)[NTW][2][2], uint4 (&x)[MT][2], const uint4* const (&wp)[NTW], size_t row8,
                                            const uint4* const (&xp)[MT], const bool (&xv)[MT], int c) {
#pragma unroll
  for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      w[nt][s][0] = ld_stream(wp[nt] + c * 8 + s * 4);
      w[nt][s][1] = ld_stream(wp[nt] + row8 + c * 8 + s * 4);
    }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    if (xv[mt]) {
      x[mt][0] = __ldg(xp[mt] + c * 8);
      x[mt][1] = __ldg(xp[mt] + c * 8 + 4);
    } else {
      x[mt][0] = make_uint4(0, 0, 0, 0);
      x[mt][1] = make_uint4(0, 0, 0, 0);
    }
  }
}

__device__ __forceinline__ void decode_compute(DecodeAcc& st, const uint4 (&w)[NTW][2][2], const uint4 (&x)[MT][2],
                                               const scale_t* __restrict__ sc, int tile0, int NG, int gid, int c, int c1) {
  const bool closes = ((c + 1) * 128) % GROUP == 0 || c + 1 == c1;
  const int g = (c * 128) / GROUP;
  if (closes) {
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt) {
      const scale_t* sp = sc + ((size_t)(tile0 + nt) * NG + g) * 16;
      st.s[nt][0] = sp[gid];
      st.s[nt][1] = sp[gid + 8];
    }
  }
#pragma unroll
  for (int s = 0; s < 2; ++s) {
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt) {
      const uint4 r0 = w[nt][s][0], r8 = w[nt][s][1];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_s8(st.acc[nt][mt], r0.x, r8.x, r0.y, r8.y, x[mt][s].x, x[mt][s].y);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_s8(st.acc[nt][mt], r0.z, r8.z, r0.w, r8.w, x[mt][s].z, x[mt][s].w);
    }
  }
  if (closes) {
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const scale_t sv = st.s[nt][i >> 1];
#if SCALE_INT
          st.tot[nt][mt][i] += st.acc[nt][mt][i] * sv;
#else
          st.tot[nt][mt][i] = __fmaf_rn(__int2float_rn(st.acc[nt][mt][i]), sv, st.tot[nt][mt][i]);
#endif
          st.acc[nt][mt][i] = 0;
        }
      }
    }
  }
}

extern "C" __global__ void __launch_bounds__(WK * 32)
w8a8_decode(const signed char* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
            const float* __restrict__ ascale, float* __restrict__ y, int M, int N, int K, float post) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int tile0 = blockIdx.x * NTW;
  const int chunks = K >> 7, NG = K / GROUP;
  const int c0 = (int)((long long)warp * chunks / WK), c1 = (int)((long long)(warp + 1) * chunks / WK);

  DecodeAcc st;
#pragma unroll
  for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        st.acc[nt][mt][i] = 0;
        st.tot[nt][mt][i] = 0;
      }

  const uint4* wp[NTW];
#pragma unroll
  for (int nt = 0; nt < NTW; ++nt) wp[nt] = reinterpret_cast<const uint4*>(wq + (size_t)((tile0 + nt) * 16 + gid) * K + tig * 16);
  const size_t row8 = (size_t)K / 2;  // 8 rows, in uint4
  const uint4* xp[MT];
  bool xv[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    const int token = mt * 8 + gid;
    xv[mt] = token < M;
    xp[mt] = reinterpret_cast<const uint4*>(xq + (size_t)(xv[mt] ? token : 0) * K + tig * 16);
  }

  uint4 wa[NTW][2][2], xa[MT][2], wb[NTW][2][2], xb[MT][2];
  if (c0 < c1) decode_load(wa, xa, wp, row8, xp, xv, c0);
  for (int c = c0; c < c1; c += 2) {
    if (c + 1 < c1) decode_load(wb, xb, wp, row8, xp, xv, c + 1);
    decode_compute(st, wa, xa, sc, tile0, NG, gid, c, c1);
    if (c + 1 < c1) {
      if (c + 2 < c1) decode_load(wa, xa, wp, row8, xp, xv, c + 2);
      decode_compute(st, wb, xb, sc, tile0, NG, gid, c + 1, c1);
    }
  }

  // cross-warp reduction: red[warp][element][lane]
  constexpr int E = NTW * MT * 4;
#if SCALE_INT
  __shared__ int red[WK][E][32];
#else
  __shared__ float red[WK][E][32];
#endif
#pragma unroll
  for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp][(nt * MT + mt) * 4 + i][lane] = st.tot[nt][mt][i];
  __syncthreads();
  for (int idx = threadIdx.x; idx < E * 32; idx += WK * 32) {
    const int e = idx >> 5, l = idx & 31;
    auto sum = red[0][e][l];
#pragma unroll
    for (int w = 1; w < WK; ++w) sum += red[w][e][l];
    const int nt = e / (MT * 4), mt = (e >> 2) % MT, i = e & 3;
    const int n = (tile0 + nt) * 16 + (l >> 2) + (i >= 2 ? 8 : 0);
    const int token = mt * 8 + (l & 3) * 2 + (i & 1);
    if (token < M && n < N) {
      const float a = ascale[token];
#if SCALE_INT
      y[(size_t)token * N + n] = __fmul_rn(__fmul_rn(__int2float_rn(sum), a), post);
#else
      y[(size_t)token * N + n] = __fmul_rn(a, sum);
#endif
    }
  }
}
