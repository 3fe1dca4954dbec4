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
#include "grid-barrier.cuh"
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

// The block waits until the counter reaches `target` (BARRIER 0: not at all).
__device__ __forceinline__ void chain_wait(const unsigned* counter, unsigned target) {
  if (BARRIER) grid_wait(counter, target);
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
    if (BARRIER) grid_arrive(counter);
  }
}

// ---- w4a8_decode_ring: the chain with its weights streamed ahead of the barriers ----
//
// The chain above keeps every drain: after a stage's barrier a block starts loading the next stage's weights (one
// tile's chunks before the wait at most), although the weights depend on nothing the barrier waits for. Here a
// producer warp streams its consumers' weight tiles of every stage, in the order they take them, into a ring of RING
// shared-memory slots with 1-D bulk copies (cp.async.bulk, completing on the slot's `full` mbarrier), and waits only
// for a slot to be given back (its `empty` mbarrier, one arrival a consumer warp): it runs ahead across the barriers
// by as many slots as the ring holds, so the weight stream need not stop while a barrier (in a step-wide kernel: the
// small ops too) waits. If the chain's time falls to the stream's (no barriers at all), a step-wide kernel built this
// way keeps the HBM busy through its dependencies.
//
//   grid: one block a SM (the ring takes most of its shared memory), all resident; block: GROUPS groups, each WK
//   consumer warps + 1 producer warp with its own RING slots, barriers and reduction buffer, and its own tiles: group
//   g of block b is virtual block v = b·GROUPS + g of a grid of gridDim.x·GROUPS, taking tiles v, v + that, … (GROUPS 2
//   at WK 8: the launches' two 512-thread blocks a SM, as one block); with DYN_TILES 1 its producer takes each next
//   tile of a stage from the stage's counter instead (atomicAdd on counter[1 + s]; the tile's index travels with its
//   first piece, tile_of[slot]; a slot with index −1 ends the group's stage), so groups that stream faster take more
//   tiles and none waits at the barrier for a round-robin share. Stage s, tile t (16 rows), piece p: the tile's
//   chunks [p·WK, (p+1)·WK) ∩ [0, K/128) (one 128-k chunk a consumer warp: warp w takes chunk p·WK + w), a slot = the
//   piece's weights (1 KB a chunk, contiguous in wq[tile][step][lane]) then its scales (64 B a chunk: GROUP 128, one
//   group a chunk; sc[tile][g][16]).
//   Dynamic shared memory: GROUPS·RING slots of WK · (1024 + 64) bytes, then (XSMEM 1) each group's copy of the stage's
//   activations x [M][K] (int8, XS_BYTES a group), copied in by its consumers after the stage's barrier; XSMEM 0 reads
//   them from global memory (L2) as the launches do.
//   Counters: counter[0] the barrier's arrivals (`base` of them before this launch); with DYN_TILES, counter[1 + s]
//   stage s's tiles taken, tiles_s + gridDim.x·GROUPS a launch (every group's last take finds none), so `launch` (the
//   launches before this one) gives their base. Never reset.
//   DEP 1 (XSMEM 1, barriers kept): stage s > 0 reads stage s − 1's output instead of a fixed x: after the barrier each
//   group quantizes the rows y_{s−1} [M][K_s] into its x buffer and scales (quantize_rows_group: act_quant's bits), the
//   first dependency a persistent step has; a group that does not wait at a barrier reads stale rows, and the bench's
//   bit check against the launches (GEMM, act_quant, GEMM, …) fails.
//   Diagnostics: RING_COMPUTE 0 leaves out the consumers' arithmetic and stores (they wait for each slot and give it
//   back), so the time is the weight stream's alone; BARRIER 0 as the chain's.
// Bits: integer scales only (SCALE_INT 1, GROUP 128): every chunk closes its group, T = Σ_g acc_g · S_g in int32 is
// exact in any order, so the outputs are the chain's and the launches' bit for bit although a warp's chunks differ.
// Measured 2026-12-07 (H100, docs/cuda-notes.md, 33rd and 34th sessions), M = 1: GROUPS 1 WK 16 0.94x the launches
// (its barriers ~2.5 µs each); GROUPS 2 WK 8, every group waiting at the barriers, 0.96x (XSMEM 0), 0.95x (XSMEM 1),
// 0.94x (DYN_TILES 1); each without its barriers reaches the stream bound (1.19x): its consumers only keep pace with
// the stream, so the time a barrier holds them is never made up. DEP 1 with GROUPS 1: 1.17x GEMM + act_quant launches.
#ifdef RING
#include "mbarrier.cuh"
#ifndef GROUPS
#define GROUPS 1
#endif
#ifndef XSMEM
#define XSMEM 1
#endif
#ifndef RING_COMPUTE
#define RING_COMPUTE 1
#endif
#ifndef DYN_TILES
#define DYN_TILES 0
#endif
#ifndef DEP
#define DEP 0
#endif
#if XSMEM && !defined(XS_BYTES)
#error "XSMEM 1 needs XS_BYTES, a group's activation buffer (M x the largest K)"
#endif
#define PIECE_W (WK * 1024)
#define PIECE_S (WK * 64)
#define SLOT_BYTES (PIECE_W + PIECE_S)
static_assert(GROUP == 128 && MT == 1 && NTW == 1 && SCALE_INT == 1, "the ring variant: integer scales, one group a chunk, one token half, one tile a block");
static_assert(GROUPS * (WK + 1) <= 32, "a block holds at most 32 warps");
static_assert(!DEP || XSMEM, "a dependent chain quantizes each stage's rows into the group's shared memory (XSMEM 1)");


