// sample_rows: each row's next token picked on the device by the host's definition (pickToken,
// src/model/sampling.ts): the same integers from the same logits, so the same token from the same uniform draw.
//
//   grid (m · CLUSTER), SAMPLE_THREADS (1024) threads, SAMPLE_SHARED (96 KiB) dynamic shared memory; a row is taken by
//   a cluster of CLUSTER blocks (1, 2, 4 or 8; a define, so __cluster_dims__ sets it and a plain launch honours it),
//   block `rank` of row r = blockIdx.x / CLUSTER holding the row's tokens [rank · ⌈n/C⌉, (rank + 1) · ⌈n/C⌉) ∩ [0, n).
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
// The cluster: each block makes the histograms of its own tokens; after a cluster barrier every block adds the
// cluster's histograms bin by bin (reading the others' shared memory; integer sums, the same in every block, so every
// block finds the same bins), and the ties' counts the same way (the block's offset = the counts of lower ranks).
// Integer sums in a fixed order: the token does not depend on CLUSTER, on the row's place in a batch or on the run.
// The first digit's histogram is made in the pass that makes the weights and kept (as suffix sums) for both selects,
// so the row's weights are read three times a select (two digits, the ties), 256 KB at 32000 tokens, from L2.
// Histogram adds: the lanes of a warp in one bin (most of a row's tokens share a few bins: those far below the top)
// add their weights with __reduce_add_sync over the whole warp (in halves of 17 and 18 bits, so 32 of them fit 32
// bits; the other lanes give 0) and one lane adds the sum, for up to three bins a round; any lanes left add their own.
// (A reduction over each bin's lanes alone, masks from __match_any_sync, would give lanes of one warp different masks at
// one collective: undefined.)
// Every loop is bounded, so a wrong histogram gives a wrong token, never a hang. A block's shared memory is read by the
// others only between two cluster barriers, and every block passes a last barrier before it exits.
#include "row-argmax.cuh"
#include "cluster.cuh"

typedef unsigned long long u64;

#define SAMPLE_THREADS 1024
#define WEIGHT_BITS 34
#define BINS1 2048  // digit 1: bits 24-34 (w ≤ 2^34, so w >> 24 ≤ 1024)
#define BINS 4096   // digits 2 and 3: bits 12-23 and 0-11
#define NO_BIN 0xffffffffu
#define UNROLL 4 // rounds of a pass whose loads are issued together
#ifndef CLUSTER
#define CLUSTER 1
#endif
#if CLUSTER > 1
#define CLUSTER_DIMS __cluster_dims__(CLUSTER, 1, 1)
#else
#define CLUSTER_DIMS
#endif

// this block's shared state besides the histograms
struct SampleShared {
  u64 warp_sums[32];
  int digit;
  // read by the cluster's other blocks:
  float best; // the largest logit of this block's tokens and its first index
  int at;
  u64 count; // this block's count of tokens of the weight t (select_token)
};

// The cluster's barrier, its rank, and a load from the same shared variable of block `rank` (cluster.cuh). With
// CLUSTER 1: the block's barrier and its own memory.
__device__ __forceinline__ void cluster_sync() {
#if CLUSTER > 1
  cluster_barrier();
#else
  __syncthreads();
#endif
}

__device__ __forceinline__ unsigned cluster_rank() {
#if CLUSTER > 1
  return cluster_ctarank();
#else
  return 0;
#endif
}

template <typename T>
__device__ __forceinline__ T load_from_rank(const T* p, unsigned rank) {
#if CLUSTER > 1
  return dsmem_load(p, rank);
#else
  return *p;
#endif
}

// sum[d] = Σ over the cluster's blocks, in rank order, of their part[d] (d < bins). Call between cluster barriers.
__device__ __forceinline__ void add_cluster_bins(const u64* part, u64* sum, int bins) {
  for (int d = threadIdx.x; d < bins; d += SAMPLE_THREADS) {
    u64 s = 0;
#pragma unroll
    for (int r = 0; r < CLUSTER; ++r) s += load_from_rank(part + d, r);
    sum[d] = s;
  }
}

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
template <int PER>
__device__ __forceinline__ void suffix_sums(u64* hist, SampleShared& sh) {
  const int d0 = threadIdx.x * PER;
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
}

