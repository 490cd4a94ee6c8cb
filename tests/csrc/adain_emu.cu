// Host emulation of the AdaIN CUDA kernels in csrc/adain.cu (no GPU, no torch).
//
// The kernels are three __host__ __device__ phases (accumulate, reduce_step, finish) separated by
// __syncthreads() and communicating only through shared and global memory.  This harness runs a
// launch on the CPU block by block, phase by phase, thread by thread, through the real host planner
// (make_plan, make_kparams, workspace_bytes) and the same mode sequence as the launcher (mode 0, or
// mode 1 -> combine -> mode 2), and compares every output with a double-precision evaluation of
// the contract in adain.h.
//
// Traps: shared memory is filled with NaN before every block (a read of a slot nobody wrote poisons
// the result); x / dy / gamma / beta / mean / rstd sit between NaN guards (an out-of-range read
// poisons an output) and y / dx / dgamma / dbeta / mean / rstd between sentinel guards that must stay
// intact; outputs start as NaN, so an element nobody writes fails; every launch runs a second time
// with blocks and threads in reverse order and must give the same bits (a race between threads or
// blocks writing one element differently).
//
// Coverage: first a targeted config for every (dtype, layout, vector width, split or not), each run
// forward and backward, so every one of the 96 kernel variants runs; then random configs (sizes,
// channels_last, misaligned storage, float32 parameters with half x, |mean| >> std, NaN inputs,
// SM counts that split planes).  It prints
//   "kernel variants: <exercised> exercised of 96"
//   "configs: <run> run, <failing> failing"
// and exits non-zero on any mismatch (naming the config).
//
// Build (host only: the device pass sees an empty file):
//   nvcc -std=c++20 -O1 --expt-relaxed-constexpr -I csrc -x cu tests/csrc/adain_emu.cu -o adain_emu
// Run: ./adain_emu [random_configs=150] [seed=1234] [-v]   (./adain_emu --probe: start, exit 0)
// tests/test_adain_csrc_emulation.py builds and runs it.
#ifndef __CUDA_ARCH__

#include "adain.cu"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

std::set<std::string> g_seen;
constexpr int kVariants = 4 * 2 * 2 * 3 * 2;  // dtype x vector width x layout x mode x direction
bool g_verbose = false;

template <typename T> const char* tname();
template <> const char* tname<float>() { return "f32"; }
template <> const char* tname<__half>() { return "f16"; }
template <> const char* tname<__nv_bfloat16>() { return "bf16"; }
template <> const char* tname<double>() { return "f64"; }

template <typename T> int tcode();
template <> int tcode<float>() { return FASTGAN_DTYPE_F32; }
template <> int tcode<__half>() { return FASTGAN_DTYPE_F16; }
template <> int tcode<__nv_bfloat16>() { return FASTGAN_DTYPE_BF16; }
template <> int tcode<double>() { return FASTGAN_DTYPE_F64; }

template <typename T> T to_t(double v) { return T(v); }
template <> __half to_t<__half>(double v) { return __float2half_rn(float(v)); }
template <> __nv_bfloat16 to_t<__nv_bfloat16>(double v) { return __float2bfloat16_rn(float(v)); }
template <typename T> double to_d(T v) { return double(v); }
template <> double to_d<__half>(__half v) { return double(__half2float(v)); }
template <> double to_d<__nv_bfloat16>(__nv_bfloat16 v) { return double(__bfloat162float(v)); }

constexpr int kGuard = 64;       // guard elements on each side of every buffer
constexpr double kSentinel = 640.0;  // exact in every element type

