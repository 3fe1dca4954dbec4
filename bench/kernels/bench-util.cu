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
