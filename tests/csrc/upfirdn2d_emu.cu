// Host emulation of the upfirdn2d CUDA kernels in csrc/upfirdn2d.cu (no GPU, no torch).
//
// The kernels' phases are __host__ __device__ functions (tile_geom, fill_filter, fill_tile,
// compute_store, general_one) and the host planner picks the kernel through a selector type
// (plan_tiled<Sel, T>).  This harness plugs in a selector whose "kernels" run a launch on the CPU
// block by block and thread by thread, with the __syncthreads() phases in order, and compares
// every output with a naive double-precision evaluation of the contract in upfirdn2d.h.
//
// Traps (so that a bug shows up without a sanitizer):
//   * shared memory is filled with NaN before the filter fill and before every tile fill, and is
//     surrounded by NaN guards that must stay intact: reads of unfilled or out-of-range shared
//     memory turn outputs into NaN; stray writes are reported;
//   * x and f sit inside NaN-filled buffers (guards, and the gaps of strided / padded layouts), so
//     a read of a wrong element of x or f poisons an output;
//   * out sits inside a sentinel-filled buffer; every element that is not an output (guards, gaps
//     of padded layouts) must keep its sentinel bits, and every output must be written;
//   * tiled launches run a second time with blocks, tiles and threads in reverse order and must
//     give the same bits (two threads writing one output or one smem cell differently = a race).
//
// Coverage: every tiled kernel the planner can name is registered at start-up (the selector is
// instantiated for each one by plan_tiled), as is the general kernel of each dtype.  The run first
// builds, for each (dtype, layout, reduced x factors, x tap bucket), a random config the planner
// sends to that kernel, then runs random configs (any factors 1..4, filters 1..26 taps, negative
// pads, strided / channels_last / expanded x, NCHW / channels_last / padded / strided out, NaN
// inputs, grids small enough that blocks loop over several tiles).  It prints
//   "kernel variants: <exercised> exercised of <instantiated> instantiated"
// and exits non-zero on any mismatch (naming the config) or unexercised variant.
//
// Build (nvcc compiles the file for the host only: the device pass sees an empty file):
//   nvcc -std=c++20 -O2 --expt-relaxed-constexpr -I csrc -x cu tests/csrc/upfirdn2d_emu.cu -o emu
//   sanitizers: add -Xcompiler -fsanitize=address -Xcompiler -fsanitize=undefined
//   -Xcompiler -fno-sanitize-recover=all, and run with ASAN_OPTIONS=detect_leaks=0
//   UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1 (the harness then names the config that died).
// Run: ./emu [random_configs=300] [seed=1234] [-v]   (./emu --probe: start and exit 0)
// tests/test_csrc_emulation.py builds and runs it.
#ifndef __CUDA_ARCH__

#include "upfirdn2d.cu"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
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

// The config being run, named when the process dies (crash, sanitizer report).  A fixed buffer
// written with write(2): the heap may be what broke.
char g_current[640];

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

// ------------------------------------------------------------------------------------------------
// Variant registry.

std::map<std::string, int>& variants() {  // name -> runs
    static std::map<std::string, int> m;
    return m;
}
std::map<void*, std::string>& fn_names() {
    static std::map<void*, std::string> m;
    return m;
}

template <typename T> const char* tname() {
    if constexpr (std::is_same_v<T, float>) return "f32";
    else if constexpr (std::is_same_v<T, double>) return "f64";
    else if constexpr (std::is_same_v<T, __half>) return "f16";
    else return "bf16";
}

std::string tiled_name(const char* t, int xu, int xd, int fxb, bool cl) {
    char b[96];
    snprintf(b, sizeof b, "tiled<%s,U%d,D%d,F%d,%s>", t, xu, xd, fxb, cl ? "CL" : "NCHW");
    return b;
}
template <typename T> std::string general_name() { return std::string("general<") + tname<T>() + ">"; }

bool register_variant(const std::string& name, void* fn) {
    variants().emplace(name, 0);
    if (fn) fn_names()[fn] = name;
    return true;
}

void mark_run(const std::string& name) {
    auto it = variants().find(name);
    if (it == variants().end()) {
        printf("internal error: unregistered variant %s ran\n", name.c_str());
        exit(3);
    }
    it->second++;
}

