// RTN of a column-scaled float layer straight into the W4A8 kernels' layout, and the two reductions
// around it, for AWQ's grid search on the GPU (scale-search.ts). Each grid point quantizes
// Q(W·diag(s)) for float W [n, k] and a column scale s [k], as quant/quantize-linear.ts (RTN) does after
// quantize/awq.ts's scaleColumns, bit for bit:
//   v[r, c]     = fl32(W[r, c] · s[c])                                  (__fmul_rn: JS's fround of the product)
//   scaled_absmax  one warp per group (row r, group g of G columns, G % 32 == 0):
//                  fscale[r, g] = fl32(max |v[r, g·G .. g·G+G)| / qmax)
//   group_scales   one thread per group; float scale: scale = fscale; Integer Scale (alpha_log2 ≥ 0):
//                  S = fscale = 0 ? 0 : max(1, rint(fscale · 2^α)) (half to even, in float64),
//                  scale = fl32(S · 2^-α); S > 2^31 − 1 → overflow[0] = min(overflow[0], group index)
//                  and S written as 0. Writes scale [n, groups] and S [n, groups] in row order and the
//                  kernels' scale layout sc[tile][g][16] (repack.ts repackScales): S, or scale / 16.
//   pack_codes     one thread per 32-bit word of the kernels' weight layout (repack.ts): word
//                  ((t·steps + st)·32 + gid·4 + tig)·4 + ks·2 + half holds row r = t·16 + gid + half·8,
//                  values c0 = st·64 + tig·16 + ks·8 .. c0+7, byte j = q[c0+j] | q[c0+4+j] << 4, where
//                  q = clamp(rint(v / scale), −8, 7) in float64 (0 when scale is 0); rows ≥ n are 0.
//   divide_columns y[i, c] = fl32(x[i, c] / s[c])                      (__fdiv_rn: the inputs X·diag(s)⁻¹)
//   squared_error_parts  parts[b] = Σ (a[i] − b[i])² in float64 over block b's grid-stride share
//                  (PARTS blocks: a fixed split, the host adds the parts in order)
#include "common.cuh"

#define PARTS 1024

extern "C" __global__ void __launch_bounds__(256)
scaled_absmax(const float* __restrict__ w, const float* __restrict__ s, float* __restrict__ fscale,
              int k, int G, long long groups_total, int qmax) {
  const long long grp = (long long)blockIdx.x * 8 + (threadIdx.x >> 5);
  if (grp >= groups_total) return;
  const int lane = threadIdx.x & 31;
  const int groups = k / G;
  const long long row = grp / groups;
  const int c0 = (int)(grp % groups) * G;
  const float* wr = w + row * k + c0;
  float m = 0.f;
  for (int j = lane; j < G; j += 32) m = fmaxf(m, fabsf(__fmul_rn(wr[j], s[c0 + j])));
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if (lane == 0) fscale[grp] = (float)((double)m / (double)qmax);
}

extern "C" __global__ void __launch_bounds__(256)
group_scales(const float* __restrict__ fscale, float* __restrict__ scale, int* __restrict__ int_scale, void* __restrict__ layout,
             int* __restrict__ overflow, int n, int groups, int alpha_log2) {
  const long long i = (long long)blockIdx.x * 256 + threadIdx.x;
  if (i >= (long long)n * groups) return;
  const int r = (int)(i / groups), g = (int)(i % groups);
  const long long at = ((long long)(r >> 4) * groups + g) * 16 + (r & 15);
  const float fs = fscale[i];
  if (alpha_log2 < 0) {
    scale[i] = fs;
    ((float*)layout)[at] = (float)((double)fs / 16.0);
    return;
  }
  const double S = fs == 0.f ? 0.0 : fmax(1.0, rint((double)fs * ldexp(1.0, alpha_log2)));
  if (S > 2147483647.0) {
    atomicMin(overflow, (int)i);
    int_scale[i] = 0;
    ((int*)layout)[at] = 0;
    scale[i] = 0.f;
    return;
  }
  int_scale[i] = (int)S;
  ((int*)layout)[at] = (int)S;
  scale[i] = (float)(S * ldexp(1.0, -alpha_log2));
}

__device__ __forceinline__ u32 code4(float v, float sc) {
  if (sc == 0.f) return 0u;
  double q = rint((double)v / (double)sc);
  q = q < -8.0 ? -8.0 : q > 7.0 ? 7.0 : q;
  return (u32)((int)q) & 0xFu;
}

extern "C" __global__ void __launch_bounds__(256)
pack_codes(const float* __restrict__ w, const float* __restrict__ s, const float* __restrict__ scale, u32* __restrict__ out,
           int n, int k, int G, long long words) {
  const long long idx = (long long)blockIdx.x * 256 + threadIdx.x;
  if (idx >= words) return;
  const int steps = k / 64;
  const int wq = (int)(idx & 3), lane = (int)((idx >> 2) & 31);
  const long long ts = idx >> 7;  // t·steps + st
  const int st = (int)(ts % steps);
  const long long t = ts / steps;
  const int ks = wq >> 1, half = wq & 1, gid = lane >> 2, tig = lane & 3;
  const long long r = t * 16 + gid + half * 8;
  if (r >= n) {
    out[idx] = 0u;
    return;
  }
  const int c0 = st * 64 + tig * 16 + ks * 8;
  const float* wr = w + r * k;
  const float sc = scale[r * (k / G) + c0 / G];  // c0 .. c0+7 lie in one group (G % 8 == 0)
  u32 word = 0u;
  for (int j = 0; j < 4; ++j) {
    const u32 lo = code4(__fmul_rn(wr[c0 + j], s[c0 + j]), sc);
    const u32 hi = code4(__fmul_rn(wr[c0 + 4 + j], s[c0 + 4 + j]), sc);
    word |= (lo | (hi << 4)) << (8 * j);
  }
  out[idx] = word;
}

extern "C" __global__ void __launch_bounds__(256)
divide_columns(const float* __restrict__ x, const float* __restrict__ s, float* __restrict__ y, int k, long long count) {
  const long long i = (long long)blockIdx.x * 256 + threadIdx.x;
  if (i >= count) return;
  y[i] = __fdiv_rn(x[i], s[i % k]);
}

extern "C" __global__ void __launch_bounds__(256)
squared_error_parts(const float* __restrict__ a, const float* __restrict__ b, double* __restrict__ parts, long long count) {
  double acc = 0.0;
  for (long long i = (long long)blockIdx.x * 256 + threadIdx.x; i < count; i += (long long)PARTS * 256) {
    const double d = (double)a[i] - (double)b[i];
    acc += d * d;
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  __shared__ double red[8];
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0.0;
    for (int j = 0; j < 8; ++j) sum += red[j];
    parts[blockIdx.x] = sum;
  }
}
