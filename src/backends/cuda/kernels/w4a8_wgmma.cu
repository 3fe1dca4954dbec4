// W4A8 GEMM for large M (prefill) on Hopper warpgroup MMA (sm_90a):
//   wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8, both operands from shared memory.
// y[m,n] = x[m,:] . W'[n,:], same math, epilogues and defines as w4a8_mma.cu / w4a8_decode.cu:
//   SCALE_INT=1: T = sum_g acc*S (int32, IS_SHIFT: (acc'>>4)*S, else acc'*S = 16*T), one
//                conversion per output: y = fround(fround(float(T))*a[m]) * post
//   SCALE_INT=0: t = sum_c float(acc'_c)*(s/16) (f32 FMA per 128-k chunk), y = a[m]*t
// where acc' = 16*acc because the tensor cores see 16*q (common.cuh). Groups are closed per
// 128-k chunk (for GROUP > 128 a group is summed in GROUP/128 chunk pieces with its own scale:
// exact for IS, a rounding change only for FS).
//
// Inputs: the SAME repacked weights (wq[tile][step][lane], repack.ts) and scales (sc[tile][g][16])
// as the other W4 kernels, activations xq [M, K] int8 row-major, a [M], y [M, N] out_t (f32 or f16).
//
// Block: WGS warpgroups (128*WGS threads; WGS=1: 3 blocks/SM at <= 168 registers, WGS=2: 1 block),
// tile BM = 64*WGS tokens x BN = 128 weight rows, k chunk 128 per pipeline stage. All threads load
// and expand (no producer specialization yet):
//   - A (activations): cp.async 16 B into [BM][128 B] with the 128-byte swizzle (16-byte chunk
//     index XOR row&7), 1024-B aligned: the canonical K-major SW128 wgmma layout. Rows >= M are
//     zero-filled (src-size 0, address clamped to row M-1) and never stored.
//   - Braw (int4 weights): cp.async of the tile's 1024-B (tile, 2 steps) blocks, 16-B units
//     bank-swizzled (slot u ^ ((u>>4)&1)*4 inside each 512-B step block).
//   - Sc: the chunk's group scales for the BN rows (cp.async).
//   - B8: each 16-B Braw unit (lane gid,tig of step st: rows gid and gid+8, natural k
//     st*64+tig*16..+15) becomes two 16-B int8 chunks {lo16(w_ks0), hi16(w_ks0), lo16(w_ks1),
//     hi16(w_ks1)} = 16*q in natural k order, stored into [BN][128 B] with the same swizzle as A;
//     lanes take units so that reads and writes are bank-conflict free per quarter warp.
// Pipeline per chunk c (STAGES stages, loads STAGES-1 chunks ahead): wait cp.async(c), barrier;
// issue loads for c+STAGES-1; expand B(c); fence.proxy.async; barrier; 4 wgmma (k32 steps,
// descriptors advanced 32 B inside the swizzle atom, the first with scale-d = 0 so each chunk's
// accumulator starts fresh); commit; wait_group 0; group epilogue into tot. Overlap of epilogue
// and tensor work comes from the other resident blocks (a double-buffered accumulator with
// wait_group 1 made ptxas serialize every wgmma: C7514).
// Accumulator fragment (per warp w of a warpgroup, lane gid/tig): d[4j+e] = (row 16w+gid+8(e>>1),
// col 8j+2tig+(e&1)), j = 0..15.
// Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, weights padded to 128 rows.
#include "common.cuh"
#include "group_scale.cuh"
#include "wgmma.cuh"

#ifndef STAGES
#define STAGES 5
#endif
#ifndef IS_SHIFT
#define IS_SHIFT 1
#endif

#ifndef WGS
#define WGS 2
#endif
#ifndef MINB  // blocks per SM the register allocation must allow (3 x 128 threads: <= 168 registers)
#define MINB (WGS == 1 ? 3 : 1)
#endif
#define BM (64 * WGS)
#define BN 128
#define THREADS (WGS * 128)
#define A_BYTES (BM * 128)
#define BR_BYTES (BN * 64)
#define SC_BYTES (BN * 4)
#define B8_BYTES (BN * 128)
#define OFF_A(s) (B8_BYTES + (s) * A_BYTES)
#define OFF_BR(s) (B8_BYTES + STAGES * A_BYTES + (s) * BR_BYTES)
#define OFF_SC(s) (B8_BYTES + STAGES * (A_BYTES + BR_BYTES) + (s) * SC_BYTES)
// dynamic shared bytes the host must pass: 1024 (alignment slack) + the above
#define SMEM_BYTES (1024 + B8_BYTES + STAGES * (A_BYTES + BR_BYTES + SC_BYTES))

// Per-thread load/expand state, computed once: every per-chunk address is a register plus an
// immediate (the chunk and the stage enter as one add each).
#define A_IT (BM * 8 / THREADS)  // A 16-B copies per thread per stage
#define B_IT (BN * 4 / THREADS)  // Braw 16-B units per thread per stage
#define RSTEP (THREADS / 8)      // A rows between a thread's copies
struct Ctx {
  const signed char* xa;    // xq + this thread's 16-B column
  int aoff[A_IT];           // row offsets (rows clamped to M-1) of the thread's copies, bytes
  u32 avalid;               // bit it: row of copy it < M
  const uint4* wb;          // wq + this thread's first Braw unit (chunk 0)
  int wstride;              // uint4 between a thread's Braw units (THREADS/64 tiles)
  const scale_t* scp;       // this thread's 16-B scale copy (tid < BN/4), group 0
  u32 sbase;                // shared address of the 1024-aligned region
  u32 a_dst, e_dst;         // this thread's offsets inside an A stage / B8
  u32 br_dst, br_src;       // this thread's Braw copy slot / expansion read slot (swizzled)
  int tid;
};