// A buffer of n elements of U between guards; data() is the first element (optionally offset by one
// element from a 16-byte boundary).
template <typename U> struct Buf {
    std::vector<U> mem;
    size_t off;
    size_t n;
    Buf(size_t count, double guard, bool misalign) : mem(count + 2 * kGuard + 2), n(count) {
        off = kGuard;
        // the vector's storage is 16-byte aligned; kGuard * sizeof(U) is a multiple of 16
        if (misalign) off += 1;
        for (auto& v : mem) v = to_t<U>(guard);
    }
    U* data() { return mem.data() + off; }
    bool guards_intact(double guard) const {
        for (size_t i = 0; i < mem.size(); ++i) {
            if (i >= off && i < off + n) continue;
            const double v = to_d<U>(mem[i]);
            if (std::isnan(guard) ? !std::isnan(v) : v != guard) return false;
        }
        return true;
    }
};

// ------------------------------------------------------------------------------------------------
// emulated launches

template <typename T, int V, bool CL, int MODE, bool BWD>
void emu_kernel(const KParams<typename AccOf<T>::type>& k, const Plan& pl, bool reverse) {
    using A = typename AccOf<T>::type;
    constexpr int NS = CL ? V : 1;
    g_seen.insert(std::string(tname<T>()) + "/V" + std::to_string(V) + (CL ? "/cl" : "/nchw") + "/mode" +
                  std::to_string(MODE) + (BWD ? "/bwd" : "/fwd"));
    std::vector<A> s_cnt(kThreads), s_a(kThreads * NS), s_b(kThreads * NS);
    const Smem<A> s{s_cnt.data(), s_a.data(), s_b.data()};
    const Smem<A> none{nullptr, nullptr, nullptr};
    std::vector<Geo> g(kThreads);
    const int64_t nb = pl.groups * pl.splits;
    for (int64_t i = 0; i < nb; ++i) {
        const int64_t b = reverse ? nb - 1 - i : i;
        const unsigned bx = unsigned(b % pl.groups), by = unsigned(b / pl.groups);
        std::fill(s_cnt.begin(), s_cnt.end(), A(NAN));
        std::fill(s_a.begin(), s_a.end(), A(NAN));
        std::fill(s_b.begin(), s_b.end(), A(NAN));
        for (int t = 0; t < kThreads; ++t) g[t] = make_geo<V, CL>(k, bx, by, unsigned(t));
        auto each = [&](auto&& fn) {
            for (int i2 = 0; i2 < kThreads; ++i2) fn(g[reverse ? kThreads - 1 - i2 : i2]);
        };
        if constexpr (MODE != 2) {
            if constexpr (BWD) each([&](const Geo& gt) { bwd_accumulate<T, V, CL>(k, gt, s); });
            else each([&](const Geo& gt) { fwd_accumulate<T, V, CL, MODE>(k, gt, by, s); });
            for (int off = g[0].rcount / 2; off > 0; off >>= 1)
                each([&](const Geo& gt) { reduce_step<A, NS, !BWD>(gt, off, s); });
        }
        const Smem<A>& sm = MODE != 2 ? s : none;
        if constexpr (BWD) each([&](const Geo& gt) { bwd_finish<T, V, CL, MODE>(k, gt, by, unsigned(pl.splits), sm); });
        else each([&](const Geo& gt) { fwd_finish<T, V, CL, MODE>(k, gt, by, unsigned(pl.splits), sm); });
    }
}

template <typename T, int V, bool CL, bool BWD>
void emu_sequence(const KParams<typename AccOf<T>::type>& k, const Plan& pl, bool reverse) {
    using A = typename AccOf<T>::type;
    if (pl.splits == 1) {
        emu_kernel<T, V, CL, 0, BWD>(k, pl, reverse);
        return;
    }
    emu_kernel<T, V, CL, 1, BWD>(k, pl, reverse);
    const int64_t planes = k.n * k.c;
    for (int64_t i = 0; i < planes; ++i) {
        const int64_t p = reverse ? planes - 1 - i : i;
        if (BWD) combine_one<A>(k.part, k.sums, k.sums, p, k.m, k.seg, pl.splits, A(0), k.inv_m, 1);
        else combine_one<A>(k.part, k.mean, k.rstd, p, k.m, k.seg, pl.splits, k.eps, k.inv_m, 0);
    }
    emu_kernel<T, V, CL, 2, BWD>(k, pl, reverse);
}

