// W4A8 decode-shaped GEMM (M <= 16 tokens): y[m,n] = x[m,:] . W'[n,:], streaming int4 weights.
//
// Math (docs/design.md §1). acc[m,n,g] = sum_{k in g} xq[m,k]*q[n,k] (int32), then per output:
//   SCALE_INT=1 (integer scale): T = sum_g acc*S[n,g] (int32), y = fround(fround(float(T))*a[m]) * 2^-b
//   SCALE_INT=0 (float scale):   t = sum_g float(acc)*s[n,g] (f32, FMA),  y = a[m]*t
// Operands reach the tensor core as 16*q (see common.cuh), so each group sum is acc' = 16*acc:
//   IS_SHIFT=1: T += (acc' >> 4) * S     (exact for any layer that does not overflow int32)
//   IS_SHIFT=0: T' += acc' * S = 16*T    (exact when 16*bound < 2^31; the host checks the layer's
//               bound and passes post = 2^-(b+4); float(16T) = 16*float(T) exactly)
//   float scale: the host uploads s/16 (exact), so float(acc')*(s/16) == float(acc)*s.
//
// Tensor-core mapping ("swap AB": weights are the 16-row A operand, tokens the 8-column B):
//   mma.m16n8k32: A = 16 weight rows x 32 k, B = 32 k x 8 tokens, C = 16 rows x 8 tokens.
//   MT = 1 (M <= 8) or 2 (M <= 16) token halves.
//
// k permutation: inside each 64-k block the 64 positions are renumbered so every thread's
// operands are 16 consecutive k of natural order: lane (gid = lane/4, tig = lane%4) owns natural
// k = tig*16 .. tig*16+15. For mma step ks (0,1) of the block, fragment position p (0..31) holds
// natural k = (p%16/4)*16 + ks*8 + (p/16)*4 + p%4. A dot product does not care about k order, so
// activations are read in their natural [M, K] layout (one 16-byte load per thread per block).
//
// Weight layout (repacked offline by repack.ts), 16-byte units:
//   wq[tile][step][lane] with tile = n/16, step = k/64, lane 0..31; the 16 bytes of a lane are 4
//   words: w0 = (row gid, ks 0), w1 = (row gid+8, ks 0), w2 = (row gid, ks 1), w3 = (row gid+8, ks 1)
//   where byte j of word (r, ks) = q[r][k0 + tig*16 + ks*8 + j] (low nibble)
//                                | q[r][k0 + tig*16 + ks*8 + 4 + j] << 4 (high nibble).
//   Then for step ks: a0 = lo16(w(gid)), a1 = lo16(w(gid+8)), a2 = hi16(w(gid)), a3 = hi16(w(gid+8)).
//   A warp's step load is 512 contiguous bytes. Rows are padded with zeros to a multiple of 128.
// Scales: sc[tile][g][16] (the 16 rows of a tile contiguous per group), int32 (IS) or f32 (FS, /16).
//
// Work split: a block of WK warps owns NTW row tiles (16*NTW rows) over all of K; warp w takes
// the 128-k chunks [w*C/WK, (w+1)*C/WK), double-buffering its 16-byte loads in registers; group
// sums are closed at group ends and at the end of a warp's range (integer sums are exact in any
// split; float sums change only in rounding). STAGES > 0: the same chunks, in the same order, reach the
// registers through STAGES cp.async slots a warp in shared memory instead (decode_pipeline_async,
// decode.cuh; its dynamic shared memory: decode-slots.ts), so the same totals; MINB blocks a SM cap the
// registers. Warps' partial totals are added in shared memory (int32, or f32 in warp order) and the
// epilogue writes y [M, N] row-major as out_t (f32, or f16 rounded from it with OUT_F16, common.cuh);
// ACCUMULATE=1 adds it into y instead
// (y += x·W'ᵀ, f32 only: the residual add of the decode engine, decode-engine.ts).
// Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, M <= 8*MT.
#include "common.cuh"
#include "group-scale.cuh"
#include "decode.cuh"
#include "row-form.cuh"

#ifndef IS_SHIFT
#define IS_SHIFT 1
#endif
#ifndef ACCUMULATE
#define ACCUMULATE 0
#endif
#if ACCUMULATE && OUT_F16
#error "ACCUMULATE adds into an f32 output"
#endif

// one 128-k chunk in registers: w[nt][s] = tile nt's 16 bytes of 64-k step s, x[mt][s] likewise,
// s[nt] = the scales of rows gid, gid+8 of the group the chunk closes (if it closes one)
struct Chunk {
  uint4 w[NTW][2];
  uint4 x[MT][2];
  scale_t s[NTW][2];
};

