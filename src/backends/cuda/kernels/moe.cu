// A mixture of experts in the CUDA decode engine (engine-moe.ts), routed on the device so a decode
// step stays one graph. Float32, the fast path (the exact backend routes on the host: model/moe.ts).
//
//   moe_router    grid (m, ceil(E/8)), 8 warps: logits[t, e] = Σ_i x[t, i]·w[e, i] (float32), warp e%8 of
//                 block (t, e/8): lane l sums i = l, l+32, … by FMA, then a fixed butterfly of shuffles.
//                 The same order at any m, so a row's routing does not depend on the rows beside it
//                 (a batched GEMM's kernel, and so its rounding, changes with m).
//   moe_route     one block: for each row t of logits [m, E] (the router's output)
//                   p = softmax(logits[t, :]),  picks j = 0..k-1 the k largest p (equal values: the
//                   lower expert first),  w_j = p_e / Σ_picks p   (transformers' Mixtral routing)
//                 writes pick_e[t·k + j], pick_w[t·k + j], offsets[0..E] (prefix sums of the
//                 experts' row counts), active[0..E) (the experts with rows in index order, then −1:
//                 the grouped kernels' block → expert map), and pick_pos[t·k + j], the row the pick's copy of
//                 token t takes in the experts' buffers, by MODE:
//                   0 compact  offsets[e] + rank   (rank: the pick's place among expert e's rows in
//                                                   token order; the grouped decode kernels read this)
//                   1 padded   e·cap + rank        (every expert cap rows: one batched cuBLAS GEMM of E)
//                   2 pairs    t·k + j             (one cuBLAS GEMM of one row per pick)
//   moe_gather    grid (m·k): row pick_pos[p] of out = row p / k of x (row_words 32-bit words; with
//                 scales, the int8 rows' per-token scale too)
//   moe_combine   grid (m): h[t, :] += Σ_j w_j · y[pick_pos[t·k + j], :]  (the picks taken in expert
//                 order, as the reference adds experts; y rows d floats)
//   moe_pointers  the pointer arrays of a batched cuBLAS GEMM: a[i] = weights[expert of i] (pairs:
//                 pick_e[i]; padded: i), b[i] = x + i·x_stride, c[i] = y + i·y_stride (bytes)
// Limits: E <= MAX_EXPERTS, k <= E.
#include "common.cuh"

#define MAX_EXPERTS 64

extern "C" __global__ void __launch_bounds__(1024)
moe_route(const float* __restrict__ logits, int m, int E, int k, int mode, int cap, int* __restrict__ pick_e, float* __restrict__ pick_w,
          int* __restrict__ pick_pos, int* __restrict__ offsets, int* __restrict__ active) {
  __shared__ int start[MAX_EXPERTS + 1];
  for (int t = threadIdx.x; t < m; t += blockDim.x) {
    const float* l = logits + (size_t)t * E;
    float mx = l[0];
    for (int e = 1; e < E; ++e) mx = fmaxf(mx, l[e]);
    float sum = 0.f;
    for (int e = 0; e < E; ++e) sum += expf(l[e] - mx);
    unsigned long long used = 0;
    float total = 0.f;
    for (int j = 0; j < k; ++j) {
      int best = -1;
      float bp = 0.f;
      for (int e = 0; e < E; ++e) {
        if ((used >> e) & 1ull) continue;
        const float p = expf(l[e] - mx) / sum;
        if (best < 0 || p > bp) best = e, bp = p;
      }
      used |= 1ull << best;
      pick_e[t * k + j] = best;
      pick_w[t * k + j] = bp;
      total += bp;
    }
    for (int j = 0; j < k; ++j) pick_w[t * k + j] /= total;
  }
  __syncthreads();
  // each expert's rows in token order: thread e ranks the picks of expert e
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int n = 0;
    for (int p = 0; p < m * k; ++p)
      if (pick_e[p] == e) pick_pos[p] = n++;  // the rank for now
    start[e + 1] = n;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    start[0] = 0;
    int a = 0;
    for (int e = 0; e < E; ++e) {
      if (start[e + 1] > 0) active[a++] = e;
      start[e + 1] += start[e];
    }
    for (; a < E; ++a) active[a] = -1;
  }
  __syncthreads();
  for (int e = threadIdx.x; e <= E; e += blockDim.x) offsets[e] = start[e];
  for (int p = threadIdx.x; p < m * k; p += blockDim.x) {
    const int e = pick_e[p], rank = pick_pos[p];
    pick_pos[p] = mode == 0 ? start[e] + rank : mode == 1 ? e * cap + rank : p;
  }
}

extern "C" __global__ void __launch_bounds__(256)
moe_gather(const u32* __restrict__ x, const float* __restrict__ xs, const int* __restrict__ pick_pos, int k, int row_words,
           u32* __restrict__ out, float* __restrict__ out_s) {
  const int p = blockIdx.x, t = p / k, r = pick_pos[p];
  const u32* src = x + (size_t)t * row_words;
  u32* dst = out + (size_t)r * row_words;
  for (int i = threadIdx.x; i < row_words; i += blockDim.x) dst[i] = src[i];
  if (xs != nullptr && threadIdx.x == 0) out_s[r] = xs[t];
}

extern "C" __global__ void __launch_bounds__(256)
moe_combine(float* __restrict__ h, const float* __restrict__ y, const int* __restrict__ pick_e, const float* __restrict__ pick_w,
            const int* __restrict__ pick_pos, int k, int d) {
  const int t = blockIdx.x;
  int order[MAX_EXPERTS];
  for (int j = 0; j < k; ++j) order[j] = j;
  for (int i = 1; i < k; ++i)  // insertion sort of the picks by expert (k is small)
    for (int j = i; j > 0 && pick_e[t * k + order[j]] < pick_e[t * k + order[j - 1]]; --j) {
      const int s = order[j];
      order[j] = order[j - 1];
      order[j - 1] = s;
    }
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    float acc = 0.f;
    for (int j = 0; j < k; ++j) {
      const int p = t * k + order[j];
      acc += pick_w[p] * y[(size_t)pick_pos[p] * d + i];
    }
    h[(size_t)t * d + i] += acc;
  }
}

extern "C" __global__ void __launch_bounds__(256)
moe_pointers(const unsigned long long* __restrict__ weights, const int* __restrict__ pick_e, int count, int by_pick,
             unsigned long long x, unsigned long long x_stride, unsigned long long y, unsigned long long y_stride, unsigned long long* __restrict__ a,
             unsigned long long* __restrict__ b, unsigned long long* __restrict__ c) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
    a[i] = weights[by_pick ? pick_e[i] : i];
    b[i] = x + (unsigned long long)i * x_stride;
    c[i] = y + (unsigned long long)i * y_stride;
  }
}

extern "C" __global__ void __launch_bounds__(256)
moe_router(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ logits, int d, int E) {
  const int t = blockIdx.x, e = blockIdx.y * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (e >= E) return;
  const float* xr = x + (size_t)t * d;
  const float* wr = w + (size_t)e * d;
  float acc = 0.f;
  for (int i = lane; i < d; i += 32) acc = fmaf(xr[i], wr[i], acc);
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) logits[(size_t)t * E + e] = acc;
}
