// The W4A8 decode kernels' unit of work (w4a8-decode.cu, w4a8-decode-band.cu): their tile knobs (MT token octets, NTW
// 16-row tiles a warp, WK warps a block), one 128-k chunk of a warp in registers and its tensor-core steps. The math,
// the k permutation and the repacked weight layout: w4a8-decode.cu's header. Include after common.cuh, group-scale.cuh.
#pragma once

#ifndef MT
#define MT 1
#endif
#ifndef NTW
#define NTW 1
#endif
#ifndef WK
#define WK 8
#endif
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
