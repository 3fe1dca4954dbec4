// Shared-memory mbarriers and Hopper TMA (cp.async.bulk.tensor) loads and stores, CTA scope (sm_90).
//   A barrier is 8 bytes of shared memory; phase u of it completes when `count` arrivals (and, with
//   expect_tx, that many transaction bytes) have landed; waiters pass parity u & 1.
//   TmaMap is the driver's 128-byte CUtensorMap (tensor-map.ts), a `const __grid_constant__` kernel parameter
//   whose address the copies take.
#pragma once

struct __align__(64) TmaMap { unsigned long long raw[16]; };

__device__ __forceinline__ void mbar_init(u32 bar, int count) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory"); }
__device__ __forceinline__ void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
__device__ __forceinline__ void mbar_arrive(u32 bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory"); }
// arrives on bar once every cp.async this thread issued before has landed
__device__ __forceinline__ void mbar_arrive_cp_async(u32 bar) { asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory"); }
// arrives and adds `bytes` to the transaction count the phase waits for (the TMA copies complete it)
__device__ __forceinline__ void mbar_arrive_expect_tx(u32 bar, u32 bytes) { asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory"); }
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
  asm volatile(
      "{\n.reg .pred p;\nWAIT:\nmbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra WAIT;\n}\n" ::"r"(bar), "r"(parity)
      : "memory");
}

// The box of `map` at coordinates (x, y[, z]) (innermost first) into shared dst; completes its bytes on bar.
__device__ __forceinline__ void tma_load_2d(u32 dst, const TmaMap* map, int x, int y, u32 bar) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
               ::"r"(dst), "l"(map), "r"(x), "r"(y), "r"(bar) : "memory");
}
__device__ __forceinline__ void tma_load_3d(u32 dst, const TmaMap* map, int x, int y, int z, u32 bar) {
  asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
               ::"r"(dst), "l"(map), "r"(x), "r"(y), "r"(z), "r"(bar) : "memory");
}

// The box of `map` at (x, y) from shared src, as one bulk group; returns once src has been read
// (the global writes finish on their own). The caller fences its shared writes first (fence_proxy_async).
__device__ __forceinline__ void tma_store_2d(const TmaMap* map, int x, int y, u32 src) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(map), "r"(x), "r"(y), "r"(src) : "memory");
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}
