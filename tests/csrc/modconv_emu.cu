// Host emulation of the modulated-conv CUDA kernels in csrc/modconv.cu (no GPU, no torch).
//
// The epilogue's whole per-thread work is a __host__ __device__ function (epilogue_thread) and the
// host planner picks the kernel through a selector type (plan_epilogue<Sel, T, I>); this harness
// plugs in a selector whose "kernels" run a launch on the CPU block by block and thread by thread,
// then compares every output with a double-precision evaluation of the contract in modconv.h
// (written here from the definition, with its own activation functions: no code shared with the
// kernels).  The coefficient kernel is replayed warp by warp: its lane partials
// (dcoefs_lane_partial), the xor-butterfly order of its shuffle reduction, and its finish, against
// a long-double reference.
//
// Traps:
//   * c, d, noise and b sit inside NaN-filled buffers (guards, and the gaps of strided noise), so a
//     read of a wrong element poisons an output;
//   * y sits inside a sentinel-filled buffer: every element must be written, no guard touched;
//   * c / y / d / b are placed at element offsets that break 16-byte alignment in some configs (the
//     scalar path, and the per-element d / b loads of channels_last);
//   * grids are capped small in some configs, so threads loop over several vectors.
//
// Coverage: every (dtype, act, layout, index width) epilogue kernel the planner can name is
// registered at start-up and exercised by a targeted config (the 64-bit-index kernels through the
// planner with I = uint64 on small tensors); then random configs (odd sizes, noise per-sample /
// shared / full / channels_last / per-channel / permuted / other dtype, NaN inputs, clamp, random
// alpha / gain).  It prints
//   "kernel variants: <exercised> exercised of <instantiated> instantiated"
//   "configs: <run> run, <failing> failing; vector configs: ..; straddling: ..; cl vector d/b: ..;
//    looped launches: ..; NaN inputs: .."
//   "dcoefs: <run> run, <failing> failing"
// and exits non-zero on any mismatch (naming the config).
//
// Build (nvcc compiles the file for the host only: the device pass sees an empty file):
//   nvcc -std=c++20 -O0 --expt-relaxed-constexpr -I csrc -x cu tests/csrc/modconv_emu.cu -o emu
// Run: ./emu [random_configs=300] [seed=1234] [-v]   (./emu --probe: start and exit 0)
// tests/test_csrc_emulation_modconv.py builds and runs it.
#ifndef __CUDA_ARCH__

#include "modconv.cu"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>  // __sanitizer_set_death_callback
#endif

