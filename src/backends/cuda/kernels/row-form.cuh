// A row written in the form the next linear reads, and RMSNorm of a row: shared by the engine's small ops
// (engine-ops.cu: rmsnorm_to, quantize_rows, ...) and the W4A8 decode GEMMs whose last blocks write the next
// linear's row (w4a8-decode.cu: w4a8_decode_norm normalizes the residual it has just added to,
// w4a8_decode_swiglu quantizes SwiGLU's row), so both write the same bytes.
// Include after common.cuh.
//
// FORM of a row: 0 int8 per token + scale a[r] = max|y| / 127, q = clamp(rint(y / a), −127, 127) (act-quant.cu's
// definition, in float32); 1 the same int8 in FRAGMENT ORDER (w4a8_wgmma_rs/tma; act-quant.cu's
// permutation); 2 binary16; 3 float32.
//
// RMSNorm: y = (x ⊙ w) · inv, inv = 1 / sqrt(Σ x² / dim + eps), with Σ x² in one order whatever forms it:
// the row's values in groups of NORM_GROUP = 16 consecutive (float4s 4g .. 4g+3; the last group may be short),
// each group's sum one fmaf chain from 0 in ascending order (norm_group_sum), and the P = ⌈dim / 16⌉ group sums
// added as one warp adds them (norm_sum_groups: lane l runs through groups l, l + 32, … ascending, then an xor
// butterfly). rmsnorm_to and the norm tail (rms_stats, blocks of any size) form it so; the decode GEMMs that add
// into the residual can leave the group sums of their 16-row tiles (w4a8_decode_stats) and the GEMM that reads
// the norm adds them so (norm_rows_to_shared): the same float, so the same bytes. max |x ⊙ w| is exact in any
// order. Rows up to 4 · 1024 · ROW_VEC values, a multiple of 4.
#pragma once

#define ROW_VEC 8

typedef unsigned short half_t;
__device__ __forceinline__ half_t f2h(float v) {
  half_t h;
  asm("cvt.rn.f16.f32 %0, %1;\n" : "=h"(h) : "f"(v));
  return h;
}
__device__ __forceinline__ float h2f(half_t h) {
  float v;
  asm("cvt.f32.f16 %0, %1;\n" : "=f"(v) : "h"(h));
  return v;
}

__device__ __forceinline__ signed char quant1(float v, float a) {
  return a == 0.f ? 0 : (signed char)max(-127, min(127, __float2int_rn(v / a)));
}

// Writes values i = 4·i4 .. 4·i4+3 of row r (length K) in FORM; `a` is the row's int8 scale (thread 0
// stores it once per row: scales[r]).
__device__ __forceinline__ void store4(void* out, int r, int K, int form, int i4, float4 y, float a) {
  if (form == 3) {
    reinterpret_cast<float4*>(reinterpret_cast<float*>(out) + (size_t)r * K)[i4] = y;
  } else if (form == 2) {
    const u32 lo = (u32)f2h(y.x) | (u32)f2h(y.y) << 16, hi = (u32)f2h(y.z) | (u32)f2h(y.w) << 16;
    reinterpret_cast<uint2*>(reinterpret_cast<half_t*>(out) + (size_t)r * K)[i4] = make_uint2(lo, hi);
  } else {
    char4* q = reinterpret_cast<char4*>(reinterpret_cast<signed char*>(out) + (size_t)r * K);
    q[form == 1 ? (i4 & ~15) | ((i4 >> 1) & 1) << 3 | (i4 & 1) << 2 | ((i4 >> 2) & 3) : i4] =
        make_char4(quant1(y.x, a), quant1(y.y, a), quant1(y.z, a), quant1(y.w, a));
  }
}

// Block-wide max (every thread gets the result); blockDim.x a multiple of 32, at most 1024.
__device__ __forceinline__ float block_max(float v) {
  __shared__ float red[32];
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();  // red may still be read by a previous call
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  v = red[0];
  for (int w = 1; w < (int)(blockDim.x >> 5); ++w) v = fmaxf(v, red[w]);
  return v;
}
__device__ __forceinline__ float4 mul4(float4 a, float4 b) { return make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w); }
__device__ __forceinline__ float4 scale4(float4 a, float s) { return make_float4(a.x * s, a.y * s, a.z * s, a.w * s); }
__device__ __forceinline__ float absmax4(float4 a) { return fmaxf(fmaxf(fabsf(a.x), fabsf(a.y)), fmaxf(fabsf(a.z), fabsf(a.w))); }