// ------------------------------------------------------------------------------------------------
// Emulated tiled launch.

constexpr int kGuard = 64;  // float4 guard cells on each side of the emulated shared memory
int g_order = 0;            // 0: blocks / tiles / threads in order; 1: all reversed
int64_t g_looped = 0;       // launches whose blocks loop over several tiles

template <typename A> bool all_nan(const A* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (!std::isnan(p[i])) return false;
    return true;
}

template <typename T, int XU, int XD, int FXB, bool CL> void emu_tiled(const void* planp) {
    using A = Acc<T>;
    using X = XCfg<XU, XD, FXB>;
    const TilePlan<A>& plan = *static_cast<const TilePlan<A>*>(planp);
    const TileArgs<A>& a = plan.args;
    const std::string name = tiled_name(tname<T>(), XU, XD, FXB, CL);
    auto fail = [&](const char* what) {
        printf("FAIL %s [%s]: %s (threads=%d smem=%d blocks=%ld tiles=%ld NX=%d NY=%d)\n", g_current,
               name.c_str(), what, plan.threads, plan.smem, long(plan.blocks), long(a.total_tiles), a.NX, a.NY);
        exit(1);
    };
    if (plan.threads < 1 || plan.threads > kMaxThreads) fail("thread count out of range");
    if (plan.threads != (CL ? kCT : 1) * a.NX * a.NY) fail("thread count != thread grid");
    if (plan.smem < 0 || plan.smem > kSmemBudget) fail("shared memory over budget");
    if (plan.blocks < 1 || plan.blocks > a.total_tiles) fail("block count out of range");
    if (plan.blocks < a.total_tiles) ++g_looped;

    const int64_t cells = (plan.smem + 15) / 16;
    std::vector<float4> buf(cells + 2 * kGuard);
    A* const lo = reinterpret_cast<A*>(buf.data());
    A* const fs = reinterpret_cast<A*>(buf.data() + kGuard);
    A* const end = reinterpret_cast<A*>(reinterpret_cast<char*>(fs) + plan.smem);
    A* const hi = reinterpret_cast<A*>(buf.data() + buf.size());
    A* const ts = tile_smem<X::FXP>(fs, a.Fy);
    if (ts > end) fail("tile starts past the shared memory");
    for (A* p = lo; p < hi; ++p) *p = A(NAN);

    const int nt = plan.threads;
    auto tid_of = [&](int k) { return g_order ? nt - 1 - k : k; };
    for (int64_t bk = 0; bk < plan.blocks; ++bk) {
        const int64_t b = g_order ? plan.blocks - 1 - bk : bk;
        for (A* p = fs; p < end; ++p) *p = A(NAN);
        for (int k = 0; k < nt; ++k) fill_filter<X::FXP>(a, fs, tid_of(k), nt);
        std::vector<int64_t> tiles;
        for (int64_t t = b; t < a.total_tiles; t += plan.blocks) tiles.push_back(t);
        if (g_order) std::reverse(tiles.begin(), tiles.end());  // tiles are independent
        for (const int64_t t : tiles) {
            const TileGeom g = tile_geom<XU, XD, CL>(a, t);
            for (A* p = ts; p < end; ++p) *p = A(NAN);  // unfilled smem reads show up as NaN
            for (int k = 0; k < nt; ++k) fill_tile<T, CL>(a, g, ts, tid_of(k), nt);
            for (int k = 0; k < nt; ++k) compute_store<T, XU, XD, FXB, CL>(a, g, fs, ts, tid_of(k));
        }
        if (!all_nan(lo, fs - lo) || !all_nan(end, hi - end)) fail("write outside the shared memory");
    }
}

template <typename T, int XU, int XD, int FXB, bool CL> struct TiledReg {
    static void* fn() {
        void (*f)(const void*) = emu_tiled<T, XU, XD, FXB, CL>;
        return reinterpret_cast<void*>(f);
    }
    static inline const bool registered = register_variant(tiled_name(tname<T>(), XU, XD, FXB, CL), fn());
};

struct EmuSel {
    template <typename T, int XU, int XD, int FXB, bool CL> static void* tiled() {
        (void)TiledReg<T, XU, XD, FXB, CL>::registered;  // every kernel plan_tiled can name
        return TiledReg<T, XU, XD, FXB, CL>::fn();
    }
};

