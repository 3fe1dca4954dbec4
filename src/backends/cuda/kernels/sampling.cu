// sample_rows: each row's next token picked on the device by the host's definition (pickToken,
// src/model/sampling.ts): the same integers from the same logits, so the same token from the same uniform draw.
//
//   grid (m), SAMPLE_THREADS (1024) threads, SAMPLE_SHARED (48 KiB) dynamic shared memory.
//   x [m, n] f32 logits (row-major); pick [m][3] f64 = { draw in [0, 1), temperature, top_p } of each row;
//   weights [m, n] u64 scratch; out [m] int32. n < 2^19 (every sum below is exact in a double).
//
// Per row:
//   max = the largest logit (NaN ignored), argmax = its first index (row-argmax.cuh). temperature ≤ 0: out = argmax.
//   w_j = ⌊e^((x_j − max) / T) · 2^34 + ½⌋ in f64 (0 where NaN), written to weights; W = Σ w_j. W = 0: out = argmax.
//   The order: w descending, ties by index ascending; cum_k = the weight of its first k + 1 tokens.
//   select(target) = the first position k with cum_k ≥ target, found without sorting, by a radix select over w's
//   35 bits in three digits (bits 24-34, 12-23, 0-11): per digit, the weight in each bin among the tokens whose higher
//   digits match (a histogram in shared memory), its suffix sums, the bin where above + suffix first reaches target;
//   the three digits give t, the weight at position k, and above = the weight of every token heavier than t. The token
//   is then the j-th of weight t in index order, j the least with above + j·t ≥ target, found by a count per thread
//   over a contiguous range and a scan.
//   mass = cum at select(top_p · W) (W where top_p · W ≥ W: no select); out = the token at select(draw · mass).
// The first digit's histogram is made in the pass that makes the weights and kept (as suffix sums) for both selects,
// so the row's weights are read three times a select (two digits, the ties), 256 KB at 32000 tokens, from L2.
// Histogram adds: the lanes of a warp in one bin (most of a row's tokens share a few bins: those far below the top)
// add their weights with __reduce_add_sync over the whole warp (in halves of 17 and 18 bits, so 32 of them fit 32
// bits; the other lanes give 0) and one lane adds the sum, for up to three bins a round; any lanes left add their own.
// Integer adds, so the result is deterministic. (A reduction over each bin's lanes alone, masks from
// __match_any_sync, would give lanes of one warp different masks at one collective: undefined.)
// Every loop is bounded, so a wrong histogram gives a wrong token, never a hang.
#include "row-argmax.cuh"

typedef unsigned long long u64;

#define SAMPLE_THREADS 1024
#define WEIGHT_BITS 34
#define BINS1 2048  // digit 1: bits 24-34 (w ≤ 2^34, so w >> 24 ≤ 1024)
#define BINS 4096   // digits 2 and 3: bits 12-23 and 0-11
#define NO_BIN 0xffffffffu
#define UNROLL 4 // rounds of a pass whose loads are issued together

// this block's shared state besides the histograms
struct SampleShared {
  u64 warp_sums[32];
  int digit;
  int token;
};

// Exclusive prefix sum of v over the block's threads (in thread order); total = the sum of all. Uses __syncthreads.
__device__ __forceinline__ u64 block_scan(u64 v, u64& total, SampleShared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u64 x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) sh.warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    u64 s = sh.warp_sums[lane];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const u64 y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    sh.warp_sums[lane] = s;
  }
  __syncthreads();
  const u64 before = (warp > 0 ? sh.warp_sums[warp - 1] : 0ull) + x - v;
  total = sh.warp_sums[31];
  __syncthreads(); // warp_sums may be written again by the next scan
  return before;
}

