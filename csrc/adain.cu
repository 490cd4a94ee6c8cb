// fastgan AdaIN CUDA kernels.  No torch headers: this translation unit builds with nvcc alone.
//
// The same plan as kernels/adain.py (contract in adain.h).  A block of 256 threads owns a group of
// planes and a segment of their pixels:
//   NCHW           256 / L planes, L threads per plane; each thread reads 16-byte vectors along its
//                  plane (V = 16 / sizeof(T) pixels; V = 1 when H * W or a pointer is misaligned).
//   channels_last  TX threads along the channels of one sample, each owning V consecutive channels
//                  (a 16-byte vector per pixel), times TY = 256 / TX pixel lanes.
// Modes (template MODE):
//   0  whole planes: statistics (forward) or the two gradient sums (backward) -> block reduction
//      in shared memory -> the elementwise loop over the plane again (mostly L1/L2 hits).
//   1  a segment (blockIdx.y) of each plane: partial results to the workspace, [P, splits, 2].
//   2  a segment: the elementwise loop with statistics / sums from memory; segment 0 also writes
//      dgamma / dbeta.
// Mode 0 runs when there are enough plane groups to fill the GPU; otherwise 1 -> combine -> 2.
//
// Statistics: every thread keeps a Welford state of its pixels shifted by the plane's first pixel
// (k), NCHW vectors merged in as (count, mean, M2) chunks; states are merged with Chan's formula
// across threads and, for split planes, across segments (the combine kernel adds k back).  All
// arithmetic is in the compute type A (float; double for double).  Offsets are 64-bit.
//
// Each kernel is three __host__ __device__ phases separated by __syncthreads(): accumulate (per
// thread, into its shared-memory slot), reduce_step (one level of the tree over pixel lanes) and
// finish (per thread: read the group's result, write statistics / partials, elementwise loop).
// Phases communicate only through shared memory and global memory, so tests/csrc/adain_emu.cu runs
// a launch on the CPU block by block, phase by phase, thread by thread.
#include "adain.h"
#include "host_util.cuh"  // aligned16, sm_count
#include "scalar.cuh"     // AccOf, to_acc, from_acc, ldg

#include <atomic>
#include <cstdint>
#include <cstring>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;

// Per-plane parameters (gamma, beta, dgamma, dbeta) have their own dtype: element type or float32.
template <typename A> FG_HD A load_param(const void* p, int code, int64_t i) {
    switch (code) {
        case FASTGAN_DTYPE_F32: return A(static_cast<const float*>(p)[i]);
        case FASTGAN_DTYPE_F16: return A(__half2float(static_cast<const __half*>(p)[i]));
        case FASTGAN_DTYPE_BF16: return A(__bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]));
        default: return A(static_cast<const double*>(p)[i]);
    }
}

template <typename A> FG_HD void store_param(void* p, int code, int64_t i, A v) {
    switch (code) {
        case FASTGAN_DTYPE_F32: static_cast<float*>(p)[i] = float(v); break;
        case FASTGAN_DTYPE_F16: static_cast<__half*>(p)[i] = __float2half_rn(float(v)); break;
        case FASTGAN_DTYPE_BF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(float(v)); break;
        default: static_cast<double*>(p)[i] = double(v); break;
    }
}

// V consecutive elements: one 16-byte access when V * sizeof(T) == 16, else V scalar accesses.
template <typename T, int V> FG_HD void load_vec(const T* ptr, typename AccOf<T>::type (&out)[V]) {
    if constexpr (V * sizeof(T) == 16) {
        const uint4 raw = ldg(reinterpret_cast<const uint4*>(ptr));
        T tmp[V];
        memcpy(tmp, &raw, sizeof(raw));
#pragma unroll
        for (int j = 0; j < V; ++j) out[j] = to_acc<T>(tmp[j]);
    } else {
#pragma unroll
        for (int j = 0; j < V; ++j) out[j] = to_acc<T>(ldg(ptr + j));
    }
}

