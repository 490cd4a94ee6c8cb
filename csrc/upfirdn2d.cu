// fastgan upfirdn2d CUDA kernels.  No torch headers: this translation unit builds with nvcc alone.
//
// Contract (see upfirdn2d.h):
//   out[n,c,oy,ox] = sum_{i<fh, j<fw} f[i,j] * xp(oy*Dy + i, ox*Dx + j)
//   xp(u,v) = x[n,c,(u-py0)/Uy,(v-px0)/Ux] if both divisions are exact with in-range quotients, else 0.
//
// 1. Axis reduction (host).  Per axis, with g = gcd(U, D): only taps j == px0 (mod g) can hit a
//    real sample, so the axis is rewritten exactly as U' = U/g, D' = D/g, taps j' (original tap
//    ph + g*j', ph = px0 mod g), F' = ceil((F - ph)/g), p0' = (p0 - ph)/g.  With U, D in {1,2,4}
//    every axis becomes one of (U',D') = (1,1) (1,2) (1,4) (2,1) (4,1).  The kernels read the
//    reduced filter straight from the full one (offset/step per axis).
//
// 2. Tiled path (upfirdn2d_tiled_kernel), used when the reduced x axis is one of those five
//    pairs, F'x <= 12 and the tile fits in 48 KB of shared memory; the y axis (any U', D', F')
//    is handled at run time.  Template: element type, x-axis (U', D'), x tap bucket FXB in
//    {1 (only for (1,1)), 4, 12} (run-time F'x <= FXB), layout: 4 x (3 + 4*2) x 2 = 88 kernels.
//    Layouts: the channels_last kernel runs when out is channels-fastest and C >= 8; the NCHW
//    kernel otherwise (it honours any x / out strides, coalescing when the x stride is 1).
//    Thread grid NX x NY: NCHW: NX in {8, 16, 32} threads along x (narrowed for narrow outputs),
//    NY = 256/NX along y; channels_last: lane = channel, NX in {1, 2} x NY warps.  NY is halved
//    while the tile would exceed the output height or 48 KB.  A block owns an output tile of
//    TOH = 2*NY rows x TOW = BX*NX columns (NCHW: one (n, c) plane; channels_last: 32
//    consecutive channels) and loops over tiles (grid-stride; tile x fastest, then tile y, then
//    plane; 64-bit tile index decoded with multiply-high division).  Per tile, separated by
//    __syncthreads():
//      a. the block copies the input footprint of the tile into shared memory, converted to the
//         accumulation type: rows r0..r0+rows-1 (only real rows, clipped to [0, H)) and IWS =
//         4*(NX-1) + WX4 columns starting at input column c0 (columns outside [0, W) stored as
//         zeros); NCHW: smem[row][col]; channels_last: smem[row][col][32 channels] (channel
//         fastest, so global loads and smem stores coalesce along channels).  Each thread keeps
//         8 global loads in flight.
//      b. thread (sx, sy) owns output rows oy_tile + 2*sy + {0, 1} and BX consecutive output
//         columns starting at ox_tile + BX*sx:
//         U' = 1: BX = 4/D' outputs, whose taps span the input columns [4*sx, 4*sx + WX) of the
//                 tile, WX = (BX-1)*D' + FXB;
//         U' > 1: BX = 4*U' outputs = 4 groups of U' phases (ox_tile == px0' mod U', so output
//                 ox_tile + g*U' + r always has phase r and reads input columns 4*sx + g + k +
//                 (r > 0) for taps j = (U' - r) % U' + U'*k), window WX = 4 + ceil(FXB/U').
//         It walks the input rows its outputs touch; per row it loads its window of WX4 =
//         roundup4(WX) samples into registers (NCHW: 16-byte vector loads at a 16-byte aligned
//         column 4*sx, lanes along x, conflict-free for NX >= 8; channels_last: lanes along
//         channels) and, for each of its two output rows that the row hits (tap i = iy*Uy' -
//         (oy*Dy' - py0') in [0, F'y)), loads filter row i from shared memory (a broadcast when
//         the warp's rows share a phase) and accumulates only the taps that hit real samples
//         (polyphase for U' > 1).  Taps j >= F'x of the bucket are skipped (not multiplied by 0,
//         so a NaN/Inf outside a filter's support never leaks into an output).
//      c. stores: NCHW: up to 16-byte vector stores of the thread's BX consecutive outputs when
//         out's x stride is 1 and the address is aligned (scalar otherwise); channels_last:
//         lanes along channels.
//    The filter (reduced, rows padded to FXP = roundup4(FXB) with zeros) is loaded into shared
//    memory once per block.  The phases are __host__ __device__ functions (tile_geom,
//    fill_filter, fill_tile, compute_store) so that a host harness can emulate a launch block
//    by block, thread by thread.
//
// 3. General path (upfirdn2d_general_kernel): one thread per output (grid-stride, int64 index
//    math), direct polyphase loop over the taps that hit real samples.  Any factors, filter size,
//    strides; used for everything the tiled path does not take.
//
// All base offsets and strides are int64; in-tile coordinates are int32, which the host checks
// with a wide margin before choosing the tiled path.
#include "upfirdn2d.h"
#include "host_util.cuh"  // sm_count
#include "scalar.cuh"     // Acc, to_acc, from_acc, ldg, ld_acc

