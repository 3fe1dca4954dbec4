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
// Dynamic shared memory: M · max(D, F) bytes (x). Defines as w4a8-decode.cu with ACCUMULATE 0, OUT_F16 0, STAGES 0
// (the register pipeline: rows in shared memory), SCALE_INT 1 or 0.
#include "w4a8-decode.cu"
#include "grid-barrier.cuh"

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

// A stage's tiles, after the grid barrier at `target` and the block's prologue (x into shared memory), then
// finish() (after the last tile's barrier) and the block's arrival. Every block waits and arrives, with tiles or without.
template <class Prologue, class Tile, class Finish>
__device__ __forceinline__ void persistent_stage(int tiles, unsigned* counter, unsigned target, Prologue prologue, Tile tile, Finish finish) {
  bool ready = false;
  const auto wait = [&] {
    if (ready) return;
    grid_wait(counter, target);
    prologue();
    ready = true;
  };
  for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
    tile(t, wait);
    __syncthreads();  // the tile's reduction buffer is reused by the next tile
  }
  if (!ready) grid_wait(counter, target);
  finish();
  grid_arrive(counter);
}

// Stage 1 of layer l: gate/up with SwiGLU, on RMSNorm(h). Not inlined: the stage's tile loop keeps the registers of
// a standalone decode kernel (two 512-thread blocks a SM allow 64), not the kernel's loop state besides.
__device__ __noinline__ void gate_up_stage(const MlpLayer& ly, int M, int D, int F, float eps, const float* h, float* y, float* amax,
                                           signed char* xs, float* a, int* token_max, unsigned* counter, unsigned target) {
  if (threadIdx.x < 8) token_max[threadIdx.x] = 0;  // before the first tile's reduction barrier
  persistent_stage(
      (2 * F) / 16, counter, target,
      [&] {
        for (int r = 0; r < M; ++r) {
          const float4* row = reinterpret_cast<const float4*>(h + (size_t)r * D);
          rmsnorm_row<1024 / (WK * 32)>([&](int i) { return __ldcg(row + i); }, ly.norm_w, xs, a, r, D, eps, 0);
        }
        __syncthreads();
      },
      [&](int t, const auto& wait) {
        decode_tiles<true>(ly.wgu, ly.sgu, xs, M, D, t, [&](auto& red, const auto& tot, int warp, int lane) {
          decode_reduce_pairs(red, tot, warp, lane, t, M, 2 * F, [&](int token, int j, scale_t g, scale_t u) {
            const float v = silu_mul1(out_scale(g, a[token], ly.post_gu), out_scale(u, a[token], ly.post_gu));
            y[(size_t)token * F + j] = v;
            atomicMax(&token_max[token], __float_as_int(fabsf(v)));
          });
        }, wait);
      },
      [&] {
        if (threadIdx.x < M) amax[(size_t)threadIdx.x * gridDim.x + blockIdx.x] = __int_as_float(token_max[threadIdx.x]);
      });
}

// Stage 2 of layer l: down, adding into h, on y quantized (not inlined, as gate_up_stage).
__device__ __noinline__ void down_stage(const MlpLayer& ly, int M, int D, int F, float* h, const float* y, const float* amax,
                                        signed char* xs, float* a, unsigned* counter, unsigned target) {
  persistent_stage(
      (D + 15) / 16, counter, target, [&] { quantize_rows_to_shared(y, amax, gridDim.x, M, F, xs, a); },
      [&](int t, const auto& wait) {
        decode_tiles<true>(ly.wd, ly.sd, xs, M, F, t, [&](auto& red, const auto& tot, int warp, int lane) {
          decode_reduce(red, tot, warp, lane, t, M, D, [&](int token, int n, scale_t sum) { h[(size_t)token * D + n] += out_scale(sum, a[token], ly.post_d); });
        }, wait);
      },
      [] {});
}

extern "C" __global__ void __launch_bounds__(WK * 32, MINB)
w4a8_mlp_persistent(const MlpLayer* __restrict__ layers, int L, int M, int D, int F, float eps, float* h, float* y, float* amax,
                    unsigned* counter, unsigned base) {
  extern __shared__ __align__(16) unsigned char mlp_shared[];
  signed char* xs = reinterpret_cast<signed char*>(mlp_shared);
  __shared__ float a[8];
  __shared__ int token_max[8];  // |y| as int bits (non-negative floats order as their bits)
  for (int l = 0; l < L; ++l) {
    const MlpLayer ly = layers[l];
    gate_up_stage(ly, M, D, F, eps, h, y, amax, xs, a, token_max, counter, base + 2u * l * gridDim.x);
    down_stage(ly, M, D, F, h, y, amax, xs, a, counter, base + (2u * l + 1) * gridDim.x);
  }
}
