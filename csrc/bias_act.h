// fastgan: fused bias + activation (+ gain, clamp) and its first/second-order gradients.
//
// Plain C++/CUDA interface between the torch binding (fastgan_ops.cpp, compiled by the host
// compiler) and the kernels (bias_act.cu, compiled by nvcc without any torch header).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

// dtype_code values accepted by fastgan_bias_act_launch.  float16/bfloat16 compute in float32,
// float64 computes in float64.
constexpr int FASTGAN_DTYPE_F32 = 0;
constexpr int FASTGAN_DTYPE_F16 = 1;
constexpr int FASTGAN_DTYPE_BF16 = 2;
constexpr int FASTGAN_DTYPE_F64 = 3;

// mode values.
constexpr int FASTGAN_BIAS_ACT_FORWARD = 0;  // out = clamp(f(x + b) * gain)
constexpr int FASTGAN_BIAS_ACT_GRAD1 = 1;    // out = dy * d1                      (d loss / d s)
constexpr int FASTGAN_BIAS_ACT_GRAD2 = 2;    // out = ddx * dy * d2                (second order)

// act values.
constexpr int FASTGAN_ACT_LINEAR = 0;
constexpr int FASTGAN_ACT_RELU = 1;
constexpr int FASTGAN_ACT_LRELU = 2;
constexpr int FASTGAN_ACT_TANH = 3;
constexpr int FASTGAN_ACT_SIGMOID = 4;
constexpr int FASTGAN_ACT_ELU = 5;
constexpr int FASTGAN_ACT_SELU = 6;
constexpr int FASTGAN_ACT_SOFTPLUS = 7;
constexpr int FASTGAN_ACT_SWISH = 8;
constexpr int FASTGAN_NUM_ACTS = 9;

// All element tensors (out, x, y, dy, ddx) are flat arrays of n elements in storage order (same
// shape and strides, non-overlapping and dense).  Element i uses bias b[(i / inner) % channels].
// Absent tensors are nullptr.  Which ones a call needs:
//   mode 0: x (b optional)
//   mode 1: dy; x if ref_x (b optional); y if (!ref_x && act != linear) or clamp >= 0
//   mode 2: dy, ddx; x if ref_x (b optional); y if (!ref_x && act not linear/relu/lrelu) or clamp >= 0
//   swish in modes 1/2 requires ref_x.
// Clamp: the forward pass clamps in the compute type (float for half types) before rounding; the
// gradient mask is |y| >= clamp with clamp first rounded to the element type (y holds T(clamp)
// where the forward pass clamped, which for float16/bfloat16 can be slightly below clamp).
struct BiasActParams {
    void* out;
    const void* x;
    const void* b;    // 1-D contiguous, `channels` elements, or nullptr
    const void* y;    // forward output (y-ref gradients and the clamp mask)
    const void* dy;   // incoming gradient (modes 1, 2)
    const void* ddx;  // incoming gradient of the mode-1 output (mode 2)
    int64_t n;        // number of elements; 0 is a no-op
    int64_t inner;    // stride of the bias dimension (>= 1 when b is given)
    int64_t channels; // size of the bias dimension  (>= 1 when b is given)
    double alpha;     // lrelu slope
    double gain;
    double inv_gain;  // 1 / gain (unused when gain == 0)
    double clamp;     // < 0: no clamp
    int mode;         // FASTGAN_BIAS_ACT_*
    int act;          // FASTGAN_ACT_*
    bool ref_x;       // modes 1/2: derivatives from s = x + b instead of from y
};

// Validates p (returns cudaErrorInvalidValue on a bad mode/act/dtype/missing pointer), enqueues the
// kernel on `stream` (on the current device) and returns cudaGetLastError().
cudaError_t fastgan_bias_act_launch(const BiasActParams& p, int dtype_code, cudaStream_t stream);
