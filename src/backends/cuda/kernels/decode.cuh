// Helpers shared by the decode-shaped split-K kernels (w4a8-decode.cu, w8a8-decode.cu, w4a16-decode.cu):
// per-thread accumulators and group closing, token-row and int4 weight-row pointers and loads, the
// register double-buffered loop over a warp's 128-k chunks, and the cross-warp reduction with its
// epilogue. Sizes (NTW tiles, MT token halves, WK warps) come in as template parameters, deduced
// from the arrays where possible. Include after common.cuh.
#pragma once

// A thread's sums over its warp's k range, for NT 16-row tiles x MTK 8-token halves (mma C fragment
// of 4): acc = the open group's int32 sums, tot = the closed groups' totals (T = int for integer
// scales, float for float scales).
template <int NT, int MTK, typename T> struct DecodeAcc {
  int acc[NT][MTK][4];
  T tot[NT][MTK][4];
};

template <int NT, int MTK, typename T> __device__ __forceinline__ void decode_zero(DecodeAcc<NT, MTK, T>& st) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int mt = 0; mt < MTK; ++mt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        st.acc[nt][mt][i] = 0;
        st.tot[nt][mt][i] = 0;
      }
}

// Whether 128-k chunk c closes its group: the group's last chunk, or the last of the warp's range [c0, c1).
template <int GROUP_> __device__ __forceinline__ bool decode_closes(int c, int c1) { return ((c + 1) * 128) % GROUP_ == 0 || c + 1 == c1; }

// Scales of rows gid, gid+8 of tiles tile0.. for the group chunk c closes (layout sc[tile][g][16]),
// loaded with the chunk's data so their latency hides behind the chunk before; none if c closes none.
template <int GROUP_, int NT, typename T>
__device__ __forceinline__ void decode_load_scales(T (&s)[NT][2], const T* sc, int tile0, int NG, int gid, int c, int c1) {
  if (!decode_closes<GROUP_>(c, c1)) return;
  const int g = (c * 128) / GROUP_;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const T* sp = sc + ((size_t)(tile0 + nt) * NG + g) * 16;
    s[nt][0] = __ldg(sp + gid);
    s[nt][1] = __ldg(sp + gid + 8);
  }
}

// Closes the open group: tot += acc scaled by its row's scale s (add_group<SHIFT>), acc = 0.
template <int SHIFT, int NT, int MTK, typename T>
__device__ __forceinline__ void decode_close_group(DecodeAcc<NT, MTK, T>& st, const T (&s)[NT][2]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int mt = 0; mt < MTK; ++mt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        add_group<SHIFT>(st.tot[nt][mt][i], st.acc[nt][mt][i], s[nt][i >> 1]);
        st.acc[nt][mt][i] = 0;
      }
    }
  }
}

// Chunk c (128 k) of a warp's range [c0, c1) with the group bookkeeping around mma() (which adds the
// chunk's products into st.acc): a chunk that closes its group afterwards adds acc into tot with the
// group's scales s (decode_load_scales, loaded with the chunk).
template <int SHIFT, int GROUP_, int NT, int MTK, typename T, class Mma>
__device__ __forceinline__ void decode_chunk(DecodeAcc<NT, MTK, T>& st, const T (&s)[NT][2], int c, int c1, Mma mma) {
  mma();
  if (decode_closes<GROUP_>(c, c1)) decode_close_group<SHIFT>(st, s);
}

// Token rows of a thread: token mt*8 + gid, its 16 consecutive elements from tig*16 of each 64-k
// block (x [M, K] row-major, 16-byte aligned rows); rows >= M point at row 0 and are marked invalid.
template <int MTK, typename T>
__device__ __forceinline__ void decode_x_rows(const uint4* (&xp)[MTK], bool (&xv)[MTK], const T* x, int M, int K, int gid, int tig) {
#pragma unroll
  for (int mt = 0; mt < MTK; ++mt) {
    const int token = mt * 8 + gid;
    xv[mt] = token < M;
    xp[mt] = reinterpret_cast<const uint4*>(x + (size_t)(xv[mt] ? token : 0) * K + tig * 16);
  }
}

