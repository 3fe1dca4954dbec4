// Thread-block clusters (sm_90): the cluster's barrier, a block's rank in it, and 4- or 8-byte loads and 4-byte stores
// at the same shared-memory address of another block of the cluster (distributed shared memory: mapa, then
// ld/st.shared::cluster). A block's shared memory may be read or written by the others only between two cluster
// barriers, and each block must pass a last barrier before it exits. Used by sample_rows (sampling.cu) and the bench's
// persistent MLP (bench/kernels/persistent-mlp.cu).
#pragma once

// Every thread of every block of the cluster; orders shared and global memory at cluster scope.
__device__ __forceinline__ void cluster_barrier() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}

__device__ __forceinline__ unsigned cluster_ctarank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}

// The shared::cluster address of `p` (this block's shared memory) in block `rank`.
__device__ __forceinline__ unsigned dsmem_address(const void* p, unsigned rank) {
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"((unsigned)__cvta_generic_to_shared(p)), "r"(rank));
  return remote;
}

template <typename T>
__device__ __forceinline__ T dsmem_load(const T* p, unsigned rank) {
  static_assert(sizeof(T) == 8 || sizeof(T) == 4, "8- or 4-byte values");
  const unsigned remote = dsmem_address(p, rank);
  if constexpr (sizeof(T) == 8) {
    unsigned long long v;
    asm volatile("ld.shared::cluster.u64 %0, [%1];" : "=l"(v) : "r"(remote) : "memory");
    return *reinterpret_cast<T*>(&v);
  } else {
    unsigned v;
    asm volatile("ld.shared::cluster.u32 %0, [%1];" : "=r"(v) : "r"(remote) : "memory");
    return *reinterpret_cast<T*>(&v);
  }
}

// A 4-byte store to `p`'s address in block `rank`; ordered for the other blocks by the next cluster barrier (no memory
// clobber, so loads of global memory around it may be scheduled early).
__device__ __forceinline__ void dsmem_store_u32(void* p, unsigned rank, unsigned v) {
  asm volatile("st.shared::cluster.u32 [%0], %1;" ::"r"(dsmem_address(p, rank)), "r"(v));
}