// the chunk's 4 mma steps per tile and token half: A = 16*q of the packed words (lo16/hi16), B = tokens
__device__ __forceinline__ void chunk_mma(int (&acc)[NTW][MT][4], const Chunk& b) {
#pragma unroll
  for (int s = 0; s < 2; ++s) {
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt) {
      const uint4 v = b.w[nt][s];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_s8(acc[nt][mt], lo16(v.x), lo16(v.y), hi16(v.x), hi16(v.y), b.x[mt][s].x, b.x[mt][s].y);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_s8(acc[nt][mt], lo16(v.z), lo16(v.w), hi16(v.z), hi16(v.w), b.x[mt][s].z, b.x[mt][s].w);
    }
  }
}

// The totals of tiles [tile0, tile0 + NTW) (one block's work; the kernels below), handed with the
// cross-warp reduction's shared memory to epilogue(red, tot, warp, lane). `wait`: what the register pipeline
// waits for before it reads the activations (decode_pipeline; PdlWait: the launch before).
// SHARED_X: xq is the block's own copy of the rows in shared memory (filled by `wait`; register pipeline only).
template <bool SHARED_X = false, class Epilogue, class Wait = PdlWait>
__device__ __forceinline__ void decode_tiles(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
                                             int M, int K, int tile0, Epilogue epilogue, Wait wait = {}) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int steps = K >> 6, chunks = K >> 7, NG = K / GROUP;
  const int c0 = (int)((long long)warp * chunks / WK), c1 = (int)((long long)(warp + 1) * chunks / WK);

  DecodeAcc<NTW, MT, scale_t> st;
  decode_zero(st);
  const uint4* wp[NTW];
  decode_w4_rows(wp, wq, tile0, steps, lane);
  const uint4* xp[MT];
  bool xv[MT];
  decode_x_rows(xp, xv, xq, M, K, gid, tig);

  // IS_SHIFT: T += (acc' >> 4) * S; else acc' * S (or the f32 FMA)
  const auto compute = [&](const Chunk& b, int c) { decode_chunk<IS_SHIFT ? 4 : 0, GROUP>(st, b.s, c, c1, [&] { chunk_mma(st.acc, b); }); };
#if STAGES
  static_assert(!SHARED_X, "rows in shared memory take the register pipeline");
  extern __shared__ __align__(16) unsigned char decode_shared[];
  constexpr int WB = 1024;  // a tile's chunk: [step 2][lane 32][16 B], as the global layout
  const DecodeSmem sm = decode_smem<NTW, STAGES, WB>(decode_shared, warp, XREG ? 0 : M, (chunks + WK - 1) / WK);
  Chunk b;
  DecodeSlotX<MT> slot_x;
  decode_pipeline_async<STAGES>(
      c0, c1,
      [&](int slot, int c) {
#pragma unroll
        for (int nt = 0; nt < NTW; ++nt) {
          unsigned char* d = decode_slot<NTW, WB>(sm, slot, nt);
          cp_async16(smem_u32(d + lane * 16), wp[nt] + (c * 2) * 32, 16);
          cp_async16(smem_u32(d + 512 + lane * 16), wp[nt] + (c * 2 + 1) * 32, 16);
        }
        decode_issue_scales<GROUP, NTW, WB>(sm, slot, sc, tile0, NG, c, c1, lane);
      },
      [&]() { slot_x.issue(sm, xq, xp, xv, M, K, c0, c1, lane); },
      [&](int slot, int c) {
#pragma unroll
        for (int nt = 0; nt < NTW; ++nt) {
          const unsigned char* d = decode_slot<NTW, WB>(sm, slot, nt);
          b.w[nt][0] = *reinterpret_cast<const uint4*>(d + lane * 16);
          b.w[nt][1] = *reinterpret_cast<const uint4*>(d + 512 + lane * 16);
        }
        decode_read_scales<GROUP, NTW, WB>(b.s, sm, slot, c, c1, gid);
        slot_x.read(b.x, sm, xp, xv, c, c0, c1, gid, tig);
        compute(b, c);
      });
#else
  Chunk ca, cb;
  decode_pipeline(
      c0, c1, ca, cb,
      [&](Chunk& b, int c) {
        decode_load_w4(b.w, wp, c);
        decode_load_scales<GROUP>(b.s, sc, tile0, NG, gid, c, c1);
      },
      [&](Chunk& b, int c) { decode_load_x8<SHARED_X>(b.x, xp, xv, c); },
      compute, wait);
#endif

  __shared__ scale_t red[WK][NTW * MT * 4][32];
  epilogue(red, st.tot, warp, lane);
}