// int8 activations of chunk c: the 16 bytes of each of its two 64-k steps; zeros for invalid rows.
// Coherent loads: the kernel before this one wrote them (see decode_pipeline); with SHARED, plain loads from the
// block's own copy of the rows in shared memory (xp generic pointers into it; w4a8_decode_rows).
template <bool SHARED = false, int MTK>
__device__ __forceinline__ void decode_load_x8(uint4 (&x)[MTK][2], const uint4* const (&xp)[MTK], const bool (&xv)[MTK], int c) {
#pragma unroll
  for (int mt = 0; mt < MTK; ++mt) {
    if (xv[mt]) {
      x[mt][0] = SHARED ? xp[mt][c * 8] : ld_coherent(xp[mt] + c * 8);
      x[mt][1] = SHARED ? xp[mt][c * 8 + 4] : ld_coherent(xp[mt] + c * 8 + 4);
    } else {
      x[mt][0] = make_uint4(0, 0, 0, 0);
      x[mt][1] = make_uint4(0, 0, 0, 0);
    }
  }
}

// Repacked int4 weights (wq[tile][step][lane], 16 B per lane per 64-k step; repack.ts): the lane's
// unit of step 0 of each tile, and the streaming loads of chunk c (steps 2c, 2c+1).
template <int NT>
__device__ __forceinline__ void decode_w4_rows(const uint4* (&wp)[NT], const uint4* wq, int tile0, int steps, int lane) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) wp[nt] = wq + (size_t)(tile0 + nt) * steps * 32 + lane;
}
template <int NT> __device__ __forceinline__ void decode_load_w4(uint4 (&w)[NT][2], const uint4* const (&wp)[NT], int c) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    w[nt][0] = ld_stream(wp[nt] + (c * 2) * 32);
    w[nt][1] = ld_stream(wp[nt] + (c * 2 + 1) * 32);
  }
}

// A warp's chunks [c0, c1), double-buffered in registers: loadW(buf, c) loads chunk c's weights and
// scales (constant), loadX(buf, c) its activations (written by the kernel before this one),
// compute(buf, c) consumes the buffer; chunk c+1's loads are issued before chunk c is computed.
// Programmatic dependent launch: the kernel lets the next one launch at once, and loads its first
// chunk's weights before pdl_wait, so that with a launch that overlaps the previous kernel
// (LaunchOptions.overlapPrevious) they stream while that kernel finishes; activations, and every
// store, come after the wait. Without the overlap both calls are no-ops. (Two chunks' weights before
// the wait, with the loop's first load moved, was 0.5-1 µs slower at M = 16 on the H100: same-run
// A/B, docs/cuda-notes.md "Tenth session".) `wait` is that wait (PdlWait; a kernel that runs several GEMMs
// in one launch waits for its grid's previous stage there instead, bench/kernels/decode-chain.cu).
struct PdlWait {
  __device__ __forceinline__ void operator()() const { pdl_wait(); }
};
// PREW (a define, default 1): the chunks a warp loads before the wait, 1 or 2 (both register buffers); with the
// shared-memory pipeline below, up to STAGES slots. Same chunks in the same order either way: the same totals.
#ifndef PREW
#define PREW 1
#endif
template <class Buf, class LoadW, class LoadX, class Compute, class Wait = PdlWait>
__device__ __forceinline__ void decode_pipeline(int c0, int c1, Buf& a, Buf& b, LoadW loadW, LoadX loadX, Compute compute, Wait wait = {}) {
  pdl_launch_dependents();
  if (c0 < c1) loadW(a, c0);
  if (PREW > 1 && c0 + 1 < c1) loadW(b, c0 + 1);
  wait();
  if (c0 < c1) loadX(a, c0);
  for (int c = c0; c < c1; c += 2) {
    if (c + 1 < c1) {
      if (PREW == 1 || c != c0) loadW(b, c + 1);
      loadX(b, c + 1);
    }
    compute(a, c);
    if (c + 1 < c1) {
      if (c + 2 < c1) {
        loadW(a, c + 2);
        loadX(a, c + 2);
      }
      compute(b, c + 1);
    }
  }
}