template <typename T, int V> FG_HD void store_vec(T* ptr, const typename AccOf<T>::type (&v)[V]) {
    T tmp[V];
#pragma unroll
    for (int j = 0; j < V; ++j) tmp[j] = from_acc<T>(v[j]);
    if constexpr (V * sizeof(T) == 16) {
        uint4 raw;
        memcpy(&raw, tmp, sizeof(raw));
        *reinterpret_cast<uint4*>(ptr) = raw;
    } else {
#pragma unroll
        for (int j = 0; j < V; ++j) ptr[j] = tmp[j];
    }
}

FG_HD float m_rsqrt(float v) { return 1.0f / sqrtf(v); }
FG_HD double m_rsqrt(double v) { return 1.0 / sqrt(v); }

// a / b for the Welford weights (b a pixel count < 2^31): float on the device without the IEEE
// division's slow-path subroutine (whose stack frame ptxas reports as a spill); 2 ulp.
FG_HD float div_count(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fdividef(a, b);
#else
    return a / b;
#endif
}
FG_HD double div_count(double a, double b) { return a / b; }

// ------------------------------------------------------------------------------------------------
template <typename A> struct KParams {
    const void* x;
    void* y;
    const void* gamma;
    const void* beta;
    A* mean;
    A* rstd;
    const void* dy;
    void* dx;
    void* dgamma;
    void* dbeta;
    A* part;          // [P, splits, 2] partials (modes 1 / 2)
    A* sums;          // [P, 2] merged gradient sums (backward mode 2)
    int64_t n, c, m;
    int64_t cblocks;  // channels_last: channel blocks per sample
    int64_t seg;      // pixels per segment (a multiple of V for NCHW)
    int lanes;        // NCHW: threads per plane (L); channels_last: TX
    int gamma_code, beta_code;
    A eps;
    A inv_m;          // 1 / m, computed on the host
};

// One thread's share of the block: its plane (NCHW) or V channels (channels_last), its pixel lane,
// and the pixel segment [s0, s1) of the block.
struct Geo {
    int64_t base;     // element offset of pixel 0 of the thread's plane / first channel
    int64_t plane;    // index into the [n, c] arrays of that plane / first channel
    int64_t pstride;  // elements from one pixel to the next (1 NCHW, c channels_last)
    int64_t step;     // pixels per chunk (V NCHW, 1 channels_last)
    int64_t s0, s1;   // the block's pixel segment
    int tid;
    int r;            // pixel lane of the thread: its index along the block reduction
    int rcount;       // pixel lanes per plane (a power of 2)
    int rstride;      // thread-index distance between neighbouring pixel lanes
    bool valid;

    FG_HD int root() const { return tid - r * rstride; }
    FG_HD int64_t first() const { return s0 + int64_t(r) * step; }
    FG_HD int64_t lane_step() const { return int64_t(rcount) * step; }
};

// (32-bit divisions only: a 64-bit one is a SASS subroutine call with a stack frame.)
template <int V, bool CL, typename A>
FG_HD Geo make_geo(const KParams<A>& p, unsigned bx, unsigned by, unsigned tid) {
    Geo g;
    g.tid = int(tid);
    g.s0 = int64_t(by) * p.seg;
    g.s1 = g.s0 + p.seg < p.m ? g.s0 + p.seg : p.m;
    if constexpr (!CL) {
        const unsigned L = unsigned(p.lanes);
        g.r = int(tid % L);
        g.rcount = int(L);
        g.rstride = 1;
        g.plane = int64_t(bx) * int64_t(kThreads / L) + int64_t(tid / L);
        g.valid = g.plane < p.n * p.c;
        g.base = g.plane * p.m;
        g.pstride = 1;
        g.step = V;
    } else {
        const unsigned TX = unsigned(p.lanes);
        const unsigned cb = unsigned(p.cblocks);  // < 2^31 (the launcher checks the grid)
        const int64_t ni = int64_t(bx / cb);
        const int64_t c0 = (int64_t(bx % cb) * TX + tid % TX) * V;
        g.r = int(tid / TX);
        g.rcount = int(kThreads / TX);
        g.rstride = int(TX);
        g.valid = c0 < p.c;  // V divides c when V > 1
        g.plane = ni * p.c + c0;
        g.base = ni * p.m * p.c + c0;
        g.pstride = p.c;
        g.step = 1;
    }
    return g;
}

