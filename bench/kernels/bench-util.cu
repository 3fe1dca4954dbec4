// Helpers for tests and benchmarks: device-side random fills (no host upload of large buffers),
// a spin kernel that holds the stream while the host enqueues the timed launches, and a late writer
// for the tests of launches that overlap the kernel before them.
// Random values come from a 32-bit integer hash of (seed, index) - deterministic, never all zero.
#include "common.cuh"

__device__ __forceinline__ unsigned int hash_u32(unsigned int x) {
  x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
  return x;
}

// Random 32-bit words: every byte pattern is a valid int4 pair / int8 value.
extern "C" __global__ void fill_u32(unsigned int* p, unsigned long long n, unsigned int seed) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x)
    p[i] = hash_u32((unsigned int)i * 2654435761U ^ seed);
}

// Random int8 activations in [-127, 127] (4 per word).
extern "C" __global__ void fill_i8(unsigned int* p, unsigned long long n, unsigned int seed) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x) {
    unsigned int h = hash_u32((unsigned int)i * 2654435761U ^ seed), w = 0;
    for (int b = 0; b < 4; ++b) w |= ((unsigned int)((int)((h >> (8 * b)) & 0xFF) % 255 - 127) & 0xFFu) << (8 * b);
    p[i] = w;
  }
}

// Random fp16 values uniform in [-1, 1).
extern "C" __global__ void fill_f16(unsigned short* p, unsigned long long n, unsigned int seed) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x) {
    float f = (float)(hash_u32((unsigned int)i * 2654435761U ^ seed) >> 8) * (2.0f / 16777216.0f) - 1.0f;
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    p[i] = h;
  }
}

// Random int32 in [lo, hi].
extern "C" __global__ void fill_i32(int* p, unsigned long long n, unsigned int seed, int lo, int hi) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x)
    p[i] = lo + (int)(hash_u32((unsigned int)i * 2654435761U ^ seed) % (unsigned int)(hi - lo + 1));
}

// Random f32 in [lo, hi).
extern "C" __global__ void fill_f32(float* p, unsigned long long n, unsigned int seed, float lo, float hi) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x)
    p[i] = lo + (hi - lo) * (float)(hash_u32((unsigned int)i * 2654435761U ^ seed) >> 8) * (1.0f / 16777216.0f);
}

// Busy-waits `ns` nanoseconds of GPU time (globaltimer).
__device__ __forceinline__ void spin_for(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}

// Holds the stream for `ns` nanoseconds of GPU time.
extern "C" __global__ void spin(unsigned long long ns) { spin_for(ns); }

// Test support for programmatic dependent launch (common.cuh): lets the next kernel launch at once,
// busy-waits `ns` nanoseconds, then copies n 32-bit words src -> dst (grid-stride). A kernel launched
// to overlap it that read dst before its pdl_wait would see dst's old contents.
extern "C" __global__ void delayed_copy_u32(unsigned int* dst, const unsigned int* src, unsigned long long n, unsigned long long ns) {
  pdl_launch_dependents();
  spin_for(ns);
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x) dst[i] = src[i];
}

// Does nothing: its event-timed duration is the launch floor of any kernel timed the same way.
extern "C" __global__ void empty() {}

// The read floor of a streaming kernel: block b reads bytes [b·U·16·blockDim, (b+1)·U·16·blockDim) of src as
// U 16-byte loads a thread (all issued before any is used; ld_stream, as the decode kernels load weights),
// XORs them and writes one word a block to sink[b] (so no load is dead). One block a contiguous run, as a
// decode block owns its tiles' contiguous bytes; n16 = the 16-byte units of src (a multiple of U·blockDim).
// PDL: one link of a chain launched to overlap the launch before it (programmatic dependent launch), shaped as
// the decode kernels are: let the next launch start, issue the loads, then wait for the launch before to finish
// before the one write (so the chain's launches overlap only where a decode step's can).
template <int U, bool PDL = false>
__device__ __forceinline__ void read_stream_body(const uint4* __restrict__ src, unsigned* __restrict__ sink) {
  if (PDL) pdl_launch_dependents();
  const uint4* p = src + ((size_t)blockIdx.x * U) * blockDim.x + threadIdx.x;
  uint4 v[U];
#pragma unroll
  for (int u = 0; u < U; ++u) v[u] = ld_stream(p + (size_t)u * blockDim.x);
  if (PDL) pdl_wait();
  unsigned x = 0;
#pragma unroll
  for (int u = 0; u < U; ++u) x ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  x = __reduce_xor_sync(0xffffffffu, x);
  if ((threadIdx.x & 31) == 0) atomicXor(sink + blockIdx.x, x);
}
extern "C" __global__ void read_stream_u4(const uint4* __restrict__ src, unsigned* __restrict__ sink) { read_stream_body<4>(src, sink); }
extern "C" __global__ void read_stream_u4_pdl(const uint4* __restrict__ src, unsigned* __restrict__ sink) { read_stream_body<4, true>(src, sink); }
extern "C" __global__ void read_stream_u8(const uint4* __restrict__ src, unsigned* __restrict__ sink) { read_stream_body<8>(src, sink); }