// The shared-memory pipeline (STAGES > 0 in the decode kernels): each warp streams its chunks into its own
// STAGES slots with cp.async, so the bytes it keeps in flight cost shared memory instead of registers (the
// register pipeline above holds two chunks a warp, and its 58 registers allow two 512-thread blocks a SM).
// A warp's shared memory (decodeSharedBytes in decode-slots.ts computes the same size):
//   x:     (none with XREG: DecodeSlotX) its k range of each of the launch's M token rows, XS = RC·128 + 64 bytes apart (RC = the most
//          chunks a warp takes, ceil(chunks / WK); the 64-byte pad puts rows gid and gid + 1 on opposite
//          halves of the banks, so a quarter warp's 16-byte reads do not conflict);
//   slots: STAGES slots of NTW tiles, each the chunk's WB bytes of the tile's weights (W4: 1 KB, W8: 2 KB),
//          laid out so that a lane reads back the 16-byte units it copied, then the 64 B of the tile's 16
//          scales of the group the chunk closes.
// The kernels' knobs, defaults here for every decode kernel that takes them: MT token halves, NTW row tiles a
// block, WK k-warps a block, STAGES slots a warp (0: the register pipeline above), MINB blocks a SM for
// __launch_bounds__.
#ifndef MT
#define MT 1
#endif
#ifndef NTW
#define NTW 1
#endif
#ifndef WK
#define WK 8
#endif
#ifndef STAGES
#define STAGES 0
#endif
#ifndef MINB
#define MINB 1
#endif
// XREG (0 or 1, with STAGES): 1 keeps the activations out of shared memory (see DecodeSlotX below).
#ifndef XREG
#define XREG 0
#endif
#define DECODE_X_PAD 64
#define DECODE_SCALE_BYTES 64
struct DecodeSmem {
  unsigned char* x;
  unsigned char* slots;
  int xs;
};
template <int NT, int S, int WB>
__device__ __forceinline__ DecodeSmem decode_smem(unsigned char* base, int warp, int rows, int most_chunks) {
  const int xs = most_chunks * 128 + DECODE_X_PAD;
  unsigned char* w = base + (size_t)warp * (rows * xs + S * NT * (WB + DECODE_SCALE_BYTES));
  return {w, w + rows * xs, xs};
}
// Tile nt's part of slot `slot`: its weights, then its scales at + WB.
template <int NT, int WB> __device__ __forceinline__ unsigned char* decode_slot(const DecodeSmem& sm, int slot, int nt) {
  return sm.slots + (slot * NT + nt) * (WB + DECODE_SCALE_BYTES);
}

// The warp's k range [c0·128, c1·128) of each of the M token rows into sm.x, 16 bytes a lane at a time.
__device__ __forceinline__ void decode_issue_x(const DecodeSmem& sm, const signed char* xq, int M, int K, int c0, int c1, int lane) {
  const int units = (c1 - c0) * 8;
  for (int i = lane; i < M * units; i += 32) {
    const int r = i / units, u = i - r * units;
    cp_async16(smem_u32(sm.x + r * sm.xs + u * 16), xq + (size_t)r * K + c0 * 128 + u * 16, 16);
  }
}
// Chunk c's activations from sm.x as decode_load_x8 loads them from global memory (zeros for invalid rows).
template <int MTK>
__device__ __forceinline__ void decode_read_x(uint4 (&x)[MTK][2], const DecodeSmem& sm, const bool (&xv)[MTK], int c, int c0, int gid, int tig) {
#pragma unroll
  for (int mt = 0; mt < MTK; ++mt) {
    if (xv[mt]) {
      const uint4* row = reinterpret_cast<const uint4*>(sm.x + (mt * 8 + gid) * sm.xs + (c - c0) * 128 + tig * 16);
      x[mt][0] = row[0];
      x[mt][1] = row[4];
    } else {
      x[mt][0] = x[mt][1] = make_uint4(0, 0, 0, 0);
    }
  }
}
// The 64 B of scales of each tile for the group chunk c closes (none if it closes none; sc[tile][g][16]),
// copied by lanes 0-3 into the slot, and read back by every lane as decode_load_scales loads them.
template <int GROUP_, int NT, int WB, typename T>
__device__ __forceinline__ void decode_issue_scales(const DecodeSmem& sm, int slot, const T* sc, int tile0, int NG, int c, int c1, int lane) {
  if (lane >= 4 || !decode_closes<GROUP_>(c, c1)) return;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
    cp_async16(smem_u32(decode_slot<NT, WB>(sm, slot, nt) + WB + lane * 16), sc + ((size_t)(tile0 + nt) * NG + (c * 128) / GROUP_) * 16 + lane * 4, 16);
}
template <int GROUP_, int NT, int WB, typename T>
__device__ __forceinline__ void decode_read_scales(T (&s)[NT][2], const DecodeSmem& sm, int slot, int c, int c1, int gid) {
  if (!decode_closes<GROUP_>(c, c1)) return;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const T* sp = reinterpret_cast<const T*>(decode_slot<NT, WB>(sm, slot, nt) + WB);
    s[nt][0] = sp[gid];
    s[nt][1] = sp[gid + 8];
  }
}

