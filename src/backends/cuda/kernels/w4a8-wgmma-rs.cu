// W4A8 GEMM for large M (prefill) on Hopper warpgroup MMA (sm_90a), weights from REGISTERS:
//   wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8  d, {a0,a1,a2,a3}, b-desc, scale-d
// y[m,n] = x[m,:] . W'[n,:], same math, epilogues and defines as w4a8-decode.cu:
//   SCALE_INT=1: T = sum_g acc*S (int32, IS_SHIFT: (acc'>>4)*S, else acc'*S = 16*T), one
//                conversion per output: y = fround(fround(float(T))*a[m]) * post
//   SCALE_INT=0: t = sum_c float(acc'_c)*(s/16) (f32 FMA per 128-k chunk), y = a[m]*t
// where acc' = 16*acc because the tensor cores see 16*q (common.cuh).
//
// "Swap AB" like the decode kernel: the weights are the 64-row A operand of each warpgroup, the
// tokens the 128 columns of B, so D[n, m] = W'[n, :] . x[m, :].
//   - A (weights): straight from global memory into registers. The SAME repacked buffer as the
//     decode kernel (wq[tile][step][lane], repack.ts): warp w of a warpgroup owns the 16-row tile
//     t, and its lane's 16-byte unit of 64-k step st holds rows gid, gid+8 for both k32 substeps,
//     so two 16-byte loads per thread per 128-k chunk give all 16 A registers after one logic op
//     each: a0 = lo16(w(gid)), a1 = lo16(w(gid+8)), a2 = hi16(w(gid)), a3 = hi16(w(gid+8)) (16*q,
//     the mma.m16n8k32 A layout, which the wgmma A register fragment shares per warp).
//     No shared memory and no expansion pass for the weights.
//   - B (activations): xq in FRAGMENT ORDER (act-quant.cu with permute = 1): inside each 64-k
//     block, logical position L = ks*32 + h*16 + tig*4 + j holds natural k = tig*16 + ks*8 + h*4 + j
//     (the decode kernel's k permutation, here applied to the data because the tensor core reads B
//     from shared memory in logical order). cp.async 16 B into [BT][128 B] with the 128-byte swizzle
//     (16-byte chunk index XOR row&7), 1024-B aligned: canonical K-major SW128. Token rows >= M are
//     zero-filled (src-size 0, address clamped to row M-1) and never stored.
//   - Scales: the thread's two rows (gid, gid+8) per chunk, two 4-byte loads from sc[tile][g][16].
// Shared memory traffic per 128-k chunk and block: 16 KB of cp.async writes + WGS*16 KB of
// tensor-core reads of B, against WGS*256 clk of tensor work (vs ~80 KB per 256 clk in the
// shared-memory-operand kernel, which was shared-memory-bandwidth bound).
//
// Block: WGS warpgroups (128*WGS threads), tile 64*WGS weight rows x BT = 128 tokens, 128-k chunk
// per pipeline stage. Stages are handed over by mbarriers, not block barriers, so the warpgroups
// drift apart and one's epilogue overlaps the other's wgmmas (a block barrier per chunk kept them
// in lockstep: 763 vs 875 TOPS, docs/cuda-notes.md):
//   full[s]  completes when every thread's cp.asyncs into stage s landed (cp.async.mbarrier.arrive),
//   empty[s] completes when every thread's warpgroup finished the wgmmas reading stage s.
// Chunk c+STAGES-2 is loaded into the stage chunk c-2 used, right after chunk c's wgmmas are issued;
// weights and scales are prefetched two chunks ahead in registers. Per chunk: wait full, expand A
// from registers (lo16/hi16), 4 wgmma (first with scale-d = 0), commit, issue the next loads,
// wait_group 0, arrive empty, group epilogue into tot (2 scale values per thread).
// Accumulator fragment (warp w, lane gid/tig): d[4j+e] = (weight row 16w+gid+8(e>>1),
// token 8j+2tig+(e&1)), j = 0..15.
// grid.x = token tiles (fastest, so consecutive blocks reuse one weight tile from L2),
// grid.y = weight tiles. Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, rows padded to 128.
#include "common.cuh"
#include "group-scale.cuh"
#include "wgmma.cuh"
#include "mbarrier.cuh"

#ifndef STAGES
#define STAGES 4
#endif
#ifndef IS_SHIFT
#define IS_SHIFT 1
#endif
#ifndef WGS
#define WGS 2
#endif
#ifndef MINB
#define MINB 1
#endif
#define BT 128
#define BW (64 * WGS)
#define THREADS (WGS * 128)
#define X_BYTES (BT * 128)
// dynamic shared bytes the host must pass: 1024 (alignment slack) + the stages
#define SMEM_BYTES (1024 + STAGES * X_BYTES + STAGES * 16)
#define OFF_BAR (STAGES * X_BYTES)  // full[s] at +16s, empty[s] at +16s+8

#define X_IT (BT * 8 / THREADS)  // activation 16-B copies per thread per stage
#define RSTEP (THREADS / 8)      // token rows between a thread's copies

// One chunk's register operands: the lane's two 16-byte weight units and its two rows' scales.
struct WChunk {
  uint4 w[2];
  scale_t s0, s1;
};

