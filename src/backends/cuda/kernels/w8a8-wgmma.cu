// W8A8 GEMM for large M (prefill) on Hopper warpgroup MMA (sm_90a):
//   wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8, both operands from shared memory.
// y[m,n] = x[m,:] . W'[n,:] with 8-bit weights q in [-128, 127] and int8 activations:
//   acc[m,n,g] = sum_{k in g} xq[m,k]*q[n,k] (int32, per 128-k chunk piece of a group)
//   SCALE_INT=1 (integer scale): T = sum_g acc*S[n,g] (int32, plain: no 16*q trick, no shift),
//                one conversion per output: y = fround(fround(float(T))*a[m]) * post, post = 2^-b.
//                Exact when 127*128*G*sum_g S < 2^31 (the host checks the layer's bound;
//                int32 wrap-around is exact mod 2^32, so the chunk split changes nothing).
//   SCALE_INT=0 (float scale):   t = sum_c float(acc_c)*s (f32 FMA per 128-k chunk), y = a[m]*t.
// Groups are closed per 128-k chunk (GROUP > 128: a group is summed in GROUP/128 pieces with its
// own scale: exact for IS, a rounding change only for FS).
//
// Inputs: weights wq [Npad, K] int8 row-major (natural layout, rows zero-padded to a multiple of
// 128), scales sc[tile][g][16] (repack.ts repackScales: the 16 rows of a 16-row tile contiguous
// per group; int32 S or f32 s), activations xq [M, K] int8 row-major, a [M] f32, y [M, N] out_t (f32 or f16).
// The decode kernel (w8a8-decode.cu) reads the same weight and scale buffers.
//
// Block: WGS warpgroups (128*WGS threads), tile BM = 64*WGS tokens x BN = 128 weight rows, k chunk
// 128 per pipeline stage. No expansion: both operands go global -> shared by cp.async (16 B per
// copy) straight into the canonical K-major SW128 wgmma layout ([rows][128 B], 16-byte chunk
// index XOR row&7, 1024-B aligned). A rows >= M are zero-filled (src-size 0, address clamped).
// The chunk's scales for the BN rows go by cp.async too.
// Pipeline per chunk c (STAGES stages, loads STAGES-1 chunks ahead): wait cp.async(c);
// fence.proxy.async (generic-proxy writes -> tensor-core reads); barrier; issue loads for
// c+STAGES-1; 4 wgmma k32 steps (first with scale-d = 0: each chunk's accumulator starts
// fresh); commit; wait_group 0; group epilogue into tot. Epilogue / tensor overlap comes from the
// other resident blocks (WGS=1, STAGES=3: 3 blocks per SM).
// PIPE=1 (needs STAGES >= 3): accumulators acc0/acc1 alternate (loop unrolled by 2 so both are
// named statically); step c: wait cp.async(c); fence; barrier (now every warp has finished chunk
// c-2); load chunk c+STAGES-2 into chunk c-2's stage; issue chunk c; wait_group 1 (chunk c-1
// done); epilogue of chunk c-1 while chunk c runs on the tensor cores. Loads run STAGES-2 chunks
// ahead. 2 blocks per SM (WGS=1, <= 255 registers).
// Accumulator fragment (per warp w of a warpgroup, lane gid/tig): d[4j+e] = (row 16w+gid+8(e>>1),
// col 8j+2tig+(e&1)), j = 0..15.
// Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, weights padded to 128 rows.
#include "common.cuh"
#include "group-scale.cuh"
#include "wgmma.cuh"

#ifndef STAGES
#define STAGES 3
#endif
#ifndef WGS
#define WGS 1
#endif
#ifndef PIPE  // 1: two accumulators, chunk c's wgmmas in flight during chunk c-1's epilogue
#define PIPE 0
#endif
#ifndef MINB
#define MINB (PIPE ? (WGS == 1 ? 2 : 1) : WGS == 1 ? (STAGES <= 3 ? 3 : 2) : 1)
#endif
#define BM (64 * WGS)
#define BN 128
#define THREADS (WGS * 128)
#define A_BYTES (BM * 128)
#define B_BYTES (BN * 128)
#define SC_BYTES (BN * 4)
#define OFF_A(s) ((s) * (A_BYTES + B_BYTES))
#define OFF_B(s) ((s) * (A_BYTES + B_BYTES) + A_BYTES)
#define OFF_SC(s) (STAGES * (A_BYTES + B_BYTES) + (s) * SC_BYTES)
// dynamic shared bytes the host must pass (w8a8.ts w8a8WgmmaSharedBytes): 1024 (alignment slack) + the above
#define SMEM_BYTES (1024 + STAGES * (A_BYTES + B_BYTES + SC_BYTES))

#define A_IT (BM * 8 / THREADS)  // A 16-B copies per thread per stage
#define B_IT (BN * 8 / THREADS)  // B 16-B copies per thread per stage
#define RSTEP (THREADS / 8)      // rows between a thread's copies (a multiple of 8: same swizzle)
struct Ctx {
  const signed char* xa;  // xq + this thread's 16-B column
  int aoff[A_IT];         // row offsets (rows clamped to M-1) of the thread's A copies, bytes
  u32 avalid;             // bit it: row of copy it < M
  const signed char* wb;  // wq + (n0 + r0) * K + this thread's 16-B column
  size_t wstep;           // bytes between a thread's B rows (RSTEP * K)
  const scale_t* scp;     // this thread's 16-B scale copy (tid < BN/4), group 0
  u32 sbase;              // shared address of the 1024-aligned region
  u32 dst;                // this thread's swizzled offset inside an A or B stage
  int tid;
};