// Chan's merge of (nb, mb, qb) into (na, ma, qa); an empty side leaves the other unchanged.
template <typename A> FG_HD void chan_merge(A na, A& ma, A& qa, A nb, A mb, A qb) {
    const A n = na + nb;
    if (n > A(0)) {
        const A f = div_count(nb, n);
        const A delta = mb - ma;
        ma += delta * f;
        qa += qb + delta * delta * na * f;
    }
}

// Shared memory of one block: a slot per thread (count; NS pairs of values).
template <typename A> struct Smem {
    A* cnt;  // [kThreads] (Welford counts; unused for sums)
    A* a;    // [kThreads * NS]
    A* b;    // [kThreads * NS]
};

// One level of the tree over pixel lanes: lanes r < off merge lane r + off into themselves.
template <typename A, int NS, bool WELFORD> FG_HD void reduce_step(const Geo& g, int off, const Smem<A>& s) {
    if (g.r >= off) return;
    const int t = g.tid, o = g.tid + off * g.rstride;
#pragma unroll
    for (int j = 0; j < NS; ++j) {
        if constexpr (WELFORD) {
            A ma = s.a[t * NS + j], qa = s.b[t * NS + j];
            chan_merge(s.cnt[t], ma, qa, s.cnt[o], s.a[o * NS + j], s.b[o * NS + j]);
            s.a[t * NS + j] = ma;
            s.b[t * NS + j] = qa;
        } else {
            s.a[t * NS + j] += s.a[o * NS + j];
            s.b[t * NS + j] += s.b[o * NS + j];
        }
    }
    if constexpr (WELFORD) s.cnt[t] += s.cnt[o];
}

// The shift k of the thread's plane(s): pixel 0.
template <typename T, int V, bool CL>
FG_HD void load_shift(const T* x, const Geo& g, typename AccOf<T>::type (&k)[CL ? V : 1]) {
    if constexpr (CL) {
        load_vec<T, V>(x + g.base, k);
    } else {
        k[0] = to_acc<T>(ldg(x + g.base));
    }
}

// ------------------------------------------------------------------------------------------------
// forward

// Phase 1 (modes 0, 1): the thread's Welford state (shifted by k) into its shared-memory slot.
template <typename T, int V, bool CL, int MODE, typename A>
FG_HD void fwd_accumulate(const KParams<A>& p, const Geo& g, unsigned by, const Smem<A>& s) {
    constexpr int NS = CL ? V : 1;
    const T* x = static_cast<const T*>(p.x);
    A k[NS], mu[NS], q[NS];
    A cnt = A(0);
#pragma unroll
    for (int j = 0; j < NS; ++j) mu[j] = q[j] = k[j] = A(0);
    if (g.valid) {
        load_shift<T, V, CL>(x, g, k);
        if (MODE == 1 && by == 0 && g.r == 0) {
#pragma unroll
            for (int j = 0; j < NS; ++j) p.mean[g.plane + j] = k[j];  // the shift, for the combine
        }
        for (int64_t px = g.first(); px < g.s1; px += g.lane_step()) {
            A v[V];
            load_vec<T, V>(x + g.base + px * g.pstride, v);
            if constexpr (CL) {
                cnt += A(1);
                const A inv = div_count(A(1), cnt);
#pragma unroll
                for (int j = 0; j < V; ++j) {
                    const A u = v[j] - k[j];
                    const A d = u - mu[j];
                    mu[j] += d * inv;
                    q[j] += d * (u - mu[j]);
                }
            } else {
                // the vector as one (V, mean, M2) chunk, two-pass in registers
                A cs = A(0);
#pragma unroll
                for (int j = 0; j < V; ++j) {
                    v[j] -= k[0];
                    cs += v[j];
                }
                const A cm = cs * A(1.0 / V);
                A cq = A(0);
#pragma unroll
                for (int j = 0; j < V; ++j) cq += (v[j] - cm) * (v[j] - cm);
                chan_merge(cnt, mu[0], q[0], A(V), cm, cq);
                cnt += A(V);
            }
        }
    }
    s.cnt[g.tid] = cnt;
#pragma unroll
    for (int j = 0; j < NS; ++j) {
        s.a[g.tid * NS + j] = mu[j];
        s.b[g.tid * NS + j] = q[j];
    }
}

