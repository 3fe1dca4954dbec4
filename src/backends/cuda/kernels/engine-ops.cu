// The small ops of the CUDA decode engine (decode-engine.ts), in float32 arithmetic: the engine's
// fast path (model-ops.cu and attention.cu keep the float64 reference). Each fuses what a step
// repeats, so a LLaMA layer is 12 launches (4 GEMMs among them; 10 in a decode step with rope and SwiGLU folded in, 6 with the
// tails too, decode-engine.ts) instead of about 20:
//
//   gather_rows      out[r, :] = table[index[stride·r], :]  (the embedding: table E, index the rows'
//                    tokens, stride 4; the lm_head's rows of a prefill: table h, index the picked rows)
//   rmsnorm_to       y[r, :] = (x[r, :] ⊙ w) · inv_r,  inv_r = 1 / sqrt(Σ x[r, :]² / dim + eps),
//                    written in the form the next linear reads (FORM below)
//   silu_mul_rows    grid (m, ⌈F/1024⌉), 256 threads: y[r, j] = g[r, j] / (1 + e^(−g[r, j])) · u[r, j]
//                    (f32; g, u: column ranges of one GEMM output, row stride ld, or its gate/up rows
//                    interleaved by 8), amax[r, block] = max |y|
//   rope_kv_write    grid (m, H + KVH): q heads rotated in place; k heads rotated and, with v, stored
//                    as fp16 in the row's KV cache at its position. Half-split pairs (i, i + D/2),
//                    angle = pos · inv_freq[i]:  a' = a·cos − b·sin,  b' = b·cos + a·sin
//   attention_split  grid (m, H, S), 128 threads: block s takes the positions [s·chunk, (s+1)·chunk)
//                    ∩ [first, pos] of its row, warp w every 4th of them from the w-th (an online
//                    softmax per warp, lanes split d, scores summed by shuffles), and writes
//                    part[r][h][s] = { max, Σ e, Σ e·V[0..D) } (float32) for the warps combined.
//                    Decode fold (k_new, v_new given: each row its sequence's one new position p, so no
//                    other row reads p): q rotated in the kernel, the block whose range ends at p rotates
//                    the new key, rounds key and value to fp16 and reads them from registers at t = p, and
//                    the kv group's first head stores them (rope_kv_write's work, the same floats).
//                    Merge fold (MERGE_FOLD 1): the last split block of each (row, head) to finish merges
//                    it as attention_merge would (merge_if_last; a counter a head, no waiting)
//   attention_merge  grid (m, H), 128 threads: y[r, h·D + d] = Σ_s w_s·acc_s[d] / Σ_s w_s·l_s (f32),
//                    w_s = e^(max_s − max), over the row's non-empty splits; amax[r, h] = max_d |y|;
//                    optionally the rows in FORM by its last blocks (quantize_rows' work, no launch of its own)
//   quantize_rows    grid (m, ⌈K/1024⌉), 256 threads: y [m, K] in FORM, a = max over amax[r, 0..P) / 127
//                    (P > 64 partial maxima, the SwiGLU GEMM epilogue's one a block, are read by the
//                    block's threads together)
//   argmax_rows      grid (m), 1024 threads: out[r] = the smallest j with x[r, j] = max_j x[r, j] (greedy
//                    sampling on the device, the host's tie rule; a row of NaN or −inf gives 0)
//
// rmsnorm_to, attention_split[_v8], attention_merge and quantize_rows let the next kernel launch at once and wait
// for the kernel before them (pdl_launch_dependents, pdl_wait: no-ops unless launched to overlap, LaunchOptions.overlapPrevious;
// the engine's overlapSmallOps), so each may be launched to overlap the kernel before it.
// rmsnorm_to runs one block of 1024 threads per row, the row held in registers (read once; rows of up
// to 32768 values, a multiple of 4); attention_merge, silu_mul_rows and quantize_rows spread a row over
// blocks (the row's max |y| passes from the producer to quantize_rows through amax).
// FORM of a row written for the next linear, and RMSNorm's order of sums: row-form.cuh.
// Rows: rows[4r .. 4r+2] = { token, position, KV slot } of row r, in device memory (so one captured
//   graph serves every step, and a batch's rows may belong to different sequences).
//   kv[(slot·L + layer)·2 + 0|1] hold the addresses of the slot's key and value caches of a layer,
//   each [capacity][KVH][D] fp16.
// Layouts: float32 row-major; q, k/v and g/u are views into GEMM outputs with row strides (elements).
#include "common.cuh"
#include "row-form.cuh"
#include "row-argmax.cuh"