__device__ __forceinline__ void load_stage(const Ctx& C, int s, int c) {
  a_rows_load<A_IT, RSTEP>(C.sbase + OFF_A(s) + C.dst, C.xa + c * 128, C.aoff, C.avalid);
  const u32 b0 = C.sbase + OFF_B(s) + C.dst;
  const signed char* wsrc = C.wb + c * 128;
#pragma unroll
  for (int it = 0; it < B_IT; ++it) cp_async16(b0 + it * RSTEP * 128, wsrc + it * C.wstep, 16);
  if (C.tid < BN / 4) cp_async16(C.sbase + OFF_SC(s) + C.tid * 16, C.scp + ((c * 128) / GROUP) * 16, 16);
}

__device__ __forceinline__ void issue_mma(const Ctx& C, int (&acc)[64], int s) {
  wgmma_chunk128(acc, C.sbase + OFF_A(s) + (C.tid >> 7) * 64 * 128, C.sbase + OFF_B(s));
}

__device__ __forceinline__ void group_epilogue(const Ctx& C, int (&acc)[64], tot_t (&tot)[64], int s) {
  wgmma_group_epilogue<0>(acc, tot, C.sbase + OFF_SC(s) + (C.tid & 3) * 8);
}

extern "C" __global__ void __launch_bounds__(THREADS, MINB)
w8a8_wgmma(const signed char* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
           const float* __restrict__ ascale, out_t* __restrict__ y, int M, int N, int K, float post) {
  extern __shared__ uint4 smem_raw[];
  Ctx C;
  C.sbase = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const int tid = threadIdx.x;
  C.tid = tid;
  const int m0 = blockIdx.x * BM;
  const int n0 = blockIdx.y * BN;
  const int NG = K / GROUP, chunks = K >> 7;
  {
    const int r0 = tid >> 3, cc = tid & 7;
    C.xa = xq + cc * 16;
    a_rows_init<A_IT, RSTEP>(C.aoff, C.avalid, m0 + r0, M, K);
    C.wb = wq + (size_t)(n0 + r0) * K + cc * 16;
    C.wstep = (size_t)RSTEP * K;
    C.dst = r0 * 128 + ((cc ^ (r0 & 7)) << 4);
    C.scp = sc + (size_t)(n0 / 16 + (tid >> 2 & 7)) * NG * 16 + (tid & 3) * 4;
  }

  tot_t tot[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) tot[i] = 0;
#if PIPE
  int acc0[64], acc1[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    acc0[i] = 0;
    acc1[i] = 0;
  }
  cp_async_prologue<STAGES - 2>(chunks, [&](int stage, int c) { load_stage(C, stage, c); });
  int s_cur = 0, s_prev = STAGES - 1, s_ld = STAGES - 2;
#define PIPE_STEP(CC, ACC_CUR, ACC_PREV, EPI)                                   \
  {                                                                            \
    cp_async_wait<STAGES - 3>();                                               \
    fence_proxy_async();                                                       \
    __syncthreads();                                                           \
    if ((CC) + STAGES - 2 < chunks) load_stage(C, s_ld, (CC) + STAGES - 2);    \
    cp_async_commit();                                                         \
    issue_mma(C, ACC_CUR, s_cur);                                              \
    if (EPI) {                                                                 \
      wgmma_wait<1>();                                                         \
      group_epilogue(C, ACC_PREV, tot, s_prev);                                \
    }                                                                          \
    s_prev = s_cur;                                                            \
    s_cur = s_cur + 1 == STAGES ? 0 : s_cur + 1;                               \
    s_ld = s_ld + 1 == STAGES ? 0 : s_ld + 1;                                  \
  }
  PIPE_STEP(0, acc0, acc1, false)
  int c = 1;
#pragma unroll 1
  for (; c + 1 < chunks; c += 2) {
    PIPE_STEP(c, acc1, acc0, true)
    PIPE_STEP(c + 1, acc0, acc1, true)
  }
  if (c < chunks) {
    PIPE_STEP(c, acc1, acc0, true)
    wgmma_wait<0>();
    group_epilogue(C, acc1, tot, s_prev);
  } else {
    wgmma_wait<0>();
    group_epilogue(C, acc0, tot, s_prev);
  }
#undef PIPE_STEP
  cp_async_wait<0>();
#else
  int acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0;

  cp_async_prologue<STAGES - 1>(chunks, [&](int stage, int c) { load_stage(C, stage, c); });
  int s_cur = 0, s_ld = STAGES - 1;
#pragma unroll 1
  for (int c = 0; c < chunks; ++c) {
    cp_async_wait<STAGES - 2>();
    fence_proxy_async();
    __syncthreads();  // chunk c landed everywhere; every warpgroup is done with chunk c-1 (stage s_ld)
    if (c + STAGES - 1 < chunks) load_stage(C, s_ld, c + STAGES - 1);
    cp_async_commit();
    issue_mma(C, acc, s_cur);
    wgmma_wait<0>();
    group_epilogue(C, acc, tot, s_cur);
    s_ld = s_cur;
    s_cur = s_cur + 1 == STAGES ? 0 : s_cur + 1;
  }
  cp_async_wait<0>();
#endif

  wgmma_store_y(tot, y, ascale, m0, n0, M, N, post);
}