// Mode 1: the block's two reduced values of each of its NS planes become this segment's partials
// ([plane, split, 2]) for adain_combine.
template <int NS, typename A>
FG_HD void write_partials(const KParams<A>& p, const Geo& g, unsigned by, unsigned splits,
                          const Smem<A>& s) {
    if (g.r != 0) return;
    const int root = g.root();
#pragma unroll
    for (int j = 0; j < NS; ++j) {
        const int64_t dst = ((g.plane + j) * splits + by) * 2;
        p.part[dst] = s.a[root * NS + j];
        p.part[dst + 1] = s.b[root * NS + j];
    }
}

// Phase 3: mode 1 writes the segment's partials; modes 0 / 2 the elementwise pass (mode 0 also
// the statistics).  ``splits`` = gridDim.y.
template <typename T, int V, bool CL, int MODE, typename A>
FG_HD void fwd_finish(const KParams<A>& p, const Geo& g, unsigned by, unsigned splits, const Smem<A>& s) {
    constexpr int NS = CL ? V : 1;
    if (!g.valid) return;
    if constexpr (MODE == 1) {
        write_partials<NS>(p, g, by, splits, s);
    } else {  // (an else, not an early return: no unreachable tail in the MODE 1 instantiations)
        const T* x = static_cast<const T*>(p.x);
        const int root = g.root();
        A mean[NS], rstd[NS];
        if constexpr (MODE == 0) {
            load_shift<T, V, CL>(x, g, mean);
#pragma unroll
            for (int j = 0; j < NS; ++j) {
                mean[j] += s.a[root * NS + j];
                rstd[j] = m_rsqrt(s.b[root * NS + j] * p.inv_m + p.eps);
            }
            if (g.r == 0) {
#pragma unroll
                for (int j = 0; j < NS; ++j) {
                    p.mean[g.plane + j] = mean[j];
                    p.rstd[g.plane + j] = rstd[j];
                }
            }
        } else {
#pragma unroll
            for (int j = 0; j < NS; ++j) {
                mean[j] = p.mean[g.plane + j];
                rstd[j] = p.rstd[g.plane + j];
            }
        }
        A scale[NS], shift[NS];
#pragma unroll
        for (int j = 0; j < NS; ++j) {
            scale[j] = rstd[j] * load_param<A>(p.gamma, p.gamma_code, g.plane + j);
            shift[j] = load_param<A>(p.beta, p.beta_code, g.plane + j);
        }
        T* y = static_cast<T*>(p.y);
        for (int64_t px = g.first(); px < g.s1; px += g.lane_step()) {
            const int64_t off = g.base + px * g.pstride;
            A v[V];
            load_vec<T, V>(x + off, v);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const int i = CL ? j : 0;
                v[j] = (v[j] - mean[i]) * scale[i] + shift[i];
            }
            store_vec<T, V>(y + off, v);
        }
    }
}

template <typename T, int V, bool CL, int MODE>
__global__ void __launch_bounds__(kThreads) adain_fwd_kernel(const KParams<typename AccOf<T>::type> p) {
    using A = typename AccOf<T>::type;
    constexpr int NS = CL ? V : 1;
    const Geo g = make_geo<V, CL>(p, blockIdx.x, blockIdx.y, threadIdx.x);
    if constexpr (MODE != 2) {
        __shared__ A s_cnt[kThreads];
        __shared__ A s_a[kThreads * NS];
        __shared__ A s_b[kThreads * NS];
        const Smem<A> s{s_cnt, s_a, s_b};
        fwd_accumulate<T, V, CL, MODE>(p, g, blockIdx.y, s);
        __syncthreads();
        for (int off = g.rcount / 2; off > 0; off >>= 1) {  // rcount is uniform over the block
            reduce_step<A, NS, true>(g, off, s);
            __syncthreads();
        }
        // the geometry again rather than kept live across the reduction (ptxas spilled it)
        fwd_finish<T, V, CL, MODE>(p, make_geo<V, CL>(p, blockIdx.x, blockIdx.y, threadIdx.x), blockIdx.y,
                                   gridDim.y, s);
    } else {
        fwd_finish<T, V, CL, MODE>(p, g, blockIdx.y, gridDim.y, Smem<A>{nullptr, nullptr, nullptr});
    }
}

