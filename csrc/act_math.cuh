// fastgan: device helpers for the elementwise CUDA kernels: the activation functions and their
// derivatives, multiply-high division by run-time constants, and 16-byte vector loads.  Shared by
// bias_act.cu and modconv.cu, so the activations of every CUDA kernel are one code (the scalar
// types and read-only loads come from scalar.cuh, the host helpers from host_util.cuh).  Every
// definition is __host__ __device__ (FG_HD) where it runs in kernels, so the CPU emulation
// harnesses in tests/csrc/ can run the kernels' thread functions on the host.
//
// Included by .cu files only (nvcc); everything sits in an anonymous namespace, so each translation
// unit gets its own copy and nothing collides at link time.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "bias_act.h"  // FASTGAN_ACT_* ids, FASTGAN_DTYPE_* codes
#include "host_util.cuh"  // aligned16, sm_count
#include "scalar.cuh"     // AccOf, Acc, to_acc, from_acc, ldg, ld_acc

namespace {

constexpr int kLinear = FASTGAN_ACT_LINEAR;
constexpr int kRelu = FASTGAN_ACT_RELU;
constexpr int kLrelu = FASTGAN_ACT_LRELU;
constexpr int kTanh = FASTGAN_ACT_TANH;
constexpr int kSigmoid = FASTGAN_ACT_SIGMOID;
constexpr int kElu = FASTGAN_ACT_ELU;
constexpr int kSelu = FASTGAN_ACT_SELU;
constexpr int kSoftplus = FASTGAN_ACT_SOFTPLUS;
constexpr int kSwish = FASTGAN_ACT_SWISH;

constexpr double kSeluLambda = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluLambdaAlpha = kSeluLambda * kSeluAlpha;

// Scalar types (storage T, compute A = AccOf<T>, to_acc / from_acc): scalar.cuh.

// ------------------------------------------------------------------------------------------------
// Math helpers (float / double overloads).
FG_HD float m_exp(float v) { return expf(v); }
FG_HD double m_exp(double v) { return exp(v); }
FG_HD float m_expm1(float v) { return expm1f(v); }
FG_HD double m_expm1(double v) { return expm1(v); }
FG_HD float m_log1p(float v) { return log1pf(v); }
FG_HD double m_log1p(double v) { return log1p(v); }
// --use_fast_math turns tanhf into tanh.approx.f32 (~2^-11 relative error); use expm1 instead:
// tanh(a) = e / (e + 2) with e = expm1(2a), exact-ish near 0; saturates to 1 above 9 (where float
// tanh rounds to 1 anyway and before expm1 overflows).  NaN propagates (comparison is false).
FG_HD float m_tanh(float v) {
    const float a = fabsf(v);
    const float e = expm1f(2.0f * a);
    const float t = a > 9.0f ? 1.0f : e / (e + 2.0f);
    return copysignf(t, v);
}
FG_HD double m_tanh(double v) { return tanh(v); }
FG_HD float m_abs(float v) { return fabsf(v); }
FG_HD double m_abs(double v) { return fabs(v); }
template <typename A> FG_HD A m_sigmoid(A s) { return A(1) / (A(1) + m_exp(-s)); }

// f(s)
template <int ACT, typename A> FG_HD A act_f(A s, A alpha) {
    if constexpr (ACT == kLinear) return s;
    else if constexpr (ACT == kRelu) return s < A(0) ? A(0) : s;  // NaN -> NaN
    else if constexpr (ACT == kLrelu) return s < A(0) ? alpha * s : s;
    else if constexpr (ACT == kTanh) return m_tanh(s);
    else if constexpr (ACT == kSigmoid) return m_sigmoid(s);
    else if constexpr (ACT == kElu) return s > A(0) ? s : m_expm1(s);
    else if constexpr (ACT == kSelu) return A(kSeluLambda) * (s > A(0) ? s : A(kSeluAlpha) * m_expm1(s));
    else if constexpr (ACT == kSoftplus) return (s > A(0) ? s : A(0)) + m_log1p(m_exp(-m_abs(s)));
    else return s * m_sigmoid(s);  // swish
}

// f'(s)
template <int ACT, typename A> FG_HD A act_d1_s(A s, A alpha) {
    if constexpr (ACT == kLinear) return A(1);
    else if constexpr (ACT == kRelu) return s > A(0) ? A(1) : A(0);
    else if constexpr (ACT == kLrelu) return s > A(0) ? A(1) : alpha;
    else if constexpr (ACT == kTanh) { const A t = m_tanh(s); return A(1) - t * t; }
    else if constexpr (ACT == kSigmoid) { const A g = m_sigmoid(s); return g * (A(1) - g); }
    else if constexpr (ACT == kElu) return s > A(0) ? A(1) : m_exp(s);
    else if constexpr (ACT == kSelu) return s > A(0) ? A(kSeluLambda) : A(kSeluLambdaAlpha) * m_exp(s);
    else if constexpr (ACT == kSoftplus) return m_sigmoid(s);
    else { const A g = m_sigmoid(s); return g * (A(1) + s * (A(1) - g)); }  // swish
}

// f''(s)
template <int ACT, typename A> FG_HD A act_d2_s(A s) {
    if constexpr (ACT == kLinear || ACT == kRelu || ACT == kLrelu) { (void)s; return A(0); }
    else if constexpr (ACT == kTanh) { const A t = m_tanh(s); return A(-2) * t * (A(1) - t * t); }
    else if constexpr (ACT == kSigmoid) { const A g = m_sigmoid(s); return g * (A(1) - g) * (A(1) - A(2) * g); }
    else if constexpr (ACT == kElu) return s > A(0) ? A(0) : m_exp(s);
    else if constexpr (ACT == kSelu) return s > A(0) ? A(0) : A(kSeluLambdaAlpha) * m_exp(s);
    else if constexpr (ACT == kSoftplus) { const A g = m_sigmoid(s); return g * (A(1) - g); }
    else { const A g = m_sigmoid(s); return g * (A(1) - g) * (A(2) + s * (A(1) - A(2) * g)); }  // swish
}

// f'(s) expressed through yy = f(s) (not defined for swish).
template <int ACT, typename A> FG_HD A act_d1_y(A yy, A alpha) {
    if constexpr (ACT == kLinear) { (void)yy; return A(1); }
    else if constexpr (ACT == kRelu) return yy > A(0) ? A(1) : A(0);
    else if constexpr (ACT == kLrelu) return yy > A(0) ? A(1) : alpha;
    else if constexpr (ACT == kTanh) return A(1) - yy * yy;
    else if constexpr (ACT == kSigmoid) return yy * (A(1) - yy);
    else if constexpr (ACT == kElu) return yy > A(0) ? A(1) : yy + A(1);
    else if constexpr (ACT == kSelu) return yy > A(0) ? A(kSeluLambda) : yy + A(kSeluLambdaAlpha);
    else if constexpr (ACT == kSoftplus) return -m_expm1(-yy);
    else { (void)yy; return A(0); }
}

// d/dyy of act_d1_y.
template <int ACT, typename A> FG_HD A act_d2_y(A yy) {
    if constexpr (ACT == kTanh) return A(-2) * yy;
    else if constexpr (ACT == kSigmoid) return A(1) - A(2) * yy;
    else if constexpr (ACT == kElu || ACT == kSelu) return yy > A(0) ? A(0) : A(1);
    else if constexpr (ACT == kSoftplus) return m_exp(-yy);
    else { (void)yy; return A(0); }
}

// ------------------------------------------------------------------------------------------------
// Division by a run-time constant d (1 <= d, numerator n, both < 2^(bits-1)): q = (mulhi(n, m) + n) >> s.
template <typename I> struct FastDiv {
    I m;
    unsigned s;
    FG_HD I div(I n) const {
        I t;
#ifdef __CUDA_ARCH__
        if constexpr (sizeof(I) == 4) t = __umulhi(n, m);
        else t = __umul64hi(n, m);
#else  // host emulation (tests)
        if constexpr (sizeof(I) == 4) t = I((uint64_t(n) * m) >> 32);
        else t = I(((unsigned __int128)n * m) >> 64);
#endif
        return (t + n) >> s;
    }
};

template <typename I> FastDiv<I> make_fastdiv(I d) {
    FastDiv<I> f;
    unsigned s = 0;
    while ((I(1) << s) < d) ++s;
    f.s = s;
    if constexpr (sizeof(I) == 4) {
        f.m = I(((uint64_t(1) << 32) * ((uint64_t(1) << s) - d)) / d + 1);
    } else {
        using U128 = unsigned __int128;
        f.m = I(((U128(1) << 64) * ((U128(1) << s) - d)) / d + 1);
    }
    return f;
}

template <typename T, int V> struct alignas(16) Pack { T v[V]; };

// Read-only loads (ld.global.nc); plain loads in the host emulation.
template <typename T, int V>
FG_HD Pack<T, V> ld_vec(const void* base, size_t j) {
    const uint4 raw = ldg(static_cast<const uint4*>(base) + j);
    Pack<T, V> pk;
    memcpy(&pk, &raw, sizeof(raw));
    return pk;
}

template <typename T>
FG_HD typename AccOf<T>::type ld_elem(const void* base, size_t i) {
    return ld_acc(static_cast<const T*>(base) + i);
}

}  // namespace