// The slotted pipeline's activations. XREG 0: the warp's k range of the M rows copied once into its shared memory
// (decode_issue_x, after the wait) and read back a chunk at a time (decode_read_x). XREG 1: only the weights and
// scales go through the slots; the activations reach registers as the register pipeline loads them, one chunk ahead
// (two chunks' worth live), and take no shared memory (decode_smem's rows 0). For 17-32 rows, where the rows' k
// ranges would fill the shared memory of two blocks a SM, while the slots keep STAGES chunks of weights in flight a
// warp instead of the register pipeline's one or two.
template <int MTK> struct DecodeSlotX {
  uint4 next[MTK][2];  // XREG: the activations of the chunk after the one being computed
  __device__ __forceinline__ void issue(const DecodeSmem& sm, const signed char* xq, const uint4* const (&xp)[MTK], const bool (&xv)[MTK],
                                        int M, int K, int c0, int c1, int lane) {
#if XREG
    if (c0 < c1) decode_load_x8(next, xp, xv, c0);
#else
    decode_issue_x(sm, xq, M, K, c0, c1, lane);
#endif
  }
  __device__ __forceinline__ void read(uint4 (&x)[MTK][2], const DecodeSmem& sm, const uint4* const (&xp)[MTK], const bool (&xv)[MTK],
                                       int c, int c0, int c1, int gid, int tig) {
#if XREG
#pragma unroll
    for (int mt = 0; mt < MTK; ++mt) x[mt][0] = next[mt][0], x[mt][1] = next[mt][1];
    if (c + 1 < c1) decode_load_x8(next, xp, xv, c + 1);
#else
    decode_read_x(x, sm, xv, c, c0, gid, tig);
#endif
  }
};

// A warp's chunks [c0, c1) through S shared-memory slots: issueW(slot, c) starts chunk c's weight and
// scale copies (cp.async), issueX() the warp's activation rows (once, after pdl_wait: the kernel before
// wrote them), compute(slot, c) consumes a landed slot. One commit group a chunk (empty past the last,
// so the wait count stays S - 1); the slot is refilled only after every lane has read it.
// With PREW > 1 the first P = min(PREW, S) slots are issued before pdl_wait (groups W0 .. W(P-1), then X, then the
// rest), and the first chunk waits for every group (X among them); each later chunk c0 + j (j ≥ 1) finds its
// slot in the first j + 2 groups, which wait<S - 1> guarantees as before. With XREG the X group is empty, so the
// first chunk waits only for W0 (at most S groups pending).
template <int S, class IssueW, class IssueX, class Compute>
__device__ __forceinline__ void decode_pipeline_async(int c0, int c1, IssueW issueW, IssueX issueX, Compute compute) {
  constexpr int P = PREW < S ? PREW : S;
  pdl_launch_dependents();
#pragma unroll
  for (int s = 0; s < P; ++s) {
    if (c0 + s < c1) issueW(s, c0 + s);
    cp_async_commit();
  }
  pdl_wait();
  issueX();
  cp_async_commit();
#pragma unroll
  for (int s = P; s < S; ++s) {
    if (c0 + s < c1) issueW(s, c0 + s);
    cp_async_commit();
  }
  int slot = 0;
  for (int c = c0; c < c1; ++c) {
    if (XREG && c == c0) cp_async_wait<S>();
    else if (P > 1 && c == c0) cp_async_wait<0>();
    else cp_async_wait<S - 1>();
    __syncwarp();
    compute(slot, c);
    __syncwarp();
    if (c + S < c1) issueW(slot, c + S);
    cp_async_commit();
    slot = slot + 1 == S ? 0 : slot + 1;
  }
}