template <typename T> struct GeneralReg {
    static inline const bool registered = register_variant(general_name<T>(), nullptr);
};

// ------------------------------------------------------------------------------------------------
// Element conversions.

template <typename T> double to_d(T v) {
    if constexpr (std::is_same_v<T, __half>) return __half2float(v);
    else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
    else return double(v);
}
template <typename T> T from_d(double v) { return from_acc<T>(Acc<T>(v)); }
template <typename T> int dtype_code() {
    if constexpr (std::is_same_v<T, float>) return FASTGAN_DTYPE_F32;
    else if constexpr (std::is_same_v<T, double>) return FASTGAN_DTYPE_F64;
    else if constexpr (std::is_same_v<T, __half>) return FASTGAN_DTYPE_F16;
    else return FASTGAN_DTYPE_BF16;
}

// ------------------------------------------------------------------------------------------------
// Configs.

const char* kXLay[] = {"nchw", "cl", "strided", "expanded"};
const char* kOLay[] = {"nchw", "cl", "padded", "xstride2"};

struct Cfg {
    int dt = 0;  // 0 f32, 1 f64, 2 f16, 3 bf16
    int64_t n, c, h, w, oh, ow, fh, fw, ux, uy, dx, dy, px, py;
    int xlay = 0;  // 0 NCHW, 1 channels_last, 2 strided with gaps, 3 expanded (stride 0 on n or c)
    int olay = 0;  // 0 NCHW, 1 channels_last, 2 NCHW with padded rows, 3 x stride 2
    int ooff = 0;  // out base offset in elements (misaligned vector stores)
    int nan = 0;   // 1: one x element is NaN
    int sms = 1;   // SM count given to the planner (grid cap = 64 * sms blocks)
    bool force_general = false;
    std::string tag;
};

const char* kDt[] = {"f32", "f64", "f16", "bf16"};

std::string describe(const Cfg& c) {
    char b[512];
    snprintf(b, sizeof b,
             "%s %s n=%ld c=%ld h=%ld w=%ld -> oh=%ld ow=%ld f=%ldx%ld up=(%ld,%ld) down=(%ld,%ld) "
             "pad0=(%ld,%ld) x=%s out=%s+%d nan=%d sms=%d%s",
             c.tag.c_str(), kDt[c.dt], long(c.n), long(c.c), long(c.h), long(c.w), long(c.oh), long(c.ow),
             long(c.fh), long(c.fw), long(c.ux), long(c.uy), long(c.dx), long(c.dy), long(c.px), long(c.py),
             kXLay[c.xlay], kOLay[c.olay], c.ooff, c.nan, c.sms, c.force_general ? " path=general(forced)" : "");
    return b;
}

struct Rng {
    std::mt19937_64 g;
    explicit Rng(uint64_t s) : g(s) {}
    int64_t i(int64_t lo, int64_t hi) { return int64_t(uint64_t(lo) + g() % (uint64_t(hi) - uint64_t(lo) + 1)); }
    bool p(int num, int den) { return int64_t(g() % uint64_t(den)) < num; }
};

// Output size from the far pads; false when the padded/upsampled input is shorter than the filter.
bool finish_sizes(Cfg& c, int64_t px1, int64_t py1) {
    const int64_t sx = c.w * c.ux + c.px + px1 - c.fw, sy = c.h * c.uy + c.py + py1 - c.fh;
    if (sx < 0 || sy < 0) return false;
    c.ow = sx / c.dx + 1;
    c.oh = sy / c.dy + 1;
    return true;
}

int64_t work(const Cfg& c) { return c.n * c.c * c.oh * c.ow * (c.fh * c.fw + 8); }

void random_rest(Cfg& c, Rng& r) {
    if (c.xlay < 0) c.xlay = int(r.i(0, 3));
    c.ooff = r.p(1, 3) ? int(r.i(1, 3)) : 0;
    c.nan = r.p(1, 6);
    c.sms = r.p(1, 2) ? 1 : 1000;
}