// The launcher's path (launch_typed) with the kernels emulated; returns the plan used.
template <typename T>
Plan emu_launch(AdainParams p, bool backward, int sms, bool reverse) {
    using A = typename AccOf<T>::type;
    const Plan pl = make_plan(p, backward, sms);
    const size_t bytes = workspace_bytes(p, pl, backward);
    Buf<A> ws(bytes / sizeof(A) + 1, NAN, false);
    p.workspace = bytes ? static_cast<void*>(ws.data()) : nullptr;
    const auto k = make_kparams<T>(p, pl, backward);
    constexpr int V16 = 16 / sizeof(T);
    if (backward) {
        if (pl.vec == V16) {
            if (p.channels_last) emu_sequence<T, V16, true, true>(k, pl, reverse);
            else emu_sequence<T, V16, false, true>(k, pl, reverse);
        } else {
            if (p.channels_last) emu_sequence<T, 1, true, true>(k, pl, reverse);
            else emu_sequence<T, 1, false, true>(k, pl, reverse);
        }
    } else {
        if (pl.vec == V16) {
            if (p.channels_last) emu_sequence<T, V16, true, false>(k, pl, reverse);
            else emu_sequence<T, V16, false, false>(k, pl, reverse);
        } else {
            if (p.channels_last) emu_sequence<T, 1, true, false>(k, pl, reverse);
            else emu_sequence<T, 1, false, false>(k, pl, reverse);
        }
    }
    return pl;
}

// ------------------------------------------------------------------------------------------------
// configs

struct Config {
    int64_t n, c, h, w;
    bool cl;
    bool misalign;      // x (and dy) one element off a 16-byte boundary: the scalar path
    bool f32_params;    // gamma / beta float32 (half x)
    double shift;       // |mean| >> std when large
    double eps;
    int sms;
    bool nan;           // one NaN in x (forward) / dy (backward) of plane 0
    std::string str(const char* t) const {
        char b[256];
        snprintf(b, sizeof b, "%s [%lld, %lld, %lld, %lld] %s misalign=%d f32_params=%d shift=%g eps=%g sms=%d nan=%d",
                 t, (long long)n, (long long)c, (long long)h, (long long)w, cl ? "channels_last" : "nchw",
                 int(misalign), int(f32_params), shift, eps, sms, int(nan));
        return b;
    }
};

double tol_of(int code) {
    switch (code) {
        case FASTGAN_DTYPE_F64: return 1e-11;
        case FASTGAN_DTYPE_F32: return 2e-5;
        case FASTGAN_DTYPE_F16: return 4e-3;
        default: return 3e-2;
    }
}

// max |got - want| / max(max |want|, scale_floor) over the elements where want is finite; NaN must
// match NaN.
template <typename U>
bool close(const char* what, const U* got, const std::vector<double>& want, double tol, const std::string& cfg,
           bool allow_nan, double scale_floor = 1e-30) {
    double scale = scale_floor, err = 0;
    size_t worst = 0;
    for (double v : want)
        if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < want.size(); ++i) {
        const double g = to_d<U>(got[i]);
        if (std::isnan(want[i])) {
            if (!allow_nan || !std::isnan(g)) {
                printf("FAIL %s: %s[%zu] = %g, expected NaN\n", cfg.c_str(), what, i, g);
                return false;
            }
            continue;
        }
        if (!std::isfinite(g)) {
            printf("FAIL %s: %s[%zu] = %g (not written or NaN), expected %g\n", cfg.c_str(), what, i, g, want[i]);
            return false;
        }
        if (std::fabs(g - want[i]) / scale > err) {
            err = std::fabs(g - want[i]) / scale;
            worst = i;
        }
    }
    if (err > tol) {
        printf("FAIL %s: %s max error %.3g (relative to max |want| %.3g) > %.3g at [%zu]: %.9g vs %.9g\n",
               cfg.c_str(), what, err, scale, tol, worst, to_d<U>(got[worst]), want[worst]);
        return false;
    }
    return true;
}