namespace {

// The config being run, named when the process dies (crash, sanitizer report).
char g_current[512];

void report_current() {
    if (g_current[0]) {
        static const char kHead[] = "CRASH while running: ";
        fflush(stdout);
        if (write(1, kHead, sizeof kHead - 1) < 0 || write(1, g_current, strlen(g_current)) < 0 || write(1, "\n", 1) < 0) {
        }
    }
}
extern "C" void on_signal(int sig) {
    report_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

const char* kDt[] = {"f32", "f64", "f16", "bf16"};
const char* kActName[] = {"linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"};

template <typename T> const char* tname() {
    if constexpr (std::is_same_v<T, float>) return "f32";
    else if constexpr (std::is_same_v<T, double>) return "f64";
    else if constexpr (std::is_same_v<T, __half>) return "f16";
    else return "bf16";
}

// ------------------------------------------------------------------------------------------------
// Variant registry: name -> runs.
std::map<std::string, int>& variants() {
    static std::map<std::string, int> m;
    return m;
}
std::string epi_name(const char* t, int act, bool cl, int ibits) {
    char b[96];
    snprintf(b, sizeof b, "epilogue<%s,%s,%s,i%d>", t, kActName[act], cl ? "CL" : "NCHW", ibits);
    return b;
}
bool register_variant(const std::string& name) {
    variants().emplace(name, 0);
    return true;
}
std::string g_ran;  // the variant the last emulated launch ran

// ------------------------------------------------------------------------------------------------
// Emulated launches.
int64_t g_blocks = 1;  // grid size of the launch being emulated (from the plan)

template <typename T, int ACT, bool CL, typename I> void emu_epilogue(EpiParams<Acc<T>, I> p) {
    g_ran = epi_name(tname<T>(), ACT, CL, int(8 * sizeof(I)));
    for (int64_t b = 0; b < g_blocks; ++b)
        for (int t = 0; t < kThreads; ++t) epilogue_thread<T, ACT, CL, I>(p, unsigned(b), unsigned(g_blocks), unsigned(t));
}

template <typename T, int ACT, bool CL, typename I> struct EpiReg {
    static inline const bool registered = register_variant(epi_name(tname<T>(), ACT, CL, int(8 * sizeof(I))));
};

template <typename A> void emu_dcoefs(DcoefsArgs<A> a) {
    for (int64_t blk = 0; blk < g_blocks; ++blk)
        for (int warp = 0; warp < kDcoefWarps; ++warp) {
            int64_t n0, n1, o;
            dcoefs_coords(a, blk, warp, &n0, &n1, &o);
            if (o >= a.o) continue;
            for (int64_t n = n0; n < n1; ++n) {
                A v[kWarp], t[kWarp];
                for (int l = 0; l < kWarp; ++l) v[l] = dcoefs_lane_partial(a, n, o, l);
                for (int off = kWarp / 2; off > 0; off >>= 1) {  // v += __shfl_xor_sync(v, off)
                    for (int l = 0; l < kWarp; ++l) t[l] = v[l] + v[l ^ off];
                    for (int l = 0; l < kWarp; ++l) v[l] = t[l];
                }
                a.d[n * a.o + o] = inv_sqrt(v[0] + a.eps);
            }
        }
}

struct EmuSel {
    template <typename T, int ACT, bool CL, typename I> static EpiFn<Acc<T>, I> epilogue() {
        (void)EpiReg<T, ACT, CL, I>::registered;  // every kernel pick_act can name
        return emu_epilogue<T, ACT, CL, I>;
    }
    template <typename A> static DcoefsFn<A> dcoefs() { return emu_dcoefs<A>; }
};

// ------------------------------------------------------------------------------------------------
// Reference (double precision, from the definition).
double ref_act(int act, double s, double alpha) {
    switch (act) {
        case 0: return s;
        case 1: return s < 0 ? 0.0 : s;
        case 2: return s < 0 ? alpha * s : s;
        case 3: return std::tanh(s);
        case 4: return 1.0 / (1.0 + std::exp(-s));
        case 5: return s > 0 ? s : std::expm1(s);
        case 6: return 1.0507009873554804934193349852946 * (s > 0 ? s : 1.6732632423543772848170429916717 * std::expm1(s));
        case 7: return std::isnan(s) ? s : (s > 0 ? s + std::log1p(std::exp(-s)) : std::log1p(std::exp(s)));
        default: return s / (1.0 + std::exp(-s));
    }
}

template <typename T> double to_d(T v) {
    if constexpr (std::is_same_v<T, __half>) return __half2float(v);
    else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
    else return double(v);
}
template <typename T> T from_d(double v) { return from_acc<T>(Acc<T>(v)); }

// ------------------------------------------------------------------------------------------------
// Configs.
const char* kNoiseName[] = {"none", "per_sample", "shared", "full_nchw", "full_cl", "per_channel", "permuted"};

struct Cfg {
    int dt = 0;  // 0 f32, 1 f64, 2 f16, 3 bf16
    int64_t n = 1, o = 1, h = 1, w = 1;
    bool cl = false;
    bool has_d = true, has_b = true;
    int noise = 1;     // kNoiseName index
    int noise_dt = 0;  // dtype of noise (kDt index)
    int act = 2;
    double alpha = 0.2, gain = 1.4142135623730951, clamp = -1;
    int yoff = 0, coff = 0, doff = 0, boff = 0;  // element offsets from 16-byte-aligned bases
    int nan = 0;       // 1: one c element is NaN; 2: one noise element is NaN
    int sms = 1000;    // SM count given to the planner (grid cap = 32 * sms blocks)
    bool i64 = false;  // plan with 64-bit indices
    std::string tag;
};

std::string describe(const Cfg& c) {
    char b[400];
    snprintf(b, sizeof b,
             "%s %s %s n=%ld o=%ld h=%ld w=%ld d=%d b=%d noise=%s/%s act=%s alpha=%g gain=%g clamp=%g "
             "off(y,c,d,b)=(%d,%d,%d,%d) nan=%d sms=%d i%d",
             c.tag.c_str(), kDt[c.dt], c.cl ? "CL" : "NCHW", long(c.n), long(c.o), long(c.h), long(c.w), int(c.has_d),
             int(c.has_b), kNoiseName[c.noise], kDt[c.noise_dt], kActName[c.act], c.alpha, c.gain, c.clamp, c.yoff,
             c.coff, c.doff, c.boff, c.nan, c.sms, c.i64 ? 64 : 32);
    return b;
}

struct Rng {
    std::mt19937_64 g;
    explicit Rng(uint64_t s) : g(s) {}
    int64_t i(int64_t lo, int64_t hi) { return int64_t(uint64_t(lo) + g() % (uint64_t(hi) - uint64_t(lo) + 1)); }
    bool p(int num, int den) { return int64_t(g() % uint64_t(den)) < num; }
    double u(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g); }
};

Cfg random_cfg(Rng& r) {
    Cfg c;
    c.dt = int(r.i(0, 3));
    c.cl = r.p(1, 2);
    c.n = r.i(1, 3);
    c.o = r.p(1, 3) ? r.i(1, 9) : (r.p(1, 2) ? 8 * r.i(1, 12) : r.i(10, 70));
    c.h = r.p(1, 5) ? 1 : r.i(1, 17);
    c.w = r.p(1, 5) ? 1 : r.i(1, 19);
    if (r.p(1, 3)) c.h = c.w = int64_t(1) << r.i(1, 4);  // StyleGAN-like square power-of-two maps
    c.has_d = r.p(3, 4);
    c.has_b = r.p(3, 4);
    c.noise = r.p(1, 5) ? 0 : int(r.i(1, 6));
    c.noise_dt = r.p(1, 2) ? c.dt : int(r.i(0, 3));
    c.act = int(r.i(0, 8));
    c.alpha = r.p(1, 2) ? 0.2 : r.u(-0.5, 0.9);
    c.gain = r.p(1, 2) ? 1.0 : r.u(0.2, 2.0);
    c.clamp = r.p(1, 2) ? -1.0 : r.u(0.3, 3.0);
    if (r.p(1, 4)) { c.yoff = int(r.i(0, 3)); c.coff = int(r.i(0, 3)); }
    if (r.p(1, 4)) { c.doff = int(r.i(0, 3)); c.boff = int(r.i(0, 3)); }
    c.nan = r.p(1, 6) ? int(r.i(1, 2)) : 0;
    c.sms = r.p(1, 3) ? 1 : 1000;
    c.i64 = r.p(1, 5);
    return c;
}

// ------------------------------------------------------------------------------------------------
// One epilogue run.
struct Stats {
    int64_t run = 0, failing = 0, vec = 0, straddle = 0, cl_vec = 0, looped = 0, nans = 0;
} g_stats;

constexpr int64_t G = 29;  // guard elements around every buffer

template <typename T> std::vector<T> nan_buffer(int64_t n) { return std::vector<T>(n + 2 * G + 16, from_d<T>(NAN)); }

// A pointer `off` elements past a 16-byte-aligned position after the front guard.
template <typename T> T* place(std::vector<T>& buf, int off) {
    uintptr_t a = reinterpret_cast<uintptr_t>(buf.data() + G);
    a = (a + 15) & ~uintptr_t(15);
    return reinterpret_cast<T*>(a) + off;
}

template <typename T, typename NT> int run_epilogue_nt(const Cfg& cf, Rng& r, bool verbose) {
    using A = Acc<T>;
    constexpr int V = 16 / sizeof(T);
    const int64_t N = cf.n, O = cf.o, H = cf.h, W = cf.w, total = N * O * H * W;
    int64_t cs[4];  // c / y strides
    if (cf.cl) { cs[1] = 1; cs[3] = O; cs[2] = W * O; cs[0] = H * W * O; }
    else { cs[3] = 1; cs[2] = W; cs[1] = H * W; cs[0] = O * H * W; }
    auto cidx = [&](int64_t n, int64_t o, int64_t h, int64_t w) { return n * cs[0] + o * cs[1] + h * cs[2] + w * cs[3]; };

    std::vector<T> cb = nan_buffer<T>(total);
    T* const c = place(cb, cf.coff);
    for (int64_t k = 0; k < total; ++k) c[k] = from_d<T>(r.u(-2.5, 2.5));
    std::vector<A> db = nan_buffer<A>(N * O);
    A* const d = place(db, cf.doff);
    for (int64_t k = 0; k < N * O; ++k) d[k] = A(r.u(0.5, 1.5));
    std::vector<T> bb = nan_buffer<T>(O);
    T* const b = place(bb, cf.boff);
    for (int64_t k = 0; k < O; ++k) b[k] = from_d<T>(r.u(-1, 1));

    // noise: a view of a NaN-filled buffer; its own elements are random
    int64_t ns[4] = {0, 0, 0, 0}, nspan = 1;
    switch (cf.noise) {
        case 1: ns[0] = H * W; ns[2] = W; ns[3] = 1; nspan = N * H * W; break;                  // [N,1,H,W]
        case 2: ns[2] = W; ns[3] = 1; nspan = H * W; break;                                     // [1,1,H,W]
        case 3: ns[0] = O * H * W; ns[1] = H * W; ns[2] = W; ns[3] = 1; nspan = total; break;   // full NCHW
        case 4: ns[0] = H * W * O; ns[1] = 1; ns[2] = W * O; ns[3] = O; nspan = total; break;   // full CL
        case 5: ns[0] = O; ns[1] = 1; nspan = N * O; break;                                     // [N,O,1,1]
        case 6: ns[3] = 2; ns[2] = 2 * W + 1; ns[1] = ns[2] * H + 3; ns[0] = ns[1] * O + 1;     // strided, gaps
                nspan = (N - 1) * ns[0] + (O - 1) * ns[1] + (H - 1) * ns[2] + (W - 1) * ns[3] + 1; break;
        default: break;
    }
    std::vector<NT> nb = nan_buffer<NT>(nspan);
    NT* const nz = place(nb, 0);
    auto nidx = [&](int64_t n, int64_t o, int64_t h, int64_t w) { return n * ns[0] + o * ns[1] + h * ns[2] + w * ns[3]; };
    if (cf.noise)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t o = 0; o < O; ++o)
                for (int64_t h = 0; h < H; ++h)
                    for (int64_t w = 0; w < W; ++w) nz[nidx(n, o, h, w)] = from_d<NT>(r.u(-1, 1));