// A random config (any factors; the planner decides the path).
Cfg random_cfg(Rng& r) {
    Cfg c;
    for (;;) {
        const int mode = int(r.i(0, 3));  // 0: factors {1,2,4}; 1: any 1..4; 2: 1-D filters; 3: big filters
        auto fac = [&]() { return mode == 1 ? r.i(1, 4) : int64_t(1) << r.i(0, 2); };
        c.ux = fac(); c.uy = fac(); c.dx = fac(); c.dy = fac();
        const int maxf = mode == 3 ? 26 : 14;
        c.fh = r.i(1, maxf);
        c.fw = r.i(1, maxf);
        if (mode == 2) (r.p(1, 2) ? c.fh : c.fw) = 1;
        c.n = r.i(1, 3);
        c.c = r.p(1, 3) ? r.i(1, 7) : r.i(8, 70);
        c.h = r.i(1, 40);
        c.w = r.i(1, r.p(1, 5) ? 300 : 40);
        c.px = r.i(-8, 10);
        c.py = r.i(-8, 10);
        if (!finish_sizes(c, r.i(-8, 10), r.i(-8, 10))) continue;
        if (work(c) > 6000000) continue;
        break;
    }
    c.dt = int(r.i(0, 3));
    c.xlay = -1;
    c.olay = int(r.p(1, 4) ? r.i(2, 3) : r.i(0, 1));
    random_rest(c, r);
    return c;
}

// A random config whose reduced x axis is (xu, xd) with fx reduced taps; the rest is random.
Cfg targeted_cfg(Rng& r, int dt, int xu, int xd, int fx, bool cl, int attempt) {
    Cfg c;
    c.dt = dt;
    for (;;) {
        // x axis: up = xu*g, down = xd*g, pad = ph (mod g), reduced taps ceil((fw - ph)/g) = fx
        const int64_t gmax = 4 / (xu > xd ? xu : xd);
        const int64_t g = r.i(1, gmax);
        c.ux = xu * g;
        c.dx = xd * g;
        const int64_t ph = r.i(0, g - 1);
        c.fw = ph + g * (fx - 1) + 1 + r.i(0, g - 1);
        c.px = ph + g * r.i(-3, 3);
        // y axis: anything; smaller filters / heights when earlier attempts did not fit the smem budget
        c.uy = r.i(1, 4);
        c.dy = r.i(1, 4);
        c.fh = r.i(1, attempt < 8 ? 26 : attempt < 16 ? 8 : 2);
        c.py = r.i(-6, 8);
        c.n = r.i(1, 3);
        c.c = cl ? r.i(8, 70) : r.i(1, 12);
        c.h = r.i(1, 30);
        c.w = r.i(1, r.p(1, 4) ? 200 : 40);
        if (!finish_sizes(c, r.i(-6, 8), r.i(-6, 8))) continue;
        if (work(c) > 3000000) continue;
        break;
    }
    c.xlay = -1;
    c.olay = cl ? 1 : int(r.i(0, 3));
    if (!cl && c.olay == 1 && c.c >= 8) c.olay = 0;
    random_rest(c, r);
    return c;
}

// ------------------------------------------------------------------------------------------------
// One run: build buffers, plan and emulate, compare.

struct Outcome {
    std::string variant;  // kernel that ran
    int bad = 0;
};

uint64_t g_nan_cases = 0, g_negpad_cases = 0;

