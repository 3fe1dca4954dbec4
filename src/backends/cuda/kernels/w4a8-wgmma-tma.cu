// W4A8 GEMM for large M (prefill) on Hopper: register-A warpgroup MMA fed by TMA (sm_90a).
//   wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8  d, {a0,a1,a2,a3}, b-desc, scale-d
// Same math, layouts, epilogues and defines as w4a8-wgmma-rs.cu (read its header):
//   SCALE_INT=1: T = sum_c acc'_c*S (int32; IS_SHIFT: (acc'>>4)*S), y = fround(fround(float(T))*a[m]) * post
//   SCALE_INT=0: t = sum_c float(acc'_c)*(s/16) (f32 FMA per 128-k chunk), y = a[m]*t
// with acc' = 16*acc (the tensor cores see 16*q). Weights are the 64-row A operand of each
// warpgroup (from registers), tokens the 128 columns of B (from shared memory): D[n, m].
//
// What differs is who moves the data: one producer lane (of a 3rd warpgroup) issues three TMA copies per
// 128-k chunk into a shared-memory stage and the 8 consumer warps only compute. The register-A
// kernel's loads (cp.async by every thread + per-thread weight loads) were limited by the
// L2->SM path at ~850 TOPS (docs/cuda-notes.md, fifth session).
//   stage s (1024-B aligned, STAGE_BYTES):
//     [0, BT·128)     xq tile: BT tokens x 128 k bytes, TMA 2-D box {128 B, BT rows} of the
//                     [M][K] map with the 128-byte swizzle = canonical K-major SW128 for wgmma B.
//                     xq is in FRAGMENT ORDER (activationOrder); rows >= M arrive as zeros.
//     [16K, 24K)      weights: 8 tiles x 1 KB, TMA 3-D box {256 B, 4, 8} of the repacked buffer
//                     viewed as [tiles][K/32][256 B] (repack.ts: wq[tile][64-k step][lane] 16 B),
//                     so tile t's chunk c is the 1 KB at [t][4c..4c+3]; warp w reads tile w with
//                     two 16-B shared loads per lane (steps 2c, 2c+1).
//     [24K, 24.5K)    scales: 8 tiles x 16 values of group g = c*128/GROUP, TMA 3-D box {64 B, 1, 8}
//                     of sc viewed as [tiles][K/GROUP][64 B].
//   full[s]:  1 arrival (the producer's expect_tx of the stage bytes) + the bytes;
//   empty[s]: one arrival per consumer warp once its warpgroup's wgmmas reading s completed.
// Per chunk a consumer warp: wait full, 2 LDS.128 + 2 LDS.32, A from lo16/hi16, 4 wgmma (first
// with scale-d = 0), wait_group 0, arrive empty, group epilogue into tot. The two warpgroups are
// not synchronized, so one's epilogue overlaps the other's wgmmas.
// Output (out_t: f32, or f16 with OUT_F16): with y_by_tma, through ymap (y as [M][N*OUT_B bytes], box {16*OUT_B bytes,
// 128 rows}, swizzle 64 B for f32 / 32 B for f16; needs N*OUT_B % 16 == 0) each warp writes its 128
// tokens x 16 rows of y into its own slot after the stages (token m at m*P, P = 16*OUT_B, 16-byte
// chunk c at c ^ ((m*P >> 7) & (P/16 - 1)), the TMA swizzle: f32 2-way bank conflicts instead of 4,
// f16 none) and one TMA store writes the slot (rows >= M and columns >= N clipped): +2-6% over direct
// stores at M = 4096 (docs/cuda-notes.md). Without (y_by_tma == 0; ymap unread), direct stores.
// The four maps are kernel parameters (by value, __grid_constant__: the TMA reads them in param space).
// Block: 2 consumer warpgroups + 1 producer warpgroup (384 threads; the producer warpgroup drops to 40
// registers per thread with setmaxnreg and the consumers rise to 232, so their 64 accumulators and 64
// totals never spill; one producer lane issues all copies), tile 128 weight rows x BT tokens (BT 128; 64 or 32 for
// a few rows: m64n64k32 / m64n32k32, ACC = BT/2 accumulators a thread, a quarter of the 128-token tile's MMA work at 32).
// Tiles t = 0 .. ceil(M/128)*ceil(N/128)-1, token tile t % m_tiles (fastest: consecutive tiles share
// a weight tile in L2), weight tile t / m_tiles; block b takes tiles b, b + gridDim.x, ... (1-D grid:
// one block per tile, or fewer, down to one per SM, persistent: the producer then runs into the next
// tile while the consumers store).
// Split-K (KS > 1, for grids with fewer tiles than SMs): work item t = ks * tiles + tile takes chunks
// [ks*chunks/KS, (ks+1)*chunks/KS) of the tile; each warp stores its 16 x BT partial totals to
// ws[ks][tile][warp][ACC][32 lanes] (coalesced), fences, and counts itself in cnt[tile][warp]; the
// warp that arrives last adds the KS partials in ks order (integer totals: exact in any order; float:
// the same order every run) and writes y as above, then resets the counter for the next launch.
// Requires K % 128 == 0, GROUP % 128 == 0, GROUP | K, rows padded to 128 (paddedRows), KS <= K/128.
#include "common.cuh"
#include "group-scale.cuh"
#include "wgmma.cuh"
#include "mbarrier.cuh"