    if (cf.nan == 1) {
        c[r.i(0, total - 1)] = from_d<T>(NAN);
        ++g_stats.nans;
    } else if (cf.nan == 2 && cf.noise) {
        nz[nidx(r.i(0, N - 1), r.i(0, O - 1), r.i(0, H - 1), r.i(0, W - 1))] = from_d<NT>(NAN);
        ++g_stats.nans;
    }

    const T sentinel = from_d<T>(-777.25);
    std::vector<T> yb(total + 2 * G + 16, sentinel);
    T* const y = place(yb, cf.yoff);

    ModconvEpilogueParams p{};
    p.y = y;
    p.c = c;
    p.d = cf.has_d ? d : nullptr;
    p.noise = cf.noise ? nz : nullptr;
    p.b = cf.has_b ? b : nullptr;
    p.n = N; p.o = O; p.h = H; p.w = W;
    for (int k = 0; k < 4; ++k) p.noise_stride[k] = ns[k];
    p.noise_dtype_code = cf.noise_dt == 0 ? FASTGAN_DTYPE_F32 : cf.noise_dt == 1 ? FASTGAN_DTYPE_F64
                         : cf.noise_dt == 2 ? FASTGAN_DTYPE_F16 : FASTGAN_DTYPE_BF16;
    p.channels_last = cf.cl;
    p.act = cf.act;
    p.alpha = cf.alpha;
    p.gain = cf.gain;
    p.clamp = cf.clamp;
    const int code = std::is_same_v<T, float> ? FASTGAN_DTYPE_F32 : std::is_same_v<T, double> ? FASTGAN_DTYPE_F64
                     : std::is_same_v<T, __half> ? FASTGAN_DTYPE_F16 : FASTGAN_DTYPE_BF16;
    if (check_epilogue(p, code) != cudaSuccess) {
        printf("FAIL %s: check_epilogue rejected a valid config\n", describe(cf).c_str());
        return 1;
    }

