// W4A8 decode-shaped GEMM for 9-32 token rows, a column band a block: y[m,n] = x[m,:] . W'[n,:].
//
// Why (docs/cuda-notes.md, 35th session): w4a8_decode's block owns NTW 16-row tiles over all of K with its WK warps
// splitting K, so every block reads all M·K activation bytes for 16·NTW weight rows (8·NTW·K bytes): at M = 32,
// NTW = 1 that is 4× the weight bytes, from L2, and the kernel is bound by L2 rather than HBM (a 7B gate/up at 32
// rows ran at 1.5 TB/s of weights on an H100, the same on an H200). Here a block's WK warps own WK consecutive tiles
// (one each, NTW = 1) over one k range, and the block's rows of x for that range are copied once into its shared
// memory: activation bytes M / (8·WK) of the weight bytes (WK 8, M 32: 1/2).
//
// Math and layouts as w4a8-decode.cu (its header: the k permutation, wq[tile][step][lane], sc[tile][g][16], the
// group sums acc' = 16·acc closed into totals with IS_SHIFT or the float FMA). Same chunks, same mma steps, same
// group closing: a warp's totals over a k range are those w4a8_decode's warps give over the same chunks.
//
// Grid (bands, KS): block (b, ks) takes tiles b·WK + w (warp w) and chunks [ks·C/KS, (ks+1)·C/KS) of C = K/128.
// Dynamic shared memory: the block's M rows of x over its chunks, XS = ceil(C/KS)·128 + 64 bytes apart (the 64-byte
// pad puts rows gid and gid + 1 on opposite halves of the banks, so a quarter warp's 16-byte reads do not conflict),
// copied with cp.async after the wait (the warps' first PREW chunks of weights are already loading).
// KS > 1 (split-K): each warp stores its partial totals of (tile, ks) to ws[ks][tile][MT·4][32 lanes] (coalesced),
// fences and counts itself in cnt[tile]; the warp that arrives last adds the KS partials in ks order (integer totals:
// exact in any order, so IS gives w4a8_decode's bits; float: the same order every run) and writes the tile's
// outputs, then resets the counter (zero between launches). Output, per (token, n) of a lane's C fragment:
//   default      y[m,n] = out(T) (out_t: f32, or f16 with OUT_F16)
//   ACCUMULATE   y[m,n] += out(T) (f32: the engine's residual add)
//   SWIGLU       rows interleaved by 8 (gate rows then up rows of a tile, concat.ts): y[m,j] = silu(g)·u [M, N/2] as
//                w4a8_decode_swiglu writes it, and amax[m·P + tile] = the tile's max |y| of token m, P = gridDim.x·WK
//                (every tile writes its entry, 0 for rows past N; quantize_rows takes the max over P)
// Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, rows padded to 128 (paddedRows), M <= 8·MT, KS <= C.
#include "common.cuh"
#include "group-scale.cuh"
#include "decode.cuh"
#include "w4a8-chunk.cuh"

#ifndef SWIGLU
#define SWIGLU 0
#endif
static_assert(NTW == 1, "a band's warp owns one tile");
static_assert(!(SWIGLU && (ACCUMULATE || OUT_F16)), "the SwiGLU epilogue writes f32 rows");

// Every thread: the block's M rows of x over chunks [c0, c1) into xs (XS bytes apart), then the block's barrier.
__device__ __forceinline__ void band_copy_rows(unsigned char* xs, const signed char* xq, int M, int K, int c0, int c1, int XS) {
  const int units = (c1 - c0) * 8;  // 16-byte units a row
  for (int u = threadIdx.x; u < M * units; u += blockDim.x) {
    const int r = u / units, j = u - r * units;
    cp_async16(smem_u32(xs + r * XS + j * 16), xq + (size_t)r * K + c0 * 128 + j * 16, 16);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
}

// A warp's weights of one 128-k chunk (its tile's two 64-k steps) and the scales of the group it closes, if any.
struct BandChunk {
  uint4 w[1][2];
  scale_t s[1][2];
};

// The chunk's mma steps (chunk_mma's, with each step's x read from the block's copy as it is used): x points at the
// lane's 16 bytes of step 0 of token row gid, rows mt·8 + gid are mt·8·XS further.
__device__ __forceinline__ void band_mma(int (&acc)[1][MT][4], const uint4 (&w)[1][2], const unsigned char* x, int XS, int M, int gid) {
#pragma unroll
  for (int s = 0; s < 2; ++s) {
    const uint4 v = w[0][s];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      const uint4 xv = mt * 8 + gid < M ? *reinterpret_cast<const uint4*>(x + mt * 8 * XS + s * 64) : make_uint4(0, 0, 0, 0);
      mma_s8(acc[0][mt], lo16(v.x), lo16(v.y), hi16(v.x), hi16(v.y), xv.x, xv.y);
      mma_s8(acc[0][mt], lo16(v.z), lo16(v.w), hi16(v.z), hi16(v.w), xv.z, xv.w);
    }
  }
}