#include <atomic>
#include <cstdint>
#include <cstring>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

constexpr int kMaxThreads = 256;
constexpr int kBY = 2;                  // output rows per thread
constexpr int kCT = 32;                 // channels per channels_last tile (one per lane)
constexpr int kFillUnroll = 8;          // global loads in flight per thread while filling smem
constexpr int kSmemBudget = 48 * 1024;  // dynamic smem per block (no opt-in needed)
constexpr int kMaxFxTiled = 12;         // largest reduced x filter of the tiled path

// ------------------------------------------------------------------------------------------------
// Element types (storage T, accumulation Acc<T>), ldg, ld_acc, from_acc: scalar.cuh.
FG_HD float fma_acc(float a, float b, float c) { return fmaf(a, b, c); }
FG_HD double fma_acc(double a, double b, double c) { return fma(a, b, c); }
FG_HD int imin(int a, int b) { return a < b ? a : b; }
FG_HD int imax(int a, int b) { return a > b ? a : b; }

// Floor / ceil division by b > 0 for any sign of a.
FG_HD int floor_div(int a, int b) {
    const int q = a / b;
    return q * b > a ? q - 1 : q;
}
FG_HD int ceil_div(int a, int b) {
    const int q = a / b;
    return q * b < a ? q + 1 : q;
}
// Division of 0 <= n < 2^63 by a run-time constant 1 <= d < 2^63 without a 64-bit divide
// (q = (mulhi(n, m) + n) >> s with s = ceil(log2 d), m = floor(2^64 (2^s - d) / d) + 1; the sum
// cannot overflow because n < 2^63).
struct FastDiv64 {
    uint64_t m;
    uint64_t d;
    unsigned s;
};

FG_HD int64_t fdiv(const FastDiv64& f, int64_t n) {
    const uint64_t un = uint64_t(n);
#ifdef __CUDA_ARCH__
    const uint64_t t = __umul64hi(un, f.m);
#else
    const uint64_t t = uint64_t((unsigned __int128)un * f.m >> 64);
#endif
    return int64_t((t + un) >> f.s);
}

// q = n / d, returns n % d.
FG_HD int64_t fdivmod(const FastDiv64& f, int64_t n, int64_t* q) {
    *q = fdiv(f, n);
    return n - *q * int64_t(f.d);
}

inline FastDiv64 make_fastdiv64(int64_t d) {
    FastDiv64 f;
    unsigned s = 0;
    while ((uint64_t(1) << s) < uint64_t(d)) ++s;
    f.s = s;
    f.d = uint64_t(d);
    using U128 = unsigned __int128;
    f.m = uint64_t(((U128(1) << 64) * ((U128(1) << s) - U128(d))) / U128(d) + 1);
    return f;
}

FG_HD int64_t pos_mod64(int64_t a, int64_t m) {
    const int64_t r = a % m;
    return r < 0 ? r + m : r;
}

// ------------------------------------------------------------------------------------------------
// Tiled path.

// Compile-time shape of the x axis: reduced factors U, D (one of them 1) and tap bucket FXB.
template <int XU, int XD, int FXB> struct XCfg {
    static constexpr int U = XU;
    static constexpr int D = XD;
    static_assert(U == 1 || D == 1, "reduced x factors are coprime powers of two");
    static_assert(4 % D == 0 && 4 % U == 0, "x factors must be 1, 2 or 4");
    static constexpr int BX = XU == 1 ? 4 / XD : 4 * XU;         // outputs per thread along x
    static constexpr int KX = (FXB + XU - 1) / XU;               // taps per phase (bucket)
    static constexpr int WX = XU == 1 ? (BX - 1) * XD + FXB : 4 + KX;  // window (input columns)
    static constexpr int WX4 = (WX + 3) / 4 * 4;                 // window as loaded
    static constexpr int FXP = (FXB + 3) / 4 * 4;                // filter row pitch in smem
};

template <typename A> struct TileArgs {
    const void* x;
    void* out;
    const A* f;                            // full filter [fh, f_pitch]
    int64_t sxn, sxc, sxh, sxw;            // x strides (elements)
    int64_t son, soc, soh, sow;            // out strides (elements)
    int64_t total_tiles;
    int C, H, W, OH, OW;
    int f_pitch, fx_off, fy_off, fx_step, fy_step;  // reduced tap j' -> column fx_off + fx_step*j'
    int Fx, Fy;                            // reduced tap counts (1 <= Fx <= FXB)
    int Uy, Dy, p0x, p0y;                  // reduced y factors, reduced pads
    int NX, NY;                            // NCHW: threads along x / y; channels_last: warps
    int IWS;                               // smem tile columns (multiple of 4)
    int TOW, TOH;                          // output tile
    int ox_first;                          // output column of tile 0 (<= 0, == p0x mod U')
    int tiles_x, tiles_y, ctiles;
    FastDiv64 div_tx, div_ty, div_c;       // by tiles_x, tiles_y, and C (NCHW) or ctiles (CL)
};

