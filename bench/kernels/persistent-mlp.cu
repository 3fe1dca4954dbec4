// The MLP half of L decoder layers at M ≤ 8 rows in one persistent launch (an experiment for a step-wide batch-1
// kernel, bench/cuda-persistent-mlp.ts), against the engine's four launches a layer (rmsnorm_to, w4a8_decode_swiglu,
// quantize_rows, w4a8_decode with ACCUMULATE). Per layer l, two stages with a grid barrier before each:
//   gate/up  each block first writes x = RMSNorm(h) ⊙ norm_w in int8 + a[r] into its own shared memory (rmsnorm_row:
//            rmsnorm_to's order and bytes, its 1024 threads played by WK·32), then its tiles of the stacked gate/up
//            layer (rows interleaved by 8, N = 2F, K = D) with SwiGLU in the epilogue: y [M, F] (f32) as
//            w4a8_decode_swiglu writes it, and the block's max |y| of each row over its tiles, amax [M][gridDim.x];
//   down     each block first quantizes the rows y into its shared memory from the gridDim.x partial maxima
//            (quantize_rows_to_shared: quantize_rows' bytes and scales; max is exact in any order, so the same a as
//            from the launches' one maximum a block), then its tiles of down (N = D, K = F): h += x · W_dᵀ as the
//            accumulating decode launch adds.
// So h after L layers is the launches' bit for bit (the bench checks it). What it measures: whether a small op done
// by every block after a grid barrier (x into its shared memory: the row read from L2, normalized or quantized)
// costs less than the small op's launch and its boundary, the question of a persistent decode step. The weights'
// first chunks of a block's first tile of a stage load before the barrier (decode_pipeline's wait hook).
//
// Grid: all blocks resident (the host sizes it: MINB a SM); block b takes tiles b, b + gridDim.x, … of each stage.
// Dynamic shared memory: M · max(D, F) bytes (x), then (STAGED) max(D, F) floats. Defines as w4a8-decode.cu with
// ACCUMULATE 0, OUT_F16 0, STAGES 0 (the register pipeline: rows in shared memory), SCALE_INT 1 or 0, and PROLOGUE
// (default 1): 0 leaves the blocks' norm and quantization out (the barriers stay; x is whatever the shared memory
// holds, so the outputs are not the launches'): a diagnostic, what the prologues cost. STAGED (default 0): 1 copies each row the prologue reads (f32)
// into shared memory first, all of it in flight at once (cp.async, after the dynamic x: max(D, F) floats more), and
// the norm and the quantization read it from there instead of through L2 a float4 at a time (each an L2 round trip
// behind the store before it): the same values, so the same bytes.
// Measured (docs/cuda-notes.md, 34th session; 8 layers at M = 1, µs a layer against the engine's launches): H100 plain
// 41.0 (0.90×), STAGED 34.1 (1.08×), PROLOGUE 0 26.6 (1.38×); H200 STAGED 29.1, PROLOGUE 0 21.5 against 30.0 for the
// launches with their small ops overlapping. CLUSTER_PRO 2 (H100, 35th session, one round): 37.8 against the plain kernel's
// 38.6 and the launches' 36.8 (34.7 overlapping): halving a block's prologue work leaves its latency; CLUSTER_PRO 4 not
// run (a first call running every variant in one process ended in a launch failure, not reproduced: the plain and
// cluster-2 variants each ran alone, bit-identical). Removed after it was measured: down's quantization
// done once across the grid (each block its slice into global memory, a second grid barrier, every block copying the
// int8 rows in; commit 015b082): H200 33.4 with STAGED, slower than STAGED alone (a grid barrier costs more than the
// redundant quantization it saves).
#include "w4a8-decode.cu"
#include "grid-barrier.cuh"
#ifndef PROLOGUE
#define PROLOGUE 1
#endif
#ifndef STAGED
#define STAGED 0
#endif
// CLUSTER_PRO (default 1; 2 or 4): the prologues shared by a thread-block cluster of that many blocks (__cluster_dims__;
// with two 512-thread blocks a SM every GPC's slots, 4 a TPC, take clusters of 2 or 4 whole, so the grid stays resident):
// block rank c computes 1/C of the row and stores its int8 codes into every block of the cluster's x (distributed
// shared memory), then a cluster barrier. The norm: rmsnorm_to's 32 warp sums (its 1024 threads' chains over the
// float4s i = t + 1024·j, each warp's butterfly), 32/C of them a block, exchanged and added in warp order by every block
// (the same float as rmsnorm_to's), the row's max |x ⊙ w| likewise; then each block normalizes and quantizes the
// float4s of its own warps. The quantization: the row's scale from the maxima, every block alike; 1/C of the float4s a
// block. The same bytes as the launches; 1/C of the work and of the L2 reads a block.
#ifndef CLUSTER_PRO
#define CLUSTER_PRO 1
#endif
static_assert(CLUSTER_PRO == 1 || CLUSTER_PRO == 2 || CLUSTER_PRO == 4, "clusters of 1, 2 or 4 blocks");
static_assert(CLUSTER_PRO == 1 || WK >= 32 / CLUSTER_PRO, "a block's warps play rmsnorm_to's 32 / CLUSTER_PRO warps of the norm");
#if CLUSTER_PRO > 1
#include "cluster.cuh"
#define MLP_CLUSTER_DIMS __cluster_dims__(CLUSTER_PRO, 1, 1)

