// Causal grouped-query attention over a KV cache, float32 in and out, float64 arithmetic (as the
// CPU backend, src/backends/cpu/ops.ts):
//   out[r,h,:] = Σ_t softmax_t( q[r,h,:]·K[t,g(h),:] / sqrt(D) ) · V[t,g(h),:],   t = first .. p,
//   p = *start + r,  first = 0 or max(0, p − window + 1) (window > 0: sliding window),
//   g(h) = h / (H / KVH) (grouped-query: H/KVH query heads share a kv head).
// Layout: q, out [m][H][D]; keys, values [capacity][KVH][D] (row t = position t), float32 row-major.
// Grid (m, H), 8 warps per block. Warp w takes positions first + w, first + w + 8, ...; lane l holds
// dimensions d = l + 32j (j < D_MAX/32, d < D). Each warp keeps an online softmax (running max mx,
// sum l = Σ e^(s−mx), acc = Σ e^(s−mx)·v); the 8 are merged through shared memory:
//   M = max_w mx_w,  out = Σ_w acc_w·e^(mx_w − M) / Σ_w l_w·e^(mx_w − M).
// The CPU normalizes each weight before summing V; the result differs only in float64 rounding.
// The start position is read from device memory (*start), so one captured graph serves every decode
// position. kv_write stores the new rows first: keys[*start + r] = k[r], values[*start + r] = v[r].
#ifndef D_MAX
#define D_MAX 256
#endif
#define WARPS 8
#define PER_LANE (D_MAX / 32)
#define NEG_INF __longlong_as_double(0xfff0000000000000ULL)  // -inf (NVRTC has no math.h)

extern "C" __global__ void __launch_bounds__(WARPS * 32)
attention(const float* __restrict__ q, const float* __restrict__ keys, const float* __restrict__ values,
          float* __restrict__ out, const int* __restrict__ start, int H, int KVH, int D, int window) {
  const int r = blockIdx.x, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int pos = *start + r;
  const int first = window > 0 ? max(0, pos - window + 1) : 0;
  const size_t kv_dim = (size_t)KVH * D;
  const size_t kvo = (size_t)(h / (H / KVH)) * D;
  const double scale = 1.0 / sqrt((double)D);
  const float* qr = q + ((size_t)r * H + h) * D;
  double qv[PER_LANE], acc[PER_LANE];
#pragma unroll
  for (int j = 0; j < PER_LANE; ++j) {
    const int d = lane + 32 * j;
    qv[j] = d < D ? (double)qr[d] : 0.0;
    acc[j] = 0.0;
  }
  double mx = NEG_INF, l = 0.0;
  for (int t = first + warp; t <= pos; t += WARPS) {
    const float* kr = keys + (size_t)t * kv_dim + kvo;
    double s = 0.0;
#pragma unroll
    for (int j = 0; j < PER_LANE; ++j) {
      const int d = lane + 32 * j;
      if (d < D) s += qv[j] * (double)kr[d];
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    s *= scale;
    if (s > mx) {
      const double c = exp(mx - s);  // 0 on the first position (mx = -inf)
      l *= c;
#pragma unroll
      for (int j = 0; j < PER_LANE; ++j) acc[j] *= c;
      mx = s;
    }
    const double e = exp(s - mx);
    l += e;
    const float* vr = values + (size_t)t * kv_dim + kvo;
#pragma unroll
    for (int j = 0; j < PER_LANE; ++j) {
      const int d = lane + 32 * j;
      if (d < D) acc[j] += e * (double)vr[d];
    }
  }
  __shared__ double s_mx[WARPS], s_l[WARPS], s_acc[WARPS][D_MAX];
  if (lane == 0) { s_mx[warp] = mx; s_l[warp] = l; }
#pragma unroll
  for (int j = 0; j < PER_LANE; ++j) {
    const int d = lane + 32 * j;
    if (d < D) s_acc[warp][d] = acc[j];
  }
  __syncthreads();
  double M = NEG_INF;
  for (int w = 0; w < WARPS; ++w) M = fmax(M, s_mx[w]);
  double L = 0.0;
  for (int w = 0; w < WARPS; ++w) L += s_mx[w] == NEG_INF ? 0.0 : s_l[w] * exp(s_mx[w] - M);
  float* orow = out + ((size_t)r * H + h) * D;
  for (int d = threadIdx.x; d < D; d += WARPS * 32) {
    double o = 0.0;
    for (int w = 0; w < WARPS; ++w) if (s_mx[w] != NEG_INF) o += s_acc[w][d] * exp(s_mx[w] - M);
    orow[d] = (float)(o / L);
  }
}

// one thread per element of the m new rows [m][KVH·D] of k and of v
extern "C" __global__ void __launch_bounds__(256)
kv_write(const float* __restrict__ k, const float* __restrict__ v, float* __restrict__ keys, float* __restrict__ values,
         const int* __restrict__ start, long long kv_dim, long long n) {
  const long long i = (long long)blockIdx.x * 256 + threadIdx.x;
  if (i >= n) return;
  const long long at = (long long)*start * kv_dim + i;
  keys[at] = k[i];
  values[at] = v[i];
}