// Loads N consecutive accumulators from 16-byte aligned shared memory with vector loads.
template <typename A, int N> FG_HD void lds_vec(A (&d)[N], const A* s) {
    if constexpr (sizeof(A) == 4) {
        static_assert(N % 4 == 0, "float vector loads take 4 values");
#pragma unroll
        for (int q = 0; q < N / 4; ++q) {
            const float4 v = reinterpret_cast<const float4*>(s)[q];
            d[4 * q + 0] = v.x;
            d[4 * q + 1] = v.y;
            d[4 * q + 2] = v.z;
            d[4 * q + 3] = v.w;
        }
    } else {
        static_assert(N % 2 == 0, "double vector loads take 2 values");
#pragma unroll
        for (int q = 0; q < N / 2; ++q) {
            const double2 v = reinterpret_cast<const double2*>(s)[q];
            d[2 * q + 0] = v.x;
            d[2 * q + 1] = v.y;
        }
    }
}

// One filter row (FXB taps) from shared memory.
template <typename A, int FXB> FG_HD void load_frow(A (&fr)[FXB], const A* s) {
    if constexpr (FXB % 4 == 0) {
        lds_vec<A, FXB>(fr, s);
    } else {
#pragma unroll
        for (int j = 0; j < FXB; ++j) fr[j] = s[j];
    }
}

// acc[m] += sum over the x taps of output m that hit real samples of fr[j] * window sample.
template <typename A, typename X, int FXB>
FG_HD void x_accumulate(A (&acc)[X::BX], const A (&xw)[X::WX4], const A (&fr)[FXB], int Fx) {
    if constexpr (X::U == 1) {
        // output m, tap j reads input column 4*sx + m*D + j
#pragma unroll
        for (int j = 0; j < FXB; ++j) {
            if (j == 0 || j < Fx) {
#pragma unroll
                for (int m = 0; m < X::BX; ++m) acc[m] = fma_acc(fr[j], xw[m * X::D + j], acc[m]);
            }
        }
    } else {
        // output m = g*U + r (phase r, group g): taps j = (U - r) % U + U*k read input column
        // 4*sx + g + k + (r > 0)
#pragma unroll
        for (int r = 0; r < X::U; ++r) {
#pragma unroll
            for (int k = 0; k < X::KX; ++k) {
                const int j = (X::U - r) % X::U + X::U * k;
                const int jj = j < FXB ? j : FXB - 1;  // in-bounds index for the dead iterations
                if (j < FXB && (j == 0 || j < Fx)) {
#pragma unroll
                    for (int g = 0; g < 4; ++g) {
                        const int m = g * X::U + r;
                        acc[m] = fma_acc(fr[jj], xw[g + k + (r > 0 ? 1 : 0)], acc[m]);
                    }
                }
            }
        }
    }
}

// Stores N consecutive outputs (x stride 1) with the widest aligned vector stores.
template <typename T, typename A, int N> FG_HD void store_run(T* dst, const A (&v)[N]) {
    T tv[N];
#pragma unroll
    for (int m = 0; m < N; ++m) tv[m] = from_acc<T>(v[m]);
    constexpr int kBytes = N * int(sizeof(T));
    constexpr int kChunk = kBytes >= 16 ? 16 : kBytes;
    if constexpr (kChunk >= 4) {
        if ((reinterpret_cast<uintptr_t>(dst) & uintptr_t(kChunk - 1)) == 0) {
#pragma unroll
            for (int q = 0; q < kBytes / kChunk; ++q) {
                if constexpr (kChunk == 16) {
                    uint4 u;
                    memcpy(&u, reinterpret_cast<const char*>(tv) + 16 * q, 16);
                    reinterpret_cast<uint4*>(dst)[q] = u;
                } else if constexpr (kChunk == 8) {
                    uint2 u;
                    memcpy(&u, reinterpret_cast<const char*>(tv) + 8 * q, 8);
                    reinterpret_cast<uint2*>(dst)[q] = u;
                } else {
                    unsigned u;
                    memcpy(&u, reinterpret_cast<const char*>(tv) + 4 * q, 4);
                    reinterpret_cast<unsigned*>(dst)[q] = u;
                }
            }
            return;
        }
    }
#pragma unroll
    for (int m = 0; m < N; ++m) dst[m] = tv[m];
}

// Per-tile geometry (identical for every thread of the block).
struct TileGeom {
    int64_t x_base, o_base;  // element offsets of (n, c or channel block start) in x / out
    int cbase;               // first channel of the tile (channels_last), else 0
    int ox_tile, oy_tile;    // first output column / row of the tile
    int c0;                  // input column held by smem column 0
    int r0, rows;            // smem rows hold input rows r0 .. r0 + rows - 1 (rows may be <= 0)
};