// ------------------------------------------------------------------------------------------------
// backward

// Phase 1 (modes 0, 1): the thread's sum(dy) and sum(dy * (x - mean)) into its slot.
template <typename T, int V, bool CL, typename A>
FG_HD void bwd_accumulate(const KParams<A>& p, const Geo& g, const Smem<A>& s) {
    constexpr int NS = CL ? V : 1;
    A mean[NS], sdy[NS], sdyx[NS];
#pragma unroll
    for (int j = 0; j < NS; ++j) {
        mean[j] = g.valid ? p.mean[g.plane + j] : A(0);
        sdy[j] = sdyx[j] = A(0);
    }
    if (g.valid) {
        const T* x = static_cast<const T*>(p.x);
        const T* dy = static_cast<const T*>(p.dy);
        for (int64_t px = g.first(); px < g.s1; px += g.lane_step()) {
            const int64_t off = g.base + px * g.pstride;
            A gv[V], v[V];
            load_vec<T, V>(dy + off, gv);
            load_vec<T, V>(x + off, v);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const int i = CL ? j : 0;
                sdy[i] += gv[j];
                sdyx[i] += gv[j] * (v[j] - mean[i]);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < NS; ++j) {
        s.a[g.tid * NS + j] = sdy[j];
        s.b[g.tid * NS + j] = sdyx[j];
    }
}

// Phase 3: mode 1 writes the segment's partial sums; modes 0 / 2 dgamma / dbeta (mode 2: segment
// 0 only) and the elementwise pass.
template <typename T, int V, bool CL, int MODE, typename A>
FG_HD void bwd_finish(const KParams<A>& p, const Geo& g, unsigned by, unsigned splits, const Smem<A>& s) {
    constexpr int NS = CL ? V : 1;
    if (!g.valid) return;
    const int root = g.root();
    if constexpr (MODE == 1) {
        write_partials<NS>(p, g, by, splits, s);
        return;
    } else {
        A sdy[NS], sdyx[NS];
#pragma unroll
        for (int j = 0; j < NS; ++j) {
            if constexpr (MODE == 2) {
                sdy[j] = p.sums[(g.plane + j) * 2];
                sdyx[j] = p.sums[(g.plane + j) * 2 + 1];
            } else {
                sdy[j] = s.a[root * NS + j];
                sdyx[j] = s.b[root * NS + j];
            }
        }
        A mean[NS], rstd[NS];
#pragma unroll
        for (int j = 0; j < NS; ++j) {
            mean[j] = p.mean[g.plane + j];
            rstd[j] = p.rstd[g.plane + j];
        }
        if (g.r == 0 && (MODE == 0 || by == 0)) {
#pragma unroll
            for (int j = 0; j < NS; ++j) {
                store_param<A>(p.dgamma, p.gamma_code, g.plane + j, rstd[j] * sdyx[j]);
                store_param<A>(p.dbeta, p.beta_code, g.plane + j, sdy[j]);
            }
        }
        A c1[NS], c2[NS], c3[NS];
#pragma unroll
        for (int j = 0; j < NS; ++j) {
            c1[j] = load_param<A>(p.gamma, p.gamma_code, g.plane + j) * rstd[j];
            c2[j] = -c1[j] * sdy[j] * p.inv_m;
            c3[j] = -c1[j] * rstd[j] * rstd[j] * sdyx[j] * p.inv_m;
        }
        const T* x = static_cast<const T*>(p.x);
        const T* dy = static_cast<const T*>(p.dy);
        T* dx = static_cast<T*>(p.dx);
        for (int64_t px = g.first(); px < g.s1; px += g.lane_step()) {
            const int64_t off = g.base + px * g.pstride;
            A gv[V], v[V];
            load_vec<T, V>(dy + off, gv);
            load_vec<T, V>(x + off, v);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const int i = CL ? j : 0;
                v[j] = c1[i] * gv[j] + c2[i] + c3[i] * (v[j] - mean[i]);
            }
            store_vec<T, V>(dx + off, v);
        }
    }
}

