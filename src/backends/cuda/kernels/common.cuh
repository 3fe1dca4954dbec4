// Shared device helpers for intscale's kernels (inlined into each .cu by the loader).
//
// int4 fragment trick used by every W4 kernel: a 32-bit word holds 8 two's-complement nibbles.
//   hi16(w) = w & 0xF0F0F0F0        -> 4 bytes, each the int8 16*q of a high nibble (exact)
//   lo16(w) = (w << 4) & 0xF0F0F0F0 -> 4 bytes, each 16*q of a low nibble (exact)
// so one or two logic ops give tensor-core-ready int8 operands equal to 16*q; the factor 16
// (a power of two) is removed exactly in the epilogue.
#pragma once
typedef unsigned int u32;

__device__ __forceinline__ u32 lo16(u32 w) { return (w << 4) & 0xF0F0F0F0u; }
__device__ __forceinline__ u32 hi16(u32 w) { return w & 0xF0F0F0F0u; }

// D = A(16x32 s8, row) * B(32x8 s8, col) + C (s32), accumulating in place.
__device__ __forceinline__ void mma_s8(int (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// 16-byte streaming load that does not pollute L1 (weights are read exactly once).
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}

// 16-byte coherent load, for data an earlier kernel on the stream wrote (activations): unlike __ldg's
// non-coherent path it stays correct when this kernel started before that one finished (pdl_wait).
__device__ __forceinline__ uint4 ld_coherent(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p) : "memory");
  return r;
}

// act_quant's int8 codes of four values at a row's scale a (src/quant/activation-quant.ts): clamp(rint(v / a), −127,
// 127) with the division in float64; a = 0 (a row of zeros) gives zeros. act-quant.cu and the bench's dependent ring.
__device__ __forceinline__ char4 act_quant4(float4 v, float a) {
  if (a == 0.f) return make_char4(0, 0, 0, 0);
  const double ad = (double)a;
  const auto q = [&](float x) { return (signed char)max(-127, min(127, __double2int_rn((double)x / ad))); };
  return make_char4(q(v.x), q(v.y), q(v.z), q(v.w));
}

// The rows this block writes in its kernel's tail (every block calls it once, after its stores; the same in all
// its threads): the last T = min(rows, blocks) blocks of the grid to get here are tail blocks j = 0 .. T−1 (the
// very last one j = 0) and take rows j, j + T, j + 2T, ... < rows, each once every block has arrived; the
// others get none (first = rows). arrivals[0] counts the blocks in, arrivals[1] the tail blocks out; both are
// zero between launches (the last tail block out sets them back). A tail block may then read what every block
// stored, through loads that bypass L1 (__ldcg: its L1 may hold lines read before the others wrote them).
// The waiting tail blocks hold at most T blocks' places while the rest of the grid finishes (and the next
// kernel, launched early, takes no place before every block of this one has started).
struct TailRows {
  int first, step;
};
__device__ __forceinline__ TailRows tail_rows(unsigned* arrivals, int rows) {
  __shared__ int tail_index;
  const unsigned n = gridDim.x * gridDim.y * gridDim.z, T = min((unsigned)rows, n);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned t = atomicAdd(arrivals, 1u);
    tail_index = t + T >= n ? (int)(n - 1 - t) : rows;
    if (tail_index < rows) {
      while (atomicAdd(arrivals, 0u) < n) asm volatile("nanosleep.u32 64;\n");
      if (atomicAdd(arrivals + 1, 1u) == T - 1) arrivals[0] = arrivals[1] = 0;
    }
  }
  __syncthreads();
  if (tail_index < rows) __threadfence();
  return {tail_index, (int)T};
}

// Programmatic dependent launch (sm_90+; both are no-ops for a launch that did not ask for it, and
// compile to nothing before sm_90). pdl_launch_dependents: the next kernel on the stream may start
// launching (its blocks take SMs as ours leave). pdl_wait: wait until the kernels before this one
// have completed and their writes are visible; nothing they write may be read, nor anything they
// read be written, before it.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ u32 smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(u32 dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }

// Pipeline prologue: load(s, s) puts chunk s into stage s for each s < N that is < chunks, one commit
// group per stage (empty past the last chunk, so that wait_group counts stay the same).
template <int N, class Load> __device__ __forceinline__ void cp_async_prologue(int chunks, Load load) {
#pragma unroll
  for (int s = 0; s < N; ++s) {
    if (s < chunks) load(s, s);
    cp_async_commit();
  }
}

// One group's contribution to a per-output total. Integer scale: T += (acc >> SHIFT) * S (SHIFT = 4
// removes the 16 of 16*q per group, 0 keeps it or has none); float scale: t = fma(float(acc), s, t).
template <int SHIFT> __device__ __forceinline__ void add_group(int& t, int acc, int s) { t += (acc >> SHIFT) * s; }
template <int SHIFT> __device__ __forceinline__ void add_group(float& t, int acc, float s) { t = __fmaf_rn(__int2float_rn(acc), s, t); }

// A scale's 32 raw bits (read from shared memory as u32) as the total's type.
template <typename T> __device__ __forceinline__ T bits_as(u32 b);
template <> __device__ __forceinline__ int bits_as<int>(u32 b) { return (int)b; }
template <> __device__ __forceinline__ float bits_as<float>(u32 b) { return __uint_as_float(b); }

// Per-output epilogue, a = the token's activation scale. Integer total T: y = fround(fround(float(T))*a) * post
// (post = 2^-b, or 2^-(b+4) without the shift); float total t: y = a*t (post unused).
__device__ __forceinline__ float out_scale(int t, float a, float post) { return __fmul_rn(__fmul_rn(__int2float_rn(t), a), post); }
__device__ __forceinline__ float out_scale(float t, float a, float) { return __fmul_rn(a, t); }

// SwiGLU of one output: silu(g)·u = g / (1 + e^(−g)) · u in float32, each operation rounded on its own
// (no contraction into a fused multiply-add), so the engine's silu_mul_rows (engine-ops.cu) and the
// decode GEMM's SwiGLU epilogue (w4a8-decode.cu) give the same float from the same g, u.
__device__ __forceinline__ float silu_mul1(float g, float u) { return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.f, expf(-g))), u); }

// Output element type out_t: OUT_F16 = 1 writes IEEE half, the f32 result rounded to nearest even
// (cvt.rn.f16.f32: the one conversion a caller that wants fp16 would do anyway), else f32.
#ifndef OUT_F16
#define OUT_F16 0
#endif
#if OUT_F16
typedef unsigned short out_t;
__device__ __forceinline__ out_t to_out(float v) {
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;\n" : "=h"(h) : "f"(v));
  return h;
}
#else
typedef float out_t;
__device__ __forceinline__ out_t to_out(float v) { return v; }
#endif

// y[m][n], y[m][n+1] (row-major, N columns) = v0, v1 as out_t: one 8-byte (f32) or 4-byte (f16) store
// when both are in range and N is even (so the pair is aligned), else each in-range element alone.
__device__ __forceinline__ void store_pair(out_t* y, int m, int n, int N, float v0, float v1) {
  out_t* dst = y + (size_t)m * N + n;
  if (n + 1 < N && ((N & 1) == 0)) {
#if OUT_F16
    *reinterpret_cast<u32*>(dst) = (u32)to_out(v0) | ((u32)to_out(v1) << 16);
#else
    *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
#endif
  } else {
    if (n < N) dst[0] = to_out(v0);
    if (n + 1 < N) dst[1] = to_out(v1);
  }
}
