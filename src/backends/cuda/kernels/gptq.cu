// GPTQ on the GPU (gptq-cuda.ts): the host-side method of quant/methods/gptq.ts with its matrices on the
// device, float64 throughout. Matrices are row-major [rows, cols]; K inputs, N output rows.
//
//   to_f64            y[i] = x[i]                                   (f32 -> f64; the Hessian's input rows)
//   hessian_finish    h[i,j] = h[j,i] = f * s[i,j] for j >= i        (s: the upper triangle a Gram-matrix
//                                                                   sum left; f = 2/T; in place is fine)
//   take_diagonal     d[i] = h[i,i]
//   permute_damp      out[i,j] = i == j ? diag[perm[i]] + lambda : h[perm[i], perm[j]]
//   zero_below        u[i,j] = 0 for j < i                          (U is upper; cuSOLVER leaves the
//                                                                   other triangle as it found it)
//   permute_weights   W[r,i] = dead[perm[i]] ? 0 : w[r, perm[i]]    (w f32 [N,K] -> W f64, permuted)
//   gptq_block        step 5 of GPTQ inside one block of columns [i1, i2), one warp per row r:
//     for i = i1 .. i2-1 (perm[i] in group g = perm[i] / G):
//       if position i is the first of g to come up (groupAt[i] >= 0): the row's scale of g from the
//         current values of g's columns (pending in-block updates subtracted for columns p >= i2:
//         v = W[r,p] - sum_{c=i1}^{i-1} E[r,c] U[c,p], in that order), then s = fround(absmax / qmax);
//         Integer Scale (alphaLog2 >= 0): S = max(1, rint(s 2^a)) (0 for s = 0), s = fround(S 2^-a)
//       q = clamp(rint(W[r,i] / s), qmin, qmax),  e = (W[r,i] - fround(q s)) / U[i,i],  E[r,i-i1] = e
//       W[r,j] -= e U[i,j]  for i < j < i2                (lanes split j; no FMA: __dmul_rn, __dsub_rn)
//     which is quant/methods/gptq-block.ts's arithmetic operation for operation, so a block's codes,
//     scales and errors are its bits exactly (given the same W and U). E is [N, i2 - i1]; q [N, K] int8 in
//     the original column order; scales / intScales [N, K / G]. A row whose S does not fit int32 sets
//     overflow[0] = 1 + r (the host throws). Grid: ceil(N / 8) blocks of 256 threads (8 warps, 8 rows).
// The lazy update after a block (W[:, i2:] -= E U[i1:i2, i2:]) is one cuBLAS DGEMM (cublas.ts).
#include "common.cuh"

extern "C" __global__ void to_f64(const float* __restrict__ x, double* __restrict__ y, unsigned long long n) {
  for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x) y[i] = (double)x[i];
}

extern "C" __global__ void hessian_finish(const double* s, double* h, int k, double f) {
  const int i = blockIdx.y, j0 = blockIdx.x * blockDim.x + threadIdx.x;
  for (int j = j0; j < k; j += gridDim.x * blockDim.x) {
    if (j < i) continue;
    const double v = s[(size_t)i * k + j] * f;
    h[(size_t)i * k + j] = v;
    h[(size_t)j * k + i] = v;
  }
}

extern "C" __global__ void take_diagonal(const double* __restrict__ h, double* __restrict__ d, int k) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < k; i += gridDim.x * blockDim.x) d[i] = h[(size_t)i * k + i];
}

extern "C" __global__ void permute_damp(const double* __restrict__ h, double* __restrict__ out, const int* __restrict__ perm,
                                        const double* __restrict__ diag, double lambda, int k) {
  const int i = blockIdx.y, pi = perm[i];
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < k; j += gridDim.x * blockDim.x) {
    out[(size_t)i * k + j] = i == j ? diag[pi] + lambda : h[(size_t)pi * k + perm[j]];
  }
}

extern "C" __global__ void zero_below(double* __restrict__ u, int k) {
  const int i = blockIdx.y;
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < i; j += gridDim.x * blockDim.x) u[(size_t)i * k + j] = 0.0;
}

extern "C" __global__ void permute_weights(const float* __restrict__ w, double* __restrict__ W, const int* __restrict__ perm,
                                           const unsigned char* __restrict__ dead, int k) {
  const int r = blockIdx.y;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < k; i += gridDim.x * blockDim.x) {
    const int p = perm[i];
    W[(size_t)r * k + i] = dead[p] ? 0.0 : (double)w[(size_t)r * k + p];
  }
}

__device__ __forceinline__ double warp_max(double v) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

extern "C" __global__ void __launch_bounds__(256)
gptq_block(double* __restrict__ W, const double* __restrict__ u, double* __restrict__ err, signed char* __restrict__ q,
           float* __restrict__ scales, int* __restrict__ intScales, const int* __restrict__ perm, const int* __restrict__ position,
           const int* __restrict__ groupAt, int n, int k, int i1, int i2, int G, int bits, int alphaLog2, int* __restrict__ overflow) {
  const int lane = threadIdx.x & 31;
  const int r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= n) return;
  const int count = i2 - i1, groupCount = k / G;
  const double qmax = bits == 4 ? 7.0 : 127.0, qmin = bits == 4 ? -8.0 : -128.0;
  double* Wr = W + (size_t)r * k;
  double* Er = err + (size_t)r * count;
  float* Sr = scales + (size_t)r * groupCount;
  for (int i = i1; i < i2; ++i) {
    const int g = perm[i] / G;
    if (groupAt[i] >= 0) {
      double m = 0.0;
      for (int t = lane; t < G; t += 32) {
        const int p = position[g * G + t];
        double v = Wr[p];
        if (p >= i2)
          for (int c = i1; c < i; ++c) v = __dsub_rn(v, __dmul_rn(Er[c - i1], u[(size_t)c * k + p]));
        m = fmax(m, fabs(v));
      }
      m = warp_max(m);
      float s = (float)(m / qmax);
      if (alphaLog2 >= 0) {
        const double S = s == 0.f ? 0.0 : fmax(1.0, rint((double)s * ldexp(1.0, alphaLog2)));
        s = (float)(S * ldexp(1.0, -alphaLog2));
        if (lane == 0) {
          if (S > 2147483647.0) atomicCAS(overflow, 0, r + 1);
          else intScales[(size_t)r * groupCount + g] = (int)S;
        }
      }
      if (lane == 0) Sr[g] = s;
      __syncwarp();
    }
    const double s = (double)Sr[g];
    const double value = Wr[i];
    double qv = 0.0;
    if (s != 0.0) qv = fmin(fmax(rint(value / s), qmin), qmax);
    const double e = (value - (double)(float)(qv * s)) / u[(size_t)i * k + i];
    if (lane == 0) {
      q[(size_t)r * k + perm[i]] = (signed char)(int)qv;
      Er[i - i1] = e;
    }
    if (e != 0.0)
      for (int j = i + 1 + lane; j < i2; j += 32) Wr[j] = __dsub_rn(Wr[j], __dmul_rn(e, u[(size_t)i * k + j]));
    __syncwarp();
  }
}