#define NEG_INF __int_as_float(0xff800000)
#ifndef MERGE_FOLD
#define MERGE_FOLD 0
#endif
#ifndef D_MAX
#define D_MAX 256
#endif
// most splits attention_merge takes (decode-engine.ts ENGINE_MAX_SPLITS)
#define MAX_SPLITS 64

// rmsnorm_to: one block of ROW_THREADS per row; each thread holds up to ROW_VEC float4 of the row in
// registers, so the row is read once (rows up to 4·ROW_THREADS·ROW_VEC).
#define ROW_THREADS 1024

extern "C" __global__ void __launch_bounds__(256)
gather_rows(const float* __restrict__ table, const int* __restrict__ index, int stride, float* __restrict__ out, int dim) {
  const float4* src = reinterpret_cast<const float4*>(table + (size_t)index[stride * blockIdx.x] * dim);
  float4* dst = reinterpret_cast<float4*>(out + (size_t)blockIdx.x * dim);
  for (int i = threadIdx.x; i < (dim >> 2); i += blockDim.x) dst[i] = src[i];
}

extern "C" __global__ void __launch_bounds__(ROW_THREADS)
rmsnorm_to(const float* __restrict__ x, const float* __restrict__ w, void* __restrict__ out, float* __restrict__ scales, int dim, float eps, int form) {
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x, n4 = dim >> 2;
  const float4* xr = reinterpret_cast<const float4*>(x + (size_t)r * dim);
  float4 v[ROW_VEC];
  const float2 f = rms_factors(rms_stats<1>([&](int i) { return xr[i]; }, reinterpret_cast<const float4*>(w), n4, [&](int j, float4 y) { v[j] = y; }), dim, eps);
  if (threadIdx.x == 0 && form < 2) scales[r] = f.y;
#pragma unroll
  for (int j = 0; j < ROW_VEC; ++j) {
    const int i = threadIdx.x + j * ROW_THREADS;
    if (i < n4) store4(out, r, dim, form, i, scale4(v[j], f.x), f.y);
  }
}

// Grid (m, ceil(F / 1024)), 256 threads, a float4 each: y = silu(g)·u to the f32 row scratch, the
// block's max |y| to amax[r·gridDim.y + blockIdx.y]; quantize_rows writes the row in FORM. (One block of
// 1024 per row was bound by its own instruction issue on one SM: ~4 µs of a 7B decode layer, H100.)
// interleaved = 1: g = u = one gate/up output whose rows came interleaved in blocks of 8 (concat.ts):
// g[j] at column 16·(j/8) + j%8, u[j] 8 columns after it.
extern "C" __global__ void __launch_bounds__(256)
silu_mul_rows(const float* __restrict__ g, const float* __restrict__ u, int ld, int F, float* __restrict__ y, float* __restrict__ amax, int interleaved) {
  const int r = blockIdx.x, i4 = blockIdx.y * blockDim.x + threadIdx.x;
  float mx = 0.f;
  if (i4 < (F >> 2)) {
    const int gc = interleaved ? ((i4 >> 1) << 4) + ((i4 & 1) << 2) : i4 << 2, uc = interleaved ? gc + 8 : gc;
    const float4 a = *reinterpret_cast<const float4*>(g + (size_t)r * ld + gc), b = *reinterpret_cast<const float4*>(u + (size_t)r * ld + uc);
    const float4 v = make_float4(silu_mul1(a.x, b.x), silu_mul1(a.y, b.y), silu_mul1(a.z, b.z), silu_mul1(a.w, b.w));
    reinterpret_cast<float4*>(y + (size_t)r * F)[i4] = v;
    mx = absmax4(v);
  }
  mx = block_max(mx);
  if (threadIdx.x == 0) amax[(size_t)r * gridDim.y + blockIdx.y] = mx;
}

// Rotary embedding of a head x[0, D) at angle (c, s) = cos, sin of pos · inv_freq[i] for the pair (i, i + D/2)
// (half-split pairs: a = x[i], b = x[i + D/2]; a' = a·c − b·s, b' = b·c + a·s), every product and the sum
// rounded on its own (no fused multiply-add): rope_kv_write and attention_split's decode fold both call
// these, so a key or query rotated by either is the same float.
__device__ __forceinline__ float rope_lo(float a, float b, float c, float s) { return __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s)); }
__device__ __forceinline__ float rope_hi(float a, float b, float c, float s) { return __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s)); }

