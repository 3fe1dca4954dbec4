// Causal grouped-query attention over a KV cache, float32 in and out, float64 arithmetic (as the
// CPU backend, src/backends/cpu/ops.ts):
//   out[r,h,:] = Σ_t softmax_t( q[r,h,:]·K[t,g(h),:] / sqrt(D) ) · V[t,g(h),:],   t = first .. p,
//   p = *start + r,  first = 0 or max(0, p − window + 1) (window > 0: sliding window),
//   g(h) = h / (H / KVH) (grouped-query: H/KVH query heads share a kv head).
// Layout: q, out [m][H][D]; keys, values [capacity][KVH][D] (row t = position t), float32 row-major.
// The start position is read from device memory (*start), so one captured graph serves every
// position; so is the split below, which depends on the cache capacity, never on the position.
//
// Split over positions (flash-decoding), two kernels:
//   attention_part     grid (m, H, S), 128 threads. Block s covers positions [s·chunk, (s+1)·chunk)
//                      ∩ [first, p] in tiles of 32: the 4 warps compute the tile's 32 scores (lanes
//                      split d, shuffle-sum), then every thread rescales its running (mx, l, acc[d])
//                      online, acc[d] += Σ_t e^(s_t − mx)·V[t,d] for d = tid, tid + 128. It writes
//                      part[r][h][s] = { mx, l, acc[0..D) } (float64; mx = −inf for no position).
//   attention_combine  grid (m, H), 128 threads: M = max_s mx_s, w_s = e^(mx_s − M) (0 when empty),
//                      out[r,h,d] = Σ_s w_s·acc_s[d] / Σ_s w_s·l_s.
// The CPU normalizes each weight before summing V; the result differs only in float64 rounding.
// kv_write stores the new rows first: keys[*start + r] = k[r], values[*start + r] = v[r].
#ifndef D_MAX
#define D_MAX 256
#endif
#define THREADS 128
#define WARPS (THREADS / 32)
#define TILE 32
#define PER_THREAD (D_MAX / THREADS)
#define MAX_SPLITS 256
#define NEG_INF __longlong_as_double(0xfff0000000000000ULL)  // -inf (NVRTC has no math.h)

extern "C" __global__ void __launch_bounds__(THREADS)
attention_part(const float* __restrict__ q, const float* __restrict__ keys, const float* __restrict__ values,
               double* __restrict__ part, const int* __restrict__ start, int H, int KVH, int D, int window, int chunk) {
  const int r = blockIdx.x, h = blockIdx.y, s = blockIdx.z, S = gridDim.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int pos = *start + r;
  const int first = window > 0 ? max(0, pos - window + 1) : 0;
  const int lo = max(first, s * chunk), hi = min(pos + 1, (s + 1) * chunk);  // positions [lo, hi)
  const size_t kv_dim = (size_t)KVH * D;
  const size_t kvo = (size_t)(h / (H / KVH)) * D;
  const double scale = 1.0 / sqrt((double)D);
  __shared__ double qs[D_MAX], sc[TILE], ew[TILE];
  for (int d = tid; d < D; d += THREADS) qs[d] = (double)q[((size_t)r * H + h) * D + d];
  double mx = NEG_INF, l = 0.0, acc[PER_THREAD];
#pragma unroll
  for (int j = 0; j < PER_THREAD; ++j) acc[j] = 0.0;
  __syncthreads();
  for (int t0 = lo; t0 < hi; t0 += TILE) {
    for (int j = warp; j < TILE; j += WARPS) {
      const int t = t0 + j;
      double dot = 0.0;
      if (t < hi) {
        const float* kr = keys + (size_t)t * kv_dim + kvo;
        for (int d = lane; d < D; d += 32) dot += qs[d] * (double)kr[d];
      }
      for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      if (lane == 0) sc[j] = t < hi ? dot * scale : NEG_INF;
    }
    __syncthreads();
    double tile_max = NEG_INF;
    for (int j = 0; j < TILE; ++j) tile_max = fmax(tile_max, sc[j]);
    const double nm = fmax(mx, tile_max);
    if (tid < TILE) ew[tid] = sc[tid] == NEG_INF ? 0.0 : exp(sc[tid] - nm);
    const double c = mx == NEG_INF ? 0.0 : exp(mx - nm);
    mx = nm;
    l *= c;
#pragma unroll
    for (int j = 0; j < PER_THREAD; ++j) acc[j] *= c;
    __syncthreads();
    const int n = min(TILE, hi - t0);
    for (int j = 0; j < n; ++j) {
      const double e = ew[j];
      l += e;
      const float* vr = values + (size_t)(t0 + j) * kv_dim + kvo;
#pragma unroll
      for (int i = 0; i < PER_THREAD; ++i) {
        const int d = tid + THREADS * i;
        if (d < D) acc[i] += e * (double)vr[d];
      }
    }
    __syncthreads();  // sc and ew are rewritten by the next tile
  }
  double* out = part + (((size_t)r * H + h) * S + s) * (D + 2);
  if (tid == 0) {
    out[0] = mx;
    out[1] = l;
  }
#pragma unroll
  for (int i = 0; i < PER_THREAD; ++i) {
    const int d = tid + THREADS * i;
    if (d < D) out[2 + d] = acc[i];
  }
}

extern "C" __global__ void __launch_bounds__(THREADS)
attention_combine(const double* __restrict__ part, float* __restrict__ out, int H, int D, int S) {
  const int r = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
  const double* p = part + ((size_t)r * H + h) * S * (D + 2);
  __shared__ double w[MAX_SPLITS];
  __shared__ double total;
  double M = NEG_INF;
  for (int s = 0; s < S; ++s) M = fmax(M, p[(size_t)s * (D + 2)]);
  for (int s = tid; s < S; s += THREADS) {
    const double mx = p[(size_t)s * (D + 2)];
    w[s] = mx == NEG_INF ? 0.0 : exp(mx - M);
  }
  __syncthreads();
  if (tid == 0) {
    double L = 0.0;
    for (int s = 0; s < S; ++s) L += w[s] * p[(size_t)s * (D + 2) + 1];
    total = L;
  }
  __syncthreads();
  for (int d = tid; d < D; d += THREADS) {
    double o = 0.0;
    for (int s = 0; s < S; ++s) o += w[s] * p[(size_t)s * (D + 2) + 2 + d];
    out[((size_t)r * H + h) * D + d] = (float)(o / total);
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