#ifndef STAGES
#define STAGES 4
#endif
#ifndef IS_SHIFT
#define IS_SHIFT 1
#endif
#ifndef KS
#define KS 1  // K splits per tile (1: none)
#endif
#ifndef BT
#define BT 128                   // tokens per block: 128, or 64 / 32 for a few rows (m64n64 / m64n32, less MMA work wasted)
#endif
static_assert(BT == 128 || BT == 64 || BT == 32, "token tiles of 128, 64 or 32");
#define ACC (BT / 2)             // a consumer thread's accumulators (and totals) of its m64nBT fragment
#define BW 128                   // weight rows per block (2 warpgroups x 64)
#define TILES (BW / 16)          // 16-row weight tiles per block
#define CONSUMERS 256
#define X_BYTES (BT * 128)
#define W_BYTES (TILES * 1024)
#define S_BYTES (TILES * 64)
#define STAGE_BYTES (((X_BYTES + W_BYTES + S_BYTES) + 1023) & ~1023)
#define OUT_B ((int)sizeof(out_t))      // bytes per output (4: f32, 2: f16)
#define OUT_PITCH (16 * OUT_B)          // one token's 16 outputs of a warp's tile
#define OUT_SLOT 8192                   // one warp's 128 x 16 outputs (room for f32)
// dynamic shared bytes the host must pass: 1024 (alignment slack) + stages + output slots + barriers
#define SMEM_BYTES (1024 + STAGES * STAGE_BYTES + 8 * OUT_SLOT + STAGES * 16)
#define OFF_OUT (STAGES * STAGE_BYTES)
#define OFF_BAR (OFF_OUT + 8 * OUT_SLOT)  // full[s] at +16s, empty[s] at +16s+8

// Split-K: stores this warp's partial totals of (tile, ks), counts its arrival; the last of the KS
// warps of (tile, warp) sums all partials in ks order into tot and returns true, the others false.
__device__ __forceinline__ bool splitk_combine(tot_t (&tot)[ACC], tot_t* ws, int* cnt, int tile, int ks, int tiles, int warp, int lane) {
  const size_t part = (size_t)ACC * 32, unit = (size_t)tile * 8 + warp;
  tot_t* mine = ws + ((size_t)ks * tiles * 8 + unit) * part + lane;
#pragma unroll
  for (int i = 0; i < ACC; ++i) __stcg(mine + i * 32, tot[i]);
  __threadfence();
  __syncwarp();
  int before = 0;
  if (lane == 0) before = atomicAdd(cnt + unit, 1);
  if (__shfl_sync(0xffffffffu, before, 0) != KS - 1) return false;
  __threadfence();
#pragma unroll
  for (int i = 0; i < ACC; ++i) tot[i] = 0;
#pragma unroll 1
  for (int k = 0; k < KS; ++k) {
    const tot_t* p = ws + ((size_t)k * tiles * 8 + unit) * part + lane;
#pragma unroll
    for (int i = 0; i < ACC; ++i) tot[i] += __ldcg(p + i * 32);
  }
  if (lane == 0) cnt[unit] = 0;
  return true;
}