extern "C" __global__ void __launch_bounds__(128)
rope_kv_write(float* __restrict__ q, int ldq, const float* __restrict__ k, const float* __restrict__ v, int ldkv,
              const float* __restrict__ inv_freq, const int* __restrict__ rows, const unsigned long long* __restrict__ kv, int layer, int L,
              int H, int KVH, int D) {
  const int r = blockIdx.x, hh = blockIdx.y, i = threadIdx.x, half = D >> 1;
  if (i >= half) return;
  const int p = rows[4 * r + 1];
  float s, c;
  sincosf((float)p * inv_freq[i], &s, &c);
  if (hh < H) {
    float* x = q + (size_t)r * ldq + (size_t)hh * D;
    const float a = x[i], b = x[i + half];
    x[i] = rope_lo(a, b, c, s);
    x[i + half] = rope_hi(a, b, c, s);
    return;
  }
  const int g = hh - H;
  const size_t at = ((size_t)p * KVH + g) * D;
  const unsigned long long* cache = kv + ((size_t)rows[4 * r + 2] * L + layer) * 2;
  half_t* keys = reinterpret_cast<half_t*>(cache[0]) + at;
  half_t* values = reinterpret_cast<half_t*>(cache[1]) + at;
  const float* kr = k + (size_t)r * ldkv + (size_t)g * D;
  const float* vr = v + (size_t)r * ldkv + (size_t)g * D;
  const float a = kr[i], b = kr[i + half];
  keys[i] = f2h(rope_lo(a, b, c, s));
  keys[i + half] = f2h(rope_hi(a, b, c, s));
  values[i] = f2h(vr[i]);
  values[i + half] = f2h(vr[i + half]);
}

// Each warp owns every 4th position of the block's range and the lane owns the head dimensions
// d = 2·lane + 64·j (pairs of halves, j < PAIRS): a score is the lane's partial dot summed over the
// warp by shuffles, so a warp runs its own online softmax with no barrier per position; UNROLL
// positions at a time keep that many K and V rows in flight. The four warps' (max, sum, acc) are
// combined through shared memory at the end.
#define PAIRS (D_MAX / 64)
#define UNROLL 4
// The positions split s of row r takes: [lo, hi) = [s·chunk, (s+1)·chunk) ∩ [first, p], p the row's position,
// first = p − window + 1 with a sliding window (else 0). Empty (lo ≥ hi) for a split past p.
struct SplitRange { int p, lo, hi; };
__device__ __forceinline__ SplitRange split_range(const int* rows, int window, int chunk, int r, int s) {
  const int p = rows[4 * r + 1];
  const int first = window > 0 ? max(0, p - window + 1) : 0;
  return { p, max(first, s * chunk), min(p + 1, (s + 1) * chunk) };
}

// Where head h of row r finds its keys and values in layer `layer`'s cache (kv: the slot table, kv[(slot·L + layer)·2
// + 0|1]; rows[4r + 2] the row's slot): its kv group g = h / (H/KVH), a position's stride `row` = KVH·D halves, and
// the group's keys and values at position 0 (a position t at + t·row).
struct SplitKv {
  int g;
  size_t row;
  half_t *keys, *values;
};
__device__ __forceinline__ SplitKv split_kv(const unsigned long long* kv, const int* rows, int r, int layer, int L, int h, int H, int KVH, int D) {
  const unsigned long long* cache = kv + ((size_t)rows[4 * r + 2] * L + layer) * 2;
  const int g = h / (H / KVH);
  const size_t kvo = (size_t)g * D;
  return { g, (size_t)KVH * D, reinterpret_cast<half_t*>(cache[0]) + kvo, reinterpret_cast<half_t*>(cache[1]) + kvo };
}

// The decode fold's prologue of attention_split and attention_split_v8 (kr, vr: the row's new key and value of
// its kv group): thread i of the block rotates the pair (i, i + D/2) of q into q_rot (one sincosf, as
// rope_kv_write's thread i) and, where the block holds the new position (fresh), of the key into k_rot, rounded
// to fp16 as the cache holds it, with the value into v_new_h. The caller synchronizes before reading them.
__device__ __forceinline__ void fold_prologue(const float* qh, const float* kr, const float* vr, const float* inv_freq, int p, int half, bool fresh,
                                              float* q_rot, half_t* k_rot, half_t* v_new_h) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float sn, cs;
    sincosf((float)p * inv_freq[i], &sn, &cs);
    q_rot[i] = rope_lo(qh[i], qh[i + half], cs, sn);
    q_rot[i + half] = rope_hi(qh[i], qh[i + half], cs, sn);
    if (fresh) {
      k_rot[i] = f2h(rope_lo(kr[i], kr[i + half], cs, sn));
      k_rot[i + half] = f2h(rope_hi(kr[i], kr[i + half], cs, sn));
      v_new_h[i] = f2h(vr[i]);
      v_new_h[i + half] = f2h(vr[i + half]);
    }
  }
}

