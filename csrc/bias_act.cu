// fastgan bias_act CUDA kernels.  No torch headers: this translation unit builds with nvcc alone.
//
// One kernel instantiation per (scalar type, activation, mode, ref_x, index type).  Each thread
// handles U independent 16-byte vectors per grid-stride iteration (vector path, taken when every
// element pointer is 16-byte aligned), then the remaining n % V elements (or all n elements when
// a pointer is misaligned) go through a scalar grid-stride loop.  Bias channels are computed with
// multiply-high "magic number" division, once per vector, then advanced incrementally.
#include "bias_act.h"
#include "act_math.cuh"  // scalar types, activations, FastDiv, vector loads, host helpers

namespace {

constexpr int kThreads = 256;
// ptxas spills a few kernels under its default register target for 256-thread blocks; asking for
// 4 resident blocks (<= 64 registers, 50% occupancy) compiles every instantiation spill-free.
constexpr int kMinBlocksPerSM = 4;

template <int ACT, int MODE, bool RX>
constexpr bool kNeedsY = MODE != 0 && !RX &&
    (MODE == 1 ? ACT != kLinear : (ACT != kLinear && ACT != kRelu && ACT != kLrelu));

// ------------------------------------------------------------------------------------------------
enum BiasMode : int {
    kBiasNone = 0,     // no bias (or mode without x)
    kBiasPerVec = 1,   // all V elements of a vector share one channel (inner % V == 0 or channels == 1)
    kBiasContig = 2,   // inner == 1, channels % V == 0, b 16-byte aligned: bias is one aligned vector
    kBiasGeneral = 3,  // per-element channel, advanced incrementally within a vector
};

template <typename A, typename I> struct KParams {
    void* out;
    const void* x;
    const void* b;
    const void* y;
    const void* dy;
    const void* ddx;
    I n;
    I nvec;            // vectors handled by the vector path (0 when a pointer is misaligned)
    I inner;           // min(inner, n)
    I channels;        // min(channels, n)
    FastDiv<I> div_inner;
    FastDiv<I> div_channels;
    A alpha, gain, inv_gain, clamp;
    A clamp_y;         // clamp rounded to T: y holds T(clamp) where the forward pass clamped
    int bias_mode;
    bool do_clamp;
    bool gain_nonzero;
};

template <typename A, typename I>
FG_HD I channel_of(const KParams<A, I>& p, I e, I* rem) {
    const I q = p.div_inner.div(e);
    *rem = e - q * p.inner;
    return q - p.div_channels.div(q) * p.channels;
}

template <int ACT, int MODE, bool RX, typename A, typename I>
FG_HD A eval_elem(const KParams<A, I>& p, A x, A bias, A y, A dy, A ddx) {
    if constexpr (MODE == 0) {
        A v = act_f<ACT>(x + bias, p.alpha) * p.gain;
        if (p.do_clamp) v = v > p.clamp ? p.clamp : (v < -p.clamp ? -p.clamp : v);  // NaN stays NaN
        return v;
    } else {
        A d;
        if constexpr (RX) {
            const A s = x + bias;
            d = MODE == 1 ? p.gain * act_d1_s<ACT>(s, p.alpha) : p.gain * act_d2_s<ACT>(s);
        } else if constexpr (ACT == kLinear) {
            d = MODE == 1 ? p.gain : A(0);
        } else {
            const A yy = p.gain_nonzero ? y * p.inv_gain : A(0);
            d = MODE == 1 ? p.gain * act_d1_y<ACT>(yy, p.alpha) : act_d2_y<ACT>(yy);
        }
        A r = MODE == 1 ? dy * d : ddx * dy * d;
        if (p.do_clamp && m_abs(y) >= p.clamp_y) r = A(0);
        return r;
    }
}

// 16-byte vectors per thread per grid-stride iteration: 16 elements per thread in the forward pass
// (4 for float64), 8 (2) in the gradient modes, which read 2-4 inputs.
template <typename T, int MODE>
constexpr int kUnroll = (MODE == 0 ? 4 : 2) / (sizeof(T) == 4 ? 1 : 2);

// The whole grid-stride loop of one thread (block `block` of `nblocks`, thread `thread`).  Kept
// __host__ __device__ so that a host harness can emulate a launch thread by thread.
template <typename T, int ACT, int MODE, bool RX, typename I>
FG_HD void bias_act_thread(const KParams<typename AccOf<T>::type, I>& p, unsigned block, unsigned nblocks,
                           unsigned thread) {
    using A = typename AccOf<T>::type;
    constexpr int V = 16 / sizeof(T);
    constexpr int U = kUnroll<T, MODE>;
    constexpr bool kUseX = MODE == 0 || RX;
    constexpr bool kStaticY = kNeedsY<ACT, MODE, RX>;
    const bool use_y = kStaticY || (MODE != 0 && p.do_clamp);
    const int bias_mode = kUseX ? p.bias_mode : int(kBiasNone);

    const I nthreads = I(nblocks) * I(kThreads);

    // ---- vector path: U independent 16-byte vectors per thread per iteration
    for (I base = I(block) * I(kThreads * U) + I(thread); base < p.nvec; base += nthreads * I(U)) {
        Pack<T, V> xv[U] = {}, yv[U] = {}, dyv[U] = {}, ddxv[U] = {};
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const I j = base + I(u * kThreads);
            if (j < p.nvec) {
                if constexpr (kUseX) xv[u] = ld_vec<T, V>(p.x, j);
                if constexpr (MODE != 0) {
                    dyv[u] = ld_vec<T, V>(p.dy, j);
                    if (use_y) yv[u] = ld_vec<T, V>(p.y, j);
                }
                if constexpr (MODE == 2) ddxv[u] = ld_vec<T, V>(p.ddx, j);
            }
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const I j = base + I(u * kThreads);
            if (j < p.nvec) {
                A bias[V];
#pragma unroll
                for (int k = 0; k < V; ++k) bias[k] = A(0);
                if (bias_mode != kBiasNone) {
                    I r;
                    I c = channel_of(p, j * I(V), &r);
                    if (bias_mode == kBiasPerVec) {
                        const A bv = ld_elem<T>(p.b, c);
#pragma unroll
                        for (int k = 0; k < V; ++k) bias[k] = bv;
                    } else if (bias_mode == kBiasContig) {
                        const Pack<T, V> bp = ld_vec<T, V>(p.b, c / I(V));
#pragma unroll
                        for (int k = 0; k < V; ++k) bias[k] = to_acc<T>(bp.v[k]);
                    } else {
#pragma unroll
                        for (int k = 0; k < V; ++k) {
                            bias[k] = ld_elem<T>(p.b, c);
                            if (++r == p.inner) {
                                r = 0;
                                if (++c == p.channels) c = 0;
                            }
                        }
                    }
                }
                Pack<T, V> o;
#pragma unroll
                for (int k = 0; k < V; ++k) {
                    const A xa = kUseX ? to_acc<T>(xv[u].v[k]) : A(0);
                    const A ya = MODE != 0 ? to_acc<T>(yv[u].v[k]) : A(0);
                    const A dya = MODE != 0 ? to_acc<T>(dyv[u].v[k]) : A(0);
                    const A ddxa = MODE == 2 ? to_acc<T>(ddxv[u].v[k]) : A(0);
                    o.v[k] = from_acc<T>(eval_elem<ACT, MODE, RX>(p, xa, bias[k], ya, dya, ddxa));
                }
                uint4 raw;
                memcpy(&raw, &o, sizeof(raw));
                static_cast<uint4*>(p.out)[j] = raw;
            }
        }
    }

