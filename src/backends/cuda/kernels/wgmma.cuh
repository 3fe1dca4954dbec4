// Hopper warpgroup-MMA (sm_90a) helpers shared by the wgmma kernels (w4a8_wgmma[_rs].cu, w8a8-wgmma.cu):
// SW128 descriptors, wgmma fences / commit / wait, the m64n128k32 s8 instruction (A from shared memory
// or registers) and one 128-k chunk of it, shared-memory vector loads and stores, the A-operand (activation rows) cp.async copies, and
// the group and output epilogues of the m64n128 accumulator fragment. Include after common.cuh.
#pragma once

// K-major operand, 128-byte swizzle: start address, LBO = 16 B (unused), SBO = 1024 B (8 rows).
__device__ __forceinline__ unsigned long long desc_sw128(u32 addr) {
  return (unsigned long long)((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(N) : "memory"); }
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
template <int R> __device__ __forceinline__ void fence_regs(int (&d)[R]) {
#pragma unroll
  for (int i = 0; i < R; ++i) asm volatile("" : "+r"(d[i])::"memory");
}

// A thread's R wgmma accumulators (64 for an m64n128 fragment, N/2 for m64nN) and its R per-output totals, zeroed.
template <typename T, int R> __device__ __forceinline__ void zero_acc_tot(int (&acc)[R], T (&tot)[R]) {
#pragma unroll
  for (int i = 0; i < R; ++i) {
    acc[i] = 0;
    tot[i] = 0;
  }
}

// The m64n128 s32 accumulator fragment as 64 read-write asm operands %0..%63, and its register list.
#define WGMMA_D64_REGS                                                                                  \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                            \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "                   \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "                   \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define WGMMA_D64_OPERANDS(d)                                                                           \
  "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),       \
  "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), \
  "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), \
  "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), \
  "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), \
  "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), \
  "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), \
  "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])

// D (64x128 s32) = A (64x32 s8, shared, desc da) * B (32x128 s8, shared, desc db) (+ D if scale_d)
__device__ __forceinline__ void wgmma_m64n128k32_s8(int (&d)[64], unsigned long long da, unsigned long long db, int scale_d) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 " WGMMA_D64_REGS ", %64, %65, p;\n}\n"
               : WGMMA_D64_OPERANDS(d)
               : "l"(da), "l"(db), "r"(scale_d));
}

// D (64x128 s32) = A (64x32 s8, registers a0..a3 in the mma.m16n8k32 A layout per warp)
//                * B (32x128 s8, shared, desc db) (+ D if scale_d)
__device__ __forceinline__ void wgmma_m64n128k32_s8_rs(int (&d)[64], u32 a0, u32 a1, u32 a2, u32 a3, unsigned long long db, int scale_d) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 " WGMMA_D64_REGS ", {%64, %65, %66, %67}, %68, p;\n}\n"
               : WGMMA_D64_OPERANDS(d)
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(scale_d));
}

// The m64n64 and m64n32 fragments (32 and 16 s32 accumulators a thread) for the narrower token tiles of the TMA kernel.
#define WGMMA_D16_REGS "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}"
#define WGMMA_D16_OPERANDS(d, o)                                                                                   \
  "+r"(d[o + 0]), "+r"(d[o + 1]), "+r"(d[o + 2]), "+r"(d[o + 3]), "+r"(d[o + 4]), "+r"(d[o + 5]), "+r"(d[o + 6]), \
  "+r"(d[o + 7]), "+r"(d[o + 8]), "+r"(d[o + 9]), "+r"(d[o + 10]), "+r"(d[o + 11]), "+r"(d[o + 12]),             \
  "+r"(d[o + 13]), "+r"(d[o + 14]), "+r"(d[o + 15])
#define WGMMA_D32_REGS                                                                \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "          \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"

// wgmma_m64n128k32_s8_rs for a B of BN = 2·R token columns (R = 64, 32 or 16 accumulators a thread).
template <int R> __device__ __forceinline__ void wgmma_m64k32_s8_rs(int (&d)[R], u32 a0, u32 a1, u32 a2, u32 a3, unsigned long long db, int scale_d) {
  static_assert(R == 64 || R == 32 || R == 16, "m64n128, m64n64 or m64n32");
  if constexpr (R == 64) {
    wgmma_m64n128k32_s8_rs(d, a0, a1, a2, a3, db, scale_d);
  } else if constexpr (R == 32) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 " WGMMA_D32_REGS ", {%32, %33, %34, %35}, %36, p;\n}\n"
                 : WGMMA_D16_OPERANDS(d, 0), WGMMA_D16_OPERANDS(d, 16)
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(scale_d));
  } else {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n32k32.s32.s8.s8 " WGMMA_D16_REGS ", {%16, %17, %18, %19}, %20, p;\n}\n"
                 : WGMMA_D16_OPERANDS(d, 0)
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(scale_d));
  }
}

// One 128-k chunk: A [64 rows][128 B] at a_addr, B [128 rows][128 B] at b_addr (both SW128 K-major),
// 4 k32 steps with the descriptors advanced 32 B inside the swizzle atom; the first has scale-d = 0,
// so the chunk's accumulator starts fresh. Fenced and committed as one group.
__device__ __forceinline__ void wgmma_chunk128(int (&acc)[64], u32 a_addr, u32 b_addr) {
  wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) wgmma_m64n128k32_s8(acc, desc_sw128(a_addr + ks * 32), desc_sw128(b_addr + ks * 32), ks);
  wgmma_commit();
}