// A split's partial from its four warps' (max, sum, acc) in shared memory: M = the largest max, each warp
// rescaled by e^(m_w − M) (a warp without positions: m_w = −inf, weight 0); out = { M, Σ w·l, Σ w·acc[0..D) }.
__device__ __forceinline__ void write_split_partial(const float* m_of, const float* l_of, const float (*acc_of)[D_MAX], float* out, int D) {
  const float M = fmaxf(fmaxf(m_of[0], m_of[1]), fmaxf(m_of[2], m_of[3]));
  float w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) w[i] = m_of[i] == NEG_INF ? 0.f : expf(m_of[i] - M);
  if (threadIdx.x == 0) {
    out[0] = M;
    out[1] = w[0] * l_of[0] + w[1] * l_of[1] + w[2] * l_of[2] + w[3] * l_of[3];
  }
  for (int d = threadIdx.x; d < D; d += 128) out[2 + d] = w[0] * acc_of[0][d] + w[1] * acc_of[1][d] + w[2] * acc_of[2][d] + w[3] * acc_of[3][d];
}

// The merge of head h of row r (attention_merge's block, or the last split block of the head with the merge
// fold): warp 0 forms the split weights (lanes over splits, shuffles), then thread d: y = Σ_s fmaf(w_s, acc_s[d])
// over s ascending · (1 / Σ_s w_s·l_s) into the f32 row scratch, and the head's max |y| to amax[r·H + h]. L2: the
// partials read through L2 (other blocks of the same launch wrote them; merge_if_last).
template <bool L2>
__device__ __forceinline__ void merge_head(const float* part, float* y, float* amax, const int* rows, int r, int h, int H, int D, int S, int chunk,
                                          int window) {
  __shared__ float w[MAX_SPLITS];
  __shared__ float inv_l;
  const int tid = threadIdx.x, lane = tid & 31;
  const auto ld = [](const float* a) { return L2 ? __ldcg(a) : *a; };
  const int p = rows[4 * r + 1];
  const int first = window > 0 ? max(0, p - window + 1) : 0;
  const int s0 = first / chunk, s1 = p / chunk;  // the splits holding positions: [s0, s1]
  const float* ph = part + ((size_t)r * H + h) * S * (D + 2);
  if (tid < 32) {
    float mj[MAX_SPLITS / 32], lj[MAX_SPLITS / 32];
#pragma unroll
    for (int j = 0; j < MAX_SPLITS / 32; ++j) {
      const int s = s0 + lane + 32 * j;
      mj[j] = s <= s1 ? ld(ph + (size_t)s * (D + 2)) : NEG_INF;
      lj[j] = s <= s1 ? ld(ph + (size_t)s * (D + 2) + 1) : 0.f;
    }
    float M = NEG_INF;
#pragma unroll
    for (int j = 0; j < MAX_SPLITS / 32; ++j) M = fmaxf(M, mj[j]);
    for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < MAX_SPLITS / 32; ++j) {
      const int s = s0 + lane + 32 * j;
      if (s <= s1) {
        const float e = expf(mj[j] - M);
        w[s - s0] = e;
        sum = fmaf(e, lj[j], sum);
      }
    }
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (lane == 0) inv_l = 1.f / sum;
  }
  __syncthreads();
  float mx = 0.f;
  for (int d = tid; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int s = s0; s <= s1; ++s) acc = fmaf(w[s - s0], ld(ph + (size_t)s * (D + 2) + 2 + d), acc);
    acc *= inv_l;
    y[(size_t)r * H * D + (size_t)h * D + d] = acc;
    mx = fmaxf(mx, fabsf(acc));
  }
  mx = block_max(mx);
  if (tid == 0) amax[(size_t)r * H + h] = mx;
}