template <int XU, int XD, bool CL, typename A>
FG_HD TileGeom tile_geom(const TileArgs<A>& a, int64_t t) {
    TileGeom g;
    int64_t q, plane, n;
    const int txi = int(fdivmod(a.div_tx, t, &q));
    const int tyi = int(fdivmod(a.div_ty, q, &plane));
    const int64_t c = fdivmod(a.div_c, plane, &n);  // channel block (CL) or channel
    if constexpr (CL) {
        g.cbase = int(c) * kCT;
        g.x_base = n * a.sxn;
        g.o_base = n * a.son;
    } else {
        g.cbase = 0;
        g.x_base = n * a.sxn + c * a.sxc;
        g.o_base = n * a.son + c * a.soc;
    }
    // Output columns [ox_tile, ox_tile + TOW), rows [oy_tile, oy_tile + TOH).
    g.ox_tile = a.ox_first + txi * a.TOW;
    g.oy_tile = tyi * a.TOH;
    // U' = 1: output ox, tap j reads input column ox*D + j - p0x.
    // U' > 1: ox_tile == p0x (mod U'), so (ox_tile - p0x) / U' is exact.
    g.c0 = XU == 1 ? g.ox_tile * XD - a.p0x : (g.ox_tile - a.p0x) / XU;
    // Input row iy is hit by output row oy, tap i when iy*Uy = oy*Dy + i - p0y.
    const int vblk = g.oy_tile * a.Dy - a.p0y;
    g.r0 = imax(0, ceil_div(vblk, a.Uy));
    const int r1 = imin(a.H - 1, floor_div(vblk + (a.TOH - 1) * a.Dy + a.Fy - 1, a.Uy));
    g.rows = r1 - g.r0 + 1;  // <= ceil(((TOH-1)*Dy + Fy) / Uy), the host's smem row count
    return g;
}

// Reduced filter into smem, rows zero-padded to FXP (the zeros are never multiplied: taps >= Fx
// are skipped).
template <int FXP, typename A>
FG_HD void fill_filter(const TileArgs<A>& a, A* fs, int tid, int nthr) {
    const int fs_elems = a.Fy * FXP;
    for (int e = tid; e < fs_elems; e += nthr) {
        const int i = e / FXP;
        const int j = e - i * FXP;
        A v = A(0);
        if (j < a.Fx)
            v = a.f[int64_t(a.fy_off + i * a.fy_step) * a.f_pitch + (a.fx_off + j * a.fx_step)];
        fs[e] = v;
    }
}

// Input footprint of the tile into smem: rows [0, rows) = input rows r0.., columns [0, IWS) = input
// columns c0.. (zeros outside [0, W); channels >= C of a channels_last tile are zeros too).
// NCHW: ts[row][col]; channels_last: ts[row][col][kCT].
template <typename T, bool CL, typename A>
FG_HD void fill_tile(const TileArgs<A>& a, const TileGeom& g, A* ts, int tid, int nthr) {
    const int IWS = a.IWS;
    const T* xp = static_cast<const T*>(a.x) + g.x_base;
    int unit, step, lane = 0;
    bool chok = true;
    if constexpr (CL) {
        // one thread per (pixel, channel): lanes along channels, pixels advance by #warps
        unit = tid >> 5;
        step = nthr >> 5;
        lane = tid & (kCT - 1);
        chok = g.cbase + lane < a.C;
        if (chok) xp += int64_t(g.cbase + lane) * a.sxc;
    } else {
        unit = tid;
        step = nthr;
    }
    int r = unit / IWS;
    int cc = unit - r * IWS;
    const int dr = step / IWS;
    const int dc = step - dr * IWS;
    while (r < g.rows) {
        A v[kFillUnroll];
        int s[kFillUnroll];
#pragma unroll
        for (int k = 0; k < kFillUnroll; ++k) {
            v[k] = A(0);
            s[k] = -1;
            if (r < g.rows) {
                const int ix = g.c0 + cc;
                if (chok && ix >= 0 && ix < a.W)
                    v[k] = ld_acc(xp + (int64_t(g.r0 + r) * a.sxh + int64_t(ix) * a.sxw));
                s[k] = CL ? (r * IWS + cc) * kCT + lane : r * IWS + cc;
            }
            cc += dc;
            r += dr;
            if (cc >= IWS) {
                cc -= IWS;
                ++r;
            }
        }
#pragma unroll
        for (int k = 0; k < kFillUnroll; ++k)
            if (s[k] >= 0) ts[s[k]] = v[k];
    }
}