// In suffix sums s [PER · SAMPLE_THREADS]: the one bin d with above + s[d] ≥ target > above + s[d + 1] (s[bins] = 0)
// is returned and above becomes above + s[d + 1], in every thread (the caller has made sure above + s[0] ≥ target;
// else d = 0).
template <int PER>
__device__ __forceinline__ unsigned find_bin(const u64* s, u64& above, double target, SampleShared& sh) {
  const int d0 = threadIdx.x * PER, bins = PER * SAMPLE_THREADS;
  if (threadIdx.x == 0) sh.digit = 0;
  __syncthreads();
#pragma unroll
  for (int i = 0; i < PER; ++i) {
    const int d = d0 + i;
    const u64 next = d + 1 < bins ? s[d + 1] : 0ull;
    if ((double)(above + s[d]) >= target && (double)(above + next) < target) sh.digit = d;
  }
  __syncthreads();
  const int d = sh.digit;
  above += d + 1 < bins ? s[d + 1] : 0ull;
  __syncthreads(); // sh.digit and s may be written again
  return (unsigned)d;
}

// cum at select(target) (see the header) for the cluster's row; s1 holds digit 1's suffix sums of the row, target ≤ s1[0].
// This block holds the row's tokens [lo, lo + len) (wr: the row's weights). With out: the token there is written to
// *out by the block that holds it.
__device__ __forceinline__ u64 select_token(const u64* wr, int lo, int len, double target, const u64* s1, u64* part, u64* hist, SampleShared& sh,
                                            int* out) {
  target = fmax(target, 1.0); // cum_0 ≥ 1: a target up to 1 is reached at position 0, as any cum ≥ target there
  const int rounds = (len + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
  // digit 1: the suffix sums are made; find the bin
  u64 above = 0;
  const unsigned d1 = find_bin<BINS1 / SAMPLE_THREADS>(s1, above, target, sh);
  // digits 2 and 3: among the tokens whose higher digits match
  u64 prefix = d1; // the digits found so far: 35 bits after the last, so 64-bit
#pragma unroll 1
  for (int level = 0; level < 2; ++level) {
    const int shift = level == 0 ? 12 : 0;
    for (int d = threadIdx.x; d < BINS; d += SAMPLE_THREADS) part[d] = 0;
    __syncthreads();
    for (int r0 = 0; r0 < rounds; r0 += UNROLL) {
      u64 w[UNROLL]; // UNROLL loads in flight before the adds (the weights come from L2)
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int j = (r0 + u) * SAMPLE_THREADS + threadIdx.x;
        w[u] = j < len ? wr[lo + j] : 0ull;
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int j = (r0 + u) * SAMPLE_THREADS + threadIdx.x;
        const bool in = j < len && (w[u] >> (shift + 12)) == prefix;
        if (r0 + u < rounds) hist_add(part, in ? (unsigned)(w[u] >> shift) & (BINS - 1) : NO_BIN, w[u]);
      }
    }
    cluster_sync(); // every block's part is made
    add_cluster_bins(part, hist, BINS);
    cluster_sync(); // every block has read the parts (they are zeroed again next)
    suffix_sums<BINS / SAMPLE_THREADS>(hist, sh);
    prefix = (prefix << 12) | find_bin<BINS / SAMPLE_THREADS>(hist, above, target, sh);
  }
  // the bin of digit 3 holds tokens of one weight, t; take the j-th of them in index order
  const u64 t = prefix > 0 ? prefix : 1ull; // 0 only after a wrong histogram
  // the quotient is within one of the least j (a correctly rounded division of integers below 2^53); a few steps settle it
  u64 j = (u64)fmax(1.0, ceil((target - (double)above) / (double)t));
  for (int k = 0; k < 4 && j > 1 && (double)(above + (j - 1) * t) >= target; ++k) --j;
  for (int k = 0; k < 4 && (double)(above + j * t) < target; ++k) ++j;
  if (out != nullptr) {
    const int per = (len + SAMPLE_THREADS - 1) / SAMPLE_THREADS, from = lo + threadIdx.x * per, to = min(lo + len, from + per);
    u64 count = 0;
#pragma unroll 8
    for (int i = from; i < to; ++i) count += wr[i] == t;
    u64 total;
    u64 before = block_scan(count, total, sh);
    if (threadIdx.x == 0) sh.count = total;
    cluster_sync(); // every block's count is written
    const unsigned rank = cluster_rank();
    for (unsigned r = 0; r < rank; ++r) before += load_from_rank(&sh.count, r);
    if (before < j && j <= before + count) {
      u64 seen = before;
      for (int i = from; i < to; ++i) {
        if (wr[i] == t && ++seen == j) {
          *out = i;
          break;
        }
      }
    }
    // sh.count is read by the others until the caller's next barrier
  }
  return above + j * t;
}