    auto run = [&](auto plan) {
        g_blocks = plan.blocks;
        if (plan.k.nvec > 0) ++g_stats.vec;
        if (plan.k.cl_vec && (cf.has_d || cf.has_b)) ++g_stats.cl_vec;
        const int64_t per_block = plan.k.nvec > 0 ? int64_t(kThreads) * kUnroll<T> : int64_t(kThreads);
        if (plan.blocks * per_block < (plan.k.nvec > 0 ? int64_t(plan.k.nvec) : total)) ++g_stats.looped;
        plan.fn(plan.k);
    };
    bool planned;
    if (cf.i64) {
        EpiPlan<A, uint64_t> plan;
        planned = plan_epilogue<EmuSel, T, uint64_t>(p, cf.sms, &plan);
        if (planned) run(plan);
    } else {
        EpiPlan<A, uint32_t> plan;
        planned = plan_epilogue<EmuSel, T, uint32_t>(p, cf.sms, &plan);
        if (planned) run(plan);
    }
    if (!planned) {
        printf("FAIL %s: the planner found no kernel\n", describe(cf).c_str());
        return 1;
    }
    variants()[g_ran]++;
    if ((cf.cl ? O : H * W) % V != 0) ++g_stats.straddle;

    // reference and checks
    const double tol = std::is_same_v<T, double> ? 1e-12 : std::is_same_v<T, float> ? 2e-6
                       : std::is_same_v<T, __half> ? 1e-3 : 8e-3;  // relative, plus rounding of T
    int bad = 0;
    for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < O; ++o)
            for (int64_t h = 0; h < H; ++h)
                for (int64_t w = 0; w < W; ++w) {
                    const int64_t e = cidx(n, o, h, w);
                    double u = to_d(c[e]);
                    if (cf.has_d) u *= double(d[n * O + o]);
                    // float-typed compute rounds noise to A first (as the reference's .to(float32))
                    if (cf.noise) u += double(A(to_d(nz[nidx(n, o, h, w)])));
                    if (cf.has_b) u += to_d(b[o]);
                    double v = ref_act(cf.act, u, double(A(cf.alpha))) * double(A(cf.gain));
                    if (cf.clamp >= 0) {
                        const double cl = double(A(cf.clamp));
                        v = v > cl ? cl : (v < -cl ? -cl : v);
                    }
                    const double got = to_d(y[e]);
                    // slack for the compute-type rounding of u (act' <= ~1.1) and of the output
                    const double mag = std::fabs(to_d(c[e])) * (cf.has_d ? 1.5 : 1.0) + 2.0 + std::fabs(v);
                    bool ok;
                    if (std::isnan(v)) ok = std::isnan(got);
                    else ok = !std::isnan(got) && std::fabs(got - v) <= tol * mag * std::max(1.0, std::fabs(cf.gain));
                    if (!ok) {
                        if (bad == 0) printf("FAIL %s [%s]\n", describe(cf).c_str(), g_ran.c_str());
                        if (bad < 4)
                            printf("  mismatch at n=%ld o=%ld h=%ld w=%ld: got %.9g, want %.9g%s\n", long(n), long(o),
                                   long(h), long(w), got, v,
                                   memcmp(&y[e], &sentinel, sizeof(T)) == 0 ? " (never written?)" : "");
                        ++bad;
                    }
                }
    // nothing outside y[0, total) written
    int64_t stray = 0;
    for (size_t k = 0; k < yb.size(); ++k) {
        const T* q = yb.data() + k;
        if ((q < y || q >= y + total) && memcmp(q, &sentinel, sizeof(T)) != 0) ++stray;
    }
    if (stray) {
        if (bad == 0) printf("FAIL %s [%s]\n", describe(cf).c_str(), g_ran.c_str());
        printf("  %ld writes outside y\n", long(stray));
        bad += int(stray);
    }
    if (verbose && !bad) printf("ok   %s [%s]\n", describe(cf).c_str(), g_ran.c_str());
    return bad;
}