// Split-K: this warp's partial totals of (tile, ks) stored, its arrival counted; the last of the tile's KS warps adds
// all partials in ks order into tot and returns true, the others false.
__device__ __forceinline__ bool band_combine(scale_t (&tot)[1][MT][4], scale_t* ws, int* cnt, int tile, int tiles, int ks, int KS, int lane) {
  constexpr int E = MT * 4;
  const size_t part = (size_t)E * 32;
  scale_t* mine = ws + ((size_t)ks * tiles + tile) * part + lane;
#pragma unroll
  for (int e = 0; e < E; ++e) __stcg(mine + e * 32, tot[0][e >> 2][e & 3]);
  __threadfence();
  __syncwarp();
  int before = 0;
  if (lane == 0) before = atomicAdd(cnt + tile, 1);
  if (__shfl_sync(0xffffffffu, before, 0) != KS - 1) return false;
  __threadfence();
#pragma unroll
  for (int e = 0; e < E; ++e) tot[0][e >> 2][e & 3] = 0;
#pragma unroll 1
  for (int k = 0; k < KS; ++k) {
    const scale_t* p = ws + ((size_t)k * tiles + tile) * part + lane;
#pragma unroll
    for (int e = 0; e < E; ++e) tot[0][e >> 2][e & 3] += __ldcg(p + e * 32);
  }
  if (lane == 0) cnt[tile] = 0;
  return true;
}

extern "C" __global__ void __launch_bounds__(WK * 32, MINB)
w4a8_decode_band(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* xq, const float* ascale, out_t* y,
                 float* __restrict__ amax, int M, int N, int K, float post, scale_t* __restrict__ ws, int* __restrict__ cnt) {
  extern __shared__ __align__(16) unsigned char band_x[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int steps = K >> 6, chunks = K >> 7, NG = K / GROUP, KS = gridDim.y, ks = blockIdx.y;
  const int c0 = (int)((long long)ks * chunks / KS), c1 = (int)((long long)(ks + 1) * chunks / KS);
  const int XS = ((chunks + KS - 1) / KS) * 128 + 64, tiles = gridDim.x * WK, tile = blockIdx.x * WK + warp;

  DecodeAcc<1, MT, scale_t> st;
  decode_zero(st);
  const uint4* wp[1];
  decode_w4_rows(wp, wq, tile, steps, lane);
  // x comes from shared memory when a chunk is computed (no register buffers for it): the lane's 16 bytes of each
  // 64-k step of its token rows mt·8 + gid (rows >= M: zeros)
  const unsigned char* xrow = band_x + gid * XS + tig * 16;
  const auto compute = [&](const BandChunk& b, int c) {
    decode_chunk<IS_SHIFT ? 4 : 0, GROUP>(st, b.s, c, c1, [&] { band_mma(st.acc, b.w, xrow + (c - c0) * 128, XS, M, gid); });
  };
  BandChunk ca, cb;
  decode_pipeline(
      c0, c1, ca, cb,
      [&](BandChunk& b, int c) {
        decode_load_w4(b.w, wp, c);
        decode_load_scales<GROUP>(b.s, sc, tile, NG, gid, c, c1);
      },
      [](BandChunk&, int) {},
      compute,
      [&] {
        pdl_wait();
        band_copy_rows(band_x, xq, M, K, c0, c1, XS);
      });

  if (KS > 1 && !band_combine(st.tot, ws, cnt, tile, tiles, ks, KS, lane)) return;
  // lane's C fragment: element i of token octet mt is (row gid + 8·(i >= 2), token mt·8 + 2·tig + (i & 1))
#if SWIGLU
  const int F = N >> 1, j = tile * 8 + gid;
  const bool row_ok = tile * 16 + gid < N;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int token = mt * 8 + 2 * tig + i;
      float v = 0.f;
      if (token < M && row_ok) {
        const float a = ascale[token];
        v = silu_mul1(out_scale(st.tot[0][mt][i], a, post), out_scale(st.tot[0][mt][i + 2], a, post));
        y[(size_t)token * F + j] = v;
      }
      float m = fabsf(v);  // the tile's max over its 8 j (the lanes of one tig)
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 8));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 16));
      if (gid == 0 && token < M) amax[(size_t)token * tiles + tile] = m;
    }
  }
#else
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int token = mt * 8 + 2 * tig + (i & 1), n = tile * 16 + gid + (i >= 2 ? 8 : 0);
      if (token < M && n < N) {
        out_t* o = y + (size_t)token * N + n;
        const float v = out_scale(st.tot[0][mt][i], ascale[token], post);
#if ACCUMULATE
        *o += v;
#else
        *o = to_out(v);
#endif
      }
    }
  }
#endif
}