// The merge fold (attention_split[_v8] compiled with MERGE_FOLD 1; `merged`: counters, one a (row, head), zero between
// launches; y, amax: attention_merge's outputs. Without it the three arguments are unused): every
// split block holding positions counts itself in after its partial is stored, and the last of the head's splits
// to arrive merges the head (merge_head: attention_merge's work and bytes, no launch of its own), after setting the
// counter back to zero. No block waits for another.
__device__ __forceinline__ void merge_if_last(const float* part, float* y, float* amax, const int* rows, unsigned* merged, int r, int h, int H, int D,
                                             int S, int chunk, int window, int p) {
  __shared__ bool last;
  __threadfence();  // this block's partial, before it counts in
  __syncthreads();
  if (threadIdx.x == 0) {
    const int first = window > 0 ? max(0, p - window + 1) : 0;
    const unsigned splits = (unsigned)(p / chunk - first / chunk + 1);
    unsigned* count = merged + (size_t)r * H + h;
    last = atomicAdd(count, 1u) == splits - 1;
    if (last) *count = 0;  // every split of the head has counted in: none touches it again in this launch
  }
  __syncthreads();
  if (!last) return;
  __threadfence();  // the other splits' partials, after their count
  merge_head<true>(part, y, amax, rows, r, h, H, D, S, chunk, window);
}

// What both attention kernels set up for head h of row r once their split holds positions: the head's keys and
// values (split_kv), its q row (qh, or with the decode fold — k_new given — q rotated into the kernel's shared
// q_rot by fold_prologue, with the new key and value into k_rot / v_new_h where the split holds the new position,
// `fresh`, then a barrier).
struct SplitHead {
  SplitKv c;
  const float* q;
  bool fresh;
};
__device__ __forceinline__ SplitHead split_head(const float* q, int ldq, const int* rows, const unsigned long long* kv, int layer, int L, int r, int h, int H,
                                                int KVH, int D, const SplitRange& sr, const float* k_new, const float* v_new, int ldkv,
                                                const float* inv_freq, float* q_rot, half_t* k_rot, half_t* v_new_h) {
  const SplitKv c = split_kv(kv, rows, r, layer, L, h, H, KVH, D);
  const float* qh = q + (size_t)r * ldq + (size_t)h * D;
  const bool fold = k_new != nullptr, fresh = fold && sr.hi == sr.p + 1;
  if (fold) {
    fold_prologue(qh, k_new + (size_t)r * ldkv + (size_t)c.g * D, v_new + (size_t)r * ldkv + (size_t)c.g * D, inv_freq, sr.p, D >> 1, fresh, q_rot, k_rot, v_new_h);
    __syncthreads();
  }
  return {c, fold ? q_rot : qh, fresh};
}

extern "C" __global__ void __launch_bounds__(128)
attention_split(const float* __restrict__ q, int ldq, float* __restrict__ part, const int* __restrict__ rows,
                const unsigned long long* __restrict__ kv, int layer, int L, int H, int KVH, int D, int window, int chunk,
                const float* __restrict__ k_new, const float* __restrict__ v_new, int ldkv, const float* __restrict__ inv_freq,
                float* __restrict__ y, float* __restrict__ amax, unsigned* __restrict__ merged) {
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x, h = blockIdx.y, s = blockIdx.z, S = gridDim.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const SplitRange sr = split_range(rows, window, chunk, r, s);
  const int p = sr.p, lo = sr.lo, hi = sr.hi;  // positions [lo, hi)
  float* out = part + (((size_t)r * H + h) * S + s) * (D + 2);
  if (lo >= hi) return;  // attention_merge reads only the splits holding positions (and only they count in, merge_if_last)
  // the decode fold (k_new given): q rotated here, and the new position's key (rotated) and value
  // rounded to fp16 as the cache holds them, taken from registers at t = p instead of the cache. Thread i
  // of the block rotates the pair (i, i + D/2) once (one sincosf, as rope_kv_write's thread i) into shared
  // memory, where every warp reads its dimensions.
  __shared__ float q_rot[D_MAX];
  __shared__ half_t k_rot[D_MAX], v_new_h[D_MAX];
  const SplitHead sh = split_head(q, ldq, rows, kv, layer, L, r, h, H, KVH, D, sr, k_new, v_new, ldkv, inv_freq, q_rot, k_rot, v_new_h);
  const SplitKv& c = sh.c;
  const bool fresh = sh.fresh;
  const float scale = 1.f / sqrtf((float)D);
  float2 qv[PAIRS], acc[PAIRS];
  unsigned k_p[PAIRS], v_p[PAIRS];
#pragma unroll
  for (int j = 0; j < PAIRS; ++j) {
    const int d = 2 * lane + 64 * j;
    acc[j] = make_float2(0.f, 0.f);
    k_p[j] = v_p[j] = 0u;
    if (d >= D) {
      qv[j] = make_float2(0.f, 0.f);
      continue;
    }
    const float* qs = sh.q;
    qv[j] = make_float2(qs[d] * scale, qs[d + 1] * scale);
    if (fresh) {
      k_p[j] = (unsigned)k_rot[d] | (unsigned)k_rot[d + 1] << 16;
      v_p[j] = (unsigned)v_new_h[d] | (unsigned)v_new_h[d + 1] << 16;
    }
  }
  if (fresh && warp == 0 && h % (H / KVH) == 0) {  // the kv group's first head stores the new key and value
    unsigned* kc = reinterpret_cast<unsigned*>(c.keys + (size_t)p * c.row);
    unsigned* vc = reinterpret_cast<unsigned*>(c.values + (size_t)p * c.row);
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) {
      const int d = 2 * lane + 64 * j;
      if (d < D) {
        kc[d >> 1] = k_p[j];
        vc[d >> 1] = v_p[j];
      }
    }
  }
  float mx = NEG_INF, l = 0.f;
  for (int t0 = lo + warp; t0 < hi; t0 += 4 * UNROLL) {
    // the K and V words of UNROLL positions loaded first, so both kinds of load are in flight together
    unsigned kw[UNROLL][PAIRS], vw[UNROLL][PAIRS];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int t = t0 + 4 * u;
      const unsigned* kr = reinterpret_cast<const unsigned*>(c.keys + (size_t)t * c.row);
      const unsigned* vr = reinterpret_cast<const unsigned*>(c.values + (size_t)t * c.row);
#pragma unroll
      for (int j = 0; j < PAIRS; ++j) {
        const int d = 2 * lane + 64 * j;
        const bool in = t < hi && d < D, at_p = fresh && t == p;
        kw[u][j] = at_p ? k_p[j] : in ? kr[d >> 1] : 0u;
        vw[u][j] = at_p ? v_p[j] : in ? vr[d >> 1] : 0u;
      }
    }
    float sc[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      float dot = 0.f;
#pragma unroll
      for (int j = 0; j < PAIRS; ++j)
        dot = fmaf(qv[j].x, h2f((half_t)(kw[u][j] & 0xffff)), fmaf(qv[j].y, h2f((half_t)(kw[u][j] >> 16)), dot));
      sc[u] = dot;
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      for (int o = 16; o > 0; o >>= 1) sc[u] += __shfl_xor_sync(0xffffffffu, sc[u], o);
      if (t0 + 4 * u >= hi) sc[u] = NEG_INF;
    }
    float nm = mx;
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) nm = fmaxf(nm, sc[u]);
    const float c = expf(mx - nm);  // mx = −inf on the first positions: 0
    l *= c;
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) acc[j] = make_float2(acc[j].x * c, acc[j].y * c);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const float e = expf(sc[u] - nm);  // 0 past hi (sc = −inf), where vw is 0 too
      l += e;
