// Host-side launch helpers shared by the CUDA translation units (one copy per TU: internal
// linkage).  No torch headers.
#pragma once

#include <atomic>
#include <cstdint>

#include <cuda_runtime.h>

namespace {

inline bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

// Multiprocessor count of the current device, cached per device (grid sizing is on every
// launch's host path; the attribute query is not free).
inline cudaError_t sm_count(int* out) {
    static std::atomic<int> cache[64];
    int dev = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err != cudaSuccess) return err;
    if (dev >= 0 && dev < 64) {
        const int cached = cache[dev].load(std::memory_order_relaxed);
        if (cached > 0) { *out = cached; return cudaSuccess; }
    }
    int sms = 0;
    err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (err != cudaSuccess) return err;
    if (sms < 1) sms = 1;
    if (dev >= 0 && dev < 64) cache[dev].store(sms, std::memory_order_relaxed);
    *out = sms;
    return cudaSuccess;
}

}  // namespace