__device__ __forceinline__ void bulk_load(u32 dst, const void* src, u32 bytes, u32 bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst), "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
// a group's consumer warps' own barrier (named barrier 1 + g; the producer warps never join it)
__device__ __forceinline__ void consumers_sync(int g) { asm volatile("bar.sync %0, %1;\n" ::"r"(1 + g), "r"(WK * 32) : "memory"); }

// DEP: rows r < M of y [M, K] (f32, the previous stage's output, written by other blocks this launch: read through
// L2) quantized by the group's consumers into xs [M][K] and a[r], as act_quant (act-quant.cu) writes them: a = fround
// (max |y| / 127) in float64, q = clamp(rint(y / a), −127, 127) in float64, a row of zeros gives a = 0 and q = 0.
// amax: the group's [8][WK] scratch for the warps' maxima. Ends with the group's barrier.
__device__ __forceinline__ void quantize_rows_group(const float* y, int M, int K, signed char* xs, float* a, float (*amax)[WK], int g, int ct) {
  const int warp = ct >> 5, lane = ct & 31;
  for (int r = 0; r < M; ++r) {
    const float4* row = reinterpret_cast<const float4*>(y + (size_t)r * K);
    float m = 0.f;
    for (int i = ct; i < K / 4; i += WK * 32) m = fmaxf(m, absmax4(__ldcg(row + i)));
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) amax[r][warp] = m;
  }
  consumers_sync(g);
  for (int r = 0; r < M; ++r) {
    float m = amax[r][0];
    for (int w = 1; w < WK; ++w) m = fmaxf(m, amax[r][w]);
    const float ar = (float)((double)m / 127.0);
    if (ct == 0) a[r] = ar;
    const float4* row = reinterpret_cast<const float4*>(y + (size_t)r * K);
    char4* q = reinterpret_cast<char4*>(xs + (size_t)r * K);
    for (int i = ct; i < K / 4; i += WK * 32) q[i] = act_quant4(__ldcg(row + i), ar);
  }
  consumers_sync(g);
}