// y [M, N] (row-major, out_t) = or += (ACCUMULATE) the tiles' outputs.
template <bool SHARED_X = false, class Wait = PdlWait>
__device__ __forceinline__ void decode_to_rows(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
                                               const float* __restrict__ ascale, out_t* __restrict__ y, int M, int N, int K, float post, int tile0,
                                               Wait wait = {}) {
  decode_tiles<SHARED_X>(wq, sc, xq, M, K, tile0, [&](auto& red, const auto& tot, int warp, int lane) {
    decode_reduce(red, tot, warp, lane, tile0, M, N, [&](int token, int n, scale_t sum) {
      out_t* o = y + (size_t)token * N + n;
      const float v = out_scale(sum, ascale[token], post);
#if ACCUMULATE
      *o += v;
#else
      *o = to_out(v);
#endif
    });
  }, wait);
}

extern "C" __global__ void __launch_bounds__(WK * 32, MINB)
w4a8_decode(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
            const float* __restrict__ ascale, out_t* __restrict__ y, int M, int N, int K, float post) {
  decode_to_rows(wq, sc, xq, ascale, y, M, N, K, post, blockIdx.x * NTW);
}

#if !OUT_F16 && !STAGES
// The decode GEMM quantizing its own input rows (the engine's quantizeInGemm): instead of int8 rows and their
// scales, the f32 rows x [M, K] and P partial maxima of |x| a row (amax [M, P]) that attention_merge or the SwiGLU
// epilogue left for quantize_rows. After the wait every block quantizes all M rows into its shared memory (M·K
// bytes, dynamic) as quantize_rows would (quantize_rows_to_shared, row-form.cuh: the same bytes and scales), then
// runs as w4a8_decode on them (its weights' first chunks already loaded before the wait): the same outputs as
// quantize_rows then w4a8_decode, one launch and one trip of the rows through global memory fewer. Each block
// reads the M rows (4·M·K bytes) and M·P maxima from L2.
struct QuantizeRowsWait {
  const float* x;
  const float* amax;
  int P, M, K;
  signed char* xs;
  float* a;
  __device__ __forceinline__ void operator()() const {
    pdl_wait();
    quantize_rows_to_shared(x, amax, P, M, K, xs, a);
  }
};
extern "C" __global__ void __launch_bounds__(WK * 32, MINB)
w4a8_decode_rows(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const float* x, const float* amax, int P,
                 out_t* __restrict__ y, int M, int N, int K, float post) {
  extern __shared__ __align__(16) unsigned char decode_shared[];
  __shared__ float a[8 * MT];
  signed char* xs = reinterpret_cast<signed char*>(decode_shared);
  decode_to_rows<true>(wq, sc, xs, a, y, M, N, K, post, blockIdx.x * NTW, QuantizeRowsWait{x, amax, P, M, K, xs, a});
}
#endif

#if ACCUMULATE
// The residual add with the next RMSNorm as its tail: y += x·W'ᵀ as w4a8_decode with ACCUMULATE (y = the
// engine's residual h [M, N]), then the grid's last blocks to finish (tail_rows: one a row while there are
// blocks; `arrivals` two counters, zero between launches) write RMSNorm(y[r]) ⊙ norm_w in FORM to `next`
// (+ next_scales) for every row r < M as rmsnorm_to does (row-form.cuh: its WK·32 threads play rmsnorm_to's 1024, so the same bytes),
// and the next GEMM's input is ready without a launch of its own. `next` may be this launch's xq / ascale
// (the engine's one activation buffer): every block has read them before it arrives.
extern "C" __global__ void __launch_bounds__(WK * 32, MINB)
w4a8_decode_norm(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* xq, const float* ascale, float* y,
                 int M, int N, int K, float post, const float* __restrict__ norm_w, void* next, float* next_scales, float eps, int form,
                 unsigned* __restrict__ arrivals) {
  static_assert(1024 % (WK * 32) == 0, "the norm tail plays 1024 threads with WK·32");
  decode_to_rows(wq, sc, xq, ascale, y, M, N, K, post, blockIdx.x * NTW);
  const TailRows tail = tail_rows(arrivals, M);
  for (int r = tail.first; r < M; r += tail.step) {
    const float4* row = reinterpret_cast<const float4*>(y + (size_t)r * N);
    rmsnorm_row<1024 / (WK * 32)>([&](int i) { return __ldcg(row + i); }, norm_w, next, next_scales, r, N, eps, form);
  }
}
#endif