// Thread tid's outputs of the tile: rows oy_t, oy_t + 1 (oy_t = oy_tile + 2*sy), columns
// ox_t .. ox_t + BX - 1 (ox_t = ox_tile + BX*sx); channel cbase + lane for channels_last.
template <typename T, int XU, int XD, int FXB, bool CL, typename A>
FG_HD void compute_store(const TileArgs<A>& a, const TileGeom& g, const A* fs, const A* ts, int tid) {
    using X = XCfg<XU, XD, FXB>;
    int sx, sy, lane;
    if constexpr (CL) {
        lane = tid & (kCT - 1);
        const int w = tid >> 5;
        sy = w / a.NX;
        sx = w - sy * a.NX;
    } else {
        lane = 0;
        sy = tid / a.NX;
        sx = tid - sy * a.NX;
    }
    const int row_pitch = CL ? a.IWS * kCT : a.IWS;         // smem elements per tile row
    const int col_off = CL ? 4 * sx * kCT + lane : 4 * sx;  // the thread's window start
    const int oy_t = g.oy_tile + sy * kBY;
    const int ox_t = g.ox_tile + sx * X::BX;

    A acc[kBY][X::BX];
#pragma unroll
    for (int b = 0; b < kBY; ++b)
#pragma unroll
        for (int m = 0; m < X::BX; ++m) acc[b][m] = A(0);

    if (oy_t < a.OH && ox_t < a.OW) {
        const int vlo = oy_t * a.Dy - a.p0y;  // = upsampled row of (oy_t, tap 0) minus pad
        const int iy_beg = imax(ceil_div(vlo, a.Uy), 0);
        const int iy_end = imin(floor_div(vlo + (kBY - 1) * a.Dy + a.Fy - 1, a.Uy), a.H - 1);
        // [iy_beg, iy_end] lies in [r0, r0 + rows): vlo >= the tile's and oy_t + 1 < oy_tile + TOH.
        const A* srow = ts + (iy_beg - g.r0) * row_pitch + col_off;
        int ib = iy_beg * a.Uy - vlo;  // tap of row oy_t on input row iy; row oy_t + b: ib - b*Dy
        for (int iy = iy_beg; iy <= iy_end; ++iy, srow += row_pitch, ib += a.Uy) {
            A xw[X::WX4];
            if constexpr (CL) {
#pragma unroll
                for (int w = 0; w < X::WX4; ++w) xw[w] = srow[w * kCT];
            } else {
                lds_vec<A, X::WX4>(xw, srow);
            }
#pragma unroll
            for (int b = 0; b < kBY; ++b) {
                const int i = ib - b * a.Dy;
                if (unsigned(i) < unsigned(a.Fy)) {
                    A fr[FXB];
                    load_frow<A, FXB>(fr, fs + i * X::FXP);
                    x_accumulate<A, X, FXB>(acc[b], xw, fr, a.Fx);
                }
            }
        }
    }

    if constexpr (CL) {
        const int chan = g.cbase + lane;
        if (chan < a.C) {
            T* const op = static_cast<T*>(a.out) + g.o_base + int64_t(chan) * a.soc;
#pragma unroll
            for (int b = 0; b < kBY; ++b) {
                const int oy = oy_t + b;
                if (oy < a.OH) {
#pragma unroll
                    for (int m = 0; m < X::BX; ++m) {
                        const int ox = ox_t + m;
                        if (ox >= 0 && ox < a.OW)
                            op[int64_t(oy) * a.soh + int64_t(ox) * a.sow] = from_acc<T>(acc[b][m]);
                    }
                }
            }
        }
    } else {
        T* const op = static_cast<T*>(a.out) + g.o_base;
#pragma unroll
        for (int b = 0; b < kBY; ++b) {
            const int oy = oy_t + b;
            if (oy < a.OH) {
                T* const rp = op + int64_t(oy) * a.soh;
                if (a.sow == 1 && ox_t >= 0 && ox_t + X::BX <= a.OW) {
                    store_run<T, A, X::BX>(rp + ox_t, acc[b]);
                } else {
#pragma unroll
                    for (int m = 0; m < X::BX; ++m) {
                        const int ox = ox_t + m;
                        if (ox >= 0 && ox < a.OW) rp[int64_t(ox) * a.sow] = from_acc<T>(acc[b][m]);
                    }
                }
            }
        }
    }
}

// Smem layout: filter [Fy][FXP] then the tile, both 16-byte aligned.
template <int FXP, typename A> FG_HD A* tile_smem(A* fs, int Fy) { return fs + ((Fy * FXP + 3) & ~3); }

template <typename T, int XU, int XD, int FXB, bool CL>
__global__ void __launch_bounds__(kMaxThreads) upfirdn2d_tiled_kernel(const TileArgs<Acc<T>> a) {
    using A = Acc<T>;
    using X = XCfg<XU, XD, FXB>;
    extern __shared__ float4 ufd_smem[];  // 16-byte aligned
    A* const fs = reinterpret_cast<A*>(ufd_smem);
    A* const ts = tile_smem<X::FXP>(fs, a.Fy);
    const int tid = int(threadIdx.x);
    const int nthr = int(blockDim.x);

    fill_filter<X::FXP>(a, fs, tid, nthr);  // visible after the first barrier below
    for (int64_t t = blockIdx.x; t < a.total_tiles; t += gridDim.x) {
        const TileGeom g = tile_geom<XU, XD, CL>(a, t);
        __syncthreads();  // the previous tile's readers are done with ts
        fill_tile<T, CL>(a, g, ts, tid, nthr);
        __syncthreads();
        compute_store<T, XU, XD, FXB, CL>(a, g, fs, ts, tid);
    }
}

// ------------------------------------------------------------------------------------------------
// General path.

template <typename A> struct GenArgs {
    const void* x;
    void* out;
    const A* f;
    int64_t sxn, sxc, sxh, sxw;
    int64_t son, soc, soh, sow;
    int64_t H, W;
    int64_t fh, fw, ux, uy, dx, dy, px, py;
    int64_t total;
    FastDiv64 div0, div1, div2;  // index decode: c_fastest ? (C, OW, OH) : (OW, OH, C)
    int c_fastest;               // c fastest (channels_last out: coalesced stores) or x fastest
};