template <typename T> int run_epilogue(const Cfg& cf, Rng& r, bool verbose) {
    switch (cf.noise_dt) {
        case 0: return run_epilogue_nt<T, float>(cf, r, verbose);
        case 1: return run_epilogue_nt<T, double>(cf, r, verbose);
        case 2: return run_epilogue_nt<T, __half>(cf, r, verbose);
        default: return run_epilogue_nt<T, __nv_bfloat16>(cf, r, verbose);
    }
}

int run_any(const Cfg& cf, Rng& r, bool verbose) {
    snprintf(g_current, sizeof g_current, "%s", describe(cf).c_str());
    ++g_stats.run;
    int bad;
    switch (cf.dt) {
        case 0: bad = run_epilogue<float>(cf, r, verbose); break;
        case 1: bad = run_epilogue<double>(cf, r, verbose); break;
        case 2: bad = run_epilogue<__half>(cf, r, verbose); break;
        default: bad = run_epilogue<__nv_bfloat16>(cf, r, verbose); break;
    }
    if (bad) ++g_stats.failing;
    return bad;
}

// ------------------------------------------------------------------------------------------------
// dcoefs runs.
template <typename A> int run_dcoefs(int64_t N, int64_t O, int64_t I, int nan, Rng& r) {
    std::vector<A> sb = nan_buffer<A>(N * I), wb = nan_buffer<A>(O * I);
    A* const s = place(sb, 0);
    A* const wsq = place(wb, 0);
    for (int64_t k = 0; k < N * I; ++k) s[k] = A(r.u(-2, 2));
    for (int64_t k = 0; k < O * I; ++k) wsq[k] = A(r.u(0, 3));
    int64_t nan_n = -1;
    if (nan && I > 0) {
        nan_n = r.i(0, N - 1);
        s[nan_n * I + r.i(0, I - 1)] = A(NAN);
    }
    const A sentinel = A(-5.5);
    std::vector<A> db(N * O + 2 * G + 16, sentinel);
    A* const d = place(db, 0);
    ModconvDcoefsParams p{};
    p.d = d; p.s = s; p.wsq = wsq; p.n = N; p.o = O; p.i = I; p.eps = 1e-8;
    DcoefsPlan<A> plan;
    if (!plan_dcoefs<EmuSel, A>(p, &plan)) {
        printf("FAIL dcoefs N=%ld O=%ld I=%ld: not planned\n", long(N), long(O), long(I));
        return 1;
    }
    g_blocks = plan.blocks;
    plan.fn(plan.a);
    const double tol = std::is_same_v<A, double> ? 1e-14 : 3e-7;
    int bad = 0;
    for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < O; ++o) {
            long double q = 0;
            for (int64_t i = 0; i < I; ++i) q += (long double)s[n * I + i] * s[n * I + i] * wsq[o * I + i];
            // float: the kernel sums I rounded terms (relative error <= ~I ulp, all terms >= 0)
            const double want = double(1.0L / std::sqrt(q + (long double)A(1e-8)));
            const double got = double(d[n * O + o]);
            const bool ok = n == nan_n ? std::isnan(got)
                                       : std::fabs(got - want) <= tol * (1.0 + double(I) / 8) * std::fabs(want);
            if (!ok) {
                if (bad < 4)
                    printf("FAIL dcoefs<%s> N=%ld O=%ld I=%ld at n=%ld o=%ld: got %.17g want %.17g\n",
                           std::is_same_v<A, double> ? "f64" : "f32", long(N), long(O), long(I), long(n), long(o), got,
                           want);
                ++bad;
            }
        }
    for (size_t k = 0; k < db.size(); ++k) {
        const A* q = db.data() + k;
        if ((q < d || q >= d + N * O) && memcmp(q, &sentinel, sizeof(A)) != 0) {
            printf("FAIL dcoefs N=%ld O=%ld I=%ld: write outside d\n", long(N), long(O), long(I));
            return bad + 1;
        }
    }
    return bad;
}

}  // namespace

