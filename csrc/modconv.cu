// fastgan modulated-convolution CUDA kernels: demodulation coefficients and the fused epilogue (see
// modconv.h for the contracts).  No torch headers: this translation unit builds with nvcc alone.
//
// dcoefs: one warp per output channel o, looping over a chunk of samples n; the lanes stride over
// the input channels and a butterfly (xor-shuffle) reduction sums their partials.  The order of
// every sum is fixed, so results are deterministic.  Microseconds for StyleGAN sizes.
//
// epilogue: memory-bound.  c and y share one dense layout, seen as a row-major [ROWS, COLS] matrix
// in storage order: NCHW rows = planes (n, o), COLS = H * W; channels_last rows = pixels (n, h, w),
// COLS = O.  Each thread handles U independent 16-byte vectors of c / y per grid-stride iteration
// (when c and y are 16-byte aligned); a vector that lies inside one row takes the per-row fast path:
//   NCHW:          d[n, o] (d's flat element `row`), b[o] and a row-constant noise value are
//                  scalars loaded once for the vector's V elements;
//   channels_last: d[n, o0 .. o0+V) and b[o0 .. o0+V) are 16-byte vector loads (O % V == 0 and
//                  d / b aligned), the per-sample / shared noise (channel stride 0) one scalar.
// Vectors that straddle two rows, the n % V tail and misaligned tensors decompose every element's
// index (n, o, h, w) with multiply-high "magic number" division.  Activations are act_math.cuh's
// (the same code as bias_act.cu).  Offsets use 32-bit indices below 2^31 elements, 64-bit above;
// noise offsets are always 64-bit (its strides are arbitrary).
#include "modconv.h"
#include "act_math.cuh"

