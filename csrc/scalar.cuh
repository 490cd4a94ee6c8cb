// Storage / compute scalar types shared by the CUDA translation units: a kernel stores T and
// computes in AccOf<T> (float for half types, double for double), and reads read-only data
// through ldg / ld_acc.  No torch headers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#ifndef FG_HD
#define FG_HD __host__ __device__ __forceinline__
#endif

namespace {

template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };

template <typename T> FG_HD typename AccOf<T>::type to_acc(T v) { return v; }
template <> FG_HD float to_acc<__half>(__half v) { return __half2float(v); }
template <> FG_HD float to_acc<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> FG_HD T from_acc(typename AccOf<T>::type v) { return v; }
template <> FG_HD __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> FG_HD __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T> using Acc = typename AccOf<T>::type;

// Read-only loads (ld.global.nc on the device; plain loads in the CPU emulation of tests/csrc/).
template <typename T> FG_HD T ldg(const T* p) {
#ifdef __CUDA_ARCH__
    return __ldg(p);
#else
    return *p;
#endif
}

// One read-only element, widened to its compute type.
template <typename T> FG_HD Acc<T> ld_acc(const T* p) { return to_acc<T>(ldg(p)); }

}  // namespace
