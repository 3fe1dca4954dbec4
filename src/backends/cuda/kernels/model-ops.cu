// The model's small ops on the GPU, each written to give the CPU backend's result
// (src/backends/cpu/ops.ts: float32 storage, float64 arithmetic) for every element whose float64
// intermediate does not land on a float32 rounding boundary, i.e. almost always bit for bit:
//   rmsnorm:  y[r,i] = w[i] * f32(x[r,i] * inv),  inv = f32(1 / sqrt(f32(ss / dim) + eps)),
//             ss = Σ_i x[r,i]² in float64 (the order of the sum is the only difference)
//   rope:     in place on x [m][heads][D], half-split pairs (i, i + D/2), angle = f32(pos · invFreq[i]),
//             pos = *start + row (the start position is read from device memory, so one captured
//             graph serves every decode position),
//             c = f32(cos angle), s = f32(sin angle) in float64:  a' = f32(a·c − b·s),  b' = f32(b·c + a·s)
//   silu_mul: g = f32(g / (1 + exp(−g)) · u)            add: a = a + b            add_bias: y[r,n] += bias[n]
//   to_f16:   binary16 of x, round to nearest even (the W4A16 kernel's activations)
//   gather_rows:     y[i, j] = x[rows[i], j]  (a mixture of experts: the tokens routed to one expert)
//   add_scaled_rows: out[rows[i], j] = f32(out[rows[i], j] + f32(w[i] · y[i, j]))  (rows distinct;
//             the product rounded first, as the CPU and torch do: no fused multiply-add)
//   add_abs_columns: s[j] += |x[i, j]| for i = 0 … rows−1 in order, float64 (AWQ's statistics: the
//             host loop's sums bit for bit); one thread per column
// Layouts: row-major float32; one block per row for rmsnorm, one thread per element (or pair) elsewhere.

extern "C" __global__ void __launch_bounds__(256)
rmsnorm(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, int dim, double eps) {
  const float* xr = x + (size_t)blockIdx.x * dim;
  float* yr = y + (size_t)blockIdx.x * dim;
  double ss = 0.0;
  for (int i = threadIdx.x; i < dim; i += 256) ss += (double)xr[i] * (double)xr[i];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  __shared__ double red[8];
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
  __syncthreads();
  ss = 0.0;
  for (int k = 0; k < 8; ++k) ss += red[k];
  const float inv = (float)(1.0 / sqrt((double)(float)(ss / dim) + eps));
  for (int i = threadIdx.x; i < dim; i += 256) yr[i] = w[i] * (xr[i] * inv);
}

// one thread per (row, head, pair i < D/2)
extern "C" __global__ void __launch_bounds__(256)
rope(float* __restrict__ x, const float* __restrict__ inv_freq, int m, int heads, int D, const int* __restrict__ start) {
  const int half = D >> 1;
  const long long idx = (long long)blockIdx.x * 256 + threadIdx.x;
  if (idx >= (long long)m * heads * half) return;
  const int i = (int)(idx % half);
  const long long rh = idx / half;  // row * heads + head
  const int r = (int)(rh / heads);
  const float angle = (float)((double)(*start + r) * (double)inv_freq[i]);
  const float c = (float)cos((double)angle);
  const float s = (float)sin((double)angle);
  float* p = x + rh * D;
  const double a = p[i], b = p[i + half];
  p[i] = (float)(a * c - b * s);
  p[i + half] = (float)(b * c + a * s);
}

extern "C" __global__ void __launch_bounds__(256)
silu_mul(float* __restrict__ g, const float* __restrict__ u, long long n) {
  const long long i = (long long)blockIdx.x * 256 + threadIdx.x;
  if (i >= n) return;
  const double v = g[i];
  g[i] = (float)(v / (1.0 + exp(-v)) * (double)u[i]);
}

extern "C" __global__ void __launch_bounds__(256)
add(float* __restrict__ a, const float* __restrict__ b, long long n) {
  const long long i = (long long)blockIdx.x * 256 + threadIdx.x;
  if (i < n) a[i] = a[i] + b[i];
}

extern "C" __global__ void __launch_bounds__(256)
add_bias(float* __restrict__ y, const float* __restrict__ bias, int N, long long n) {
  const long long i = (long long)blockIdx.x * 256 + threadIdx.x;
  if (i < n) y[i] = y[i] + bias[i % N];
}

extern "C" __global__ void __launch_bounds__(256)
to_f16(const float* __restrict__ x, unsigned short* __restrict__ y, long long n) {
  const long long i = (long long)blockIdx.x * 256 + threadIdx.x;
  if (i >= n) return;
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;\n" : "=h"(h) : "f"(x[i]));
  y[i] = h;
}

// one thread per (i, j) of y [count][dim]
extern "C" __global__ void __launch_bounds__(256)
gather_rows(const float* __restrict__ x, const int* __restrict__ rows, float* __restrict__ y, int dim, long long n) {
  const long long t = (long long)blockIdx.x * 256 + threadIdx.x;
  if (t >= n) return;
  const long long i = t / dim;
  y[t] = x[(long long)rows[i] * dim + (t - i * dim)];
}

// one thread per (i, j) of y [count][dim]; rows are distinct, so no two threads write one output
extern "C" __global__ void __launch_bounds__(256)
add_scaled_rows(float* __restrict__ out, const float* __restrict__ y, const int* __restrict__ rows,
                const float* __restrict__ w, int dim, long long n) {
  const long long t = (long long)blockIdx.x * 256 + threadIdx.x;
  if (t >= n) return;
  const long long i = t / dim;
  float* o = out + (long long)rows[i] * dim + (t - i * dim);
  *o = __fadd_rn(*o, __fmul_rn(w[i], y[t]));
}

extern "C" __global__ void __launch_bounds__(256)
add_abs_columns(const float* __restrict__ x, double* __restrict__ s, int rows, int dim) {
  const int j = blockIdx.x * 256 + threadIdx.x;
  if (j >= dim) return;
  double acc = s[j];
  for (int i = 0; i < rows; ++i) acc += fabs((double)x[(long long)i * dim + j]);
  s[j] = acc;
}
