// The argmax of one row of n floats by a block of 32·k threads: the smallest j with x[j] = max x (NaN is never the
// largest; a row without a value above −∞ gives 0), the host's argmax (src/model/sampling.ts). Every thread of the
// block calls it; every thread gets the index and the largest value (−∞ for such a row). Uses __syncthreads.
#pragma once

struct RowMax {
  float best;
  int at;
};

__device__ __forceinline__ RowMax row_argmax(const float* __restrict__ xr, int n) {
  __shared__ float best_of[32];
  __shared__ int at_of[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float neg_inf = __int_as_float(0xff800000);
  float best = neg_inf;
  int at = 0x7fffffff;
  // increasing j, strict >: each thread keeps its first maximum; 4 loads in flight per round
  for (int j0 = threadIdx.x; j0 < n; j0 += 4 * blockDim.x) {
    float v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int j = j0 + u * (int)blockDim.x;
      v[u] = j < n ? xr[j] : neg_inf;
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      if (v[u] > best) {
        best = v[u];
        at = j0 + u * (int)blockDim.x;
      }
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oa = __shfl_xor_sync(0xffffffffu, at, o);
    if (ob > best || (ob == best && oa < at)) {
      best = ob;
      at = oa;
    }
  }
  if (lane == 0) {
    best_of[warp] = best;
    at_of[warp] = at;
  }
  __syncthreads();
  best = best_of[0];
  at = at_of[0];
  for (int w = 1; w < (int)(blockDim.x >> 5); ++w) {
    if (best_of[w] > best || (best_of[w] == best && at_of[w] < at)) {
      best = best_of[w];
      at = at_of[w];
    }
  }
  __syncthreads(); // best_of and at_of may be written again by the block's next call
  return {best, at == 0x7fffffff ? 0 : at};
}