template <typename T, int V, bool CL, int MODE>
__global__ void __launch_bounds__(kThreads) adain_bwd_kernel(const KParams<typename AccOf<T>::type> p) {
    using A = typename AccOf<T>::type;
    constexpr int NS = CL ? V : 1;
    const Geo g = make_geo<V, CL>(p, blockIdx.x, blockIdx.y, threadIdx.x);
    if constexpr (MODE != 2) {
        __shared__ A s_a[kThreads * NS];
        __shared__ A s_b[kThreads * NS];
        const Smem<A> s{nullptr, s_a, s_b};
        bwd_accumulate<T, V, CL>(p, g, s);
        __syncthreads();
        for (int off = g.rcount / 2; off > 0; off >>= 1) {
            reduce_step<A, NS, false>(g, off, s);
            __syncthreads();
        }
        bwd_finish<T, V, CL, MODE>(p, make_geo<V, CL>(p, blockIdx.x, blockIdx.y, threadIdx.x), blockIdx.y,
                                   gridDim.y, s);
    } else {
        bwd_finish<T, V, CL, MODE>(p, g, blockIdx.y, gridDim.y, Smem<A>{nullptr, nullptr, nullptr});
    }
}

// ------------------------------------------------------------------------------------------------
// combine (one thread per plane): MODE 0 merges the (mean - k, M2) partials -> mean (k on entry,
// from mode 1) and rstd; MODE 1 sums the gradient partials into sums [P, 2].
template <typename A>
FG_HD void combine_one(const A* part, A* out_a, A* out_b, int64_t pl, int64_t m, int64_t seg, int splits,
                       A eps, A inv_m, int mode) {
    const A* src = part + pl * splits * 2;
    if (mode == 0) {
        A na = A(0), ma = A(0), qa = A(0);
        for (int k = 0; k < splits; ++k) {
            const int64_t rest = m - int64_t(k) * seg;
            const A nb = A(rest < seg ? rest : seg);
            chan_merge(na, ma, qa, nb, src[2 * k], src[2 * k + 1]);
            na += nb;
        }
        out_a[pl] += ma;
        out_b[pl] = m_rsqrt(qa * inv_m + eps);
    } else {
        A a = A(0), b = A(0);
        for (int k = 0; k < splits; ++k) {
            a += src[2 * k];
            b += src[2 * k + 1];
        }
        out_a[pl * 2] = a;
        out_a[pl * 2 + 1] = b;
    }
}

template <typename A>
__global__ void __launch_bounds__(kThreads)
adain_combine_kernel(const A* part, A* out_a, A* out_b, int64_t planes, int64_t m, int64_t seg,
                     int splits, A eps, A inv_m, int mode) {
    const int64_t pl = int64_t(blockIdx.x) * kThreads + threadIdx.x;
    if (pl < planes) combine_one(part, out_a, out_b, pl, m, seg, splits, eps, inv_m, mode);
}

// ------------------------------------------------------------------------------------------------
// host side

int element_size(int code) {
    switch (code) {
        case FASTGAN_DTYPE_F32: return 4;
        case FASTGAN_DTYPE_F16: return 2;
        case FASTGAN_DTYPE_BF16: return 2;
        case FASTGAN_DTYPE_F64: return 8;
        default: return 0;
    }
}


int64_t pow2_at_least(int64_t v) {
    int64_t r = 1;
    while (r < v) r <<= 1;
    return r;
}

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Plan {
    int vec;          // V: 16 / sizeof(T) or 1
    int lanes;        // NCHW: L threads per plane; channels_last: TX
    int64_t groups;   // grid.x
    int64_t cblocks;  // channels_last: channel blocks per sample
    int64_t seg;      // pixels per segment
    int splits;       // grid.y (1: mode 0)
};

