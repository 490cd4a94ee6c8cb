// fastgan: upfirdn2d (upsample by zero insertion, pad/crop, 2-D FIR filter, downsample) in one pass.
//
// Plain C++/CUDA interface between the torch binding (fastgan_ops.cpp, compiled by the host
// compiler) and the kernels (upfirdn2d.cu, compiled by nvcc without any torch header).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "bias_act.h"  // FASTGAN_DTYPE_* codes

// out[n, c, oy, ox] = sum_{i < fh, j < fw} f[i, j] * xp(oy * downy + i, ox * downx + j)
//   xp(u, v) = x[n, c, (u - pady0) / upy, (v - padx0) / upx] when u - pady0 >= 0 is divisible by upy
//              with quotient < h and v - padx0 >= 0 is divisible by upx with quotient < w; else 0.
// f is in correlation order with any gain already multiplied in.  Accumulation is in float32
// (float64 for FASTGAN_DTYPE_F64); the result is rounded once to the element type.  The output
// size (oh, ow) is given; padx1/pady1 are implied by it.
struct Upfirdn2dParams {
    void* out;              // [n, c, oh, ow], element strides out_stride (any non-overlapping layout)
    const void* x;          // [n, c, h, w], element strides x_stride (any)
    const void* f;          // [fh, fw] contiguous; float (float64 when the dtype is F64)
    int64_t n, c, h, w;     // x sizes (all >= 1)
    int64_t oh, ow;         // out spatial sizes (>= 1)
    int64_t x_stride[4];    // NCHW order, in elements
    int64_t out_stride[4];  // NCHW order, in elements
    int64_t fh, fw;         // >= 1
    int64_t upx, upy, downx, downy;  // >= 1
    int64_t padx0, pady0;   // may be negative (crop)
};

// Validates p (cudaErrorInvalidValue on bad sizes / factors / null pointers / dtype), enqueues the
// kernel on `stream` (current device) and returns cudaGetLastError().
cudaError_t fastgan_upfirdn2d_launch(const Upfirdn2dParams& p, int dtype_code, cudaStream_t stream);
