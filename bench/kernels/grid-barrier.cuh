// A grid-wide barrier for persistent kernels whose blocks are all resident (the host sizes the grid so; else the
// barrier never opens): a counter the blocks add one to after each stage (after a fence, so their stores are
// visible first), never reset; a block's next stage waits until it reads base + stages·gridDim.x (acquire),
// `base` = the arrivals of the counter's earlier launches (host-kept). Every block arrives at every stage, with or
// without work in it, and waits before the next, so no block's arrival for stage s + 1 can count for stage s.
#pragma once

__device__ __forceinline__ unsigned ld_acquire_u32(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ unsigned long long globaltimer_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// The leader (one thread of the threads that then pass a barrier together) spins until the counter reaches `target`
// (acquire); the caller's barrier then lets the others go on. A barrier still shut after SPIN_LIMIT_NS (default 10 s:
// a grid not all resident, a block that never arrives) traps, so the launch fails with an error instead of hanging.
#ifndef SPIN_LIMIT_NS
#define SPIN_LIMIT_NS 10000000000ull
#endif
__device__ __forceinline__ void spin_until(const unsigned* counter, unsigned target, bool leader) {
  if (!leader) return;
  const unsigned long long t0 = globaltimer_ns();
  while (ld_acquire_u32(counter) < target) {
    asm volatile("nanosleep.u32 32;\n");
    if (globaltimer_ns() - t0 > SPIN_LIMIT_NS) __trap();
  }
}

// The block's arrival after a stage: its stores made visible, then one count.
__device__ __forceinline__ void grid_arrive(unsigned* counter) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) atomicAdd(counter, 1u);
}

// The block waits until the counter reaches `target`.
__device__ __forceinline__ void grid_wait(const unsigned* counter, unsigned target) {
  spin_until(counter, target, threadIdx.x == 0);
  __syncthreads();
}
