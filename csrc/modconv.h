// fastgan: the modulated convolution's small CUDA passes around a cuDNN convolution: demodulation
// coefficients and the fused epilogue (demodulate + noise + bias + activation + gain + clamp).
//
// Plain C++/CUDA interface between the torch binding (fastgan_ops.cpp, compiled by the host
// compiler) and the kernels (modconv.cu, compiled by nvcc without any torch header).  dtype codes
// and act ids are bias_act.h's FASTGAN_DTYPE_* / FASTGAN_ACT_*.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "bias_act.h"

// d[n, o] = 1 / sqrt(sum_i s[n, i]^2 * wsq[o, i] + eps)
// s [N, I], wsq [O, I], d [N, O]: contiguous, all float32 or all float64 (dtype_code F32 / F64),
// accumulated in that type in a fixed order (deterministic).  I == 0 gives 1 / sqrt(eps).
struct ModconvDcoefsParams {
    void* d;
    const void* s;
    const void* wsq;
    int64_t n, o, i;
    double eps;
};

// y[n, o, h, w] = clamp(act(c[n, o, h, w] * d[n, o] + noise[n, o, h, w] + b[o], alpha) * gain,
//                       -clamp, clamp)
// c, y: [N, O, H, W] of dtype_code, the same dense layout: NCHW (channels_last == false) or
//       channels_last (memory order n, h, w, o).
// d:    [N, O] contiguous in the compute type (float; double for float64), or nullptr (= 1).
// noise: element (n, o, h, w) at noise + sum_k idx_k * noise_stride[k] (in elements; strides may be
//       0 for broadcast dims), of dtype noise_dtype_code (any FASTGAN_DTYPE_*), or nullptr (= 0).
// b:    [O] contiguous of dtype_code, or nullptr (= 0).
// clamp < 0: no clamp.  float16 / bfloat16 compute in float32; each output is rounded once.
struct ModconvEpilogueParams {
    void* y;
    const void* c;
    const void* d;
    const void* noise;
    const void* b;
    int64_t n, o, h, w;
    int64_t noise_stride[4];  // element strides of noise along n, o, h, w
    int noise_dtype_code;
    bool channels_last;
    int act;                  // FASTGAN_ACT_*
    double alpha;             // lrelu slope
    double gain;
    double clamp;
};

// Each validates p (cudaErrorInvalidValue on a bad dtype / act / shape / missing pointer), enqueues
// the kernel on `stream` (on the current device) and returns cudaGetLastError().  Empty outputs are
// a no-op.
cudaError_t fastgan_modconv_dcoefs_launch(const ModconvDcoefsParams& p, int dtype_code, cudaStream_t stream);
cudaError_t fastgan_modconv_epilogue_launch(const ModconvEpilogueParams& p, int dtype_code,
                                            cudaStream_t stream);