// Output element idx (0 <= idx < total).
template <typename T, typename A> FG_HD void general_one(const GenArgs<A>& a, int64_t idx) {
    int64_t q0, q1, q2, n, c, oy, ox;
    const int64_t r0 = fdivmod(a.div0, idx, &q0);
    const int64_t r1 = fdivmod(a.div1, q0, &q1);
    const int64_t r2 = fdivmod(a.div2, q1, &q2);
    if (a.c_fastest) {
        c = r0;
        ox = r1;
        oy = r2;
    } else {
        ox = r0;
        oy = r1;
        c = r2;
    }
    n = q2;
    const T* xp = static_cast<const T*>(a.x) + (n * a.sxn + c * a.sxc);
    A acc = A(0);
    // Tap i hits input row (vy + i) / uy when the division is exact: i = i0, i0 + uy, ... and the
    // rows are consecutive.  Same for the columns.
    const int64_t vy = oy * a.dy - a.py;
    const int64_t vx = ox * a.dx - a.px;
    const int64_t i0 = pos_mod64(-vy, a.uy);
    const int64_t j0 = pos_mod64(-vx, a.ux);
    const int64_t ix0 = (vx + j0) / a.ux;  // exact
    int64_t iy = (vy + i0) / a.uy;         // exact
    for (int64_t i = i0; i < a.fh && iy < a.H; i += a.uy, ++iy) {
        if (iy < 0) continue;
        const A* fr = a.f + i * a.fw;
        const T* xr = xp + iy * a.sxh;
        int64_t ix = ix0;
        for (int64_t j = j0; j < a.fw && ix < a.W; j += a.ux, ++ix) {
            if (ix < 0) continue;
            acc = fma_acc(fr[j], ld_acc(xr + ix * a.sxw), acc);
        }
    }
    static_cast<T*>(a.out)[n * a.son + c * a.soc + oy * a.soh + ox * a.sow] = from_acc<T>(acc);
}

template <typename T>
__global__ void __launch_bounds__(kMaxThreads) upfirdn2d_general_kernel(const GenArgs<Acc<T>> a) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < a.total; idx += stride)
        general_one<T>(a, idx);
}

// ------------------------------------------------------------------------------------------------
// Host side.