#pragma unroll
      for (int j = 0; j < PAIRS; ++j) {
        acc[j].x = fmaf(e, h2f((half_t)(vw[u][j] & 0xffff)), acc[j].x);
        acc[j].y = fmaf(e, h2f((half_t)(vw[u][j] >> 16)), acc[j].y);
      }
    }
    mx = nm;
  }
  // combine the warps: M = max of theirs, each rescaled by e^(m_w − M) (a warp without positions: m_w = −inf, weight 0)
  __shared__ float m_of[4], l_of[4], acc_of[4][D_MAX];
  if (lane == 0) {
    m_of[warp] = mx;
    l_of[warp] = l;
  }
#pragma unroll
  for (int j = 0; j < PAIRS; ++j) {
    const int d = 2 * lane + 64 * j;
    if (d < D) {
      acc_of[warp][d] = acc[j].x;
      acc_of[warp][d + 1] = acc[j].y;
    }
  }
  __syncthreads();
  write_split_partial(m_of, l_of, acc_of, out, D);
#if MERGE_FOLD
  merge_if_last(part, y, amax, rows, merged, r, h, H, D, S, chunk, window, p);
#endif
}

// attention_split with 16-byte loads (the same arguments and partials): a position's key row (D halves) is read
// by a group of D/8 lanes, 8 halves a lane, so a warp takes G = 32/(D/8) positions a load (G = 2 at D = 128)
// where attention_split takes one position with 4-byte loads. Position lo + i goes to warp (i / G) % 4, group
// i % G; each group runs its own online softmax over its positions (scores summed over its lanes by shuffles),
// the groups of a warp are combined by shuffles, then the four warps through shared memory as attention_split.
// D a multiple of 8 with D/8 a power of two (D = 64, 128, 256). The sums are taken in another order than
// attention_split's, so the two differ by rounding (not bit for bit); the decode fold is the same.
#define V8_UNROLL 4
extern "C" __global__ void __launch_bounds__(128)
attention_split_v8(const float* __restrict__ q, int ldq, float* __restrict__ part, const int* __restrict__ rows,
                   const unsigned long long* __restrict__ kv, int layer, int L, int H, int KVH, int D, int window, int chunk,
                   const float* __restrict__ k_new, const float* __restrict__ v_new, int ldkv, const float* __restrict__ inv_freq,
                   float* __restrict__ y, float* __restrict__ amax, unsigned* __restrict__ merged) {
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x, h = blockIdx.y, s = blockIdx.z, S = gridDim.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int lpp = D >> 3, G = 32 / lpp, gl = lane % lpp, grp = lane / lpp;
  const SplitRange sr = split_range(rows, window, chunk, r, s);
  const int p = sr.p, lo = sr.lo, hi = sr.hi;  // positions [lo, hi)
  float* out = part + (((size_t)r * H + h) * S + s) * (D + 2);
  if (lo >= hi) return;  // attention_merge reads only the splits holding positions (and only they count in, merge_if_last)
  __shared__ float q_rot[D_MAX];
  __shared__ __align__(16) half_t k_rot[D_MAX], v_new_h[D_MAX];
  const SplitHead sh = split_head(q, ldq, rows, kv, layer, L, r, h, H, KVH, D, sr, k_new, v_new, ldkv, inv_freq, q_rot, k_rot, v_new_h);
  const SplitKv& c = sh.c;
  const bool fresh = sh.fresh;
  const float scale = 1.f / sqrtf((float)D);
  const int d0 = 8 * gl;  // the lane's 8 dimensions
  const float* qs = sh.q;
  float qv[8], acc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    qv[i] = qs[d0 + i] * scale;
    acc[i] = 0.f;
  }
  uint4 k_p = make_uint4(0u, 0u, 0u, 0u), v_p = k_p;
  if (fresh) {
    k_p = *reinterpret_cast<const uint4*>(k_rot + d0);
    v_p = *reinterpret_cast<const uint4*>(v_new_h + d0);
    if (warp == 0 && grp == 0 && h % (H / KVH) == 0) {  // the kv group's first head stores the new key and value
      *reinterpret_cast<uint4*>(c.keys + (size_t)p * c.row + d0) = k_p;
      *reinterpret_cast<uint4*>(c.values + (size_t)p * c.row + d0) = v_p;
    }
  }
  const int round = 4 * G;  // positions the block takes a load
  float mx = NEG_INF, l = 0.f;
  for (int i0 = warp * G; lo + i0 < hi; i0 += round * V8_UNROLL) {  // uniform over the warp
    uint4 kw[V8_UNROLL], vw[V8_UNROLL];
#pragma unroll
    for (int u = 0; u < V8_UNROLL; ++u) {
      const int t = lo + i0 + u * round + grp;
      const bool in = t < hi, at_p = fresh && t == p;
      kw[u] = at_p ? k_p : in ? *reinterpret_cast<const uint4*>(c.keys + (size_t)t * c.row + d0) : make_uint4(0u, 0u, 0u, 0u);
      vw[u] = at_p ? v_p : in ? *reinterpret_cast<const uint4*>(c.values + (size_t)t * c.row + d0) : make_uint4(0u, 0u, 0u, 0u);
    }
    float sc[V8_UNROLL];
#pragma unroll
    for (int u = 0; u < V8_UNROLL; ++u) {
      const unsigned w4[4] = {kw[u].x, kw[u].y, kw[u].z, kw[u].w};
      float dot = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) dot = fmaf(qv[2 * j], h2f((half_t)(w4[j] & 0xffff)), fmaf(qv[2 * j + 1], h2f((half_t)(w4[j] >> 16)), dot));
      sc[u] = dot;
    }