__device__ __forceinline__ void load_stage(const Ctx& C, int s, int c) {
  a_rows_load<A_IT, RSTEP>(C.sbase + OFF_A(0) + s * A_BYTES + C.a_dst, C.xa + c * 128, C.aoff, C.avalid);
  const u32 b0 = C.sbase + OFF_BR(0) + s * BR_BYTES + C.br_dst;
  const uint4* wsrc = C.wb + c * 64;
#pragma unroll
  for (int it = 0; it < B_IT; ++it) cp_async16(b0 + it * THREADS * 16, wsrc + it * C.wstride, 16);
  if (C.tid < BN / 4) cp_async16(C.sbase + OFF_SC(0) + s * SC_BYTES + C.tid * 16, C.scp + ((c * 128) / GROUP) * 16, 16);
}

// int4 units of stage s -> 16*q int8 rows of B8 (swizzled K-major). Unit i = tid + it*THREADS:
// tile t = i>>6, step st = (i>>5)&1, lane l = i&31 (g = l>>2, tg = l&3); rows t*16+g (+8).
__device__ __forceinline__ void expand_b(const Ctx& C, int s) {
  const u32 src = C.sbase + OFF_BR(0) + s * BR_BYTES + C.br_src;
#pragma unroll
  for (int it = 0; it < B_IT; ++it) {
    const uint4 w = lds128(src + it * THREADS * 16);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const u32 wa = h ? w.y : w.x, wb = h ? w.w : w.z;
      sts128(C.sbase + C.e_dst + it * (THREADS / 64) * 16 * 128 + h * 8 * 128, lo16(wa), hi16(wa), lo16(wb), hi16(wb));
    }
  }
}

__device__ __forceinline__ void issue_mma(const Ctx& C, int (&acc)[64], int s) {
  wgmma_chunk128(acc, C.sbase + OFF_A(0) + s * A_BYTES + (C.tid >> 7) * 64 * 128, C.sbase);
}

__device__ __forceinline__ void group_epilogue(const Ctx& C, int (&acc)[64], tot_t (&tot)[64], int s) {
  wgmma_group_epilogue<IS_SHIFT ? 4 : 0>(acc, tot, C.sbase + OFF_SC(0) + s * SC_BYTES + (C.tid & 3) * 8);
}

extern "C" __global__ void __launch_bounds__(THREADS, MINB)
w4a8_wgmma(const uint4* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
           const float* __restrict__ ascale, out_t* __restrict__ y, int M, int N, int K, float post) {
  extern __shared__ uint4 smem_raw[];
  Ctx C;
  C.sbase = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const int tid = threadIdx.x;
  C.tid = tid;
  const int m0 = blockIdx.x * BM;
  const int tile0 = blockIdx.y * (BN / 16);
  const int steps = K >> 6, NG = K / GROUP, chunks = K >> 7;
  {
    const int r0 = tid >> 3, cc = tid & 7;
    C.xa = xq + cc * 16;
    a_rows_init<A_IT, RSTEP>(C.aoff, C.avalid, m0 + r0, M, K);
    C.a_dst = r0 * 128 + ((cc ^ (r0 & 7)) << 4);
    C.wb = wq + (size_t)(tile0 + (tid >> 6)) * steps * 32 + (tid & 63);
    C.wstride = (THREADS / 64) * steps * 32;
    C.scp = sc + (size_t)(tile0 + (tid >> 2 & 7)) * NG * 16 + (tid & 3) * 4;
    // Braw bank swizzle: unit u of each 32-unit (512-B) step block sits in slot u ^ ((u >> 4) & 1) * 4.
    // The expansion gives lane L the unit of (g, tg) = (((L >> 2) & 1) * 4 + (L >> 3), L & 3), so
    // each quarter-warp reads 8 distinct bank slots and writes 8 distinct (swizzled) B8 slots.
    const int j = tid & 31;
    C.br_dst = (tid & ~31) * 16 + ((j ^ (((j >> 4) & 1) << 2)) << 4);
    const int l = tid & 31, g = ((l >> 2) & 1) * 4 + (l >> 3), tg = l & 3, ci = ((tid >> 5) & 1) * 4 + tg;
    const int u = g * 4 + tg;
    C.br_src = (tid & ~31) * 16 + ((u ^ (((u >> 4) & 1) << 2)) << 4);
    C.e_dst = ((tid >> 6) * 16 + g) * 128 + ((ci ^ g) << 4);
  }

  int acc[64];
  tot_t tot[64];
  zero_acc_tot(acc, tot);

  cp_async_prologue<STAGES - 1>(chunks, [&](int stage, int c) { load_stage(C, stage, c); });
  int s_cur = 0, s_ld = STAGES - 1;
#pragma unroll 1
  for (int c = 0; c < chunks; ++c) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // chunk c landed everywhere; every warpgroup is done with chunk c-1 (stage s_ld, B8)
    if (c + STAGES - 1 < chunks) load_stage(C, s_ld, c + STAGES - 1);
    cp_async_commit();
    expand_b(C, s_cur);
    fence_proxy_async();
    __syncthreads();
    issue_mma(C, acc, s_cur);
    wgmma_wait<0>();
    group_epilogue(C, acc, tot, s_cur);
    s_ld = s_cur;
    s_cur = s_cur + 1 == STAGES ? 0 : s_cur + 1;
  }
  cp_async_wait<0>();

  wgmma_store_y(tot, y, ascale, m0, tile0 * 16, M, N, post);
}