Plan make_plan(const AdainParams& p, bool backward, int sms) {
    const int esize = element_size(p.dtype_code);
    const int vec16 = 16 / esize;
    const bool aligned = aligned16(p.x) && (backward ? aligned16(p.dy) && aligned16(p.dx) : aligned16(p.y));
    Plan pl{};
    int64_t rcount, step;
    if (!p.channels_last) {
        pl.vec = (p.m % vec16 == 0 && aligned) ? vec16 : 1;
        const int64_t chunks = cdiv(p.m, pl.vec);
        pl.lanes = int(pow2_at_least(chunks) < kThreads ? pow2_at_least(chunks) : kThreads);
        pl.cblocks = 1;
        pl.groups = cdiv(p.n * p.c, kThreads / pl.lanes);
        rcount = pl.lanes;
        step = pl.vec;
    } else {
        pl.vec = (p.c % vec16 == 0 && aligned) ? vec16 : 1;
        const int64_t cvecs = cdiv(p.c, pl.vec);
        pl.lanes = int(pow2_at_least(cvecs) < 32 ? pow2_at_least(cvecs) : 32);
        pl.cblocks = cdiv(cvecs, pl.lanes);
        pl.groups = p.n * pl.cblocks;
        rcount = kThreads / pl.lanes;
        step = 1;
    }
    // Split planes across blocks when the plane groups alone cannot fill the GPU and each lane
    // would loop long enough for the extra combine launch to pay off.
    pl.splits = 1;
    pl.seg = p.m;
    const int64_t target = int64_t(4) * sms;
    const int64_t lane_iters = cdiv(p.m, rcount * step);
    if (pl.groups < target && lane_iters > 8) {
        int64_t s = cdiv(target, pl.groups);
        if (s > cdiv(lane_iters, 4)) s = cdiv(lane_iters, 4);
        if (s > 65535) s = 65535;
        pl.seg = cdiv(cdiv(p.m, s), step) * step;
        pl.splits = int(cdiv(p.m, pl.seg));
    }
    return pl;
}