namespace {

constexpr int kThreads = 256;
// 4 resident blocks per SM (<= 64 registers): enough bytes in flight for a streaming kernel, and
// ptxas compiles every 32-bit-index instantiation spill-free under that bound; the 64-bit-index
// ones (tensors of 2^31 elements or more) need more registers and get 2 (<= 128 registers).
template <typename I> constexpr int kMinBlocksPerSM = sizeof(I) == 4 ? 4 : 2;

// 1 / sqrt(q), correctly rounded sqrt and reciprocal: --use_fast_math would otherwise make both
// approximate for float (double sqrt / division are always IEEE).
FG_HD float inv_sqrt(float q) {
#ifdef __CUDA_ARCH__
    return __frcp_rn(__fsqrt_rn(q));
#else
    return 1.0f / sqrtf(q);
#endif
}
FG_HD double inv_sqrt(double q) { return 1.0 / sqrt(q); }

// ================================================================================================
// Demodulation coefficients.
constexpr int kDcoefWarps = 8;  // output channels per block, one warp each
constexpr int kDcoefRows = 16;  // samples per block
constexpr int kWarp = 32;

template <typename A> struct DcoefsArgs {
    A* d;
    const A* s;
    const A* wsq;
    int64_t n, o, i;
    int64_t o_blocks;  // ceil(o / kDcoefWarps)
    A eps;
};

// Samples [*n0, *n1) and the output channel of warp `warp` of block `block`.
template <typename A>
FG_HD void dcoefs_coords(const DcoefsArgs<A>& a, int64_t block, int warp, int64_t* n0, int64_t* n1, int64_t* o) {
    const int64_t nb = block / a.o_blocks;
    *o = (block - nb * a.o_blocks) * kDcoefWarps + warp;
    *n0 = nb * kDcoefRows;
    *n1 = *n0 + kDcoefRows < a.n ? *n0 + kDcoefRows : a.n;
}

// Lane `lane`'s partial sum over i = lane, lane + 32, ... of s[n, i]^2 * wsq[o, i].
template <typename A>
FG_HD A dcoefs_lane_partial(const DcoefsArgs<A>& a, int64_t n, int64_t o, int lane) {
    const A* s = a.s + n * a.i;
    const A* w = a.wsq + o * a.i;
    A acc = A(0);
    for (int64_t i = lane; i < a.i; i += kWarp) {
#ifdef __CUDA_ARCH__
        const A sv = __ldg(s + i), wv = __ldg(w + i);
#else
        const A sv = s[i], wv = w[i];
#endif
        acc += sv * sv * wv;
    }
    return acc;
}

template <typename A>
__global__ void __launch_bounds__(kDcoefWarps * kWarp)
dcoefs_kernel(const DcoefsArgs<A> a) {
    const int warp = int(threadIdx.x) / kWarp, lane = int(threadIdx.x) % kWarp;
    int64_t n0, n1, o;
    dcoefs_coords(a, int64_t(blockIdx.x), warp, &n0, &n1, &o);
    if (o >= a.o) return;  // the whole warp leaves together
    for (int64_t n = n0; n < n1; ++n) {
        A v = dcoefs_lane_partial(a, n, o, lane);
        // butterfly: lane l adds lane l ^ off (the host emulation replays this exact order)
#pragma unroll
        for (int off = kWarp / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0) a.d[n * a.o + o] = inv_sqrt(v + a.eps);
    }
}

template <typename A> using DcoefsFn = void (*)(DcoefsArgs<A>);

// ================================================================================================
// Epilogue.
enum NoiseKind : int {
    kNoiseNone = 0,
    kNoiseRowConst = 1,  // constant along a row: NCHW [N, O, 1, 1]-like; channels_last channel stride 0
    kNoiseRowUnit = 2,   // NCHW: a dense [H, W] plane (w stride 1, h stride W)
    kNoiseGeneral = 3,
};

template <typename A, typename I> struct EpiParams {
    void* y;
    const void* c;
    const A* d;          // nullptr: no demodulation
    const void* noise;   // nullptr: no noise
    const void* b;       // nullptr: no bias
    I total;             // N * O * H * W
    I nvec;              // 16-byte vectors of the vector path (0 when c or y is misaligned)
    I cols;              // H * W (NCHW) or O (channels_last)
    I O, HW, W;
    FastDiv<I> div_cols, div_O, div_HW, div_W;
    int64_t sn[4];       // noise strides (elements) along n, o, h, w
    int noise_code;      // FASTGAN_DTYPE_* of noise
    int noise_kind;      // NoiseKind
    bool cl_vec;         // channels_last, O % V == 0, d and b 16-byte aligned: vector loads of d / b
    bool do_clamp;
    A alpha, gain, clamp;
};

template <typename A> FG_HD A ld_noise(const void* p, int64_t off, int code) {
    switch (code) {
        case FASTGAN_DTYPE_F32: return A(ld_elem<float>(p, size_t(off)));
        case FASTGAN_DTYPE_F16: return A(ld_elem<__half>(p, size_t(off)));
        case FASTGAN_DTYPE_BF16: return A(ld_elem<__nv_bfloat16>(p, size_t(off)));
        default: return A(ld_elem<double>(p, size_t(off)));
    }
}

// clamp(act(c * d + noise + b) * gain): the operations and their order of the reference.
template <int ACT, typename A, typename I>
FG_HD A epi_eval(const EpiParams<A, I>& p, A c, A dv, A nz, A bv) {
    A u = p.d != nullptr ? c * dv : c;
    if (p.noise != nullptr) u = u + nz;
    if (p.b != nullptr) u = u + bv;
    A v = act_f<ACT>(u, p.alpha) * p.gain;
    if (p.do_clamp) v = v > p.clamp ? p.clamp : (v < -p.clamp ? -p.clamp : v);  // NaN stays NaN
    return v;
}

// One element from its storage index e: every index recovered by division.
template <typename T, int ACT, bool CL, typename I>
FG_HD T epi_elem(const EpiParams<Acc<T>, I>& p, I e, Acc<T> cval) {
    using A = Acc<T>;
    const I row = p.div_cols.div(e);
    const I col = e - row * p.cols;
    I n, o, h, w;
    if constexpr (CL) {
        o = col;
        n = p.div_HW.div(row);
        const I hw = row - n * p.HW;
        h = p.div_W.div(hw);
        w = hw - h * p.W;
    } else {
        n = p.div_O.div(row);
        o = row - n * p.O;
        h = p.div_W.div(col);
        w = col - h * p.W;
    }
    const A dv = p.d != nullptr ? ld_elem<A>(p.d, size_t(n) * size_t(p.O) + size_t(o)) : A(1);
    const A bv = p.b != nullptr ? ld_elem<T>(p.b, size_t(o)) : A(0);
    A nz = A(0);
    if (p.noise != nullptr)
        nz = ld_noise<A>(p.noise, int64_t(n) * p.sn[0] + int64_t(o) * p.sn[1] + int64_t(h) * p.sn[2] +
                                      int64_t(w) * p.sn[3], p.noise_code);
    return from_acc<T>(epi_eval<ACT>(p, cval, dv, nz, bv));
}

// The V elements of the vector starting at storage index e0.
template <typename T, int ACT, bool CL, typename I, int V>
FG_HD Pack<T, V> epi_vector(const EpiParams<Acc<T>, I>& p, I e0, const Pack<T, V>& cv) {
    using A = Acc<T>;
    Pack<T, V> out;
    const I row = p.div_cols.div(e0);
    const I col0 = e0 - row * p.cols;
    if (col0 + I(V) > p.cols) {  // straddles two rows (or more): element by element
#pragma unroll
        for (int k = 0; k < V; ++k) out.v[k] = epi_elem<T, ACT, CL, I>(p, e0 + I(k), to_acc<T>(cv.v[k]));
        return out;
    }
    if constexpr (!CL) {
        const I n = p.div_O.div(row);
        const I o = row - n * p.O;
        const A dv = p.d != nullptr ? ld_elem<A>(p.d, size_t(row)) : A(1);  // d[n, o] = d's element `row`
        const A bv = p.b != nullptr ? ld_elem<T>(p.b, size_t(o)) : A(0);
        A nz[V];
#pragma unroll
        for (int k = 0; k < V; ++k) nz[k] = A(0);
        if (p.noise != nullptr) {
            const int64_t base = int64_t(n) * p.sn[0] + int64_t(o) * p.sn[1];
            if (p.noise_kind == kNoiseRowConst) {
                const A v = ld_noise<A>(p.noise, base, p.noise_code);
#pragma unroll
                for (int k = 0; k < V; ++k) nz[k] = v;
            } else if (p.noise_kind == kNoiseRowUnit) {
#pragma unroll
                for (int k = 0; k < V; ++k) nz[k] = ld_noise<A>(p.noise, base + int64_t(col0) + k, p.noise_code);
            } else {
                I h = p.div_W.div(col0);
                I w = col0 - h * p.W;
#pragma unroll
                for (int k = 0; k < V; ++k) {
                    nz[k] = ld_noise<A>(p.noise, base + int64_t(h) * p.sn[2] + int64_t(w) * p.sn[3], p.noise_code);
                    if (++w == p.W) {
                        w = 0;
                        ++h;
                    }
                }
            }
        }
#pragma unroll
        for (int k = 0; k < V; ++k) out.v[k] = from_acc<T>(epi_eval<ACT>(p, to_acc<T>(cv.v[k]), dv, nz[k], bv));
    } else {
        const I n = p.div_HW.div(row);
        const I hw = row - n * p.HW;
        const I h = p.div_W.div(hw);
        const I w = hw - h * p.W;
        A dv[V], bv[V], nz[V];
#pragma unroll
        for (int k = 0; k < V; ++k) {
            dv[k] = A(1);
            bv[k] = A(0);
            nz[k] = A(0);
        }
        const size_t drow = size_t(n) * size_t(p.O) + size_t(col0);
        if (p.d != nullptr) {
            if (p.cl_vec) {  // V compute-type values: 1 or 2 aligned 16-byte loads
                constexpr int DV = 16 / int(sizeof(A));
#pragma unroll
                for (int q = 0; q < V / DV; ++q) {
                    const Pack<A, DV> pk = ld_vec<A, DV>(p.d, drow / DV + q);
#pragma unroll
                    for (int k = 0; k < DV; ++k) dv[q * DV + k] = pk.v[k];
                }
            } else {
#pragma unroll
                for (int k = 0; k < V; ++k) dv[k] = ld_elem<A>(p.d, drow + k);
            }
        }
        if (p.b != nullptr) {
            if (p.cl_vec) {
                const Pack<T, V> pk = ld_vec<T, V>(p.b, size_t(col0) / V);
#pragma unroll
                for (int k = 0; k < V; ++k) bv[k] = to_acc<T>(pk.v[k]);
            } else {
#pragma unroll
                for (int k = 0; k < V; ++k) bv[k] = ld_elem<T>(p.b, size_t(col0) + k);
            }
        }
        if (p.noise != nullptr) {
            const int64_t base = int64_t(n) * p.sn[0] + int64_t(h) * p.sn[2] + int64_t(w) * p.sn[3];
            if (p.noise_kind == kNoiseRowConst) {
                const A v = ld_noise<A>(p.noise, base, p.noise_code);
#pragma unroll
                for (int k = 0; k < V; ++k) nz[k] = v;
            } else {
#pragma unroll
                for (int k = 0; k < V; ++k)
                    nz[k] = ld_noise<A>(p.noise, base + (int64_t(col0) + k) * p.sn[1], p.noise_code);
            }
        }
#pragma unroll
        for (int k = 0; k < V; ++k) out.v[k] = from_acc<T>(epi_eval<ACT>(p, to_acc<T>(cv.v[k]), dv[k], nz[k], bv[k]));
    }
    return out;
}

// 16-byte vectors per thread per grid-stride iteration: 16 elements per thread for 32-bit types,
// 16 for 16-bit types, 4 for float64.
template <typename T> constexpr int kUnroll = sizeof(T) == 4 ? 4 : 2;

// The whole grid-stride loop of one thread (block `block` of `nblocks`, thread `thread`).  Kept
// __host__ __device__ so that a host harness can emulate a launch thread by thread.
template <typename T, int ACT, bool CL, typename I>
FG_HD void epilogue_thread(const EpiParams<Acc<T>, I>& p, unsigned block, unsigned nblocks, unsigned thread) {
    constexpr int V = 16 / sizeof(T);
    constexpr int U = kUnroll<T>;
    const I nthreads = I(nblocks) * I(kThreads);

    // ---- vector path: U independent 16-byte vectors per thread per iteration
    for (I base = I(block) * I(kThreads * U) + I(thread); base < p.nvec; base += nthreads * I(U)) {
        Pack<T, V> cv[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const I j = base + I(u * kThreads);
            if (j < p.nvec) cv[u] = ld_vec<T, V>(p.c, j);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const I j = base + I(u * kThreads);
            if (j < p.nvec) {
                const Pack<T, V> o = epi_vector<T, ACT, CL, I, V>(p, j * I(V), cv[u]);
                uint4 raw;
                memcpy(&raw, &o, sizeof(raw));
                static_cast<uint4*>(p.y)[j] = raw;
            }
        }
    }

    // ---- scalar path: the total % V tail, or everything when misaligned
    for (I e = p.nvec * I(V) + I(block) * I(kThreads) + I(thread); e < p.total; e += nthreads)
        static_cast<T*>(p.y)[e] = epi_elem<T, ACT, CL, I>(p, e, ld_elem<T>(p.c, e));
}

template <typename T, int ACT, bool CL, typename I>
__global__ void __launch_bounds__(kThreads, kMinBlocksPerSM<I>)
epilogue_kernel(const EpiParams<Acc<T>, I> p) {
    epilogue_thread<T, ACT, CL, I>(p, blockIdx.x, gridDim.x, threadIdx.x);
}

template <typename A, typename I> using EpiFn = void (*)(EpiParams<A, I>);

// ================================================================================================
// Host side.

// Sel::template epilogue<T, ACT, CL, I>() / Sel::template dcoefs<A>() name the function for one
// instantiation (the kernel here; a host harness plugs in its emulator).
struct KernelSel {
    template <typename T, int ACT, bool CL, typename I> static EpiFn<Acc<T>, I> epilogue() {
        return epilogue_kernel<T, ACT, CL, I>;
    }
    template <typename A> static DcoefsFn<A> dcoefs() { return dcoefs_kernel<A>; }
};

template <typename Sel, typename T, bool CL, typename I>
EpiFn<Acc<T>, I> pick_act(int act) {
    switch (act) {
        case kLinear: return Sel::template epilogue<T, kLinear, CL, I>();
        case kRelu: return Sel::template epilogue<T, kRelu, CL, I>();
        case kLrelu: return Sel::template epilogue<T, kLrelu, CL, I>();
        case kTanh: return Sel::template epilogue<T, kTanh, CL, I>();
        case kSigmoid: return Sel::template epilogue<T, kSigmoid, CL, I>();
        case kElu: return Sel::template epilogue<T, kElu, CL, I>();
        case kSelu: return Sel::template epilogue<T, kSelu, CL, I>();
        case kSoftplus: return Sel::template epilogue<T, kSoftplus, CL, I>();
        case kSwish: return Sel::template epilogue<T, kSwish, CL, I>();
        default: return nullptr;
    }
}

bool valid_dtype(int code) { return code >= FASTGAN_DTYPE_F32 && code <= FASTGAN_DTYPE_F64; }

cudaError_t check_epilogue(const ModconvEpilogueParams& p, int dtype_code) {
    if (!valid_dtype(dtype_code) || p.act < 0 || p.act >= FASTGAN_NUM_ACTS || p.n < 0 || p.o < 0 || p.h < 0 ||
        p.w < 0)
        return cudaErrorInvalidValue;
    if (p.n == 0 || p.o == 0 || p.h == 0 || p.w == 0) return cudaSuccess;
    if (p.y == nullptr || p.c == nullptr) return cudaErrorInvalidValue;
    if (p.noise != nullptr) {
        if (!valid_dtype(p.noise_dtype_code)) return cudaErrorInvalidValue;
        for (int k = 0; k < 4; ++k)
            if (p.noise_stride[k] < 0) return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

int noise_kind(const ModconvEpilogueParams& p) {
    if (p.noise == nullptr) return kNoiseNone;
    const int64_t* s = p.noise_stride;
    if (p.channels_last) return (s[1] == 0 || p.o == 1) ? kNoiseRowConst : kNoiseGeneral;
    if ((s[2] == 0 || p.h == 1) && (s[3] == 0 || p.w == 1)) return kNoiseRowConst;
    if ((s[3] == 1 || p.w == 1) && (s[2] == p.w || p.h == 1)) return kNoiseRowUnit;
    return kNoiseGeneral;
}

// Kernel arguments for one call (p checked, non-empty, total < 2^(bits of I - 1)).
template <typename T, typename I>
EpiParams<Acc<T>, I> make_epi_params(const ModconvEpilogueParams& p) {
    using A = Acc<T>;
    constexpr int V = 16 / sizeof(T);
    EpiParams<A, I> k;
    k.y = p.y;
    k.c = p.c;
    k.d = static_cast<const A*>(p.d);
    k.noise = p.noise;
    k.b = p.b;
    k.total = I(p.n * p.o * p.h * p.w);
    k.nvec = aligned16(p.y) && aligned16(p.c) ? k.total / I(V) : I(0);
    k.O = I(p.o);
    k.HW = I(p.h * p.w);
    k.W = I(p.w);
    k.cols = p.channels_last ? k.O : k.HW;
    k.div_cols = make_fastdiv<I>(k.cols);
    k.div_O = make_fastdiv<I>(k.O);
    k.div_HW = make_fastdiv<I>(k.HW);
    k.div_W = make_fastdiv<I>(k.W);
    for (int j = 0; j < 4; ++j) k.sn[j] = p.noise != nullptr ? p.noise_stride[j] : 0;
    k.noise_code = p.noise_dtype_code;
    k.noise_kind = noise_kind(p);
    k.cl_vec = p.channels_last && p.o % V == 0 && (p.d == nullptr || aligned16(p.d)) &&
               (p.b == nullptr || aligned16(p.b));
    k.do_clamp = p.clamp >= 0;
    k.alpha = A(p.alpha);
    k.gain = A(p.gain);
    k.clamp = A(p.clamp);
    return k;
}

template <typename A, typename I> struct EpiPlan {
    EpiFn<A, I> fn;
    EpiParams<A, I> k;
    int64_t blocks;
};

// The launch for p (checked, non-empty) with index type I: kernel, arguments and grid size.
template <typename Sel, typename T, typename I>
bool plan_epilogue(const ModconvEpilogueParams& p, int sms, EpiPlan<Acc<T>, I>* plan) {
    plan->fn = p.channels_last ? pick_act<Sel, T, true, I>(p.act) : pick_act<Sel, T, false, I>(p.act);
    if (plan->fn == nullptr) return false;
    plan->k = make_epi_params<T, I>(p);
    const int64_t per_block = plan->k.nvec > 0 ? int64_t(kThreads) * kUnroll<T> : int64_t(kThreads);
    const int64_t work = plan->k.nvec > 0 ? int64_t(plan->k.nvec) : int64_t(plan->k.total);
    int64_t blocks = (work + per_block - 1) / per_block;
    const int64_t cap = int64_t(sms) * 32;  // grid-stride beyond ~8 waves of 4 blocks per SM
    if (blocks > cap) blocks = cap;
    plan->blocks = blocks < 1 ? 1 : blocks;
    return true;
}

template <typename T, typename I>
cudaError_t launch_epilogue_typed(const ModconvEpilogueParams& p, cudaStream_t stream) {
    int sms = 0;
    const cudaError_t err = sm_count(&sms);
    if (err != cudaSuccess) return err;
    EpiPlan<Acc<T>, I> plan;
    if (!plan_epilogue<KernelSel, T, I>(p, sms, &plan)) return cudaErrorInvalidValue;
    plan.fn<<<unsigned(plan.blocks), kThreads, 0, stream>>>(plan.k);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch_epilogue_dtype(const ModconvEpilogueParams& p, cudaStream_t stream) {
    if (p.n * p.o * p.h * p.w < (int64_t(1) << 31)) return launch_epilogue_typed<T, uint32_t>(p, stream);
    return launch_epilogue_typed<T, uint64_t>(p, stream);
}

// ---- dcoefs
template <typename A> struct DcoefsPlan {
    DcoefsFn<A> fn;
    DcoefsArgs<A> a;
    int64_t blocks;
};

template <typename Sel, typename A>
bool plan_dcoefs(const ModconvDcoefsParams& p, DcoefsPlan<A>* plan) {
    plan->fn = Sel::template dcoefs<A>();
    DcoefsArgs<A>& a = plan->a;
    a.d = static_cast<A*>(p.d);
    a.s = static_cast<const A*>(p.s);
    a.wsq = static_cast<const A*>(p.wsq);
    a.n = p.n;
    a.o = p.o;
    a.i = p.i;
    a.o_blocks = (p.o + kDcoefWarps - 1) / kDcoefWarps;
    a.eps = A(p.eps);
    plan->blocks = a.o_blocks * ((p.n + kDcoefRows - 1) / kDcoefRows);
    return plan->blocks <= int64_t(0x7fffffff);  // one grid dimension
}

template <typename A>
cudaError_t launch_dcoefs_typed(const ModconvDcoefsParams& p, cudaStream_t stream) {
    DcoefsPlan<A> plan;
    if (!plan_dcoefs<KernelSel, A>(p, &plan)) return cudaErrorInvalidValue;
    plan.fn<<<unsigned(plan.blocks), kDcoefWarps * kWarp, 0, stream>>>(plan.a);
    return cudaGetLastError();
}

}  // namespace

cudaError_t fastgan_modconv_dcoefs_launch(const ModconvDcoefsParams& p, int dtype_code, cudaStream_t stream) {
    if ((dtype_code != FASTGAN_DTYPE_F32 && dtype_code != FASTGAN_DTYPE_F64) || p.n < 0 || p.o < 0 || p.i < 0)
        return cudaErrorInvalidValue;
    if (p.n == 0 || p.o == 0) return cudaSuccess;
    if (p.d == nullptr || (p.i > 0 && (p.s == nullptr || p.wsq == nullptr))) return cudaErrorInvalidValue;
    return dtype_code == FASTGAN_DTYPE_F32 ? launch_dcoefs_typed<float>(p, stream)
                                           : launch_dcoefs_typed<double>(p, stream);
}

cudaError_t fastgan_modconv_epilogue_launch(const ModconvEpilogueParams& p, int dtype_code, cudaStream_t stream) {
    const cudaError_t err = check_epilogue(p, dtype_code);
    if (err != cudaSuccess || p.n == 0 || p.o == 0 || p.h == 0 || p.w == 0) return err;
    switch (dtype_code) {
        case FASTGAN_DTYPE_F32: return launch_epilogue_dtype<float>(p, stream);
        case FASTGAN_DTYPE_F16: return launch_epilogue_dtype<__half>(p, stream);
        case FASTGAN_DTYPE_BF16: return launch_epilogue_dtype<__nv_bfloat16>(p, stream);
        case FASTGAN_DTYPE_F64: return launch_epilogue_dtype<double>(p, stream);
        default: return cudaErrorInvalidValue;
    }
}