extern "C" __global__ void __launch_bounds__(GROUPS * (WK + 1) * 32, 1)
w4a8_decode_ring(const ChainStage* __restrict__ stages, int S, int M, unsigned* counter, unsigned base, unsigned launch) {
  extern __shared__ __align__(128) unsigned char ring_shared[];
  __shared__ __align__(8) unsigned long long full_bars[GROUPS][RING], empty_bars[GROUPS][RING];
  __shared__ int red_all[GROUPS][WK][4][32];
  __shared__ int tile_of_all[GROUPS][RING];  // DYN_TILES: the tile whose first piece a slot holds (−1: the stage's end)
  __shared__ float dep_a[GROUPS][8], dep_amax[GROUPS][8][WK];  // DEP: the group's row scales of the stage, the warps' maxima
  const int g = threadIdx.x / ((WK + 1) * 32), warp = (threadIdx.x >> 5) % (WK + 1), lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int ct = threadIdx.x - g * (WK + 1) * 32;  // the thread's index in its group
  const int vgrid = gridDim.x * GROUPS, vb = blockIdx.x * GROUPS + g;
  unsigned long long* full = full_bars[g];
  unsigned long long* empty = empty_bars[g];
  unsigned char* slots = ring_shared + g * RING * SLOT_BYTES;
  int* tile_of = tile_of_all[g];
#if XSMEM
  unsigned char* xs = ring_shared + GROUPS * RING * SLOT_BYTES + g * XS_BYTES;
#else
  unsigned char* xs = nullptr;
#endif
  if (threadIdx.x == 0) {
    for (int i = 0; i < GROUPS * RING; ++i) {
      mbar_init(smem_u32(&full_bars[0][0] + i), 1);
      mbar_init(smem_u32(&empty_bars[0][0] + i), WK);
    }
    mbar_init_fence();
  }
  __syncthreads();
  if (warp == WK) {  // the producer: lane 0 issues every piece of every stage in its consumers' order
    if (lane != 0) return;
    unsigned it = 0;
    // the next slot, once its consumers have given it back
    const auto next_slot = [&]() {
      const unsigned slot = it % RING, round = it / RING;
      if (round > 0) mbar_wait(smem_u32(&empty[slot]), (round - 1) & 1);
      return slot;
    };
    for (int s = 0; s < S; ++s) {
      const ChainStage st = stages[s];
      const int tiles = (st.N + 15) / 16, C = st.K / 128, pieces = (C + WK - 1) / WK, steps = st.K / 64, NG = st.K / GROUP;
      const unsigned taken0 = launch * (unsigned)(tiles + vgrid);  // DYN_TILES: this launch's first take of the stage
      for (int t = vb;; t += vgrid) {
        if (DYN_TILES) t = (int)(atomicAdd(counter + 1 + s, 1u) - taken0);
        if (t >= tiles) break;
        for (int p = 0; p < pieces; ++p, ++it) {
          const unsigned slot = next_slot();
          const int n = min(WK, C - p * WK);
          const u32 bar = smem_u32(&full[slot]), dst = smem_u32(slots + slot * SLOT_BYTES);
          if (DYN_TILES && p == 0) tile_of[slot] = t;  // seen by the consumers after the slot's wait (the arrive releases it)
          mbar_arrive_expect_tx(bar, n * (1024 + 64));
          bulk_load(dst, st.wq + ((size_t)t * steps + 2 * p * WK) * 32, n * 1024, bar);
          bulk_load(dst + PIECE_W, st.sc + ((size_t)t * NG + p * WK) * 16, n * 64, bar);
        }
      }
      if (DYN_TILES) {  // the stage's end: a slot with no bytes
        const unsigned slot = next_slot();
        tile_of[slot] = -1;
        mbar_arrive(smem_u32(&full[slot]));
        ++it;
      }
    }
    return;
  }
  int (*red)[4][32] = red_all[g];
  unsigned it = 0;
  for (int s = 0; s < S; ++s) {
    const ChainStage st = stages[s];
    const int tiles = (st.N + 15) / 16, C = st.K / 128, pieces = (C + WK - 1) / WK;
    // the stage's barrier, then (XSMEM) its activations into shared memory (every tile of the stage reads them)
    if (s > 0 && BARRIER) {
      spin_until(counter, base + (unsigned)s * vgrid, ct == 0);  // the group's own leader: each group waits
      consumers_sync(g);
    }
    const bool quantized_here = DEP && s > 0;  // x and its scales from the previous stage's output
    if (quantized_here) {
      quantize_rows_group(stages[s - 1].y, M, st.K, reinterpret_cast<signed char*>(xs), dep_a[g], dep_amax[g], g, ct);
    } else if (XSMEM) {
      for (int i = ct; i < M * st.K / 16; i += WK * 32)
        reinterpret_cast<uint4*>(xs)[i] = ld_coherent(reinterpret_cast<const uint4*>(st.xq) + i);
      consumers_sync(g);
    }
    const float* ascale = quantized_here ? dep_a[g] : st.ascale;
    for (int t = vb;; t += vgrid) {
      if (DYN_TILES) {  // the tile the producer took (its first piece's slot), or the stage's end
        const unsigned slot = it % RING;
        mbar_wait(smem_u32(&full[slot]), (it / RING) & 1);
        t = tile_of[slot];
        if (t < 0) {
          __syncwarp();
          if (lane == 0) mbar_arrive(smem_u32(&empty[slot]));
          ++it;
          break;
        }
      } else if (t >= tiles) {
        break;
      }
      DecodeAcc<1, 1, scale_t> acc;
      decode_zero(acc);
      for (int p = 0; p < pieces; ++p, ++it) {
        const unsigned slot = it % RING, round = it / RING;
        const int c = p * WK + warp;
        Chunk b;
        if (RING_COMPUTE && c < C) {  // the chunk's activations (rows ≥ M: zeros), read before the slot lands
          const bool valid = gid < M;
          const size_t at = (size_t)(valid ? gid : 0) * st.K + c * 128 + tig * 16;
          const uint4 zero = make_uint4(0, 0, 0, 0);
          if (XSMEM) {
            b.x[0][0] = valid ? *reinterpret_cast<const uint4*>(xs + at) : zero;
            b.x[0][1] = valid ? *reinterpret_cast<const uint4*>(xs + at + 64) : zero;
          } else {
            b.x[0][0] = valid ? ld_coherent(reinterpret_cast<const uint4*>(st.xq + at)) : zero;
            b.x[0][1] = valid ? ld_coherent(reinterpret_cast<const uint4*>(st.xq + at + 64)) : zero;
          }
        }
        mbar_wait(smem_u32(&full[slot]), round & 1);
        if (RING_COMPUTE && c < C) {
          const unsigned char* w = slots + slot * SLOT_BYTES + warp * 1024;
          b.w[0][0] = *reinterpret_cast<const uint4*>(w + lane * 16);
          b.w[0][1] = *reinterpret_cast<const uint4*>(w + 512 + lane * 16);
          const scale_t* sp = reinterpret_cast<const scale_t*>(slots + slot * SLOT_BYTES + PIECE_W + warp * 64);
          b.s[0][0] = sp[gid];
          b.s[0][1] = sp[gid + 8];
          decode_chunk<IS_SHIFT ? 4 : 0, GROUP>(acc, b.s, c, C, [&] { chunk_mma(acc.acc, b); });
        }
        __syncwarp();
        if (lane == 0) mbar_arrive(smem_u32(&empty[slot]));
      }
      if (!RING_COMPUTE) continue;
      // the warps' totals added in warp order, then the tile's outputs (decode_reduce's mapping at NT = MTK = 1)
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp][i][lane] = acc.tot[0][0][i];
      consumers_sync(g);
      for (int idx = ct; idx < 4 * 32; idx += WK * 32) {
        const int e = idx >> 5, l = idx & 31;
        int sum = red[0][e][l];
        for (int w = 1; w < WK; ++w) sum += red[w][e][l];
        const int n = t * 16 + (l >> 2) + (e >= 2 ? 8 : 0), token = (l & 3) * 2 + (e & 1);
        if (token < M && n < st.N) st.y[(size_t)token * st.N + n] = to_out(out_scale(sum, ascale[token], st.post));
      }
      consumers_sync(g);
    }
    if (!BARRIER) continue;
    __threadfence();
    consumers_sync(g);
    if (ct == 0) atomicAdd(counter, 1u);
  }
}
#endif