    // ---- scalar path: the n % V tail, or everything when misaligned
    for (I i = p.nvec * I(V) + I(block) * I(kThreads) + I(thread); i < p.n; i += nthreads) {
        A bias = A(0);
        if (bias_mode != kBiasNone) {
            I r;
            bias = ld_elem<T>(p.b, channel_of(p, i, &r));
        }
        const A xa = kUseX ? ld_elem<T>(p.x, i) : A(0);
        const A ya = use_y ? ld_elem<T>(p.y, i) : A(0);
        const A dya = MODE != 0 ? ld_elem<T>(p.dy, i) : A(0);
        const A ddxa = MODE == 2 ? ld_elem<T>(p.ddx, i) : A(0);
        static_cast<T*>(p.out)[i] = from_acc<T>(eval_elem<ACT, MODE, RX>(p, xa, bias, ya, dya, ddxa));
    }
}

template <typename T, int ACT, int MODE, bool RX, typename I>
__global__ void __launch_bounds__(kThreads, kMinBlocksPerSM)
bias_act_kernel(const KParams<typename AccOf<T>::type, I> p) {
    bias_act_thread<T, ACT, MODE, RX, I>(p, blockIdx.x, gridDim.x, threadIdx.x);
}

// ------------------------------------------------------------------------------------------------
// Host side.
template <typename A, typename I> using KernelFn = void (*)(KParams<A, I>);