template <typename T> Outcome run_case(const Cfg& cf, Rng& r, bool verbose) {
    using A = Acc<T>;
    Outcome res;
    constexpr int64_t G = 37;  // guard elements around x, f and out

    // x: layouts per cf.xlay; everything that is not an element of x is NaN.
    int64_t xs[4];
    switch (cf.xlay) {
        case 0: xs[3] = 1; xs[2] = cf.w; xs[1] = cf.h * cf.w; xs[0] = cf.c * cf.h * cf.w; break;
        case 1: xs[1] = 1; xs[3] = cf.c; xs[2] = cf.w * cf.c; xs[0] = cf.h * cf.w * cf.c; break;
        case 2: xs[3] = 2; xs[2] = 2 * cf.w + 3; xs[1] = xs[2] * cf.h + 1; xs[0] = xs[1] * cf.c + 5; break;
        default:
            xs[3] = 1; xs[2] = cf.w; xs[1] = cf.h * cf.w; xs[0] = 0;  // expanded along n
            if (cf.c > 1 && cf.n == 1) { xs[1] = 0; xs[0] = cf.h * cf.w; }  // ... or along c
            break;
    }
    const int64_t xspan = (cf.n - 1) * xs[0] + (cf.c - 1) * xs[1] + (cf.h - 1) * xs[2] + (cf.w - 1) * xs[3] + 1;
    std::vector<T> xb(xspan + 2 * G, from_d<T>(NAN));
    T* const x = xb.data() + G;
    std::uniform_real_distribution<double> U(-1, 1);
    for (int64_t n = 0; n < cf.n; ++n)
        for (int64_t c = 0; c < cf.c; ++c)
            for (int64_t iy = 0; iy < cf.h; ++iy)
                for (int64_t ix = 0; ix < cf.w; ++ix) x[n * xs[0] + c * xs[1] + iy * xs[2] + ix * xs[3]] = from_d<T>(U(r.g));
    if (cf.nan) {
        x[r.i(0, cf.n - 1) * xs[0] + r.i(0, cf.c - 1) * xs[1] + r.i(0, cf.h - 1) * xs[2] + r.i(0, cf.w - 1) * xs[3]] =
            from_d<T>(NAN);
        ++g_nan_cases;
    }
    if (cf.px < 0 || cf.py < 0) ++g_negpad_cases;

    // f: [fh, fw] contiguous inside NaN guards.
    std::vector<A> fb(cf.fh * cf.fw + 2 * G, A(NAN));
    A* const f = fb.data() + G;
    for (int64_t k = 0; k < cf.fh * cf.fw; ++k) f[k] = A(U(r.g));

    // out: layouts per cf.olay, at a cf.ooff element offset, inside a sentinel-filled buffer.
    int64_t os[4];
    switch (cf.olay) {
        case 0: os[3] = 1; os[2] = cf.ow; os[1] = cf.oh * cf.ow; os[0] = cf.c * cf.oh * cf.ow; break;
        case 1: os[1] = 1; os[3] = cf.c; os[2] = cf.ow * cf.c; os[0] = cf.oh * cf.ow * cf.c; break;
        case 2: os[3] = 1; os[2] = cf.ow + 3; os[1] = os[2] * cf.oh + 2; os[0] = os[1] * cf.c + 1; break;
        default: os[3] = 2; os[2] = 2 * cf.ow + 1; os[1] = os[2] * cf.oh; os[0] = os[1] * cf.c; break;
    }
    const int64_t ospan = (cf.n - 1) * os[0] + (cf.c - 1) * os[1] + (cf.oh - 1) * os[2] + (cf.ow - 1) * os[3] + 1;
    const T sentinel = from_d<T>(-777.25);
    std::vector<T> ob(ospan + 2 * G + cf.ooff, sentinel);
    T* const out = ob.data() + G + cf.ooff;

    Upfirdn2dParams p{};
    p.out = out; p.x = x; p.f = f;
    p.n = cf.n; p.c = cf.c; p.h = cf.h; p.w = cf.w; p.oh = cf.oh; p.ow = cf.ow;
    for (int k = 0; k < 4; ++k) { p.x_stride[k] = xs[k]; p.out_stride[k] = os[k]; }
    p.fh = cf.fh; p.fw = cf.fw; p.upx = cf.ux; p.upy = cf.uy; p.downx = cf.dx; p.downy = cf.dy;
    p.padx0 = cf.px; p.pady0 = cf.py;
    if (check_params(p, dtype_code<T>()) != cudaSuccess) {
        printf("FAIL %s: check_params rejected a valid config\n", describe(cf).c_str());
        res.bad = 1;
        return res;
    }

    TilePlan<A> plan;
    if (!cf.force_general && plan_tiled<EmuSel, T>(p, use_cl_kernel(p), cf.sms, &plan)) {
        const auto it = fn_names().find(plan.fn);
        if (it == fn_names().end()) {
            printf("FAIL %s: the planner named an unregistered kernel\n", describe(cf).c_str());
            res.bad = 1;
            return res;
        }
        res.variant = it->second;
        const auto emu = reinterpret_cast<void (*)(const void*)>(plan.fn);
        g_order = 0;
        emu(&plan);
        if (r.p(1, 4)) {  // again in reverse order: the same bits unless threads race
            const std::vector<T> first = ob;
            std::fill(ob.begin(), ob.end(), sentinel);
            g_order = 1;
            emu(&plan);
            g_order = 0;
            if (memcmp(first.data(), ob.data(), ob.size() * sizeof(T)) != 0) {
                printf("FAIL %s [%s]: results depend on the block/thread order (race)\n", describe(cf).c_str(),
                       res.variant.c_str());
                res.bad = 1;
                return res;
            }
        }
    } else {
        (void)GeneralReg<T>::registered;
        res.variant = general_name<T>();
        const GenArgs<A> a = general_args<T>(p, out_channels_last(p));
        if (a.total != cf.n * cf.c * cf.oh * cf.ow) {
            printf("FAIL %s: general path total %ld\n", describe(cf).c_str(), long(a.total));
            res.bad = 1;
            return res;
        }
        for (int64_t i = 0; i < a.total; ++i) general_one<T>(a, i);
    }
    mark_run(res.variant);

    // Reference (double precision, straight from the contract) and checks.
    const double eps = std::is_same_v<T, double> ? 1e-12 : std::is_same_v<T, float> ? 1e-5
                       : std::is_same_v<T, __half> ? 2e-3 : 1.6e-2;
    std::vector<char> is_out(ob.size(), 0);
    for (int64_t n = 0; n < cf.n; ++n)
        for (int64_t c = 0; c < cf.c; ++c)
            for (int64_t oy = 0; oy < cf.oh; ++oy)
                for (int64_t ox = 0; ox < cf.ow; ++ox) {
                    double s = 0, sa = 0;
                    for (int64_t i = 0; i < cf.fh; ++i) {
                        const int64_t u = oy * cf.dy + i - cf.py;
                        if (u < 0 || u % cf.uy || u / cf.uy >= cf.h) continue;
                        for (int64_t j = 0; j < cf.fw; ++j) {
                            const int64_t v = ox * cf.dx + j - cf.px;
                            if (v < 0 || v % cf.ux || v / cf.ux >= cf.w) continue;
                            const double xv = to_d(x[n * xs[0] + c * xs[1] + (u / cf.uy) * xs[2] + (v / cf.ux) * xs[3]]);
                            const double t = double(f[i * cf.fw + j]) * xv;
                            s += t;
                            sa += std::fabs(t);
                        }
                    }
                    const int64_t oi = n * os[0] + c * os[1] + oy * os[2] + ox * os[3];
                    is_out[G + cf.ooff + oi] = 1;
                    const double got = to_d(out[oi]);
                    bool ok;
                    if (std::isnan(s)) ok = std::isnan(got);
                    else ok = !std::isnan(got) && std::fabs(got - s) <= eps * (sa + std::fabs(s)) + (sizeof(T) == 2 ? 1e-7 : 1e-30);
                    if (!ok) {
                        if (res.bad == 0) printf("FAIL %s [%s]\n", describe(cf).c_str(), res.variant.c_str());
                        if (res.bad < 4)
                            printf("  mismatch at n=%ld c=%ld oy=%ld ox=%ld: got %.9g, want %.9g%s\n", long(n), long(c),
                                   long(oy), long(ox), got, s,
                                   memcmp(&out[oi], &sentinel, sizeof(T)) == 0 ? " (never written?)" : "");
                        ++res.bad;
                    }
                }
    int64_t stray = 0, first_stray = -1;
    for (size_t k = 0; k < ob.size(); ++k)
        if (!is_out[k] && memcmp(&ob[k], &sentinel, sizeof(T)) != 0) {
            if (first_stray < 0) first_stray = int64_t(k) - G - cf.ooff;
            ++stray;
        }
    if (stray) {
        if (res.bad == 0) printf("FAIL %s [%s]\n", describe(cf).c_str(), res.variant.c_str());
        printf("  %ld writes outside the output elements (first at element offset %ld from out)\n", long(stray),
               long(first_stray));
        res.bad += int(stray);
    }
    if (verbose) printf("ok   %s [%s]\n", describe(cf).c_str(), res.variant.c_str());
    return res;
}