int64_t gcd64(int64_t a, int64_t b) {
    while (b != 0) {
        const int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

// One axis after removing gcd(U, D) (see the comment at the top).
struct AxisRed {
    int64_t U, D, p0, F, off, step;
};

AxisRed reduce_axis(int64_t up, int64_t down, int64_t pad, int64_t taps) {
    const int64_t g = gcd64(up, down);
    const int64_t ph = pos_mod64(pad, g);
    AxisRed r;
    r.U = up / g;
    r.D = down / g;
    r.off = ph;
    r.step = g;
    r.F = taps > ph ? (taps - ph + g - 1) / g : 0;
    r.p0 = (pad - ph) / g;  // exact
    return r;
}

// Kernel selection: Sel::template tiled<T, XU, XD, FXB, CL>() / Sel::template general<T>() name
// the function to launch (the kernels here; a host harness can plug in an emulator).
struct KernelSel {
    template <typename T, int XU, int XD, int FXB, bool CL> static void* tiled() {
        void (*fn)(TileArgs<Acc<T>>) = upfirdn2d_tiled_kernel<T, XU, XD, FXB, CL>;
        return reinterpret_cast<void*>(fn);
    }
    template <typename T> static void* general() {
        void (*fn)(GenArgs<Acc<T>>) = upfirdn2d_general_kernel<T>;
        return reinterpret_cast<void*>(fn);
    }
};

struct TileKernel {
    void* fn;  // Sel's function for TileArgs<Acc<T>>
    int BX, WX4, FXP;
};

template <typename Sel, typename T, int XU, int XD, int FXB, bool CL> TileKernel tile_kernel() {
    using X = XCfg<XU, XD, FXB>;
    return TileKernel{Sel::template tiled<T, XU, XD, FXB, CL>(), X::BX, X::WX4, X::FXP};
}

template <typename Sel, typename T, int XU, int XD, bool CL> bool pick_fxb(int64_t Fx, TileKernel* k) {
    if constexpr (XU == 1 && XD == 1) {
        if (Fx == 1) {
            *k = tile_kernel<Sel, T, 1, 1, 1, CL>();
            return true;
        }
    }
    if (Fx <= 4) {
        *k = tile_kernel<Sel, T, XU, XD, 4, CL>();
        return true;
    }
    if (Fx <= kMaxFxTiled) {
        *k = tile_kernel<Sel, T, XU, XD, kMaxFxTiled, CL>();
        return true;
    }
    return false;
}

template <typename Sel, typename T, bool CL> bool pick_tile_kernel(const AxisRed& rx, TileKernel* k) {
    if (rx.F < 1) return false;
    if (rx.U == 1 && rx.D == 1) return pick_fxb<Sel, T, 1, 1, CL>(rx.F, k);
    if (rx.U == 1 && rx.D == 2) return pick_fxb<Sel, T, 1, 2, CL>(rx.F, k);
    if (rx.U == 1 && rx.D == 4) return pick_fxb<Sel, T, 1, 4, CL>(rx.F, k);
    if (rx.U == 2 && rx.D == 1) return pick_fxb<Sel, T, 2, 1, CL>(rx.F, k);
    if (rx.U == 4 && rx.D == 1) return pick_fxb<Sel, T, 4, 1, CL>(rx.F, k);
    return false;
}

// A launch of the tiled kernel: fn<<<blocks, threads, smem>>>(args).
template <typename A> struct TilePlan {
    void* fn;
    TileArgs<A> args;
    int threads;
    int smem;
    int64_t blocks;
};

// Plans the tiled path; false when it does not apply (the general path runs instead).
template <typename Sel, typename T>
bool plan_tiled(const Upfirdn2dParams& p, bool cl, int sms, TilePlan<Acc<T>>* plan) {
    using A = Acc<T>;
    const AxisRed rx = reduce_axis(p.upx, p.downx, p.padx0, p.fw);
    const AxisRed ry = reduce_axis(p.upy, p.downy, p.pady0, p.fh);
    if (ry.F < 1 || rx.F < 1) return false;  // no tap hits a real sample: general path (zeros)
    TileKernel k{};
    if (!(cl ? pick_tile_kernel<Sel, T, true>(rx, &k) : pick_tile_kernel<Sel, T, false>(rx, &k)))
        return false;

    // int32 safety of the in-tile coordinate math (tiles are at most 512 x 64 outputs, windows and
    // filters at most a few thousand elements).
    constexpr int64_t kLim = int64_t(1) << 29;
    if (p.oh >= kLim || p.ow >= kLim || p.h >= kLim || p.w >= kLim || p.c >= kLim || p.fh >= kLim ||
        p.fw >= kLim || ry.U >= kLim || ry.D >= kLim || abs64(rx.p0) >= kLim || abs64(ry.p0) >= kLim)
        return false;
    const int64_t span = abs64(rx.p0) + abs64(ry.p0) + rx.F + ry.F + p.fw + 4096 +
                         (p.ow + 1024) * rx.D + (p.w + 1024) * rx.U + (p.oh + 1024) * ry.D +
                         (p.h + 1024) * ry.U;
    if (span >= kLim) return false;

    int ox_first = 0;  // <= 0 and == p0x' (mod U'), so every tile starts at phase 0
    if (rx.U > 1) {
        const int pm = int(pos_mod64(rx.p0, rx.U));
        ox_first = pm > 0 ? pm - int(rx.U) : 0;
    }
    const int64_t own = p.ow - ox_first;  // output columns to cover from ox_first

    const int64_t fs_bytes = ((ry.F * k.FXP + 3) & ~int64_t(3)) * int64_t(sizeof(A));
    int NX, NY;
    if (cl) {  // warps
        NX = k.BX >= own ? 1 : 2;
        NY = 8 / NX;
    } else {  // threads; NX >= 8 keeps every quarter-warp's 16-byte smem loads in one row
        NX = 32;
        while (NX > 8 && int64_t(NX / 2) * k.BX >= own) NX /= 2;
        NY = kMaxThreads / NX;
    }
    while (NY > 1 && int64_t(NY / 2) * kBY >= p.oh) NY /= 2;
    const int IWS = 4 * (NX - 1) + k.WX4;
    int64_t smem = 0;
    for (;;) {
        const int64_t toh = int64_t(NY) * kBY;
        const int64_t ihs = ((toh - 1) * ry.D + ry.F + ry.U - 1) / ry.U;  // max rows of a tile
        smem = fs_bytes + ihs * IWS * (cl ? kCT : 1) * int64_t(sizeof(A));
        if (smem <= kSmemBudget) break;
        if (NY == 1) return false;  // footprint too large: general path
        NY /= 2;
    }

    TileArgs<A>& a = plan->args;
    a = TileArgs<A>{};
    a.x = p.x;
    a.out = p.out;
    a.f = static_cast<const A*>(p.f);
    a.sxn = p.x_stride[0];
    a.sxc = p.x_stride[1];
    a.sxh = p.x_stride[2];
    a.sxw = p.x_stride[3];
    a.son = p.out_stride[0];
    a.soc = p.out_stride[1];
    a.soh = p.out_stride[2];
    a.sow = p.out_stride[3];
    a.C = int(p.c);
    a.H = int(p.h);
    a.W = int(p.w);
    a.OH = int(p.oh);
    a.OW = int(p.ow);
    a.f_pitch = int(p.fw);
    a.fx_off = int(rx.off);
    a.fy_off = int(ry.off);
    a.fx_step = int(rx.step);
    a.fy_step = int(ry.step);
    a.Fx = int(rx.F);
    a.Fy = int(ry.F);
    a.Uy = int(ry.U);
    a.Dy = int(ry.D);
    a.p0x = int(rx.p0);
    a.p0y = int(ry.p0);
    a.NX = NX;
    a.NY = NY;
    a.IWS = IWS;
    a.TOW = NX * k.BX;
    a.TOH = NY * kBY;
    a.ox_first = ox_first;
    a.tiles_x = int((own + a.TOW - 1) / a.TOW);
    a.tiles_y = int((p.oh + a.TOH - 1) / a.TOH);
    a.ctiles = cl ? int((p.c + kCT - 1) / kCT) : 1;
    const int64_t planes = cl ? p.n * a.ctiles : p.n * p.c;
    a.total_tiles = planes * a.tiles_x * a.tiles_y;
    a.div_tx = make_fastdiv64(a.tiles_x);
    a.div_ty = make_fastdiv64(a.tiles_y);
    a.div_c = make_fastdiv64(cl ? a.ctiles : a.C);

    plan->fn = k.fn;
    plan->threads = cl ? kCT * NX * NY : NX * NY;
    plan->smem = int(smem);
    int64_t blocks = a.total_tiles;
    const int64_t cap = int64_t(sms) * 64;  // blocks loop over the remaining tiles
    plan->blocks = blocks > cap ? cap : blocks;
    return true;
}

template <typename T> GenArgs<Acc<T>> general_args(const Upfirdn2dParams& p, bool c_fastest) {
    GenArgs<Acc<T>> a{};
    a.x = p.x;
    a.out = p.out;
    a.f = static_cast<const Acc<T>*>(p.f);
    a.sxn = p.x_stride[0];
    a.sxc = p.x_stride[1];
    a.sxh = p.x_stride[2];
    a.sxw = p.x_stride[3];
    a.son = p.out_stride[0];
    a.soc = p.out_stride[1];
    a.soh = p.out_stride[2];
    a.sow = p.out_stride[3];
    a.H = p.h;
    a.W = p.w;
    a.fh = p.fh;
    a.fw = p.fw;
    a.ux = p.upx;
    a.uy = p.upy;
    a.dx = p.downx;
    a.dy = p.downy;
    a.px = p.padx0;
    a.py = p.pady0;
    a.total = p.n * p.c * p.oh * p.ow;
    a.c_fastest = c_fastest ? 1 : 0;
    a.div0 = make_fastdiv64(c_fastest ? p.c : p.ow);
    a.div1 = make_fastdiv64(c_fastest ? p.ow : p.oh);
    a.div2 = make_fastdiv64(c_fastest ? p.oh : p.c);
    return a;
}

// channels_last kernel when out is channels-fastest with enough channels to fill a warp
// reasonably; the NCHW kernel handles any strides otherwise.
bool out_channels_last(const Upfirdn2dParams& p) { return p.out_stride[1] == 1 && p.c > 1; }
bool use_cl_kernel(const Upfirdn2dParams& p) { return out_channels_last(p) && p.c >= 8; }

template <typename T> cudaError_t launch_dtype(const Upfirdn2dParams& p, cudaStream_t stream) {
    using A = Acc<T>;
    int sms = 0;
    const cudaError_t err = sm_count(&sms);
    if (err != cudaSuccess) return err;
    TilePlan<A> plan;
    if (plan_tiled<KernelSel, T>(p, use_cl_kernel(p), sms, &plan)) {
        const auto fn = reinterpret_cast<void (*)(TileArgs<A>)>(plan.fn);
        fn<<<unsigned(plan.blocks), unsigned(plan.threads), size_t(plan.smem), stream>>>(plan.args);
        return cudaGetLastError();
    }
    const GenArgs<A> a = general_args<T>(p, out_channels_last(p));
    int64_t blocks = (a.total + kMaxThreads - 1) / kMaxThreads;
    const int64_t cap = int64_t(sms) * 32;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    upfirdn2d_general_kernel<T><<<unsigned(blocks), kMaxThreads, 0, stream>>>(a);
    return cudaGetLastError();
}

cudaError_t check_params(const Upfirdn2dParams& p, int dtype_code) {
    if (p.out == nullptr || p.x == nullptr || p.f == nullptr) return cudaErrorInvalidValue;
    if (p.n < 1 || p.c < 1 || p.h < 1 || p.w < 1 || p.oh < 1 || p.ow < 1 || p.fh < 1 || p.fw < 1)
        return cudaErrorInvalidValue;
    if (p.upx < 1 || p.upy < 1 || p.downx < 1 || p.downy < 1) return cudaErrorInvalidValue;
    if (dtype_code < FASTGAN_DTYPE_F32 || dtype_code > FASTGAN_DTYPE_F64) return cudaErrorInvalidValue;
    return cudaSuccess;
}

}  // namespace

cudaError_t fastgan_upfirdn2d_launch(const Upfirdn2dParams& p, int dtype_code, cudaStream_t stream) {
    const cudaError_t err = check_params(p, dtype_code);
    if (err != cudaSuccess) return err;
    switch (dtype_code) {
        case FASTGAN_DTYPE_F32: return launch_dtype<float>(p, stream);
        case FASTGAN_DTYPE_F16: return launch_dtype<__half>(p, stream);
        case FASTGAN_DTYPE_BF16: return launch_dtype<__nv_bfloat16>(p, stream);
        case FASTGAN_DTYPE_F64: return launch_dtype<double>(p, stream);
        default: return cudaErrorInvalidValue;
    }
}