// Sel::get<T, ACT, MODE, RX, I>() names the function for one instantiation (the kernel here; a host
// harness can plug in its emulator).
struct KernelSel {
    template <typename T, int ACT, int MODE, bool RX, typename I>
    static KernelFn<typename AccOf<T>::type, I> get() { return bias_act_kernel<T, ACT, MODE, RX, I>; }
};

template <typename Sel, typename T, int ACT, typename I>
auto pick_mode(int mode, bool ref_x) -> decltype(Sel::template get<T, ACT, 0, false, I>()) {
    if (mode == 0) return Sel::template get<T, ACT, 0, false, I>();
    if constexpr (ACT == kSwish) {  // swish derivatives need x
        if (!ref_x) return nullptr;
        return mode == 1 ? Sel::template get<T, ACT, 1, true, I>() : Sel::template get<T, ACT, 2, true, I>();
    } else {
        if (mode == 1)
            return ref_x ? Sel::template get<T, ACT, 1, true, I>() : Sel::template get<T, ACT, 1, false, I>();
        return ref_x ? Sel::template get<T, ACT, 2, true, I>() : Sel::template get<T, ACT, 2, false, I>();
    }
}

template <typename Sel, typename T, typename I>
auto pick_kernel(int act, int mode, bool ref_x) -> decltype(Sel::template get<T, kLinear, 0, false, I>()) {
    switch (act) {
        case kLinear: return pick_mode<Sel, T, kLinear, I>(mode, ref_x);
        case kRelu: return pick_mode<Sel, T, kRelu, I>(mode, ref_x);
        case kLrelu: return pick_mode<Sel, T, kLrelu, I>(mode, ref_x);
        case kTanh: return pick_mode<Sel, T, kTanh, I>(mode, ref_x);
        case kSigmoid: return pick_mode<Sel, T, kSigmoid, I>(mode, ref_x);
        case kElu: return pick_mode<Sel, T, kElu, I>(mode, ref_x);
        case kSelu: return pick_mode<Sel, T, kSelu, I>(mode, ref_x);
        case kSoftplus: return pick_mode<Sel, T, kSoftplus, I>(mode, ref_x);
        case kSwish: return pick_mode<Sel, T, kSwish, I>(mode, ref_x);
        default: return nullptr;
    }
}

// Validates p; reports which inputs the call reads.
cudaError_t check_params(const BiasActParams& p, int dtype_code, bool* uses_x, bool* needs_y) {
    if (p.mode < 0 || p.mode > 2 || p.act < 0 || p.act >= FASTGAN_NUM_ACTS || p.n < 0 || dtype_code < 0 ||
        dtype_code > FASTGAN_DTYPE_F64)
        return cudaErrorInvalidValue;
    *uses_x = p.mode == 0 || p.ref_x;
    *needs_y = false;
    if (p.mode != 0) {
        *needs_y = p.clamp >= 0 || (!p.ref_x && p.act != FASTGAN_ACT_LINEAR &&
                                    !(p.mode == 2 && (p.act == FASTGAN_ACT_RELU || p.act == FASTGAN_ACT_LRELU)));
        if (p.act == FASTGAN_ACT_SWISH && !p.ref_x) return cudaErrorInvalidValue;
    }
    if (p.n == 0) return cudaSuccess;
    if (p.out == nullptr || (*uses_x && p.x == nullptr) || (*needs_y && p.y == nullptr) ||
        (p.mode != 0 && p.dy == nullptr) || (p.mode == 2 && p.ddx == nullptr))
        return cudaErrorInvalidValue;
    if (*uses_x && p.b != nullptr && (p.inner < 1 || p.channels < 1)) return cudaErrorInvalidValue;
    return cudaSuccess;
}