#pragma unroll
    for (int u = 0; u < V8_UNROLL; ++u) {
      for (int o = lpp >> 1; o > 0; o >>= 1) sc[u] += __shfl_xor_sync(0xffffffffu, sc[u], o);
      if (lo + i0 + u * round + grp >= hi) sc[u] = NEG_INF;
    }
    float nm = mx;
#pragma unroll
    for (int u = 0; u < V8_UNROLL; ++u) nm = fmaxf(nm, sc[u]);
    const float c = nm == NEG_INF ? 1.f : expf(mx - nm);  // a group with no position yet keeps 0s
    l *= c;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] *= c;
#pragma unroll
    for (int u = 0; u < V8_UNROLL; ++u) {
      const float e = sc[u] == NEG_INF ? 0.f : expf(sc[u] - nm);
      l += e;
      const unsigned w4[4] = {vw[u].x, vw[u].y, vw[u].z, vw[u].w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        acc[2 * j] = fmaf(e, h2f((half_t)(w4[j] & 0xffff)), acc[2 * j]);
        acc[2 * j + 1] = fmaf(e, h2f((half_t)(w4[j] >> 16)), acc[2 * j + 1]);
      }
    }
    mx = nm;
  }
  // the warp's groups combined (lane gl of each group holds the same dimensions): M = the larger max, each side
  // rescaled by e^(m − M) (a side without positions: m = −inf, weight 0)
  for (int o = lpp; o < 32; o <<= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, mx, o), l2 = __shfl_xor_sync(0xffffffffu, l, o);
    const float M = fmaxf(mx, m2);
    const float w1 = mx == NEG_INF ? 0.f : expf(mx - M), w2 = m2 == NEG_INF ? 0.f : expf(m2 - M);
    l = w1 * l + w2 * l2;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = w1 * acc[i] + w2 * __shfl_xor_sync(0xffffffffu, acc[i], o);
    mx = M;
  }
  __shared__ float m_of[4], l_of[4], acc_of[4][D_MAX];
  if (lane == 0) {
    m_of[warp] = mx;
    l_of[warp] = l;
  }
  if (grp == 0) {
#pragma unroll
    for (int i = 0; i < 8; ++i) acc_of[warp][d0 + i] = acc[i];
  }
  __syncthreads();
  write_split_partial(m_of, l_of, acc_of, out, D);