// hist[bin] += w for each lane with a bin (NO_BIN: none); every lane of the warp calls it. Up to three bins (the
// bins of the first lanes still pending) are added by one lane each with the sum of their lanes' weights; the rest,
// if any, lane by lane.
__device__ __forceinline__ void hist_add(u64* hist, unsigned bin, u64 w) {
  const unsigned lane = threadIdx.x & 31;
  unsigned pending = __ballot_sync(0xffffffffu, bin != NO_BIN);
#pragma unroll 1
  for (int k = 0; k < 3 && pending != 0; ++k) { // pending is the same in every lane
    const int src = __ffs(pending) - 1;
    const unsigned b = __shfl_sync(0xffffffffu, bin, src);
    const bool mine = bin == b;
    const unsigned lo = __reduce_add_sync(0xffffffffu, mine ? (unsigned)(w & 0x1ffffu) : 0u);
    const unsigned hi = __reduce_add_sync(0xffffffffu, mine ? (unsigned)(w >> 17) : 0u);
    if ((int)lane == src) atomicAdd(hist + b, ((u64)hi << 17) + lo);
    pending &= ~__ballot_sync(0xffffffffu, mine);
  }
  if ((pending >> lane) & 1u) atomicAdd(hist + bin, w);
}

// hist [PER · SAMPLE_THREADS] (each thread's PER bins in a row) becomes its suffix sums: hist[d] = Σ_{d' ≥ d} hist[d'].
// Then the one bin d with above + hist[d] ≥ target > above + hist[d + 1] (hist[BINS] = 0) is returned and above
// becomes above + hist[d + 1], in every thread (the caller has made sure above + hist[0] ≥ target; else d = 0).
template <int PER>
__device__ __forceinline__ unsigned suffix_find(u64* hist, u64& above, double target, SampleShared& sh) {
  const int d0 = threadIdx.x * PER;
  if (threadIdx.x == 0) sh.digit = 0; // block_scan's barriers order it before the find below
  u64 h[PER], local = 0;
#pragma unroll
  for (int i = 0; i < PER; ++i) local += h[i] = hist[d0 + i];
  u64 total;
  u64 before = block_scan(local, total, sh);
#pragma unroll
  for (int i = 0; i < PER; ++i) {
    hist[d0 + i] = total - before;
    before += h[i];
  }
  __syncthreads();
  const int bins = PER * SAMPLE_THREADS;
#pragma unroll
  for (int i = 0; i < PER; ++i) {
    const int d = d0 + i;
    const u64 next = d + 1 < bins ? hist[d + 1] : 0ull;
    if ((double)(above + hist[d]) >= target && (double)(above + next) < target) sh.digit = d;
  }
  __syncthreads();
  const int d = sh.digit;
  above += d + 1 < bins ? hist[d + 1] : 0ull;
  __syncthreads(); // sh.digit and hist may be written again
  return (unsigned)d;
}