// Kernel arguments for one call (p already checked, n >= 1).
template <typename T, typename I>
KParams<typename AccOf<T>::type, I> make_kparams(const BiasActParams& p, bool uses_x, bool needs_y) {
    using A = typename AccOf<T>::type;
    constexpr int V = 16 / sizeof(T);
    const bool has_bias = uses_x && p.b != nullptr;

    KParams<A, I> k;
    k.out = p.out;
    k.x = uses_x ? p.x : nullptr;
    k.b = has_bias ? p.b : nullptr;
    k.y = needs_y ? p.y : nullptr;
    k.dy = p.mode != 0 ? p.dy : nullptr;
    k.ddx = p.mode == 2 ? p.ddx : nullptr;
    k.n = I(p.n);
    // (i / inner) % channels is unchanged when inner and channels are capped at n (i < n), which
    // keeps both divisors inside the FastDiv range.
    k.inner = has_bias ? I(p.inner < p.n ? p.inner : p.n) : I(1);
    k.channels = has_bias ? I(p.channels < p.n ? p.channels : p.n) : I(1);
    k.div_inner = make_fastdiv<I>(k.inner);
    k.div_channels = make_fastdiv<I>(k.channels);
    k.alpha = A(p.alpha);
    k.gain = A(p.gain);
    k.inv_gain = A(p.inv_gain);
    k.clamp = A(p.clamp);
    k.clamp_y = to_acc<T>(from_acc<T>(A(p.clamp)));
    k.do_clamp = p.clamp >= 0;
    k.gain_nonzero = p.gain != 0;

    const bool vec_ok = aligned16(k.out) && (k.x == nullptr || aligned16(k.x)) &&
                        (k.y == nullptr || aligned16(k.y)) && (k.dy == nullptr || aligned16(k.dy)) &&
                        (k.ddx == nullptr || aligned16(k.ddx));
    k.nvec = vec_ok ? k.n / I(V) : I(0);

    if (!has_bias) {
        k.bias_mode = kBiasNone;
    } else if (k.channels == 1 || k.inner % I(V) == 0) {
        k.bias_mode = kBiasPerVec;
    } else if (k.inner == 1 && k.channels % I(V) == 0 && aligned16(k.b)) {
        k.bias_mode = kBiasContig;
    } else {
        k.bias_mode = kBiasGeneral;
    }
    return k;
}

// Blocks needed for one pass without grid-striding (the launcher caps this).
template <typename T, typename I, typename A>
int64_t blocks_needed(const KParams<A, I>& k, int mode) {
    const int U = mode == 0 ? kUnroll<T, 0> : kUnroll<T, 1>;
    const int64_t per_block = k.nvec > 0 ? int64_t(kThreads) * U : int64_t(kThreads);
    const int64_t work = k.nvec > 0 ? int64_t(k.nvec) : int64_t(k.n);
    return (work + per_block - 1) / per_block;
}

template <typename T, typename I>
cudaError_t launch_typed(const BiasActParams& p, bool uses_x, bool needs_y, cudaStream_t stream) {
    const auto fn = pick_kernel<KernelSel, T, I>(p.act, p.mode, p.ref_x);
    if (fn == nullptr) return cudaErrorInvalidValue;
    const auto k = make_kparams<T, I>(p, uses_x, needs_y);

    int sms = 0;
    const cudaError_t err = sm_count(&sms);
    if (err != cudaSuccess) return err;
    int64_t blocks = blocks_needed<T>(k, p.mode);
    const int64_t cap = int64_t(sms) * 32;  // grid-stride beyond ~8 waves of 4 blocks per SM
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;

    fn<<<unsigned(blocks), kThreads, 0, stream>>>(k);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch_dtype(const BiasActParams& p, bool uses_x, bool needs_y, cudaStream_t stream) {
    if (p.n < (int64_t(1) << 31)) return launch_typed<T, uint32_t>(p, uses_x, needs_y, stream);
    return launch_typed<T, uint64_t>(p, uses_x, needs_y, stream);
}

}  // namespace

cudaError_t fastgan_bias_act_launch(const BiasActParams& p, int dtype_code, cudaStream_t stream) {
    bool uses_x = false, needs_y = false;
    const cudaError_t err = check_params(p, dtype_code, &uses_x, &needs_y);
    if (err != cudaSuccess || p.n == 0) return err;
    switch (dtype_code) {
        case FASTGAN_DTYPE_F32: return launch_dtype<float>(p, uses_x, needs_y, stream);
        case FASTGAN_DTYPE_F16: return launch_dtype<__half>(p, uses_x, needs_y, stream);
        case FASTGAN_DTYPE_BF16: return launch_dtype<__nv_bfloat16>(p, uses_x, needs_y, stream);
        case FASTGAN_DTYPE_F64: return launch_dtype<double>(p, uses_x, needs_y, stream);
        default: return cudaErrorInvalidValue;
    }
}