template <typename U> bool same_bits(const Buf<U>& a, const Buf<U>& b) {
    return memcmp(a.mem.data(), b.mem.data(), a.mem.size() * sizeof(U)) == 0;
}

template <typename T>
bool run_config(const Config& cf, std::mt19937_64& rng) {
    using A = typename AccOf<T>::type;
    const std::string cfg = cf.str(tname<T>());
    if (g_verbose) printf("%s\n", cfg.c_str());
    const int64_t n = cf.n, c = cf.c, m = cf.h * cf.w, planes = n * c, numel = planes * m;
    std::normal_distribution<double> nd(0.0, 1.0);
    auto at = [&](int64_t i, int64_t j, int64_t s) { return cf.cl ? (i * m + s) * c + j : (i * c + j) * m + s; };

    Buf<T> x(numel, NAN, cf.misalign), dy(numel, NAN, cf.misalign);
    const bool pf32 = cf.f32_params || tcode<T>() == FASTGAN_DTYPE_F32;
    Buf<T> g_t(planes, NAN, false), b_t(planes, NAN, false);
    Buf<float> g_f(planes, NAN, false), b_f(planes, NAN, false);
    std::vector<double> xd(numel), dyd(numel), gd(planes), bd(planes);
    for (int64_t i = 0; i < numel; ++i) {
        x.data()[i] = to_t<T>(cf.shift + 2.0 * nd(rng));
        dy.data()[i] = to_t<T>(nd(rng));
    }
    if (cf.nan) {
        x.data()[at(0, 0, m / 2)] = to_t<T>(NAN);
        dy.data()[at(0, 0, m / 3)] = to_t<T>(NAN);
    }
    for (int64_t i = 0; i < numel; ++i) {
        xd[i] = to_d<T>(x.data()[i]);
        dyd[i] = to_d<T>(dy.data()[i]);
    }
    for (int64_t i = 0; i < planes; ++i) {
        const double gv = 1.0 + 0.5 * nd(rng), bv = nd(rng);
        g_t.data()[i] = to_t<T>(gv);
        b_t.data()[i] = to_t<T>(bv);
        g_f.data()[i] = float(gv);
        b_f.data()[i] = float(bv);
        gd[i] = pf32 ? double(float(gv)) : to_d<T>(g_t.data()[i]);
        bd[i] = pf32 ? double(float(bv)) : to_d<T>(b_t.data()[i]);
    }

    // double-precision reference of the contract
    std::vector<double> mean(planes), rstd(planes), y(numel), dx(numel), dg(planes), db(planes);
    std::vector<A> mean_a(planes), rstd_a(planes);  // the backward's inputs: the exact statistics, rounded
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < c; ++j) {
            const int64_t p = i * c + j;
            double s = 0, q = 0;
            for (int64_t k = 0; k < m; ++k) s += xd[at(i, j, k)];
            const double mu = s / double(m);
            for (int64_t k = 0; k < m; ++k) q += (xd[at(i, j, k)] - mu) * (xd[at(i, j, k)] - mu);
            mean[p] = mu;
            rstd[p] = 1.0 / std::sqrt(q / double(m) + cf.eps);
            mean_a[p] = A(mean[p]);
            rstd_a[p] = A(rstd[p]);
            const double ma = double(mean_a[p]), ra = double(rstd_a[p]);
            double sdy = 0, sdyx = 0;
            for (int64_t k = 0; k < m; ++k) {
                const int64_t e = at(i, j, k);
                y[e] = (xd[e] - mu) * rstd[p] * gd[p] + bd[p];
                sdy += dyd[e];
                sdyx += dyd[e] * (xd[e] - ma);
            }
            dg[p] = ra * sdyx;
            db[p] = sdy;
            const double k1 = gd[p] * ra;
            for (int64_t k = 0; k < m; ++k) {
                const int64_t e = at(i, j, k);
                dx[e] = k1 * dyd[e] - k1 * sdy / double(m) - (xd[e] - ma) * k1 * ra * ra * sdyx / double(m);
            }
        }

    AdainParams base{};
    base.x = x.data();
    base.gamma = pf32 ? static_cast<const void*>(g_f.data()) : static_cast<const void*>(g_t.data());
    base.beta = pf32 ? static_cast<const void*>(b_f.data()) : static_cast<const void*>(b_t.data());
    base.n = n;
    base.c = c;
    base.m = m;
    base.channels_last = cf.cl;
    base.eps = cf.eps;
    base.dtype_code = tcode<T>();
    base.gamma_code = pf32 ? FASTGAN_DTYPE_F32 : tcode<T>();
    base.beta_code = base.gamma_code;
    const double tol = tol_of(tcode<T>());
    bool ok = true;

    // ---- forward, twice (forward and reversed order): identical bits
    Buf<T> yb[2] = {Buf<T>(numel, kSentinel, cf.misalign), Buf<T>(numel, kSentinel, cf.misalign)};
    Buf<A> mb[2] = {Buf<A>(planes, kSentinel, false), Buf<A>(planes, kSentinel, false)};
    Buf<A> rb[2] = {Buf<A>(planes, kSentinel, false), Buf<A>(planes, kSentinel, false)};
    for (int rev = 0; rev < 2; ++rev) {
        for (int64_t i = 0; i < numel; ++i) yb[rev].data()[i] = to_t<T>(NAN);
        for (int64_t i = 0; i < planes; ++i) mb[rev].data()[i] = rb[rev].data()[i] = A(NAN);
        AdainParams p = base;
        p.y = yb[rev].data();
        p.mean = mb[rev].data();
        p.rstd = rb[rev].data();
        if (check_params(p, false) != cudaSuccess) {
            printf("FAIL %s: check_params rejected a valid forward\n", cfg.c_str());
            return false;
        }
        emu_launch<T>(p, false, cf.sms, rev == 1);
        if (!yb[rev].guards_intact(kSentinel) || !mb[rev].guards_intact(kSentinel) ||
            !rb[rev].guards_intact(kSentinel)) {
            printf("FAIL %s: forward wrote outside its outputs\n", cfg.c_str());
            return false;
        }
    }
    if (!same_bits(yb[0], yb[1]) || !same_bits(mb[0], mb[1]) || !same_bits(rb[0], rb[1])) {
        printf("FAIL %s: forward differs between block / thread orders\n", cfg.c_str());
        ok = false;
    }
    // statistics in the compute type: float32 rounding of the mean, Welford / Chan otherwise exact
    const double stat_tol = tcode<T>() == FASTGAN_DTYPE_F64 ? 1e-12 : 2e-6;
    ok = ok && close("y", yb[0].data(), y, tol, cfg, cf.nan);
    // (the mean's error is relative to the data's scale, std 2: a mean near 0 has no digits of its own)
    ok = ok && close("mean", mb[0].data(), mean, stat_tol, cfg, cf.nan, 2.0);
    {
        std::vector<double> rel(planes);  // rstd relative to itself, plane by plane
        std::vector<double> got(planes);
        for (int64_t i = 0; i < planes; ++i) {
            rel[i] = std::isnan(rstd[i]) ? NAN : 1.0;
            got[i] = double(rb[0].data()[i]) / rstd[i];
        }
        ok = ok && close("rstd/rstd_ref", got.data(), rel, stat_tol * 4, cfg, cf.nan);
    }
    if (!ok) return false;

    // ---- backward, from the exact statistics rounded to the compute type
    Buf<A> mean_in(planes, NAN, false), rstd_in(planes, NAN, false);
    for (int64_t i = 0; i < planes; ++i) {
        mean_in.data()[i] = mean_a[i];
        rstd_in.data()[i] = rstd_a[i];
    }
    Buf<T> dxb[2] = {Buf<T>(numel, kSentinel, cf.misalign), Buf<T>(numel, kSentinel, cf.misalign)};
    Buf<T> dgt[2] = {Buf<T>(planes, kSentinel, false), Buf<T>(planes, kSentinel, false)};
    Buf<T> dbt[2] = {Buf<T>(planes, kSentinel, false), Buf<T>(planes, kSentinel, false)};
    Buf<float> dgf[2] = {Buf<float>(planes, kSentinel, false), Buf<float>(planes, kSentinel, false)};
    Buf<float> dbf[2] = {Buf<float>(planes, kSentinel, false), Buf<float>(planes, kSentinel, false)};
    for (int rev = 0; rev < 2; ++rev) {
        for (int64_t i = 0; i < numel; ++i) dxb[rev].data()[i] = to_t<T>(NAN);
        for (int64_t i = 0; i < planes; ++i) {
            dgt[rev].data()[i] = dbt[rev].data()[i] = to_t<T>(NAN);
            dgf[rev].data()[i] = dbf[rev].data()[i] = NAN;
        }
        AdainParams p = base;
        p.beta = nullptr;
        p.dy = dy.data();
        p.dx = dxb[rev].data();
        p.mean = mean_in.data();
        p.rstd = rstd_in.data();
        p.dgamma = pf32 ? static_cast<void*>(dgf[rev].data()) : static_cast<void*>(dgt[rev].data());
        p.dbeta = pf32 ? static_cast<void*>(dbf[rev].data()) : static_cast<void*>(dbt[rev].data());
        if (check_params(p, true) != cudaSuccess) {
            printf("FAIL %s: check_params rejected a valid backward\n", cfg.c_str());
            return false;
        }
        emu_launch<T>(p, true, cf.sms, rev == 1);
        if (!dxb[rev].guards_intact(kSentinel) || !dgt[rev].guards_intact(kSentinel) ||
            !dbt[rev].guards_intact(kSentinel) || !dgf[rev].guards_intact(kSentinel) ||
            !dbf[rev].guards_intact(kSentinel)) {
            printf("FAIL %s: backward wrote outside its outputs\n", cfg.c_str());
            return false;
        }
    }
    if (!same_bits(dxb[0], dxb[1]) || !same_bits(dgt[0], dgt[1]) || !same_bits(dbt[0], dbt[1]) ||
        !same_bits(dgf[0], dgf[1]) || !same_bits(dbf[0], dbf[1])) {
        printf("FAIL %s: backward differs between block / thread orders\n", cfg.c_str());
        return false;
    }
    if (pf32) {
        ok = ok && close("dgamma", dgf[0].data(), dg, std::max(tol, 1e-5), cfg, cf.nan);
        ok = ok && close("dbeta", dbf[0].data(), db, std::max(tol, 1e-5), cfg, cf.nan);
    } else {
        ok = ok && close("dgamma", dgt[0].data(), dg, tol, cfg, cf.nan);
        ok = ok && close("dbeta", dbt[0].data(), db, tol, cfg, cf.nan);
    }
    ok = ok && close("dx", dxb[0].data(), dx, tol, cfg, cf.nan);
    return ok;
}

