// Per-token dynamic int8 activation quantization (symmetric), bit-exact with
// src/quant/activation-quant.ts:
//   a[m]    = fround( max_k |x[m,k]| / 127 )          (division in float64, like the JS reference)
//   xq[m,k] = clamp( rint_half_even( x[m,k] / a[m] ), -127, 127 )   (float64 division)
//   a row of zeros gives a = 0 and xq = 0.
// Layout: x [M, K] float32 row-major, xq [M, K] int8 row-major, a [M] float32. K % 4 == 0.
// permute = 1 writes xq in FRAGMENT ORDER for w4a8-wgmma-rs.cu (K % 64 == 0): inside each 64-k
// block, 4-byte unit p = tig*4 + ks*2 + h (natural k = 4p..4p+3) goes to unit ks*8 + h*4 + tig.
// One block of 256 threads per token; float4 loads, char4 stores. The kernel after it may launch at
// once (pdl_launch_dependents): the GEMMs launched to overlap it wait for it before reading xq, a.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
act_quant(const float* __restrict__ x, signed char* __restrict__ xq, float* __restrict__ scales, int K, int permute) {
  pdl_launch_dependents();
  const int row = blockIdx.x;
  const float4* xr = reinterpret_cast<const float4*>(x + (size_t)row * K);
  char4* qr = reinterpret_cast<char4*>(xq + (size_t)row * K);
  const int K4 = K >> 2;
  float amax = 0.f;
  for (int i = threadIdx.x; i < K4; i += 256) {
    float4 v = xr[i];
    amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
  }
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  __shared__ float red[8];
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = amax;
  __syncthreads();
  amax = red[0];
  for (int w = 1; w < 8; ++w) amax = fmaxf(amax, red[w]);
  const float a = (float)((double)amax / 127.0);
  if (threadIdx.x == 0) scales[row] = a;
  for (int i = threadIdx.x; i < K4; i += 256)
    qr[permute ? (i & ~15) | ((i >> 1) & 1) << 3 | (i & 1) << 2 | ((i >> 2) & 3) : i] = act_quant4(xr[i], a);
}