#define THREADS (CONSUMERS + 128)  // + the producer warpgroup (registers: 2 x 128 x 232 + 128 x 40 <= 64K)
extern "C" __global__ void __launch_bounds__(THREADS, 1)
w4a8_wgmma_tma(const __grid_constant__ TmaMap xmap, const __grid_constant__ TmaMap wmap, const __grid_constant__ TmaMap smap,
               const float* __restrict__ ascale, out_t* __restrict__ y, int M, int N, int K, float post,
               const __grid_constant__ TmaMap ymap, int y_by_tma, tot_t* __restrict__ ws, int* __restrict__ cnt) {
  extern __shared__ uint4 smem_raw[];
  const u32 sbase = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const int tid = threadIdx.x, lane = tid & 31;
  const int chunks = K >> 7, m_tiles = (M + BT - 1) / BT, tiles = m_tiles * ((N + BW - 1) / BW), items = tiles * KS;
  const u32 bars = sbase + OFF_BAR;
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(bars + 16 * s, 1);
      mbar_init(bars + 16 * s + 8, CONSUMERS / 32);
    }
    mbar_init_fence();
  }
  __syncthreads();

  // Stage s and its phase ph run on across tiles (the ring never restarts), so the producer fills
  // the next tile's first stages while the consumers still finish and store this one.
  if (tid >= CONSUMERS) {  // producer warpgroup: gives registers back; one lane issues the copies
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (tid == CONSUMERS) {
      int s = 0, ph = 0;
#pragma unroll 1
      for (int it = blockIdx.x; it < items; it += gridDim.x) {
        const int t = it % tiles, ks = it / tiles;
        const int m0 = (t % m_tiles) * BT, tile0 = (t / m_tiles) * TILES;
#pragma unroll 1
        for (int c = ks * chunks / KS; c < (ks + 1) * chunks / KS; ++c) {
          mbar_wait(bars + 16 * s + 8, ph ^ 1);  // stage free (passes at once on first use)
          const u32 st = sbase + s * STAGE_BYTES, full = bars + 16 * s;
          mbar_arrive_expect_tx(full, X_BYTES + W_BYTES + S_BYTES);
          tma_load_2d(st, &xmap, c * 128, m0, full);
          tma_load_3d(st + X_BYTES, &wmap, 0, 4 * c, tile0, full);
          tma_load_3d(st + X_BYTES + W_BYTES, &smap, 0, (c * 128) / GROUP, tile0, full);
          if (++s == STAGES) s = 0, ph ^= 1;
        }
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int warp = tid >> 5, gid = lane >> 2, tig = lane & 3;  // warp w (0..7) owns weight tile w of the block
  int s = 0, ph = 0;
#pragma unroll 1
  for (int it = blockIdx.x; it < items; it += gridDim.x) {
    const int t = it % tiles, ks = it / tiles;
    int acc[ACC];
    tot_t tot[ACC];
    zero_acc_tot(acc, tot);
#pragma unroll 1
    for (int c = ks * chunks / KS; c < (ks + 1) * chunks / KS; ++c) {
      mbar_wait(bars + 16 * s, ph);
      const u32 st = sbase + s * STAGE_BYTES;
      const uint4 w01 = lds128(st + X_BYTES + warp * 1024 + lane * 16);
      const uint4 w23 = lds128(st + X_BYTES + warp * 1024 + 512 + lane * 16);
      const u32 sc_row = st + X_BYTES + W_BYTES + warp * 64 + gid * 4;
      const scale_t s0 = bits_as<scale_t>(lds32(sc_row)), s1 = bits_as<scale_t>(lds32(sc_row + 32));
      u32 a[4][4];
      w4_a_fragments(a, w01, w23);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) wgmma_m64k32_s8_rs(acc, a[ks][0], a[ks][1], a[ks][2], a[ks][3], desc_sw128(st + ks * 32), ks);
      wgmma_commit();
      wgmma_wait<0>();
      __syncwarp();
      if (lane == 0) mbar_arrive(bars + 16 * s + 8);
      fence_regs(acc);
#pragma unroll
      for (int i = 0; i < ACC; ++i) add_group<IS_SHIFT ? 4 : 0>(tot[i], acc[i], (i & 2) ? s1 : s0);
      if (++s == STAGES) s = 0, ph ^= 1;
    }
    if (KS > 1 && !splitk_combine(tot, ws, cnt, t, ks, tiles, warp, lane)) continue;
    const int m0 = (t % m_tiles) * BT, n0 = ((t / m_tiles) * TILES + warp) * 16;
    if (!y_by_tma) {
      wgmma_store_y_swapped(tot, y, ascale, m0, n0, M, N, post);
      continue;
    }
    // the slot is free: the previous tile's TMA store returned only after reading it (tma_store_2d)
    const u32 slot = sbase + OFF_OUT + warp * OUT_SLOT;
#pragma unroll
    for (int j = 0; j < ACC / 4; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int m = 8 * j + 2 * tig + e;
        const float a = m0 + m < M ? __ldg(ascale + m0 + m) : 0.f;
        const u32 row = slot + m * OUT_PITCH, swz = ((m * OUT_PITCH) >> 7) & (OUT_PITCH / 16 - 1);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int nb = (gid + 8 * h) * OUT_B;  // byte of output row n in the token's pitch
          sts_out(row + ((((nb >> 4) ^ swz)) << 4) + (nb & 15), to_out(out_scale(tot[4 * j + 2 * h + e], a, post)));
        }
      }
    }
    fence_proxy_async();
    __syncwarp();
    if (lane == 0) tma_store_2d(&ymap, n0 * OUT_B, m0, slot);
    __syncwarp();
  }
}