Outcome run_any(const Cfg& cf, Rng& r, bool verbose) {
    snprintf(g_current, sizeof g_current, "%s", describe(cf).c_str());
    switch (cf.dt) {
        case 0: return run_case<float>(cf, r, verbose);
        case 1: return run_case<double>(cf, r, verbose);
        case 2: return run_case<__half>(cf, r, verbose);
        default: return run_case<__nv_bfloat16>(cf, r, verbose);
    }
}

// Plans without running (to aim a targeted config at a kernel).
template <typename T> std::string planned(const Cfg& cf) {
    Upfirdn2dParams p{};
    static char dummy[16];
    p.out = dummy; p.x = dummy; p.f = dummy;
    p.n = cf.n; p.c = cf.c; p.h = cf.h; p.w = cf.w; p.oh = cf.oh; p.ow = cf.ow;
    // strides only matter for the layout decision: out channels_last or not
    if (cf.olay == 1) { p.out_stride[1] = 1; p.out_stride[3] = cf.c; p.out_stride[2] = cf.ow * cf.c; p.out_stride[0] = cf.oh * cf.ow * cf.c; }
    else { p.out_stride[3] = 1; p.out_stride[2] = cf.ow; p.out_stride[1] = cf.oh * cf.ow; p.out_stride[0] = cf.c * cf.oh * cf.ow; }
    for (int k = 0; k < 4; ++k) p.x_stride[k] = p.out_stride[k];
    p.fh = cf.fh; p.fw = cf.fw; p.upx = cf.ux; p.upy = cf.uy; p.downx = cf.dx; p.downy = cf.dy;
    p.padx0 = cf.px; p.pady0 = cf.py;
    TilePlan<Acc<T>> plan;
    if (!plan_tiled<EmuSel, T>(p, use_cl_kernel(p), cf.sms, &plan)) return general_name<T>();
    const auto it = fn_names().find(plan.fn);
    return it == fn_names().end() ? std::string("?") : it->second;
}