__device__ __forceinline__ uint4 lds128(u32 a) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
  return v;
}
__device__ __forceinline__ u32 lds32(u32 a) {
  u32 v;
  asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(a));
  return v;
}
__device__ __forceinline__ uint2 lds64(u32 a) {
  uint2 v;
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "r"(a));
  return v;
}
// The register A operand of one 128-k chunk of int4 weights (4 wgmma k-steps of 32): the lane's
// 16-byte units w01 (64-k step 0: words x,y = k-step 0, z,w = k-step 1) and w23 (step 1), as 16*q
// bytes (lo16/hi16) in the m64k32 A fragment order; each register is pinned by an empty asm so it is
// built before the wgmma fence.
__device__ __forceinline__ void w4_a_fragments(u32 (&a)[4][4], const uint4& w01, const uint4& w23) {
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {
    const uint4 w = (ks >> 1) ? w23 : w01;
    const u32 w0 = (ks & 1) ? w.z : w.x, w8 = (ks & 1) ? w.w : w.y;
    a[ks][0] = lo16(w0);
    a[ks][1] = lo16(w8);
    a[ks][2] = hi16(w0);
    a[ks][3] = hi16(w8);
#pragma unroll
    for (int r = 0; r < 4; ++r) asm volatile("" : "+r"(a[ks][r])::"memory");
  }
}

// One output element (out_t: f32 or f16 bits) into shared memory.
__device__ __forceinline__ void sts_out(u32 a, float v) { asm volatile("st.shared.f32 [%0], %1;\n" ::"r"(a), "f"(v) : "memory"); }
__device__ __forceinline__ void sts_out(u32 a, unsigned short v) { asm volatile("st.shared.u16 [%0], %1;\n" ::"r"(a), "h"(v) : "memory"); }
__device__ __forceinline__ void sts128(u32 a, u32 x, u32 y, u32 z, u32 w) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(a), "r"(x), "r"(y), "r"(z), "r"(w) : "memory");
}

// A operand (activation rows, K bytes each): a thread copies IT 16-B pieces of one column, rows
// row0 + it*RSTEP. Set up once: byte offsets of the rows (clamped to M-1) and a bit mask of the rows < M.
template <int IT, int RSTEP>
__device__ __forceinline__ void a_rows_init(int (&aoff)[IT], u32& avalid, int row0, int M, int K) {
  avalid = 0;
#pragma unroll
  for (int it = 0; it < IT; ++it) {
    const int row = row0 + it * RSTEP;
    aoff[it] = (row < M ? row : M - 1) * K;
    avalid |= (row < M ? 1u : 0u) << it;
  }
}
// ... then per chunk: cp.async into dst + it*RSTEP*128 (rows >= M zero-filled: src-size 0).
template <int IT, int RSTEP>
__device__ __forceinline__ void a_rows_load(u32 dst, const signed char* src, const int (&aoff)[IT], u32 avalid) {
#pragma unroll
  for (int it = 0; it < IT; ++it) cp_async16(dst + it * RSTEP * 128, src + aoff[it], (avalid >> it) & 1 ? 16 : 0);
}

// Group epilogue of one chunk: tot += acc scaled per column (add_group). The chunk's scales are in
// shared memory, 4 bytes per weight row; scs = this thread's first pair (rows 2tig, 2tig+1): column
// 8j + 2tig + (e&1) of the fragment d[4j+e] reads scs + 32j + 4(e&1).
template <int SHIFT, typename T>
__device__ __forceinline__ void wgmma_group_epilogue(int (&acc)[64], T (&tot)[64], u32 scs) {
  fence_regs(acc);
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const uint2 sv = lds64(scs + j * 32);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const u32 sb = (e & 1) ? sv.y : sv.x;
      add_group<SHIFT>(tot[4 * j + e], acc[4 * j + e], bits_as<T>(sb));
    }
  }
}

// Output epilogue of a block's BM x 128 tile at (m0, n0), one m64n128 fragment per warpgroup: thread
// (warpgroup wg, warp w, lane gid/tig) holds d[4j+e] = (row m0 + 64wg + 16w + gid + 8(e>>1), column
// n0 + 8j + 2tig + (e&1)); y = out_t(out_scale(tot, a[row], post)), rows >= M skipped, columns >= N dropped.
template <typename T>
__device__ __forceinline__ void wgmma_store_y(const T (&tot)[64], out_t* y, const float* ascale, int m0, int n0, int M, int N, float post) {
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, gid = lane >> 2, tig = lane & 3;
  const int m = m0 + wg * 64 + warp * 16 + gid, n = n0 + 2 * tig;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int mh = m + 8 * h;
    if (mh >= M) continue;
    const float a = ascale[mh];
#pragma unroll
    for (int j = 0; j < 16; ++j) store_pair(y, mh, n + 8 * j, N, out_scale(tot[4 * j + 2 * h], a, post), out_scale(tot[4 * j + 2 * h + 1], a, post));
  }
}

// Store of the "swap AB" kernels (weights as the wgmma A operand, tokens as B; R = 64 for 128 tokens): this warp's
// accumulator fragment tot[4j+2h+e] is (weight row n0 + gid + 8h, token m0 + 8j + 2tig + e);
// y[m][n] = out_t(out_scale(tot, a[m], post)) for m < M, n < N (row-major y, N columns).
template <typename T, int R>
__device__ __forceinline__ void wgmma_store_y_swapped(const T (&tot)[R], out_t* y, const float* ascale, int m0, int n0, int M, int N, float post) {
  const int lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int n = n0 + gid + 8 * h;
    if (n >= N) continue;
#pragma unroll
    for (int j = 0; j < R / 4; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int m = m0 + 8 * j + 2 * tig + e;
        if (m >= M) continue;
        y[(size_t)m * N + n] = to_out(out_scale(tot[4 * j + 2 * h + e], __ldg(ascale + m), post));
      }
    }
  }
}
