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
// RMSNorm: y = (x ⊙ w) · inv, inv = 1 / sqrt(Σ x² / dim + eps), with Σ x² formed as 1024 threads form it:
// thread t (t < 1024) runs one chain over the float4 i = t + 1024·j, j ascending, each float4 added as
// fmaf(x, x, fmaf(y, y, fmaf(z, z, fmaf(w, w, s)))); the 32 lanes of a warp summed by an xor butterfly;
// the 32 warps' sums added in warp order. A block of 1024 / U threads plays U of those threads each
// (its thread t plays t + (1024 / U)·u), so a block of any such size gets the same float. max |x ⊙ w| is
// exact in any order. Rows up to 4 · 1024 · ROW_VEC values, a multiple of 4.
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
__device__ __forceinline__ char4 quant4(float4 y, float a) { return make_char4(quant1(y.x, a), quant1(y.y, a), quant1(y.z, a), quant1(y.w, a)); }

// One float4 added to a thread's chain of Σ x² in RMSNorm's order (below): fmaf(x, x, fmaf(y, y, fmaf(z, z, fmaf(w, w, s)))).
__device__ __forceinline__ float sumsq4(float4 a, float s) { return fmaf(a.x, a.x, fmaf(a.y, a.y, fmaf(a.z, a.z, fmaf(a.w, a.w, s)))); }

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
    q[form == 1 ? (i4 & ~15) | ((i4 >> 1) & 1) << 3 | (i4 & 1) << 2 | ((i4 >> 2) & 3) : i4] = quant4(y, a);
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

// RMSNorm's statistics of a row of n4 float4 (load(i): float4 i of x; w4: the weights), by a block of
// 1024 / U threads (the order above): { Σ x², max |x ⊙ w| }, in every thread. visit(j, v) sees v = x ⊙ w of
// float4 i = threadIdx.x + 1024·j (the values rmsnorm_to keeps in registers; U = 1 only).
template <int U, class Load, class Visit>
__device__ __forceinline__ float2 rms_stats(Load load, const float4* __restrict__ w4, int n4, Visit visit) {
  constexpr int B = 1024 / U;
  float ss[U], mx = 0.f;
#pragma unroll
  for (int u = 0; u < U; ++u) {
    ss[u] = 0.f;
#pragma unroll
    for (int j = 0; j < ROW_VEC; ++j) {
      const int i = threadIdx.x + B * u + 1024 * j;
      if (i < n4) {
        const float4 a = load(i);
        ss[u] = sumsq4(a, ss[u]);
        const float4 v = mul4(a, w4[i]);
        if (U == 1) visit(j, v);
        mx = fmaxf(mx, absmax4(v));
      }
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
    for (int u = 0; u < U; ++u) ss[u] += __shfl_xor_sync(0xffffffffu, ss[u], o);
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  }
  __shared__ float sums[32], maxes[B / 32];
  __syncthreads();  // the arrays may still be read by a previous call
  if ((threadIdx.x & 31) == 0) {
#pragma unroll
    for (int u = 0; u < U; ++u) sums[(threadIdx.x >> 5) + (B / 32) * u] = ss[u];
    maxes[threadIdx.x >> 5] = mx;
  }
  __syncthreads();
  float s = sums[0], m = maxes[0];
  for (int w = 1; w < 32; ++w) s += sums[w];
  for (int w = 1; w < B / 32; ++w) m = fmaxf(m, maxes[w]);
  return make_float2(s, m);
}

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