// RMSNorm of row x [D] (f32, global) with weight w, into the int8 row xs of every block of the cluster (+ a): see
// CLUSTER_PRO. wsum, wmax: the block's shared [32] for the warp sums it owns (at their index).
__device__ __forceinline__ void cluster_norm_row(const float* x, const float* w, int D, float eps, signed char* xs, float* a, float* wsum, float* wmax) {
  constexpr int VW = 32 / CLUSTER_PRO;  // rmsnorm_to's warps a block plays
  const unsigned rank = cluster_ctarank();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n4 = D >> 2, vw = (int)rank * VW + warp, t = vw * 32 + lane;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  const float4* w4 = reinterpret_cast<const float4*>(w);
  if (warp < VW) {
    float ss = 0.f, mx = 0.f;
#pragma unroll
    for (int j = 0; j < ROW_VEC; ++j) {
      const int i = t + 1024 * j;
      if (i < n4) {
        const float4 v = __ldcg(x4 + i);
        ss = sumsq4(v, ss);
        mx = fmaxf(mx, absmax4(mul4(v, w4[i])));
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      ss += __shfl_xor_sync(0xffffffffu, ss, o);
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    }
    if (lane == 0) {
      wsum[vw] = ss;
      wmax[vw] = mx;
    }
  }
  cluster_barrier();
  float s = dsmem_load(wsum, 0), m = dsmem_load(wmax, 0);
  for (int v = 1; v < 32; ++v) {
    s += dsmem_load(wsum + v, (unsigned)(v / VW));
    m = fmaxf(m, dsmem_load(wmax + v, (unsigned)(v / VW)));
  }
  const float2 f = rms_factors(make_float2(s, m), D, eps);
  if (threadIdx.x == 0) *a = f.y;
  if (warp < VW) {
#pragma unroll
    for (int j = 0; j < ROW_VEC; ++j) {
      const int i = t + 1024 * j;
      if (i < n4) {
        const char4 q = quant4(scale4(mul4(__ldcg(x4 + i), w4[i]), f.x), f.y);
        for (unsigned c = 0; c < CLUSTER_PRO; ++c) dsmem_store_u32(xs + 4 * i, c, *reinterpret_cast<const unsigned*>(&q));
      }
    }
  }
  cluster_barrier();  // every block's codes in, and the warp sums read before they are written again
}

// Row y [K] (f32, global) quantized with a = max over the P partial maxima / 127 (quantize_row's) into the int8 row xs
// of every block of the cluster (+ a): 1/C of the float4s a block, two loads in flight a thread.
__device__ __forceinline__ void cluster_quantize_row(const float* y, const float* maxima, int P, int K, signed char* xs, float* a) {
  const unsigned rank = cluster_ctarank();
  float mx = 0.f;
  for (int j = threadIdx.x; j < P; j += blockDim.x) mx = fmaxf(mx, __ldcg(maxima + j));
  const float ar = block_max(mx) / 127.f;
  if (threadIdx.x == 0) *a = ar;
  const int n4 = K >> 2, i0 = (int)((long long)rank * n4 / CLUSTER_PRO), i1 = (int)((long long)(rank + 1) * n4 / CLUSTER_PRO);
  const float4* y4 = reinterpret_cast<const float4*>(y);
  const auto put = [&](int i, float4 v) {
    const char4 q = quant4(v, ar);
    for (unsigned c = 0; c < CLUSTER_PRO; ++c) dsmem_store_u32(xs + 4 * i, c, *reinterpret_cast<const unsigned*>(&q));
  };
  for (int i = i0 + threadIdx.x; i < i1; i += 2 * blockDim.x) {
    const int i2 = i + blockDim.x;
    const float4 v = __ldcg(y4 + i), v2 = i2 < i1 ? __ldcg(y4 + i2) : make_float4(0.f, 0.f, 0.f, 0.f);
    put(i, v);
    if (i2 < i1) put(i2, v2);
  }
  cluster_barrier();
}
#else
#define MLP_CLUSTER_DIMS
#endif

// n floats of src into the block's shared `stage`, every copy in flight at once; then the block's barrier.
__device__ __forceinline__ void stage_row(float* stage, const float* src, int n) {
  for (int i = threadIdx.x; i < (n >> 2); i += blockDim.x) cp_async16(smem_u32(stage + 4 * i), src + 4 * i, 16);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
}

static_assert(!ACCUMULATE && !OUT_F16 && !STAGES, "the persistent MLP writes f32 rows, adds into h itself and takes the register pipeline");
static_assert(1024 % (WK * 32) == 0, "the norm plays rmsnorm_to's 1024 threads with WK·32");

struct MlpLayer {
  const uint4* wgu;  // gate/up [2F, D], rows interleaved by 8
  const scale_t* sgu;
  const uint4* wd;  // down [D, F]
  const scale_t* sd;
  const float* norm_w;  // the post-attention RMSNorm's weight [D]
  float post_gu, post_d;
};

// A stage's tiles, after the grid barrier at `target` and the block's prologue(true) (x into shared memory), then
// finish() (after the last tile's barrier) and the block's arrival. Every block waits and arrives, with tiles or
// without; one without runs prologue(false) (its share of work the whole grid does, if any).
template <class Prologue, class Tile, class Finish>
__device__ __forceinline__ void persistent_stage(int tiles, unsigned* counter, unsigned target, Prologue prologue, Tile tile, Finish finish) {
  bool ready = false;
  const auto wait = [&] {
    if (ready) return;
    grid_wait(counter, target);
    prologue(true);
    ready = true;
  };
  for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
    tile(t, wait);
    __syncthreads();  // the tile's reduction buffer is reused by the next tile
  }
  if (!ready) {
    grid_wait(counter, target);
    prologue(false);
  }
  finish();
  grid_arrive(counter);
}