std::string planned_any(const Cfg& cf) {
    switch (cf.dt) {
        case 0: return planned<float>(cf);
        case 1: return planned<double>(cf);
        case 2: return planned<__half>(cf);
        default: return planned<__nv_bfloat16>(cf);
    }
}

// Multiply-high division used for the tile / index decode.
int check_fastdiv(Rng& r) {
    int bad = 0;
    for (int it = 0; it < 200000; ++it) {
        int64_t d;
        switch (it % 4) {
            case 0: d = r.i(1, 100); break;
            case 1: d = r.i(1, int64_t(1) << 31); break;
            case 2: d = 1 + int64_t(r.g() >> r.i(1, 63)); break;
            default: d = (int64_t(1) << r.i(0, 61)) + r.i(-1, 1); break;
        }
        if (d < 1) d = 1;
        int64_t n;
        switch ((it / 4) % 3) {
            case 0: n = int64_t(r.g() >> 1); break;
            case 1: n = r.i(0, d > INT64_MAX / 4 ? INT64_MAX : d * 4); break;
            default: n = INT64_MAX - r.i(0, 1000); break;
        }
        const FastDiv64 f = make_fastdiv64(d);
        int64_t q;
        const int64_t rem = fdivmod(f, n, &q);
        if (q != n / d || rem != n % d) {
            if (bad++ < 3) printf("FAIL fastdiv: %lld / %lld gave %lld rem %lld\n", (long long)n, (long long)d, (long long)q, (long long)rem);
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
        if (!strcmp(argv[k], "--probe")) {  // the binary starts (e.g. the sanitizer runtime works here)
            printf("probe ok\n");
            return 0;
        }
        if (!strcmp(argv[k], "-v")) verbose = true;
        else if (pos++ == 0) iters = atoi(argv[k]);
        else seed = strtoull(argv[k], nullptr, 10);
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);  // keep earlier reports if the process dies
    for (const int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL}) signal(sig, on_signal);
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_set_death_callback(report_current);  // ASan exits without a signal
#endif
    const auto t0 = std::chrono::steady_clock::now();
    Rng r(seed);
    int fails = 0, cases = 0;
    auto record = [&](const Outcome& o) {
        ++cases;
        if (o.bad && ++fails >= 10) {
            printf("stopping after %d failing configs (seed %llu)\n", fails, (unsigned long long)seed);
            exit(1);
        }
    };

    const int fd_bad = check_fastdiv(r);
    fails += fd_bad ? 1 : 0;

    // 1. One config per tiled kernel, aimed through the planner: (dtype, layout, x factors, x bucket).
    struct XK { int u, d, fxb, flo, fhi; };
    const XK xks[] = {{1, 1, 1, 1, 1}, {1, 1, 4, 2, 4}, {1, 1, 12, 5, 12}, {1, 2, 4, 1, 4}, {1, 2, 12, 5, 12},
                      {1, 4, 4, 1, 4}, {1, 4, 12, 5, 12}, {2, 1, 4, 1, 4}, {2, 1, 12, 5, 12}, {4, 1, 4, 1, 4},
                      {4, 1, 12, 5, 12}};
    for (int dt = 0; dt < 4; ++dt)
        for (int cl = 0; cl < 2; ++cl)
            for (const XK& k : xks) {
                const std::string want = tiled_name(kDt[dt], k.u, k.d, k.fxb, cl);
                bool hit = false;
                for (int attempt = 0; attempt < 40 && !hit; ++attempt) {
                    Cfg c = targeted_cfg(r, dt, k.u, k.d, int(r.i(k.flo, k.fhi)), cl, attempt);
                    c.tag = "targeted(" + want + ")";
                    if (planned_any(c) != want) continue;
                    hit = true;
                    const Outcome o = run_any(c, r, verbose);
                    if (!o.bad && o.variant != want) {
                        printf("FAIL %s: ran %s\n", describe(c).c_str(), o.variant.c_str());
                        record(Outcome{o.variant, 1});
                    } else {
                        record(o);
                    }
                }
                if (!hit) {
                    printf("FAIL could not build a config that the planner sends to %s\n", want.c_str());
                    ++fails;
                }
            }

    // 2. The general path: forced on tiled-eligible configs, and natural (factor 3, wide filters).
    for (int k = 0; k < 24; ++k) {
        Cfg c = random_cfg(r);
        c.dt = k % 4;
        if (k < 8) {
            c.force_general = true;
        } else if (k < 16) {
            // reduced x factor 3 (or 3/2, 2/3, 3/4, 4/3): never tiled
            c.ux = r.p(1, 2) ? 3 : r.i(1, 4);
            c.dx = c.ux == 3 ? r.i(1, 4) : 3;
            if (!finish_sizes(c, r.i(0, 8), r.i(0, 8)) || work(c) > 6000000) { --k; continue; }
        } else {
            c.ux = c.dx = 1;  // more than 12 reduced x taps: never tiled
            c.fw = r.i(13, 26);
            if (!finish_sizes(c, r.i(6, 14), r.i(0, 8)) || work(c) > 6000000) { --k; continue; }
        }
        c.tag = "general#" + std::to_string(k);
        record(run_any(c, r, verbose));
    }

    // 3. Random configs.
    for (int it = 0; it < iters; ++it) {
        Cfg c = random_cfg(r);
        c.tag = "random#" + std::to_string(it);
        record(run_any(c, r, verbose));
        if (r.p(1, 6)) {  // the same config through the general path
            c.force_general = true;
            record(run_any(c, r, verbose));
        }
    }

    int exercised = 0;
    for (const auto& kv : variants()) {
        if (kv.second) ++exercised;
        else printf("FAIL kernel variant never exercised: %s\n", kv.first.c_str());
        if (verbose) printf("  %-32s %d runs\n", kv.first.c_str(), kv.second);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("configs: %d run, %d failing; looped launches: %ld; NaN inputs: %lu; negative pads: %lu; fastdiv errors: %d\n",
           cases, fails, long(g_looped), (unsigned long)g_nan_cases, (unsigned long)g_negpad_cases, fd_bad);
    printf("kernel variants: %d exercised of %d instantiated\n", exercised, int(variants().size()));
    printf("seed %llu, %.1f s\n", (unsigned long long)seed, secs);
    if (fails) return 1;
    if (exercised != int(variants().size())) return 2;
    return 0;
}

#endif  // __CUDA_ARCH__