template <typename T> int vec16() { return 16 / int(sizeof(T)); }

bool run_any(int dtype, const Config& cf, std::mt19937_64& rng) {
    switch (dtype) {
        case 0: return run_config<float>(cf, rng);
        case 1: return run_config<__half>(cf, rng);
        case 2: return run_config<__nv_bfloat16>(cf, rng);
        default: return run_config<double>(cf, rng);
    }
}

int vec_of(int dtype) { return dtype == 0 ? 4 : dtype == 3 ? 2 : 8; }

}  // namespace

int main(int argc, char** argv) {
    int n_random = 150;
    unsigned long long seed = 1234;
    int pos = 0;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--probe")) {
            printf("probe ok\n");
            return 0;
        }
        if (!strcmp(argv[i], "-v")) {
            g_verbose = true;
            continue;
        }
        if (pos == 0) n_random = atoi(argv[i]);
        if (pos == 1) seed = strtoull(argv[i], nullptr, 10);
        ++pos;
    }
    std::mt19937_64 rng(seed);
    int run = 0, failing = 0, split_runs = 0, nan_runs = 0;

    // targeted: every (dtype, layout, vector width, split) -> every kernel variant
    for (int dt = 0; dt < 4; ++dt)
        for (int cl = 0; cl < 2; ++cl)
            for (int mis = 0; mis < 2; ++mis)
                for (int split = 0; split < 2; ++split) {
                    Config cf{};
                    cf.cl = cl;
                    cf.misalign = mis;
                    cf.f32_params = (dt == 1 || dt == 2) && mis;
                    cf.shift = dt == 0 || dt == 3 ? 1000.0 : 0.5;
                    cf.eps = 1e-5;
                    cf.sms = split ? 1 : 132;
                    if (cl) {  // c = 2 vectors: TX = 2, TY = 128 pixel lanes
                        cf.n = 1 + split;
                        cf.c = 2 * vec_of(dt);
                        cf.h = split ? 32 : 5;
                        cf.w = split ? 64 : 7;
                    } else {  // split: 2 planes of 128 x 256 (lane loops > 8); else many small planes
                        cf.n = split ? 1 : 3;
                        cf.c = split ? 2 : 5;
                        cf.h = split ? 128 : 8;
                        cf.w = split ? 256 : 12;
                    }
                    ++run;
                    if (!run_any(dt, cf, rng)) ++failing;
                    split_runs += split;
                }

    // random
    std::uniform_int_distribution<int> pick(0, 1 << 30);
    for (int i = 0; i < n_random; ++i) {
        Config cf{};
        const int dt = pick(rng) % 4;
        cf.cl = pick(rng) % 2;
        cf.misalign = pick(rng) % 4 == 0;
        cf.f32_params = (dt == 1 || dt == 2) && pick(rng) % 2;
        cf.shift = (dt == 0 || dt == 3) && pick(rng) % 3 == 0 ? 1000.0 : double(pick(rng) % 5) - 2.0;
        cf.eps = pick(rng) % 2 ? 1e-5 : 0.1;
        const int sms_opts[] = {1, 2, 8, 132};
        cf.sms = sms_opts[pick(rng) % 4];
        cf.nan = pick(rng) % 8 == 0;
        const bool big = pick(rng) % 5 == 0;
        cf.n = 1 + pick(rng) % 3;
        cf.c = 1 + pick(rng) % (big ? 4 : 40);
        cf.h = 1 + pick(rng) % (big ? 160 : 24);
        cf.w = 1 + pick(rng) % (big ? 160 : 24);
        if (pick(rng) % 3 == 0) cf.w = (cf.w + 7) / 8 * 8;  // vector-friendly widths
        if (pick(rng) % 3 == 0) cf.c = (cf.c + 7) / 8 * 8;
        // the plan this config gets (for the summary)
        AdainParams probe{};
        probe.n = cf.n;
        probe.c = cf.c;
        probe.m = cf.h * cf.w;
        probe.channels_last = cf.cl;
        probe.dtype_code = dt == 0 ? FASTGAN_DTYPE_F32 : dt == 1 ? FASTGAN_DTYPE_F16 : dt == 2 ? FASTGAN_DTYPE_BF16
                                                                                         : FASTGAN_DTYPE_F64;
        static double dummy[2] alignas(16);
        probe.x = probe.y = dummy;
        split_runs += make_plan(probe, false, cf.sms).splits > 1;
        nan_runs += cf.nan;
        ++run;
        if (!run_any(dt, cf, rng)) ++failing;
    }
    printf("kernel variants: %zu exercised of %d\n", g_seen.size(), kVariants);
    printf("configs: %d run, %d failing; split launches: %d; NaN inputs: %d\n", run, failing, split_runs, nan_runs);
    if (int(g_seen.size()) != kVariants) {
        printf("FAIL: not every kernel variant ran; these did:\n");
        for (const auto& v : g_seen) printf("  %s\n", v.c_str());
        return 1;
    }
    return failing ? 1 : 0;
}

#endif  // __CUDA_ARCH__
