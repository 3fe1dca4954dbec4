// W8A8 decode-shaped GEMM (M <= 8*MT tokens): y[m,n] = x[m,:] . W'[n,:], streaming int8 weights.
//
// Math (docs/design.md §1), 8-bit weights q in [-128, 127], int8 activations:
//   acc[m,n,g] = sum_{k in g} xq[m,k]*q[n,k] (int32), then per output:
//   SCALE_INT=1 (integer scale): T = sum_g acc*S[n,g] (int32), y = fround(fround(float(T))*a[m]) * post
//                (post = 2^-b; plain epilogue: the 16*q trick of the W4 kernels does not apply;
//                exact when 127*128*G*sum_g S < 2^31, checked by the host)
//   SCALE_INT=0 (float scale):   t = sum_g float(acc)*s[n,g] (f32, FMA),  y = a[m]*t
//
// Tensor-core mapping ("swap AB", as w4a8-decode.cu): mma.m16n8k32 with the weights as the
// 16-row A operand and the tokens as the 8-column B operand; MT token halves of 8.
// k permutation: inside each 64-k block lane (gid = lane/4, tig = lane%4) owns natural
// k = tig*16 .. tig*16+15 of its rows and tokens; for mma step ks (0,1) fragment position p
// (0..31) holds natural k = (p%16/4)*16 + ks*8 + (p/16)*4 + p%4. So every operand is one 16-byte
// load of natural order: word 2ks of a row's 16 bytes is a0/a1 (rows gid, gid+8), word 2ks+1 is
// a2/a3, and the activations' words 2ks, 2ks+1 are b0, b1.
//
// Inputs: the same buffers as w8a8-wgmma.cu: weights wq [Npad, K] int8 row-major (rows padded to
// 128 with zeros; a warp's load of one 64-k block covers 16 rows x 64 B), scales sc[tile][g][16]
// (int32 S or f32 s), xq [M, K] int8, a [M], y [M, N] out_t (f32 or f16).
// Work split as w4a8-decode.cu: a block of WK warps owns NTW 16-row tiles over all of K; warp w
// takes the 128-k chunks [w*C/WK, (w+1)*C/WK), double-buffering its loads in registers (or, STAGES > 0,
// through STAGES cp.async slots in shared memory: decode_pipeline_async, decode.cuh); group sums
// close at group ends and at the end of a warp's range; warps' totals are added in shared memory.
// Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, M <= 8*MT.
#include "common.cuh"
#include "group-scale.cuh"
#include "decode.cuh"

// one 128-k chunk in registers: w[nt][s][h] = tile nt, 64-k step s, row gid (h=0) or gid+8 (h=1);
// x[mt][s] = token half mt's 16 bytes of step s; s[nt] = the scales of rows gid, gid+8 of the group
// the chunk closes (if it closes one)
struct Chunk {
  uint4 w[NTW][2][2];
  uint4 x[MT][2];
  scale_t s[NTW][2];
};

__device__ __forceinline__ void decode_load_w8(Chunk& b, const uint4* const (&wp)[NTW], size_t row8, int c) {
#pragma unroll
  for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      b.w[nt][s][0] = ld_stream(wp[nt] + c * 8 + s * 4);
      b.w[nt][s][1] = ld_stream(wp[nt] + row8 + c * 8 + s * 4);
    }
}

// the chunk's 4 mma steps per tile and token half: A = the int8 weight rows gid, gid+8, B = tokens
__device__ __forceinline__ void chunk_mma(int (&acc)[NTW][MT][4], const Chunk& b) {
#pragma unroll
  for (int s = 0; s < 2; ++s) {
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt) {
      const uint4 r0 = b.w[nt][s][0], r8 = b.w[nt][s][1];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_s8(acc[nt][mt], r0.x, r8.x, r0.y, r8.y, b.x[mt][s].x, b.x[mt][s].y);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_s8(acc[nt][mt], r0.z, r8.z, r0.w, r8.w, b.x[mt][s].z, b.x[mt][s].w);
    }
  }
}

extern "C" __global__ void __launch_bounds__(WK * 32, MINB)
w8a8_decode(const signed char* __restrict__ wq, const scale_t* __restrict__ sc, const signed char* __restrict__ xq,
            const float* __restrict__ ascale, out_t* __restrict__ y, int M, int N, int K, float post) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int tile0 = blockIdx.x * NTW;
  const int chunks = K >> 7, NG = K / GROUP;
  const int c0 = (int)((long long)warp * chunks / WK), c1 = (int)((long long)(warp + 1) * chunks / WK);

  DecodeAcc<NTW, MT, scale_t> st;
  decode_zero(st);
  const uint4* wp[NTW];
#pragma unroll
  for (int nt = 0; nt < NTW; ++nt) wp[nt] = reinterpret_cast<const uint4*>(wq + (size_t)((tile0 + nt) * 16 + gid) * K + tig * 16);
  const size_t row8 = (size_t)K / 2;  // 8 rows, in uint4
  const uint4* xp[MT];
  bool xv[MT];
  decode_x_rows(xp, xv, xq, M, K, gid, tig);

  // plain T += acc * S (no 16*q), or the f32 FMA
  const auto compute = [&](const Chunk& b, int c) { decode_chunk<0, GROUP>(st, b.s, c, c1, [&] { chunk_mma(st.acc, b); }); };
#if STAGES
  extern __shared__ __align__(16) unsigned char decode_shared[];
  constexpr int WB = 2048;  // a tile's chunk: [step 2][row gid / gid + 8][lane 32][16 B]
  const DecodeSmem sm = decode_smem<NTW, STAGES, WB>(decode_shared, warp, XREG ? 0 : M, (chunks + WK - 1) / WK);
  Chunk b;
  DecodeSlotX<MT> slot_x;
  decode_pipeline_async<STAGES>(
      c0, c1,
      [&](int slot, int c) {
#pragma unroll
        for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
          for (int u = 0; u < 4; ++u)
            cp_async16(smem_u32(decode_slot<NTW, WB>(sm, slot, nt) + u * 512 + lane * 16), wp[nt] + (u & 1) * row8 + c * 8 + (u >> 1) * 4, 16);
        decode_issue_scales<GROUP, NTW, WB>(sm, slot, sc, tile0, NG, c, c1, lane);
      },
      [&]() { slot_x.issue(sm, xq, xp, xv, M, K, c0, c1, lane); },
      [&](int slot, int c) {
#pragma unroll
        for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
          for (int u = 0; u < 4; ++u) b.w[nt][u >> 1][u & 1] = *reinterpret_cast<const uint4*>(decode_slot<NTW, WB>(sm, slot, nt) + u * 512 + lane * 16);
        decode_read_scales<GROUP, NTW, WB>(b.s, sm, slot, c, c1, gid);
        slot_x.read(b.x, sm, xp, xv, c, c0, c1, gid, tig);
        compute(b, c);
      });
#else
  Chunk ca, cb;
  decode_pipeline(
      c0, c1, ca, cb,
      [&](Chunk& b, int c) {
        decode_load_w8(b, wp, row8, c);
        decode_load_scales<GROUP>(b.s, sc, tile0, NG, gid, c, c1);
      },
      [&](Chunk& b, int c) { decode_load_x8(b.x, xp, xv, c); },
      compute);
#endif

  __shared__ scale_t red[WK][NTW * MT * 4][32];
  decode_reduce(red, st.tot, warp, lane, tile0, M, N,
                [&](int token, int n, scale_t sum) { y[(size_t)token * N + n] = to_out(out_scale(sum, ascale[token], post)); });
}
