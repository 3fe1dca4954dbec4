// W4A16 weights expanded to fp16 for a large-M GEMM (cuBLAS fp16 x fp16 -> f32, w4a16.ts):
//   w16[n, k] = fp16( q[n, k] * s16[n, k / GROUP] ),  row-major [N, K] binary16
// the same values the decode kernel (w4a16-decode.cu) makes in registers: q is exact in fp16 and the
// product is rounded once to nearest (HMUL), so a GEMM on w16 differs from the decode kernel's only
// in the f32 accumulation order.
//
// Input: the repacked int4 buffer of every W4 kernel (repack.ts, w4a8-decode.cu):
//   wq[tile][step][lane] 16 B, lane = gid*4 + tig; word i of the 16 bytes is (row gid + (i&1)*8,
//   half ks = i>>1); byte j of word (r, ks) = q[r][k0 + tig*16 + ks*8 + j] | q[r][... + 4 + j] << 4,
//   k0 = step*64, nibbles two's complement. Scales s16[tile][g][16] fp16.
// Thread t of the grid expands one 16-byte unit: four words, each 8 consecutive k of one row, one
// 16-byte store apiece. Rows past N (the tile padding) are not written. Grid: ceil(units / 256)
// blocks of 256, units = (N_padded / 16) * (K / 64) * 32.
#include "common.cuh"

#ifndef GROUP
#define GROUP 128
#endif

__device__ __forceinline__ u32 pack_h2(unsigned short lo, unsigned short hi) { return (u32)lo | ((u32)hi << 16); }

__device__ __forceinline__ unsigned short deq1(int q, unsigned short s) {
  unsigned short qh, w;
  asm("cvt.rn.f16.s32 %0, %1;\n" : "=h"(qh) : "r"(q));
  asm("mul.rn.f16 %0, %1, %2;\n" : "=h"(w) : "h"(qh), "h"(s));
  return w;
}

extern "C" __global__ void __launch_bounds__(256)
w4a16_dequant(const uint4* __restrict__ wq, const unsigned short* __restrict__ sc, unsigned short* __restrict__ w16, int N, int K, unsigned long long units) {
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if ((unsigned long long)t >= units) return;
  const int steps = K >> 6, NG = K / GROUP;
  const int lane = (int)(t & 31), gid = lane >> 2, tig = lane & 3;
  const long long ts = t >> 5;
  const int step = (int)(ts % steps), tile = (int)(ts / steps);
  const uint4 v = wq[t];
  const u32 words[4] = {v.x, v.y, v.z, v.w};
  const int g = (step * 64) / GROUP;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = gid + (i & 1) * 8, n = tile * 16 + r;
    if (n >= N) continue;
    const unsigned short s = sc[((size_t)tile * NG + g) * 16 + r];
    const int k = step * 64 + tig * 16 + (i >> 1) * 8;
    unsigned short h[8];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int byte = (int)((words[i] >> (8 * j)) & 0xFFu);
      h[j] = deq1(((byte & 0xF) ^ 8) - 8, s);   // low nibble: k + j
      h[4 + j] = deq1((byte >> 4 ^ 8) - 8, s);  // high nibble: k + 4 + j
    }
    *reinterpret_cast<uint4*>(w16 + (size_t)n * K + k) =
        make_uint4(pack_h2(h[0], h[1]), pack_h2(h[2], h[3]), pack_h2(h[4], h[5]), pack_h2(h[6], h[7]));
  }
}