#if !ACCUMULATE && !OUT_F16
// SwiGLU in the epilogue: W' is a stacked gate/up layer with its rows interleaved in blocks of 8
// (concat.ts; N = 2F rows), so each output pair (gate j, up j) closes in one thread:
//   y[m, j] = silu(g)·u (silu_mul1, common.cuh), g, u = the pair's outputs as w4a8_decode writes them,
//   f32 [M, F] (the engine's row scratch); amax[m·gridDim.x + blockIdx.x] = the block's max |y| of
//   token m (for quantize_rows: the same row maxima as silu_mul_rows gives, max being exact).
// With `arrivals` (two counters, zero between launches; null: none) the grid's last blocks to finish
// (tail_rows: one a row) then write the rows in FORM to `next` (+ next_scales) as quantize_rows would
// (quantize_rows_tail, row-form.cuh), and the down projection's input is ready without a launch of its own
// (`next` may be this launch's xq / ascale: every block has read them before it arrives).
// At least two blocks per SM: at MT = 4 the epilogue took the kernel to 142 registers (one 256-thread
// block per SM) and a 32-row step lost 7%; capped at 128 (4 bytes spilled) it gains 2.6% (H100). (At WK 32, 1024
// threads, two blocks would cap it at 32 registers: one.)
extern "C" __global__ void __launch_bounds__(WK * 32, MINB > 2 ? MINB : WK >= 32 ? 1 : 2)
w4a8_decode_swiglu(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* xq, const float* ascale,
                   float* __restrict__ y, float* __restrict__ amax, int M, int N, int K, float post,
                   void* next, float* next_scales, int form, unsigned* __restrict__ arrivals) {
  const int tile0 = blockIdx.x * NTW, F = N >> 1;
  __shared__ int token_max[8 * MT];  // |y| as int bits (non-negative floats order as their bits)
  decode_tiles(wq, sc, xq, M, K, tile0, [&](auto& red, const auto& tot, int warp, int lane) {
    if (threadIdx.x < 8 * MT) token_max[threadIdx.x] = 0;  // before decode_reduce_pairs' barrier
    decode_reduce_pairs(red, tot, warp, lane, tile0, M, N, [&](int token, int j, scale_t g, scale_t u) {
      const float v = silu_mul1(out_scale(g, ascale[token], post), out_scale(u, ascale[token], post));
      y[(size_t)token * F + j] = v;
      atomicMax(&token_max[token], __float_as_int(fabsf(v)));
    });
    __syncthreads();
    if (threadIdx.x < M) amax[(size_t)threadIdx.x * gridDim.x + blockIdx.x] = __int_as_float(token_max[threadIdx.x]);
  });
  if (arrivals != nullptr) quantize_rows_tail(y, amax, gridDim.x, M, F, next, next_scales, form, arrivals);
}
#endif

#if !ACCUMULATE
// Grouped experts (a mixture of experts' decode step, kernels/moe.cu): expert e's rows are
// [offsets[e], offsets[e+1]) of xq / ascale / y (compact, expert by expert), its weights wqs[e],
// scales scs[e] and output factor posts[e]. Grid (tiles / NTW, A, row chunks of 8*MT): block y
// serves expert active[y] (the experts with rows, in index order, then -1: moe.cu's moe_route), so
// an expert no row picked launches no block; a chunk past its expert's rows returns at once. A config's MINB > 1
// bounds it as w4a8_decode (MINB 2 at 17-32 rows, where ptxas left alone sits at 127-128 registers, the edge of two
// blocks a SM); without one, no minimum (an explicit 1 lets ptxas take more registers: 138 at MT 4).
#if MINB > 1
#define EXPERTS_BOUNDS __launch_bounds__(WK * 32, MINB)
#else
#define EXPERTS_BOUNDS __launch_bounds__(WK * 32)
#endif
extern "C" __global__ void EXPERTS_BOUNDS
w4a8_decode_experts(const uint4* const* __restrict__ wqs, const scale_t* const* __restrict__ scs, const float* __restrict__ posts,
                    const int* __restrict__ offsets, const int* __restrict__ active, const signed char* __restrict__ xq,
                    const float* __restrict__ ascale, out_t* __restrict__ y, int N, int K) {
  const int e = active[blockIdx.y];
  if (e < 0) return;
  const int r0 = offsets[e] + blockIdx.z * (8 * MT);
  const int M = min(8 * MT, offsets[e + 1] - r0);
  if (M <= 0) return;
  decode_to_rows(wqs[e], scs[e], xq + (size_t)r0 * K, ascale + r0, y + (size_t)r0 * N, M, N, K, posts[e], blockIdx.x * NTW);
}
#endif
