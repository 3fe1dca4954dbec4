// The group-scale parameters shared by the integer/float-scale kernels (w4a8_*, w8a8_*), with their
// defaults, and the scale and total types they select (include directly, after common.cuh):
//   GROUP     input channels per scale group (a multiple of 128)
//   SCALE_INT 1: integer scales S (int32), totals T accumulated in int32 (Integer Scale)
//             0: float scales s, totals t accumulated in f32 (the float-scale counterpart)
// scale_t is one scale, scale2_t two adjacent ones (one 8-byte load), tot_t a per-output total.
#pragma once
#ifndef GROUP
#define GROUP 128
#endif
#ifndef SCALE_INT
#define SCALE_INT 1
#endif

#if SCALE_INT
typedef int scale_t;
typedef int2 scale2_t;
typedef int tot_t;
#else
typedef float scale_t;
typedef float2 scale2_t;
typedef float tot_t;
#endif