#if MERGE_FOLD
  merge_if_last(part, y, amax, rows, merged, r, h, H, D, S, chunk, window, p);
#endif
}

// One block per (row, head), so the merge is spread over the SMs (one block per row was bound by its
// own instruction issue on one SM: ~6 µs of a 7B decode layer on the H100). Warp 0 forms the split
// weights (lanes over splits, shuffles: the order of the one-block kernel before it, so the same
// bits), then thread d: y = Σ_s fmaf(w_s, acc_s[d]) over s ascending · (1 / Σ_s w_s·l_s); y goes to
// the f32 row scratch and the head's max |y| to amax[r·H + h] for quantize_rows. With `arrivals` (two
// counters, zero between launches; null: none) the grid's last blocks to finish (tail_rows: one a row)
// write the rows in FORM to `next` (+ next_scales) as quantize_rows would (quantize_rows_tail, row-form.cuh).
extern "C" __global__ void __launch_bounds__(128)
attention_merge(const float* __restrict__ part, float* __restrict__ y, float* __restrict__ amax, const int* __restrict__ rows,
                int H, int D, int S, int chunk, int window, void* __restrict__ next, float* __restrict__ next_scales, int form,
                unsigned* __restrict__ arrivals) {
  pdl_launch_dependents();
  pdl_wait();
  merge_head<false>(part, y, amax, rows, blockIdx.x, blockIdx.y, H, D, S, chunk, window);
  if (arrivals != nullptr) quantize_rows_tail(y, amax, H, gridDim.x, H * D, next, next_scales, form, arrivals);
}

// A row of K f32 values (y [m, K]) written in FORM, from P partial maxima of |y| per row (amax [m, P],
// one per slice the producer wrote): a = max / 127. Grid (m, ceil(K / 1024)), 256 threads, a float4
// each; the multi-block producers' second half (attention_merge's, silu_mul_rows' and the SwiGLU
// GEMM epilogue's rows).
extern "C" __global__ void __launch_bounds__(256)
quantize_rows(const float* __restrict__ y, const float* __restrict__ amax, int P, int K, void* __restrict__ out, float* __restrict__ scales, int form) {
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x, i4 = blockIdx.y * blockDim.x + threadIdx.x;
  float mx = 0.f;
  const float* ar = amax + (size_t)r * P;
  if (P > 64) {  // uniform over the block
    for (int j = threadIdx.x; j < P; j += blockDim.x) mx = fmaxf(mx, ar[j]);
    mx = block_max(mx);
  } else {
#pragma unroll 8
    for (int j = 0; j < P; ++j) mx = fmaxf(mx, ar[j]);
  }
  const float a = mx / 127.f;
  if (blockIdx.y == 0 && threadIdx.x == 0 && form < 2) scales[r] = a;
  if (i4 < (K >> 2)) store4(out, r, K, form, i4, reinterpret_cast<const float4*>(y + (size_t)r * K)[i4], a);
}

extern "C" __global__ void __launch_bounds__(1024)
argmax_rows(const float* __restrict__ x, int n, int* __restrict__ out) {
  const RowMax m = row_argmax(x + (size_t)blockIdx.x * n, n);
  if (threadIdx.x == 0) out[blockIdx.x] = m.at;
}