// The cross-warp reduction's first half: every warp's totals into shared red[warp][element][lane]
// (element (nt·MTK + mt)·4 + i: C fragment element i of tile nt, half mt), then a barrier.
template <int WK_, int NT, int MTK, typename T>
__device__ __forceinline__ void decode_stage(T (&red)[WK_][NT * MTK * 4][32], const T (&tot)[NT][MTK][4], int warp, int lane) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int mt = 0; mt < MTK; ++mt)
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp][(nt * MTK + mt) * 4 + i][lane] = tot[nt][mt][i];
  __syncthreads();
}

// Element e of lane l summed over the warps in warp order (the order every epilogue's totals take).
template <int WK_, int E, typename T>
__device__ __forceinline__ T decode_warp_sum(const T (&red)[WK_][E][32], int e, int l) {
  T sum = red[0][e][l];
#pragma unroll
  for (int w = 1; w < WK_; ++w) sum += red[w][e][l];
  return sum;
}

// Cross-warp reduction through shared red[warp][element][lane] (warp order), then the epilogue:
// out(token, n, sum) for each in-range output (C fragment element i of tile nt, half mt, lane l:
// row n = (tile0+nt)*16 + l/4 + 8*(i>=2), token = mt*8 + 2*(l%4) + (i&1)). Threads: WK_ warps.
template <int WK_, int NT, int MTK, typename T, class Out>
__device__ __forceinline__ void decode_reduce(T (&red)[WK_][NT * MTK * 4][32], const T (&tot)[NT][MTK][4], int warp, int lane,
                                              int tile0, int M, int N, Out out) {
  constexpr int E = NT * MTK * 4;
  decode_stage(red, tot, warp, lane);
  for (int idx = threadIdx.x; idx < E * 32; idx += WK_ * 32) {
    const int e = idx >> 5, l = idx & 31;
    const T sum = decode_warp_sum(red, e, l);
    const int nt = e / (MTK * 4), mt = (e >> 2) % MTK, i = e & 3;
    const int n = (tile0 + nt) * 16 + (l >> 2) + (i >= 2 ? 8 : 0);
    const int token = mt * 8 + (l & 3) * 2 + (i & 1);
    if (token < M && n < N) out(token, n, sum);
  }
}

// SwiGLU's epilogue over gate/up rows interleaved in blocks of 8 (concat.ts): rows 0-7 of a 16-row tile
// are gate rows j0..j0+7 (j0 = 8·tile), rows 8-15 their up rows. The cross-warp sums as decode_reduce
// (the same order, so the same totals), then out(token, j, gate total, up total) for each in-range pair
// (C fragment elements i and i + 2 of a lane: j = (tile0+nt)·8 + l/4, token = mt·8 + 2·(l%4) + i).
template <int WK_, int NT, int MTK, typename T, class Out>
__device__ __forceinline__ void decode_reduce_pairs(T (&red)[WK_][NT * MTK * 4][32], const T (&tot)[NT][MTK][4], int warp, int lane,
                                                    int tile0, int M, int N, Out out) {
  constexpr int E = NT * MTK * 4;
  decode_stage(red, tot, warp, lane);
  for (int idx = threadIdx.x; idx < (E / 2) * 32; idx += WK_ * 32) {
    const int p = idx >> 5, l = idx & 31;
    const int nt = p / (MTK * 2), mt = (p >> 1) % MTK, i = p & 1;
    const int e = (nt * MTK + mt) * 4 + i;
    const T g = decode_warp_sum(red, e, l), u = decode_warp_sum(red, e + 2, l);
    const int row = (tile0 + nt) * 16 + (l >> 2);
    const int token = mt * 8 + (l & 3) * 2 + i;
    if (token < M && row < N) out(token, (tile0 + nt) * 8 + (l >> 2), g, u);
  }
}