int main(int argc, char** argv) {
    int iters = 300;
    uint64_t seed = 1234;
    bool verbose = false;
    int pos = 0;
    for (int k = 1; k < argc; ++k) {
        if (!strcmp(argv[k], "--probe")) {
            printf("probe ok\n");
            return 0;
        }
        if (!strcmp(argv[k], "-v")) verbose = true;
        else if (pos++ == 0) iters = atoi(argv[k]);
        else seed = strtoull(argv[k], nullptr, 10);
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (const int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL}) signal(sig, on_signal);
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_set_death_callback(report_current);
#endif
    const auto t0 = std::chrono::steady_clock::now();
    Rng r(seed);
    int fails = 0;
    auto record = [&](int bad) {
        if (bad && ++fails >= 10) {
            printf("stopping after %d failing configs (seed %llu)\n", fails, (unsigned long long)seed);
            exit(1);
        }
    };

    // 1. Every (dtype, act, layout, index width) kernel through the planner: a random config with
    // those fixed (aligned, so the vector path runs; noise per-sample).
    for (int dt = 0; dt < 4; ++dt)
        for (int act = 0; act < FASTGAN_NUM_ACTS; ++act)
            for (int cl = 0; cl < 2; ++cl)
                for (int i64 = 0; i64 < 2; ++i64) {
                    Cfg c = random_cfg(r);
                    c.dt = dt; c.act = act; c.cl = cl; c.i64 = i64;
                    c.yoff = c.coff = 0;
                    c.tag = "targeted";
                    record(run_any(c, r, verbose));
                }
    // Grids that loop: 32 blocks (sms = 1) over a larger map, every dtype and layout.
    for (int dt = 0; dt < 4; ++dt)
        for (int cl = 0; cl < 2; ++cl) {
            Cfg c = random_cfg(r);
            c.dt = dt; c.cl = cl; c.n = 2; c.o = 64; c.h = c.w = 48; c.sms = 1; c.yoff = c.coff = 0;
            c.tag = "looped";
            record(run_any(c, r, verbose));
        }
    // 2. Random configs.
    for (int it = 0; it < iters; ++it) {
        Cfg c = random_cfg(r);
        c.tag = "random";
        record(run_any(c, r, verbose));
    }
    // 3. dcoefs: odd and StyleGAN-like sizes, I = 0 and 1, NaN styles.
    int dc_run = 0, dc_bad = 0;
    const int64_t fixed[][3] = {{3, 7, 5}, {1, 1, 1}, {2, 9, 0}, {3, 5, 1}, {17, 33, 70}, {32, 64, 512}, {4, 512, 512}};
    for (const auto& f : fixed)
        for (int dbl = 0; dbl < 2; ++dbl) {
            ++dc_run;
            const int bad = dbl ? run_dcoefs<double>(f[0], f[1], f[2], 0, r) : run_dcoefs<float>(f[0], f[1], f[2], 0, r);
            dc_bad += bad ? 1 : 0;
            record(bad);
        }
    for (int it = 0; it < 40; ++it) {
        ++dc_run;
        const int64_t N = r.i(1, 40), O = r.i(1, 70), I = r.i(0, 300);
        const int nan = r.p(1, 4);
        const int bad = r.p(1, 2) ? run_dcoefs<double>(N, O, I, nan, r) : run_dcoefs<float>(N, O, I, nan, r);
        dc_bad += bad ? 1 : 0;
        record(bad);
    }

    int exercised = 0;
    for (const auto& kv : variants())
        if (kv.second > 0) ++exercised;
        else printf("UNEXERCISED %s\n", kv.first.c_str());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("kernel variants: %d exercised of %d instantiated\n", exercised, int(variants().size()));
    printf("configs: %ld run, %ld failing; vector configs: %ld; straddling: %ld; cl vector d/b: %ld; "
           "looped launches: %ld; NaN inputs: %ld\n",
           long(g_stats.run), long(g_stats.failing), long(g_stats.vec), long(g_stats.straddle), long(g_stats.cl_vec),
           long(g_stats.looped), long(g_stats.nans));
    printf("dcoefs: %d run, %d failing\n", dc_run, dc_bad);
    printf("seed %llu, %.1f s\n", (unsigned long long)seed, secs);
    return fails == 0 && exercised == int(variants().size()) ? 0 : 1;
}

#endif  // __CUDA_ARCH__