__device__ __forceinline__ void load_weights(WChunk& r, const uint4* wp, const scale_t* sp, int c) {
  r.w[0] = ld_stream(wp + (c * 2) * 32);
  r.w[1] = ld_stream(wp + (c * 2 + 1) * 32);
  const scale_t* s = sp + ((c * 128) / GROUP) * 16;
  r.s0 = __ldg(s);
  r.s1 = __ldg(s + 8);
}

extern "C" __global__ void __launch_bounds__(THREADS, MINB)
w4a8_wgmma_rs(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
              const float* __restrict__ ascale, out_t* __restrict__ y, int M, int N, int K, float post) {
  extern __shared__ uint4 smem_raw[];
  const u32 sbase = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, gid = lane >> 2;
  const int m0 = blockIdx.x * BT;
  const int tile = blockIdx.y * (BW / 16) + wg * 4 + warp;  // this warp's 16-row weight tile
  const int steps = K >> 6, NG = K / GROUP, chunks = K >> 7;

  // activation copies: thread takes 16-B column cc of rows r0 + it*RSTEP
  const int r0 = tid >> 3, cc = tid & 7;
  const signed char* xa = xq + cc * 16;
  int xoff[X_IT];
  u32 xvalid;
  a_rows_init<X_IT, RSTEP>(xoff, xvalid, m0 + r0, M, K);
  const u32 x_dst = sbase + r0 * 128 + ((cc ^ (r0 & 7)) << 4);
  auto load_x = [&](int s, int c) { a_rows_load<X_IT, RSTEP>(x_dst + s * X_BYTES, xa + c * 128, xoff, xvalid); };

  const uint4* wp = wq + (size_t)tile * steps * 32 + lane;
  const scale_t* sp = sc + (size_t)tile * NG * 16 + gid;

  int acc[64];
  tot_t tot[64];
  zero_acc_tot(acc, tot);

  // full[s]: every thread's cp.asyncs of the stage landed (THREADS noinc arrivals); empty[s]: every
  // thread's warpgroup finished the wgmmas reading it (THREADS arrivals). Use u of a stage has
  // parity u & 1. Chunk c is loaded STAGES-2 chunks ahead into the stage chunk c-2 used, so a
  // warpgroup waits for the other only when it runs more than a chunk ahead.
  const u32 bars = sbase + OFF_BAR;
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(bars + 16 * s, THREADS);
      mbar_init(bars + 16 * s + 8, THREADS);
    }
    mbar_init_fence();
  }
  __syncthreads();
#pragma unroll
  for (int s = 0; s < STAGES - 2; ++s) {
    if (s < chunks) {
      load_x(s, s);
      mbar_arrive_cp_async(bars + 16 * s);
    }
  }
  // Weight registers two chunks ahead: buffer c&1 is refilled with chunk c+2 as soon as chunk c's
  // A fragments are built (the loop is unrolled by two so the buffers never need copying: a copy
  // would wait for the load right away and expose its latency).
  WChunk wbuf[2];
  load_weights(wbuf[0], wp, sp, 0);
  if (chunks > 1) load_weights(wbuf[1], wp, sp, 1);
  int s_cur = 0;
  auto step = [&](int c, WChunk& wr) {
    mbar_wait(bars + 16 * s_cur, (c / STAGES) & 1);
    fence_proxy_async();
    // the same build as w4_a_fragments (wgmma.cuh), kept inline: the helper made ptxas schedule this
    // kernel 3% slower (IS, same-run A/B on the H100, docs/cuda-notes.md "Sixth session")
    u32 a[4][4];
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      const uint4 w = wr.w[ks >> 1];
      const u32 w0 = (ks & 1) ? w.z : w.x, w8 = (ks & 1) ? w.w : w.y;
      a[ks][0] = lo16(w0);
      a[ks][1] = lo16(w8);
      a[ks][2] = hi16(w0);
      a[ks][3] = hi16(w8);
#pragma unroll
      for (int r = 0; r < 4; ++r) asm volatile("" : "+r"(a[ks][r])::"memory");  // built before the wgmma fence
    }
    const scale_t s0 = wr.s0, s1 = wr.s1;
    if (c + 2 < chunks) load_weights(wr, wp, sp, c + 2);
    const u32 b_addr = sbase + s_cur * X_BYTES;
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) wgmma_m64n128k32_s8_rs(acc, a[ks][0], a[ks][1], a[ks][2], a[ks][3], desc_sw128(b_addr + ks * 32), ks);
    wgmma_commit();
    const int cl = c + STAGES - 2;  // chunk to load, into the stage chunk c-2 used
    if (cl < chunks) {
      const int sl = s_cur >= 2 ? s_cur - 2 : s_cur + STAGES - 2;
      if (c >= 2) mbar_wait(bars + 16 * sl + 8, ((c - 2) / STAGES) & 1);
      load_x(sl, cl);
      mbar_arrive_cp_async(bars + 16 * sl);
    }
    wgmma_wait<0>();
    mbar_arrive(bars + 16 * s_cur + 8);
    fence_regs(acc);
#pragma unroll
    for (int i = 0; i < 64; ++i) add_group<IS_SHIFT ? 4 : 0>(tot[i], acc[i], (i & 2) ? s1 : s0);
    s_cur = s_cur + 1 == STAGES ? 0 : s_cur + 1;
  };
#pragma unroll 1
  for (int c = 0; c < chunks; c += 2) {
    step(c, wbuf[0]);
    if (c + 1 < chunks) step(c + 1, wbuf[1]);
  }

  wgmma_store_y_swapped(tot, y, ascale, m0, tile * 16, M, N, post);
}
