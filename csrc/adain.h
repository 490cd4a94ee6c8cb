// fastgan: AdaIN (per-(sample, channel) instance normalisation + affine) and its fused backward.
//
// Plain C++/CUDA interface between the torch binding (fastgan_ops.cpp, compiled by the host
// compiler) and the kernels (adain.cu, compiled by nvcc without any torch header).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "bias_act.h"  // FASTGAN_DTYPE_* codes

// Contract (the same as kernels/adain.py).  x, y, dy, dx: [n, c, h, w] with m = h * w pixels per
// plane, all with one dense layout: NCHW (channels_last == false: element (i, j, s) at
// (i * c + j) * m + s) or channels_last (element (i, j, s) at (i * m + s) * c + j).  gamma, beta,
// dgamma, dbeta: contiguous [n, c] of the element type or float32 (their own dtype codes); mean,
// rstd: contiguous [n, c] in the compute type (float; double for FASTGAN_DTYPE_F64).
//
//   forward:   mean = sum(x) / m    var = sum((x - mean)^2) / m    rstd = 1 / sqrt(var + eps)
//              y = (x - mean) * (rstd * gamma) + beta
//   backward:  sdy = sum(dy)    sdyx = sum(dy * (x - mean))     k = gamma * rstd
//              dx = k * dy - k * sdy / m - (x - mean) * k * rstd^2 * sdyx / m
//              dgamma = rstd * sdyx    dbeta = sdy
//
// Statistics are Welford states shifted by each plane's first pixel and merged with Chan's
// formula (no E[x^2] - E[x]^2 cancellation); accumulation is in the compute type.
struct AdainParams {
    // forward
    void* y;
    const void* x;
    const void* gamma;
    const void* beta;
    void* mean;
    void* rstd;
    // backward (x, gamma, mean, rstd as above)
    void* dx;
    const void* dy;
    void* dgamma;
    void* dbeta;

    int64_t n, c, m;       // sizes; n * c >= 1, m >= 1 for a launch (an empty tensor is a no-op)
    bool channels_last;
    double eps;            // forward only, > 0
    int dtype_code;        // element type of x, y, dy, dx
    int gamma_code;        // dtype of gamma / dgamma: dtype_code or FASTGAN_DTYPE_F32
    int beta_code;         // dtype of beta / dbeta: dtype_code or FASTGAN_DTYPE_F32
    void* workspace;       // fastgan_adain_workspace_bytes() bytes, 16-byte aligned (or nullptr if 0)
};

// Workspace the launch of `p` needs on the current device (0 when no plane is split across blocks).
// Returns cudaErrorInvalidValue for bad parameters.
cudaError_t fastgan_adain_workspace_bytes(const AdainParams& p, bool backward, size_t* bytes);

// Validate p, enqueue the kernels on `stream` (current device), return cudaGetLastError().
cudaError_t fastgan_adain_forward_launch(const AdainParams& p, cudaStream_t stream);
cudaError_t fastgan_adain_backward_launch(const AdainParams& p, cudaStream_t stream);