// The token at select(target) and cum there (see the header); s1 holds digit 1's suffix sums, target ≤ s1[0].
__device__ __forceinline__ int select_token(const u64* wr, int n, double target, const u64* s1, u64* hist, SampleShared& sh, u64& cum) {
  target = fmax(target, 1.0); // cum_0 ≥ 1: a target up to 1 is reached at position 0, as any cum ≥ target there
  const int rounds = (n + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
  if (threadIdx.x == 0) {
    sh.digit = 0;
    sh.token = 0;
  }
  __syncthreads();
  // digit 1: the suffix sums are made; find the bin
  for (int d = threadIdx.x; d < BINS1; d += SAMPLE_THREADS) {
    const u64 next = d + 1 < BINS1 ? s1[d + 1] : 0ull;
    if ((double)s1[d] >= target && (double)next < target) sh.digit = d;
  }
  __syncthreads();
  const unsigned d1 = sh.digit;
  u64 above = d1 + 1 < BINS1 ? s1[d1 + 1] : 0ull;
  __syncthreads();
  // digits 2 and 3: among the tokens whose higher digits match
  u64 prefix = d1; // the digits found so far: 35 bits after the last, so 64-bit
#pragma unroll 1
  for (int level = 0; level < 2; ++level) {
    const int shift = level == 0 ? 12 : 0;
    for (int d = threadIdx.x; d < BINS; d += SAMPLE_THREADS) hist[d] = 0;
    __syncthreads();
    for (int r0 = 0; r0 < rounds; r0 += UNROLL) {
      u64 w[UNROLL]; // UNROLL loads in flight before the adds (the weights come from L2)
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int j = (r0 + u) * SAMPLE_THREADS + threadIdx.x;
        w[u] = j < n ? wr[j] : 0ull;
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int j = (r0 + u) * SAMPLE_THREADS + threadIdx.x;
        const bool in = j < n && (w[u] >> (shift + 12)) == prefix;
        if (r0 + u < rounds) hist_add(hist, in ? (unsigned)(w[u] >> shift) & (BINS - 1) : NO_BIN, w[u]);
      }
    }
    __syncthreads();
    prefix = (prefix << 12) | suffix_find<BINS / SAMPLE_THREADS>(hist, above, target, sh);
  }
  // the bin of digit 3 holds tokens of one weight, t; take the j-th of them in index order
  const u64 t = prefix > 0 ? prefix : 1ull; // 0 only after a wrong histogram
  // the quotient is within one of the least j (a correctly rounded division of integers below 2^53); a few steps settle it
  u64 j = (u64)fmax(1.0, ceil((target - (double)above) / (double)t));
  for (int k = 0; k < 4 && j > 1 && (double)(above + (j - 1) * t) >= target; ++k) --j;
  for (int k = 0; k < 4 && (double)(above + j * t) < target; ++k) ++j;
  const int per = (n + SAMPLE_THREADS - 1) / SAMPLE_THREADS, from = threadIdx.x * per, to = min(n, from + per);
  u64 count = 0;
#pragma unroll 8
  for (int i = from; i < to; ++i) count += wr[i] == t;
  u64 total;
  const u64 before = block_scan(count, total, sh);
  if (before < j && j <= before + count) {
    u64 seen = before;
    for (int i = from; i < to; ++i) {
      if (wr[i] == t && ++seen == j) {
        sh.token = i;
        break;
      }
    }
  }
  __syncthreads();
  cum = above + j * t;
  const int token = sh.token;
  __syncthreads();
  return token;
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1)
sample_rows(const float* __restrict__ x, const double* __restrict__ pick, u64* weights, int n, int* __restrict__ out) {
  extern __shared__ u64 shared_bins[];
  __shared__ SampleShared sh;
  u64* s1 = shared_bins;         // [BINS1]: digit 1's histogram, then its suffix sums
  u64* hist = shared_bins + BINS1; // [BINS]: digits 2 and 3
  const int row = blockIdx.x;
  const float* xr = x + (size_t)row * n;
  u64* wr = weights + (size_t)row * n;
  const double draw = pick[3 * row], temperature = pick[3 * row + 1], top_p = pick[3 * row + 2];
  const RowMax m = row_argmax(xr, n);
  if (!(temperature > 0.0)) {
    if (threadIdx.x == 0) out[row] = m.at;
    return;
  }
  for (int d = threadIdx.x; d < BINS1; d += SAMPLE_THREADS) s1[d] = 0;
  __syncthreads();
  const double top = (double)m.best, scale = (double)(1ull << WEIGHT_BITS);
  const int rounds = (n + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
  for (int r0 = 0; r0 < rounds; r0 += UNROLL) {
    float v[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = (r0 + u) * SAMPLE_THREADS + threadIdx.x;
      v[u] = j < n ? xr[j] : 0.f;
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = (r0 + u) * SAMPLE_THREADS + threadIdx.x;
      u64 w = 0;
      if (j < n) {
        const double e = exp(((double)v[u] - top) / temperature) * scale;
        w = e > 0.0 ? (u64)floor(e + 0.5) : 0ull;
        wr[j] = w;
      }
      if (r0 + u < rounds) hist_add(s1, j < n ? (unsigned)(w >> 24) : NO_BIN, w);
    }
  }
  __syncthreads();
  // s1 becomes its suffix sums (two bins a thread); W = s1[0]
  {
    const int d0 = 2 * threadIdx.x;
    const u64 h0 = s1[d0], h1 = s1[d0 + 1];
    u64 total;
    const u64 before = block_scan(h0 + h1, total, sh);
    s1[d0] = total - before;
    s1[d0 + 1] = total - before - h0;
  }
  __syncthreads();
  const u64 W = s1[0];
  if (W == 0) {
    if (threadIdx.x == 0) out[row] = m.at;
    return;
  }
  const double target = top_p * (double)W;
  u64 mass = W; // select(target) for a target of W or more is the last token of positive weight, where cum = W (top-p 1)
  if (target < (double)W) select_token(wr, n, target, s1, hist, sh, mass);
  u64 cum;
  const int token = select_token(wr, n, draw * (double)mass, s1, hist, sh, cum);
  if (threadIdx.x == 0) out[row] = token;
}