#define NORM_GROUP 16
// Σ x² of a group of 16 values (4 float4, in order): one fmaf chain from 0, ascending.
__device__ __forceinline__ float norm_group_sum(const float4 (&a)[4]) {
  float s = 0.f;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    s = fmaf(a[q].x, a[q].x, s);
    s = fmaf(a[q].y, a[q].y, s);
    s = fmaf(a[q].z, a[q].z, s);
    s = fmaf(a[q].w, a[q].w, s);
  }
  return s;
}

// The sum of P group sums (at(j): the j-th) in RMSNorm's order, by one warp: every lane gets it (the butterfly
// adds the same two operands in every lane).
template <class At> __device__ __forceinline__ float norm_sum_groups(At at, int P, int lane) {
  float s = 0.f;
#pragma unroll 8
  for (int j = lane; j < P; j += 32) s += at(j);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

// RMSNorm's statistics of a row of n4 float4 (load(i): float4 i of x; w4: the weights), by a block of
// 1024 / U threads (the order above; thread t takes groups t + (1024 / U)·j): { Σ x², max |x ⊙ w| }, in every
// thread. visit(j, v) sees v = x ⊙ w of float4 rms_float4(j) (the values rmsnorm_to keeps in registers; U = 1 only).
template <int U, class Load, class Visit>
__device__ __forceinline__ float2 rms_stats(Load load, const float4* __restrict__ w4, int n4, Visit visit) {
  constexpr int B = 1024 / U, GV = ROW_VEC / 4;
  __shared__ float sums[1024 * GV], maxes[B / 32], total;
  const int G = (n4 + 3) >> 2;
  float mx = 0.f;
  __syncthreads();  // the arrays may still be read by a previous call
#pragma unroll
  for (int j = 0; j < GV * U; ++j) {
    const int g = threadIdx.x + B * j;
    if (g < G) {
      float4 a[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) a[q] = 4 * g + q < n4 ? load(4 * g + q) : make_float4(0.f, 0.f, 0.f, 0.f);
      sums[g] = norm_group_sum(a);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        if (4 * g + q < n4) {
          const float4 v = mul4(a[q], w4[4 * g + q]);
          if (U == 1) visit(4 * j + q, v);
          mx = fmaxf(mx, absmax4(v));
        }
      }
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if ((threadIdx.x & 31) == 0) maxes[threadIdx.x >> 5] = mx;
  __syncthreads();
  if (threadIdx.x < 32) {
    const float s = norm_sum_groups([&](int j) { return sums[j]; }, G, threadIdx.x);
    if (threadIdx.x == 0) total = s;
  }
  __syncthreads();
  float m = maxes[0];
  for (int w = 1; w < B / 32; ++w) m = fmaxf(m, maxes[w]);
  return make_float2(total, m);
}
// The float4 of the row that register j (< ROW_VEC) of thread threadIdx.x holds in rms_stats<1>.
__device__ __forceinline__ int rms_float4(int j) { return 4 * (threadIdx.x + 1024 * (j >> 2)) + (j & 3); }

// { inv, a } of a row from its statistics: the norm's factor and the int8 scale of the normalized row.
__device__ __forceinline__ float2 rms_factors(float2 stats, int dim, float eps) {
  const float inv = 1.f / sqrtf(stats.x / (float)dim + eps);
  return make_float2(inv, stats.y * inv / 127.f);
}

// RMSNorm of row r of x [·, dim] written in FORM to out (+ scales[r]) by a block of 1024 / U threads, x read
// twice through load(i) (float4 i of the row) instead of kept in registers: the tail of a kernel whose
// registers are spent elsewhere (w4a8_decode_norm). The same bytes as rmsnorm_to.
template <int U, class Load>
__device__ __forceinline__ void rmsnorm_row(Load load, const float* __restrict__ w, void* out, float* scales, int r, int dim, float eps, int form) {
  const float4* w4 = reinterpret_cast<const float4*>(w);
  const int n4 = dim >> 2;
  const float2 f = rms_factors(rms_stats<U>(load, w4, n4, [](int, float4) {}), dim, eps);
  if (threadIdx.x == 0 && form < 2) scales[r] = f.y;
  for (int i = threadIdx.x; i < n4; i += blockDim.x) store4(out, r, dim, form, i, scale4(mul4(load(i), w4[i]), f.x), f.y);
}

// Row r of y [·, K] (f32, read through load(i): float4 i of the row) quantized in FORM to out (+ scales[r])
// with a = max over amax[0 .. P) (read through max_at(j)) / 127, by one block: what quantize_rows writes
// for the row with its grid of blocks (engine-ops.cu), the tail of a kernel that produced the row.
template <class Load, class MaxAt>
__device__ __forceinline__ void quantize_row(Load load, MaxAt max_at, int P, void* out, float* scales, int r, int K, int form) {
  float mx = 0.f;
  for (int j = threadIdx.x; j < P; j += blockDim.x) mx = fmaxf(mx, max_at(j));
  const float a = block_max(mx) / 127.f;
  if (threadIdx.x == 0 && form < 2) scales[r] = a;
  for (int i = threadIdx.x; i < (K >> 2); i += blockDim.x) store4(out, r, K, form, i, load(i), a);
}

// Rows r < M of y [M, K] (f32) and their P partial maxima (amax [M, P]), both written by an earlier kernel, quantized
// by the whole block into its shared memory as quantize_rows writes them (FORM 0: xs [M][K] int8, a[r] = max / 127;
// quantize_row through generic pointers, so the same bytes and scales), then a barrier: the prologue of a GEMM that
// quantizes its own input rows (w4a8_decode_rows) instead of reading what a quantize_rows launch wrote.
__device__ __forceinline__ void quantize_rows_to_shared(const float* y, const float* amax, int P, int M, int K, signed char* xs, float* a) {
  for (int r = 0; r < M; ++r) {
    const float4* row = reinterpret_cast<const float4*>(y + (size_t)r * K);
    const float* maxima = amax + (size_t)r * P;
    quantize_row([&](int i) { return __ldcg(row + i); }, [&](int j) { return __ldcg(maxima + j); }, P, xs, a, r, K, 0);
  }
  __syncthreads();
}

// Rows r < M of the residual h [M, K] (f32) normalized and quantized (FORM 0) into the block's shared memory as
// rmsnorm_to writes them (xs [M][K] int8, a[r] its scale), from the statistics the GEMM that added into h left
// (stats [M][K / 16]: { Σ x², max |x ⊙ w| } of each group of 16, w4a8_decode_stats): warp r adds row r's group sums
// in RMSNorm's order (norm_sum_groups) and takes their maximum, then the block normalizes every row, NORM_IN_FLIGHT
// float4 a thread in flight at a time, then a barrier: the prologue of a GEMM that reads the norm itself (w4a8_decode_normed).
// K a multiple of 16; M at most 32. (Two float4 a thread: a 4096-value row on 512 threads in one round trip, and
// the decode kernel at WK 16 stays within the 64 registers of two blocks a SM.)
#define NORM_IN_FLIGHT 2
__device__ __forceinline__ void norm_rows_to_shared(const float* h, const float2* stats, const float* __restrict__ w, float eps, int M, int K,
                                                    signed char* xs, float* a) {
  __shared__ float inv[32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, P = K / NORM_GROUP, n4 = K >> 2;
  for (int r = warp; r < M; r += blockDim.x >> 5) {
    const float2* sr = stats + (size_t)r * P;
    float m = 0.f;
    const float s = norm_sum_groups([&](int j) {
      const float2 v = __ldcg(sr + j);
      m = fmaxf(m, v.y);
      return v.x;
    }, P, lane);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    const float2 f = rms_factors(make_float2(s, m), K, eps);
    if (lane == 0) {
      inv[r] = f.x;
      a[r] = f.y;
    }
  }
  __syncthreads();
  const float4* h4 = reinterpret_cast<const float4*>(h);
  const float4* w4 = reinterpret_cast<const float4*>(w);
  const int total = M * n4;
  for (int i0 = threadIdx.x; i0 < total; i0 += NORM_IN_FLIGHT * blockDim.x) {
    float4 v[NORM_IN_FLIGHT];
#pragma unroll
    for (int u = 0; u < NORM_IN_FLIGHT; ++u) {
      const int i = i0 + u * blockDim.x;
      if (i < total) v[u] = __ldcg(h4 + i);
    }
#pragma unroll
    for (int u = 0; u < NORM_IN_FLIGHT; ++u) {
      const int i = i0 + u * blockDim.x;
      if (i < total) {
        const int r = i / n4, c = i - r * n4;
        store4(xs, r, K, 0, c, scale4(mul4(v[u], w4[c]), inv[r]), a[r]);
      }
    }
  }
  __syncthreads();
}

// The quantize tail of a kernel that wrote rows [M, K] of y (f32) and P partial maxima a row (amax [M, P]):
// its last blocks (tail_rows, common.cuh; `arrivals` two counters) write the rows in FORM to out (+ scales),
// reading what every block stored through L2 (quantize_row).
__device__ __forceinline__ void quantize_rows_tail(const float* y, const float* amax, int P, int M, int K, void* out, float* scales, int form,
                                                   unsigned* arrivals) {
  const TailRows tail = tail_rows(arrivals, M);
  for (int r = tail.first; r < M; r += tail.step) {
    const float4* row = reinterpret_cast<const float4*>(y + (size_t)r * K);
    const float* maxima = amax + (size_t)r * P;
    quantize_row([&](int i) { return __ldcg(row + i); }, [&](int j) { return __ldcg(maxima + j); }, P, out, scales, r, K, form);
  }
}
