// A chain of W4A8 decode GEMMs in one launch (an experiment for a step-wide kernel, bench/cuda-decode-chain.ts):
// stage s computes y_s [M, N_s] = x_s · W_sᵀ exactly as one w4a8_decode launch of that stage would (the same
// decode_to_rows per 16·NTW-row tile, so the same bits), and stage s + 1 waits for every block to finish stage s,
// as a launch with programmatic dependent launch waits for the launch before it. What changes is the boundary: no
// launch, no block turnover, the grid stays resident; a block's first tile of a stage loads its first weight chunk
// before the wait (decode_pipeline's wait hook), as the PDL launch does before griddepcontrol.wait.
//
// Grid: persistent, at most as many blocks as fit on the device at once (the host sizes it: all must be resident, or
// the barrier never opens); block b takes tiles b, b + grid, … of each stage. The barrier is a counter the blocks
// add one to after each stage (after a fence, so their y stores are visible first); a block's first tile of stage s
// waits until it reads base + s·grid (acquire), `base` = the arrivals of this counter's earlier launches (host-kept,
// so the counter is never reset). In the experiment the x_s are fixed buffers, not the previous stage's output
// (that would need the quantization between, a second barrier): the barrier alone stands in for the dependency.
//
// Stages: ChainStage[S] in device memory. Defines as w4a8-decode.cu (MT, NTW, WK, GROUP, SCALE_INT, IS_SHIFT), and
// BARRIER (default 1): 0 leaves the barrier out, so a block goes on to its tiles of stage s + 1 as soon as it is done
// with stage s. With the fixed x_s the outputs are the same; what it measures is the chain's time without any
// drain between GEMMs, the most a step-wide kernel could gain from overlapping them.
#include "w4a8-decode.cu"
#ifndef BARRIER
#define BARRIER 1
#endif

struct ChainStage {
  const uint4* wq;
  const scale_t* sc;
  const signed char* xq;
  const float* ascale;
  out_t* y;
  int N, K;
  float post;
};

__device__ __forceinline__ unsigned ld_acquire_u32(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Thread 0 spins until the counter reaches `target`, then the block goes on.
__device__ __forceinline__ void chain_wait(const unsigned* counter, unsigned target) {
  if (!BARRIER) return;
  if (threadIdx.x == 0)
    while (ld_acquire_u32(counter) < target) asm volatile("nanosleep.u32 32;\n");
  __syncthreads();
}

extern "C" __global__ void __launch_bounds__(WK * 32, MINB)
w4a8_decode_chain(const ChainStage* __restrict__ stages, int S, int M, unsigned* counter, unsigned base) {
  for (int s = 0; s < S; ++s) {
    const ChainStage st = stages[s];
    const unsigned target = base + (unsigned)s * gridDim.x;
    const int blocks = (((st.N + 15) / 16) + NTW - 1) / NTW;
    bool waited = s == 0;
    for (int b = blockIdx.x; b < blocks; b += gridDim.x) {
      decode_to_rows(st.wq, st.sc, st.xq, st.ascale, st.y, M, st.N, st.K, st.post, b * NTW, [&] {
        if (!waited) chain_wait(counter, target);
        waited = true;
      });
      __syncthreads();  // the tile's reduction buffer is reused by the next tile
    }
    if (!waited) chain_wait(counter, target);
    if (!BARRIER) continue;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) atomicAdd(counter, 1u);
  }
}