// Stage s: layer s / 2's gate/up (s even: SwiGLU in the epilogue, on RMSNorm(h)) or down (s odd: adding into h, on y
// quantized). One decode_tiles for both, its epilogue and prologue chosen by the stage (uniform in the block): the
// register pipeline keeps a standalone decode kernel's registers (two 512-thread blocks a SM allow 64), which two
// instantiations in the loop, inline or not, exceeded (ptxas spilled 170-340 bytes).
extern "C" __global__ void MLP_CLUSTER_DIMS __launch_bounds__(WK * 32, MINB)
w4a8_mlp_persistent(const MlpLayer* __restrict__ layers, int L, int M, int D, int F, float eps, float* h, float* y, float* amax,
                    unsigned* counter, unsigned base) {
  extern __shared__ __align__(16) unsigned char mlp_shared[];
  signed char* xs = reinterpret_cast<signed char*>(mlp_shared);
  float* stage = reinterpret_cast<float*>(mlp_shared + (size_t)M * max(D, F));  // STAGED: one row
  const float4* stage4 = reinterpret_cast<const float4*>(stage);
  __shared__ float a[8];
  __shared__ int token_max[8];  // |y| as int bits (non-negative floats order as their bits)
#if CLUSTER_PRO > 1
  __shared__ float wsum[32], wmax[32];  // cluster_norm_row's warp sums
#endif
  for (int s = 0; s < 2 * L; ++s) {
    const MlpLayer& ly = layers[s >> 1];
    const bool up = (s & 1) == 0;
    const uint4* wq = up ? ly.wgu : ly.wd;
    const scale_t* sc = up ? ly.sgu : ly.sd;
    const int K = up ? D : F, N = up ? 2 * F : D;
    const float post = up ? ly.post_gu : ly.post_d;
    if (up && threadIdx.x < 8) token_max[threadIdx.x] = 0;  // before the first tile's reduction barrier
    persistent_stage(
        (N + 15) / 16, counter, base + (unsigned)s * gridDim.x,
        [&](bool tiles) {
          if (!PROLOGUE) return;
#if CLUSTER_PRO > 1
          // every block, with tiles or without: its share of the cluster's rows
          for (int r = 0; r < M; ++r) {
            if (up) cluster_norm_row(h + (size_t)r * D, ly.norm_w, D, eps, xs + (size_t)r * D, a + r, wsum, wmax);
            else cluster_quantize_row(y + (size_t)r * F, amax + (size_t)r * gridDim.x, gridDim.x, F, xs + (size_t)r * F, a + r);
          }
          return;
#endif
          if (!tiles) return;
          for (int r = 0; r < M; ++r) {  // row r: RMSNorm(h[r]) or y[r] quantized, read through L2 or (STAGED) staged first
            const float* src = up ? h + (size_t)r * D : y + (size_t)r * F;
            if (STAGED) stage_row(stage, src, up ? D : F);
            const auto load = [&](int i) { return STAGED ? stage4[i] : __ldcg(reinterpret_cast<const float4*>(src) + i); };
            if (up) {
              rmsnorm_row<1024 / (WK * 32)>(load, ly.norm_w, xs, a, r, D, eps, 0);
            } else {
              const float* maxima = amax + (size_t)r * gridDim.x;
              quantize_row(load, [&](int j) { return __ldcg(maxima + j); }, gridDim.x, xs, a, r, F, 0);
            }
            __syncthreads();  // (STAGED) the row read before the next one is staged; x written before the tiles read it
          }
        },
        [&](int t, const auto& wait) {
          decode_tiles<true>(wq, sc, xs, M, K, t, [&](auto& red, const auto& tot, int warp, int lane) {
            if (up) {
              decode_reduce_pairs(red, tot, warp, lane, t, M, N, [&](int token, int j, scale_t g, scale_t u) {
                const float v = silu_mul1(out_scale(g, a[token], post), out_scale(u, a[token], post));
                y[(size_t)token * F + j] = v;
                atomicMax(&token_max[token], __float_as_int(fabsf(v)));
              });
            } else {
              decode_reduce(red, tot, warp, lane, t, M, N, [&](int token, int n, scale_t sum) { h[(size_t)token * D + n] += out_scale(sum, a[token], post); });
            }
          }, wait);
        },
        [&] {
          if (up && threadIdx.x < M) amax[(size_t)threadIdx.x * gridDim.x + blockIdx.x] = __int_as_float(token_max[threadIdx.x]);
        });
  }
}