extern "C" __global__ void CLUSTER_DIMS __launch_bounds__(SAMPLE_THREADS, 1)
sample_rows(const float* __restrict__ x, const double* __restrict__ pick, u64* weights, int n, int* __restrict__ out) {
  extern __shared__ u64 shared_bins[];
  __shared__ SampleShared sh;
  u64* part1 = shared_bins;  // [BINS1]: digit 1's histogram of this block's tokens
  u64* s1 = part1 + BINS1;   // [BINS1]: the cluster's, then its suffix sums
  u64* part = s1 + BINS1;    // [BINS]: digits 2 and 3, this block's tokens
  u64* hist = part + BINS;   // [BINS]: the cluster's
  const unsigned rank = cluster_rank();
  const int row = blockIdx.x / CLUSTER;
  const int per = (n + CLUSTER - 1) / CLUSTER, lo = min(n, (int)rank * per), len = min(n, lo + per) - lo;
  const float* xr = x + (size_t)row * n;
  u64* wr = weights + (size_t)row * n;
  const double draw = pick[3 * row], temperature = pick[3 * row + 1], top_p = pick[3 * row + 2];
  // the row's argmax: each block's over its tokens, then the first of the largest over the cluster (rank order is index
  // order; a block of no value above −∞ offers its first index, which wins only where no block has one: index 0)
  const RowMax mine = row_argmax(xr + lo, len);
  if (threadIdx.x == 0) {
    sh.best = mine.best;
    sh.at = lo + mine.at;
  }
  cluster_sync();
  RowMax m = {load_from_rank(&sh.best, 0), load_from_rank(&sh.at, 0)};
  for (int r = 1; r < CLUSTER; ++r) {
    const float b = load_from_rank(&sh.best, r);
    const int a = load_from_rank(&sh.at, r);
    if (b > m.best || (b == m.best && a < m.at)) m = {b, a};
  }
  const bool writer = rank == 0 && threadIdx.x == 0;
  if (!(temperature > 0.0)) {
    if (writer) out[row] = m.at;
    cluster_sync(); // sh is read by the others until here
    return;
  }
  if (writer) out[row] = 0; // the token, unless a wrong histogram finds none (ordered before the finder's write by the barriers)
  for (int d = threadIdx.x; d < BINS1; d += SAMPLE_THREADS) part1[d] = 0;
  __syncthreads();
  const double top = (double)m.best, scale = (double)(1ull << WEIGHT_BITS);
  const int rounds = (len + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
  for (int r0 = 0; r0 < rounds; r0 += UNROLL) {
    float v[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = (r0 + u) * SAMPLE_THREADS + threadIdx.x;
      v[u] = j < len ? xr[lo + j] : 0.f;
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = (r0 + u) * SAMPLE_THREADS + threadIdx.x;
      u64 w = 0;
      if (j < len) {
        const double e = exp(((double)v[u] - top) / temperature) * scale;
        w = e > 0.0 ? (u64)floor(e + 0.5) : 0ull;
        wr[lo + j] = w;
      }
      if (r0 + u < rounds) hist_add(part1, j < len ? (unsigned)(w >> 24) : NO_BIN, w);
    }
  }
  cluster_sync(); // every block's part1 is made (and sh.best / sh.at read)
  add_cluster_bins(part1, s1, BINS1); // part1 is not written again
  __syncthreads();
  suffix_sums<BINS1 / SAMPLE_THREADS>(s1, sh); // W = s1[0], the same in every block
  const u64 W = s1[0];
  if (W == 0) {
    if (writer) out[row] = m.at;
    cluster_sync(); // part1 is read by the others until here
    return;
  }
  const double target = top_p * (double)W;
  // select(target) for a target of W or more is the last token of positive weight, where cum = W (top-p 1)
  const u64 mass = target < (double)W ? select_token(wr, lo, len, target, s1, part, hist, sh, nullptr) : W;
  select_token(wr, lo, len, draw * (double)mass, s1, part, hist, sh, out + row);
  cluster_sync(); // part1 and sh.count are read by the others until here
}