cudaError_t check_params(const AdainParams& p, bool backward) {
    if (element_size(p.dtype_code) == 0 || p.n < 0 || p.c < 0 || p.m < 1) return cudaErrorInvalidValue;
    if (p.gamma_code != p.dtype_code && p.gamma_code != FASTGAN_DTYPE_F32) return cudaErrorInvalidValue;
    if (p.beta_code != p.dtype_code && p.beta_code != FASTGAN_DTYPE_F32) return cudaErrorInvalidValue;
    if (p.n * p.c == 0) return cudaSuccess;
    if (p.x == nullptr || p.gamma == nullptr || p.mean == nullptr || p.rstd == nullptr) return cudaErrorInvalidValue;
    if (backward) {
        if (p.dy == nullptr || p.dx == nullptr || p.dgamma == nullptr || p.dbeta == nullptr)
            return cudaErrorInvalidValue;
    } else {
        if (p.y == nullptr || p.beta == nullptr || !(p.eps > 0)) return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

size_t workspace_bytes(const AdainParams& p, const Plan& pl, bool backward) {
    if (pl.splits == 1) return 0;
    const size_t a = p.dtype_code == FASTGAN_DTYPE_F64 ? 8 : 4;
    const size_t planes = size_t(p.n * p.c);
    return a * planes * (size_t(pl.splits) * 2 + (backward ? 2 : 0));
}

template <typename T>
KParams<typename AccOf<T>::type> make_kparams(const AdainParams& p, const Plan& pl, bool backward) {
    using A = typename AccOf<T>::type;
    KParams<A> k{};
    k.x = p.x;
    k.y = p.y;
    k.gamma = p.gamma;
    k.beta = p.beta;
    k.mean = static_cast<A*>(p.mean);
    k.rstd = static_cast<A*>(p.rstd);
    k.dy = p.dy;
    k.dx = p.dx;
    k.dgamma = p.dgamma;
    k.dbeta = p.dbeta;
    k.part = static_cast<A*>(p.workspace);
    k.sums = (backward && k.part != nullptr) ? k.part + p.n * p.c * pl.splits * 2 : nullptr;
    k.n = p.n;
    k.c = p.c;
    k.m = p.m;
    k.cblocks = pl.cblocks;
    k.seg = pl.seg;
    k.lanes = pl.lanes;
    k.gamma_code = p.gamma_code;
    k.beta_code = p.beta_code;
    k.eps = A(p.eps);
    k.inv_m = A(1.0 / double(p.m));
    return k;
}

template <typename T, int V, bool CL>
void run(const KParams<typename AccOf<T>::type>& k, const Plan& pl, bool backward, cudaStream_t stream) {
    using A = typename AccOf<T>::type;
    const dim3 grid(unsigned(pl.groups), unsigned(pl.splits));
    if (pl.splits == 1) {
        if (backward) adain_bwd_kernel<T, V, CL, 0><<<grid, kThreads, 0, stream>>>(k);
        else adain_fwd_kernel<T, V, CL, 0><<<grid, kThreads, 0, stream>>>(k);
        return;
    }
    const int64_t planes = k.n * k.c;
    const unsigned cblocks = unsigned(cdiv(planes, kThreads));
    if (backward) {
        adain_bwd_kernel<T, V, CL, 1><<<grid, kThreads, 0, stream>>>(k);
        adain_combine_kernel<A><<<cblocks, kThreads, 0, stream>>>(k.part, k.sums, k.sums, planes, k.m, k.seg,
                                                                pl.splits, A(0), k.inv_m, 1);
        adain_bwd_kernel<T, V, CL, 2><<<grid, kThreads, 0, stream>>>(k);
    } else {
        adain_fwd_kernel<T, V, CL, 1><<<grid, kThreads, 0, stream>>>(k);
        adain_combine_kernel<A><<<cblocks, kThreads, 0, stream>>>(k.part, k.mean, k.rstd, planes, k.m, k.seg,
                                                                pl.splits, k.eps, k.inv_m, 0);
        adain_fwd_kernel<T, V, CL, 2><<<grid, kThreads, 0, stream>>>(k);
    }
}

template <typename T>
cudaError_t launch_typed(const AdainParams& p, bool backward, cudaStream_t stream) {
    int sms = 0;
    const cudaError_t err = sm_count(&sms);
    if (err != cudaSuccess) return err;
    const Plan pl = make_plan(p, backward, sms);
    if (pl.splits > 1 && (p.workspace == nullptr || !aligned16(p.workspace))) return cudaErrorInvalidValue;
    if (pl.groups > 2147483647LL) return cudaErrorInvalidConfiguration;
    const auto k = make_kparams<T>(p, pl, backward);
    constexpr int V16 = 16 / sizeof(T);
    if (pl.vec == V16) {
        if (p.channels_last) run<T, V16, true>(k, pl, backward, stream);
        else run<T, V16, false>(k, pl, backward, stream);
    } else {
        if (p.channels_last) run<T, 1, true>(k, pl, backward, stream);
        else run<T, 1, false>(k, pl, backward, stream);
    }
    return cudaGetLastError();
}

cudaError_t launch(const AdainParams& p, bool backward, cudaStream_t stream) {
    const cudaError_t err = check_params(p, backward);
    if (err != cudaSuccess || p.n * p.c == 0) return err;
    switch (p.dtype_code) {
        case FASTGAN_DTYPE_F32: return launch_typed<float>(p, backward, stream);
        case FASTGAN_DTYPE_F16: return launch_typed<__half>(p, backward, stream);
        case FASTGAN_DTYPE_BF16: return launch_typed<__nv_bfloat16>(p, backward, stream);
        case FASTGAN_DTYPE_F64: return launch_typed<double>(p, backward, stream);
        default: return cudaErrorInvalidValue;
    }
}

}  // namespace

cudaError_t fastgan_adain_workspace_bytes(const AdainParams& p, bool backward, size_t* bytes) {
    *bytes = 0;
    const cudaError_t err = check_params(p, backward);
    if (err != cudaSuccess || p.n * p.c == 0) return err;
    int sms = 0;
    const cudaError_t e2 = sm_count(&sms);
    if (e2 != cudaSuccess) return e2;
    *bytes = workspace_bytes(p, make_plan(p, backward, sms), backward);
    return cudaSuccess;
}

cudaError_t fastgan_adain_forward_launch(const AdainParams& p, cudaStream_t stream) {
    return launch(p, false, stream);
}

cudaError_t fastgan_adain_backward_launch(const AdainParams& p, cudaStream_t stream) {
    return launch(p, true, stream);
}
