"""Triton kernels for upfirdn2d: upsample (zero insertion), pad, FIR filter, downsample, in one pass.

Compute only: argument parsing, filter preparation (flip, gain, separable -> outer product) and
autograd live in ``fastgan/ops/upfirdn2d.py``; it calls :func:`upfirdn2d_triton`.

Contract (shared with csrc/): ``out`` [N, C, OH, OW] is preallocated, ``f`` [fh, fw] is contiguous,
already in correlation order with the gain multiplied in, and

    out[n, c, oy, ox] = sum_{i < fh, j < fw} f[i, j] * xp(oy * downy + i, ox * downx + j)
    xp(u, v) = x[n, c, (u - pady0) / upy, (v - padx0) / upx]   when both divisions are exact and the
               quotients lie in [0, H) x [0, W); 0 otherwise.

Accumulation is in float32 (float64 for float64 tensors); the result is stored in out's dtype.
Taps that fall outside x are masked loads (never ``0 * x``), so NaN/Inf in x reach exactly the
outputs whose taps touch them.

Kernels
-------
* ``upfirdn2d_nchw_kernel``  fast path, W-contiguous x and out (NCHW and any N/C/H strides).
* ``upfirdn2d_nhwc_kernel``  fast path, C-contiguous x and out (channels_last).
* ``upfirdn2d_general_kernel``  any strides, any up/down/filter size (runtime loops); the fallback.

The fast paths take (up, down) per axis in {(1, 1), (2, 1), (4, 1), (1, 2), (1, 4)} and filters of at
most ``MAX_FAST_TAPS`` taps per axis, all as constexprs, so every tap loop is unrolled.

Polyphase formulation (fast paths).  Per axis, with constexpr U (up) and D (down), one of them 1:
a program owns an output tile whose origin o0 satisfies ``o0 * D == pad (mod U)`` (the launcher
shifts the tile grid by ``shift = -pad mod U``; outputs at negative positions are masked).  Output
``o = o0 + U * a + q`` (a the lane, q the constexpr phase) then reads input
``i0 + a * D + (q + t) // U`` through tap t, and only the taps ``t == -q (mod U)`` are ever valid,
where ``i0 = (o0 * D - pad) / U`` is exact.  So each phase is a dense [S_H, S_W] sub-tile with a
constexpr list of valid taps: no zero taps are multiplied, no per-element divisibility tests.  In the
NCHW kernel the U_x phases of one output row are interleaved back in registers (tl.join + reshape) so
stores stay contiguous along W; in the NHWC kernel every phase stores whole channel vectors.  All
phases of a tile (NCHW) or of a row phase (NHWC) are computed before any is stored, so the loads that
neighbouring phases share can be merged by the compiler.

Interior and border tiles.  A program first tests (one scalar test) whether its whole input
footprint and output tile lie inside the tensors.  Interior tiles run the taps fully unrolled with no
masks at all; border tiles run them as loops with masked loads and stores (fewer registers; rare).

Tiles (``nchw_config`` / ``nhwc_config``; 4 warps): NCHW, a [SH, SW] sub-tile per phase with SW = 64
lanes along W and up to 32 outputs per thread, fewer when the filter has many valid taps (about 128
unrolled tap loads per thread at most) -- e.g. up 2 / down 2 / 3x3 blur: 32 x 128 / 16 x 64 / 16 x 64
outputs.  NHWC, 128 (16-bit) or 32 (fp32) channels times 8..32 pixels per phase.  Every
specialisation the AOT tests name compiles for sm_90 without spills.

Grids are one-dimensional: ``program_id(0)`` enumerates (plane, tile_y, tile_x) with x fastest (so
neighbouring tiles -- and their halos -- run together) and the launcher splits a grid of more than
2**31 - 1 programs into several launches (``pid_off``).  Image and plane base offsets are always
64-bit; offsets inside a plane are 32-bit unless ``INT64`` (the launcher's bound says they may not
fit).
"""
import contextlib

import torch
import triton
import triton.language as tl

MAX_FAST_TAPS = 12
FAST_MODES = ((1, 1), (2, 1), (4, 1), (1, 2), (1, 4))  # (up, down) per axis
_MAX_GRID = 2 ** 31 - 1
_I32_LIMIT = 2 ** 31 - 1


# --------------------------------------------------------------------------------------------
# NCHW fast path
# --------------------------------------------------------------------------------------------

@triton.jit
def _nchw_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b,
                QY: tl.constexpr, QX: tl.constexpr, FH: tl.constexpr, FW: tl.constexpr,
                UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
                CDT: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, INT64: tl.constexpr,
                MASKED: tl.constexpr):
    """One output phase (QY, QX): a dense [SH, SW] sub-tile, its valid taps only.  Interior tiles
    unroll the taps without masks; border tiles (MASKED) run them as loops -- rare, and the
    masked, unrolled form would need far more registers."""
    acc = tl.zeros([SH, SW], dtype=CDT)
    if MASKED:
        for i in range((UPY - QY) % UPY, FH, UPY):
            iy = iy0 + a * DOWNY + (QY + i) // UPY
            row_ok = (iy >= 0) & (iy < H)
            if INT64:
                row_ptr = x_base + iy.to(tl.int64) * sxh
            else:
                row_ptr = x_base + iy * sxh
            for j in range((UPX - QX) % UPX, FW, UPX):
                ix = ix0 + b * DOWNX + (QX + j) // UPX
                v = tl.load(row_ptr + ix, mask=row_ok & ((ix >= 0) & (ix < W)), other=0.0)
                acc += tl.load(filt + (i * FW + j)).to(CDT) * v.to(CDT)
    else:
        for i in tl.static_range((UPY - QY) % UPY, FH, UPY):
            iy = iy0 + a * DOWNY + (QY + i) // UPY            # [SH, 1]
            if INT64:
                row_ptr = x_base + iy.to(tl.int64) * sxh
            else:
                row_ptr = x_base + iy * sxh
            for j in tl.static_range((UPX - QX) % UPX, FW, UPX):
                ix = ix0 + b * DOWNX + (QX + j) // UPX        # [1, SW]
                v = tl.load(row_ptr + ix)
                acc += tl.load(filt + (i * FW + j)).to(CDT) * v.to(CDT)
    return acc


@triton.jit
def _nchw_row_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b,
                    QY: tl.constexpr, FH: tl.constexpr, FW: tl.constexpr,
                    UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
                    CDT: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, INT64: tl.constexpr,
                    MASKED: tl.constexpr):
    """Output rows of phase QY: [SH, SW * UPX], the UPX column phases interleaved in registers."""
    r0 = _nchw_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, QY, 0, FH, FW,
                     UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
    if UPX == 1:
        res = r0
    elif UPX == 2:
        r1 = _nchw_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, QY, 1, FH, FW,
                         UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
        res = tl.reshape(tl.join(r0, r1), [SH, SW * UPX])
    else:
        r1 = _nchw_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, QY, 1, FH, FW,
                         UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
        r2 = _nchw_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, QY, 2, FH, FW,
                         UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
        r3 = _nchw_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, QY, 3, FH, FW,
                         UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
        # join(join(r0, r2), join(r1, r3))[..., k, l] = r_{2k + l}
        res = tl.reshape(tl.join(tl.join(r0, r2), tl.join(r1, r3)), [SH, SW * UPX])
    return res


@triton.jit
def _nchw_store(o_base, res, oy0, ox, a, OH, OW, soh,
                QY: tl.constexpr, UPY: tl.constexpr, INT64: tl.constexpr, MASKED: tl.constexpr):
    oy = oy0 + a * UPY + QY
    if INT64:
        ptrs = o_base + oy.to(tl.int64) * soh + ox
    else:
        ptrs = o_base + oy * soh + ox
    if MASKED:
        tl.store(ptrs, res.to(o_base.dtype.element_ty), mask=((oy >= 0) & (oy < OH)) & ((ox >= 0) & (ox < OW)))
    else:
        tl.store(ptrs, res.to(o_base.dtype.element_ty))


@triton.jit
def _nchw_tile(o_base, x_base, filt, iy0, ix0, oy0, ox0, H, W, OH, OW, sxh, soh,
               FH: tl.constexpr, FW: tl.constexpr,
               UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
               CDT: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, INT64: tl.constexpr,
               MASKED: tl.constexpr):
    # Every phase is computed before anything is stored, so the compiler may merge the loads that
    # several phases share (a store in between could alias them).
    a = tl.arange(0, SH)[:, None]
    b = tl.arange(0, SW)[None, :]
    ox = ox0 + tl.arange(0, SW * UPX)[None, :]
    r0 = _nchw_row_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, 0, FH, FW,
                         UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
    if UPY >= 2:
        r1 = _nchw_row_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, 1, FH, FW,
                             UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
    if UPY == 4:
        r2 = _nchw_row_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, 2, FH, FW,
                             UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
        r3 = _nchw_row_phase(x_base, filt, iy0, ix0, H, W, sxh, a, b, 3, FH, FW,
                             UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, MASKED)
    _nchw_store(o_base, r0, oy0, ox, a, OH, OW, soh, 0, UPY, INT64, MASKED)
    if UPY >= 2:
        _nchw_store(o_base, r1, oy0, ox, a, OH, OW, soh, 1, UPY, INT64, MASKED)
    if UPY == 4:
        _nchw_store(o_base, r2, oy0, ox, a, OH, OW, soh, 2, UPY, INT64, MASKED)
        _nchw_store(o_base, r3, oy0, ox, a, OH, OW, soh, 3, UPY, INT64, MASKED)


@triton.jit
def upfirdn2d_nchw_kernel(
    out_ptr, x_ptr, filt,
    C, H, W, OH, OW,
    sxn, sxc, sxh, son, soc, soh,
    padx0, pady0, oy_shift, ox_shift,
    tiles_x, tiles_per_plane, pid_off,
    FH: tl.constexpr, FW: tl.constexpr,
    UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
    SH: tl.constexpr, SW: tl.constexpr,  # per-phase sub-tile; the output tile is [SH*UPY, SW*UPX]
    INT64: tl.constexpr,
):
    CDT: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    BH: tl.constexpr = SH * UPY
    BW: tl.constexpr = SW * UPX
    pid = tl.program_id(0) + pid_off
    plane = pid // tiles_per_plane
    t = pid - plane * tiles_per_plane
    ty = t // tiles_x
    tx = t - ty * tiles_x
    n = plane // C
    c = plane - n * C
    x_base = x_ptr + (n.to(tl.int64) * sxn + c.to(tl.int64) * sxc)
    o_base = out_ptr + (n.to(tl.int64) * son + c.to(tl.int64) * soc)
    oy0 = ty * BH - oy_shift
    ox0 = tx * BW - ox_shift
    iy0 = (oy0 * DOWNY - pady0) // UPY  # exact: oy0 * DOWNY == pady0 (mod UPY) by the shift
    ix0 = (ox0 * DOWNX - padx0) // UPX
    # input rows / cols the tile reads: iy0 + [0, (SH - 1) * DOWNY + (UPY - 1 + FH - 1) // UPY]
    interior = ((oy0 >= 0) & (oy0 + BH <= OH) & (ox0 >= 0) & (ox0 + BW <= OW)
                & (iy0 >= 0) & (iy0 + ((SH - 1) * DOWNY + (UPY + FH - 2) // UPY) < H)
                & (ix0 >= 0) & (ix0 + ((SW - 1) * DOWNX + (UPX + FW - 2) // UPX) < W))
    if interior:
        _nchw_tile(o_base, x_base, filt, iy0, ix0, oy0, ox0, H, W, OH, OW, sxh, soh,
                   FH, FW, UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, False)
    else:
        _nchw_tile(o_base, x_base, filt, iy0, ix0, oy0, ox0, H, W, OH, OW, sxh, soh,
                   FH, FW, UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, INT64, True)


# --------------------------------------------------------------------------------------------
# NHWC (channels_last) fast path
# --------------------------------------------------------------------------------------------

@triton.jit
def _nhwc_phase(x_base, filt, iy0, ix0, H, W, sxh, sxw, a, b, cc, c_ok,
                QY: tl.constexpr, QX: tl.constexpr, FH: tl.constexpr, FW: tl.constexpr,
                UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
                CDT: tl.constexpr, P: tl.constexpr, BC: tl.constexpr, INT64: tl.constexpr,
                MASKED: tl.constexpr):
    """One output phase (QY, QX): [P pixels, BC channels], its valid taps only (unrolled in
    interior tiles, loops with masks in border tiles, as in the NCHW kernel)."""
    acc = tl.zeros([P, BC], dtype=CDT)
    if MASKED:
        for i in range((UPY - QY) % UPY, FH, UPY):
            iy = iy0 + a * DOWNY + (QY + i) // UPY
            row_ok = ((iy >= 0) & (iy < H)) & c_ok
            if INT64:
                row_off = iy.to(tl.int64) * sxh
            else:
                row_off = iy * sxh
            for j in range((UPX - QX) % UPX, FW, UPX):
                ix = ix0 + b * DOWNX + (QX + j) // UPX
                if INT64:
                    ptrs = x_base + (row_off + ix.to(tl.int64) * sxw) + cc
                else:
                    ptrs = x_base + (row_off + ix * sxw) + cc
                v = tl.load(ptrs, mask=row_ok & ((ix >= 0) & (ix < W)), other=0.0)
                acc += tl.load(filt + (i * FW + j)).to(CDT) * v.to(CDT)
    else:
        for i in tl.static_range((UPY - QY) % UPY, FH, UPY):
            iy = iy0 + a * DOWNY + (QY + i) // UPY            # [P, 1]
            if INT64:
                row_off = iy.to(tl.int64) * sxh
            else:
                row_off = iy * sxh
            for j in tl.static_range((UPX - QX) % UPX, FW, UPX):
                ix = ix0 + b * DOWNX + (QX + j) // UPX        # [P, 1]
                if INT64:
                    ptrs = x_base + (row_off + ix.to(tl.int64) * sxw) + cc
                else:
                    ptrs = x_base + (row_off + ix * sxw) + cc
                v = tl.load(ptrs, mask=c_ok, other=0.0)
                acc += tl.load(filt + (i * FW + j)).to(CDT) * v.to(CDT)
    return acc


@triton.jit
def _nhwc_store(o_base, acc, oy0, ox0, a, b, cc, c_ok, OH, OW, soh, sow,
                QY: tl.constexpr, QX: tl.constexpr, UPX: tl.constexpr, UPY: tl.constexpr,
                INT64: tl.constexpr, MASKED: tl.constexpr):
    oy = oy0 + a * UPY + QY
    ox = ox0 + b * UPX + QX
    if INT64:
        ptrs = o_base + (oy.to(tl.int64) * soh + ox.to(tl.int64) * sow) + cc
    else:
        ptrs = o_base + (oy * soh + ox * sow) + cc
    if MASKED:
        m = (((oy >= 0) & (oy < OH)) & ((ox >= 0) & (ox < OW))) & c_ok
    else:
        m = c_ok
    tl.store(ptrs, acc.to(o_base.dtype.element_ty), mask=m)


@triton.jit
def _nhwc_row(o_base, x_base, filt, iy0, ix0, oy0, ox0, H, W, OH, OW, sxh, sxw, soh, sow,
              a, b, cc, c_ok, QY: tl.constexpr, FH: tl.constexpr, FW: tl.constexpr,
              UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
              CDT: tl.constexpr, P: tl.constexpr, BC: tl.constexpr, INT64: tl.constexpr,
              MASKED: tl.constexpr):
    # All UPX column phases of row phase QY are computed before they are stored, so the compiler
    # may merge the loads they share (a store in between could alias them).
    r0 = _nhwc_phase(x_base, filt, iy0, ix0, H, W, sxh, sxw, a, b, cc, c_ok, QY, 0, FH, FW,
                     UPX, UPY, DOWNX, DOWNY, CDT, P, BC, INT64, MASKED)
    if UPX >= 2:
        r1 = _nhwc_phase(x_base, filt, iy0, ix0, H, W, sxh, sxw, a, b, cc, c_ok, QY, 1, FH, FW,
                         UPX, UPY, DOWNX, DOWNY, CDT, P, BC, INT64, MASKED)
    if UPX == 4:
        r2 = _nhwc_phase(x_base, filt, iy0, ix0, H, W, sxh, sxw, a, b, cc, c_ok, QY, 2, FH, FW,
                         UPX, UPY, DOWNX, DOWNY, CDT, P, BC, INT64, MASKED)
        r3 = _nhwc_phase(x_base, filt, iy0, ix0, H, W, sxh, sxw, a, b, cc, c_ok, QY, 3, FH, FW,
                         UPX, UPY, DOWNX, DOWNY, CDT, P, BC, INT64, MASKED)
    _nhwc_store(o_base, r0, oy0, ox0, a, b, cc, c_ok, OH, OW, soh, sow, QY, 0, UPX, UPY, INT64, MASKED)
    if UPX >= 2:
        _nhwc_store(o_base, r1, oy0, ox0, a, b, cc, c_ok, OH, OW, soh, sow, QY, 1, UPX, UPY, INT64, MASKED)
    if UPX == 4:
        _nhwc_store(o_base, r2, oy0, ox0, a, b, cc, c_ok, OH, OW, soh, sow, QY, 2, UPX, UPY, INT64, MASKED)
        _nhwc_store(o_base, r3, oy0, ox0, a, b, cc, c_ok, OH, OW, soh, sow, QY, 3, UPX, UPY, INT64, MASKED)


@triton.jit
def _nhwc_tile(o_base, x_base, filt, iy0, ix0, oy0, ox0, H, W, OH, OW, sxh, sxw, soh, sow, cc, c_ok,
               FH: tl.constexpr, FW: tl.constexpr,
               UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
               CDT: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, BC: tl.constexpr,
               INT64: tl.constexpr, MASKED: tl.constexpr):
    P: tl.constexpr = SH * SW
    p = tl.arange(0, P)[:, None]
    a = p // SW
    b = p % SW
    for qy in tl.static_range(UPY):
        _nhwc_row(o_base, x_base, filt, iy0, ix0, oy0, ox0, H, W, OH, OW, sxh, sxw, soh, sow,
                  a, b, cc, c_ok, qy, FH, FW, UPX, UPY, DOWNX, DOWNY, CDT, P, BC, INT64, MASKED)


@triton.jit
def upfirdn2d_nhwc_kernel(
    out_ptr, x_ptr, filt,
    C, H, W, OH, OW,
    sxn, sxh, sxw, son, soh, sow,
    padx0, pady0, oy_shift, ox_shift,
    c_blocks, tiles_x, tiles_y, pid_off,
    FH: tl.constexpr, FW: tl.constexpr,
    UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
    SH: tl.constexpr, SW: tl.constexpr,  # per-phase pixel sub-tile; output tile [SH*UPY, SW*UPX]
    BC: tl.constexpr,                    # channels per program (the contiguous axis)
    INT64: tl.constexpr,
):
    CDT: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    BH: tl.constexpr = SH * UPY
    BW: tl.constexpr = SW * UPX
    pid = tl.program_id(0) + pid_off
    # channel block fastest, then tile x, tile y, image
    cb = pid % c_blocks
    t = pid // c_blocks
    tx = t % tiles_x
    t = t // tiles_x
    ty = t % tiles_y
    n = t // tiles_y
    x_base = x_ptr + n.to(tl.int64) * sxn
    o_base = out_ptr + n.to(tl.int64) * son
    oy0 = ty * BH - oy_shift
    ox0 = tx * BW - ox_shift
    iy0 = (oy0 * DOWNY - pady0) // UPY
    ix0 = (ox0 * DOWNX - padx0) // UPX
    cc = cb * BC + tl.arange(0, BC)[None, :]
    c_ok = cc < C
    interior = ((oy0 >= 0) & (oy0 + BH <= OH) & (ox0 >= 0) & (ox0 + BW <= OW)
                & (iy0 >= 0) & (iy0 + ((SH - 1) * DOWNY + (UPY + FH - 2) // UPY) < H)
                & (ix0 >= 0) & (ix0 + ((SW - 1) * DOWNX + (UPX + FW - 2) // UPX) < W))
    if interior:
        _nhwc_tile(o_base, x_base, filt, iy0, ix0, oy0, ox0, H, W, OH, OW, sxh, sxw, soh, sow,
                   cc, c_ok, FH, FW, UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, BC, INT64, False)
    else:
        _nhwc_tile(o_base, x_base, filt, iy0, ix0, oy0, ox0, H, W, OH, OW, sxh, sxw, soh, sow,
                   cc, c_ok, FH, FW, UPX, UPY, DOWNX, DOWNY, CDT, SH, SW, BC, INT64, True)


# --------------------------------------------------------------------------------------------
# general path
# --------------------------------------------------------------------------------------------

@triton.jit
def upfirdn2d_general_kernel(
    out_ptr, x_ptr, filt,
    total, C, H, W, OH, OW,
    sxn, sxc, sxh, sxw, son, soc, soh, sow,
    fh, fw, upx, upy, downx, downy, padx0, pady0, pid_off,
    OUT_CL: tl.constexpr,  # enumerate outputs channels-fastest (channels_last out) or x-fastest
    INT64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Any strides, any up/down >= 1, any filter size; one output element per lane, runtime tap
    loops with per-element divisibility and range tests."""
    CDT: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    pid = tl.program_id(0) + pid_off
    if INT64:
        idx = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    else:
        idx = pid * BLOCK + tl.arange(0, BLOCK)
    valid = idx < total
    if OUT_CL:
        c = idx % C
        t = idx // C
        ox = t % OW
        t = t // OW
        oy = t % OH
        n = t // OH
    else:
        ox = idx % OW
        t = idx // OW
        oy = t % OH
        t = t // OH
        c = t % C
        n = t // C
    if INT64:
        x_nc = n * sxn + c * sxc
    else:
        x_nc = n.to(tl.int64) * sxn + c.to(tl.int64) * sxc
    acc = tl.zeros([BLOCK], dtype=CDT)
    for i in range(fh):
        u = oy * downy + (i - pady0)
        uu = tl.where(u >= 0, u, 0)
        iy = uu // upy
        row_ok = valid & (u >= 0) & (iy * upy == uu) & (iy < H)
        for j in range(fw):
            v = ox * downx + (j - padx0)
            vv = tl.where(v >= 0, v, 0)
            ix = vv // upx
            m = row_ok & (v >= 0) & (ix * upx == vv) & (ix < W)
            xv = tl.load(x_ptr + (x_nc + iy * sxh + ix * sxw), mask=m, other=0.0)
            acc += tl.load(filt + (i * fw + j)).to(CDT) * xv.to(CDT)
    if INT64:
        o_off = n * son + c * soc + oy * soh + ox * sow
    else:
        o_off = n.to(tl.int64) * son + c.to(tl.int64) * soc + (oy * soh + ox * sow)
    tl.store(out_ptr + o_off, acc.to(out_ptr.dtype.element_ty), mask=valid)


# --------------------------------------------------------------------------------------------
# launch configuration
# --------------------------------------------------------------------------------------------

def _pow2_at_least(v: int) -> int:
    return 1 << max(0, int(v) - 1).bit_length()


def _elems_per_thread(upx, upy, fh, fw, cap):
    """Outputs per thread: at most ``cap`` and about 128 unrolled tap loads per thread (beyond
    which they start to spill)."""
    taps = -(-fh // upy) * -(-fw // upx)  # valid taps per output (polyphase)
    e = 1
    while e * 2 <= cap and e * 2 * taps <= 128:
        e *= 2
    return e


def nchw_config(upx, upy, downx, downy, fh, fw, OH, OW, element_size, int64=False):
    """(SH, SW, num_warps) for the NCHW kernel: per-phase sub-tile [SH, SW], output tile
    [SH * upy, SW * upx], 128 threads, up to 32 outputs per thread (16 for fp64); 64 lanes along W
    (fewer for narrow images).  The 64-bit offset variant takes half the outputs per thread."""
    warps = 4
    cap = (32 if element_size <= 4 else 16) // (2 if int64 else 1)
    outs = 32 * warps * _elems_per_thread(upx, upy, fh, fw, cap)
    sw = min(64, max(16, _pow2_at_least(-(-OW // upx))))
    sh = max(1, min(outs // (sw * upx * upy), _pow2_at_least(-(-OH // upy))))
    return sh, sw, warps


def nhwc_config(upx, upy, downx, downy, fh, fw, C, OH, OW, element_size, int64=False):
    """(SH, SW, BC, num_warps) for the channels_last kernel: BC channels (at most 128 of a 16-bit
    type, 32 of fp32, 16 of fp64) times SH x SW pixels per phase, 128 threads, up to 64 outputs per
    thread (32 for the 64-bit offset variant, 16 in fp64), and at least 16 bytes per thread and
    phase unless the filter is large, so stores stay 16-byte vectors.  (BC = 64 fp32 spills at sm_90 for small
    filters.)"""
    warps = 4
    bc = min(_pow2_at_least(C), 128 if element_size <= 2 else 128 // element_size)
    # fp64 with 64-bit offsets: half again (32 spills one register with triton 3.6's ptxas)
    cap = (16 if element_size == 8 else 32) if int64 else 64
    outs = 32 * warps * _elems_per_thread(upx, upy, fh, fw, cap)
    pix = max(1, outs // (bc * upx * upy))
    vec = max(1, 16 // element_size)  # elements in 16 bytes
    if vec * -(-fh // upy) * -(-fw // upx) <= 128:
        pix = max(pix, 32 * warps * vec // bc)
    sw = min(pix, 8, _pow2_at_least(-(-OW // upx)))
    sh = max(1, min(pix // sw, _pow2_at_least(-(-OH // upy))))
    return sh, sw, bc, warps


GENERAL_BLOCK, GENERAL_WARPS = 256, 4
# The 64-bit offset variant runs one output per thread: with two, 64-bit index math stays live
# across the 64-bit divisions (SASS subroutine calls) and triton 3.6's ptxas spills for fp64.
GENERAL_BLOCK_INT64 = 128


# --------------------------------------------------------------------------------------------
# host launcher
# --------------------------------------------------------------------------------------------

def _is_fast(upx, upy, downx, downy, fh, fw):
    return ((upx, downx) in FAST_MODES and (upy, downy) in FAST_MODES
            and fh <= MAX_FAST_TAPS and fw <= MAX_FAST_TAPS)


def _stride1(t, dim):
    return t.shape[dim] <= 1 or t.stride(dim) == 1


def _span(t, dims, lo_hi):
    """An upper bound of |offset| over index ranges ``lo_hi`` (pairs, may extend past the tensor)
    along ``dims`` of ``t``."""
    return sum(abs(t.stride(d)) * max(abs(lo), abs(hi)) for d, (lo, hi) in zip(dims, lo_hi))


def _launch_1d(kernel, programs, args, **meta):
    off = 0
    while off < programs:
        cnt = min(_MAX_GRID, programs - off)
        kernel[(cnt,)](*args, off, **meta)
        off += cnt


def upfirdn2d_triton(out, x, f, upx, upy, downx, downy, padx0, pady0):
    """Fill ``out`` [N, C, OH, OW] with upfirdn2d(x) per the module docstring's contract."""
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    fh, fw = f.shape
    assert out.shape[0] == N and out.shape[1] == C, (out.shape, x.shape)
    assert out.dtype == x.dtype and f.is_contiguous(), (out.dtype, x.dtype)
    assert min(upx, upy, downx, downy) >= 1
    if out.numel() == 0:
        return
    with torch.cuda.device(out.device) if out.is_cuda else contextlib.nullcontext():
        _dispatch(out, x, f, upx, upy, downx, downy, padx0, pady0)


def _dispatch(out, x, f, upx, upy, downx, downy, padx0, pady0):
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    fh, fw = f.shape
    upx, upy, downx, downy, padx0, pady0 = (int(v) for v in (upx, upy, downx, downy, padx0, pady0))
    fast = _is_fast(upx, upy, downx, downy, fh, fw) and fh >= 1 and fw >= 1
    esize = x.element_size()
    # tile-grid shifts that align each tile's origin with the input phase (see docstring)
    oy_shift, ox_shift = (-pady0) % upy, (-padx0) % upx

    def in_range(o_lo, o_hi, down, pad, up, taps):
        # input index range touched (masked or not) by outputs o_lo..o_hi
        return (o_lo * down - pad) // up - 1, (o_hi * down + taps - pad) // up + 1

    if fast and _stride1(x, 3) and _stride1(out, 3):
        for int64 in (False, True):  # the 64-bit variant gets its own (smaller) tiles
            sh, sw, warps = nchw_config(upx, upy, downx, downy, fh, fw, OH, OW, esize, int64=int64)
            bh, bw = sh * upy, sw * upx
            ty_n, tx_n = -(-(OH + oy_shift) // bh), -(-(OW + ox_shift) // bw)
            iy = in_range(-oy_shift, ty_n * bh, downy, pady0, upy, fh)
            ix = in_range(-ox_shift, tx_n * bw, downx, padx0, upx, fw)
            big = max(_span(x, (2,), (iy,)) + max(abs(ix[0]), abs(ix[1])),
                      _span(out, (2,), ((-bh, ty_n * bh),)) + tx_n * bw,
                      (ty_n * bh + bw * tx_n) * max(downx, downy) + abs(padx0) + abs(pady0))
            if int64 or big < _I32_LIMIT:
                break
        programs = N * C * ty_n * tx_n
        _launch_1d(upfirdn2d_nchw_kernel, programs,
                   (out, x, f, C, H, W, OH, OW,
                    x.stride(0), x.stride(1), x.stride(2), out.stride(0), out.stride(1), out.stride(2),
                    padx0, pady0, oy_shift, ox_shift, tx_n, ty_n * tx_n),
                   FH=fh, FW=fw, UPX=upx, UPY=upy, DOWNX=downx, DOWNY=downy, SH=sh, SW=sw,
                   INT64=int64, num_warps=warps)
    elif fast and _stride1(x, 1) and _stride1(out, 1):
        for int64 in (False, True):
            sh, sw, bc, warps = nhwc_config(upx, upy, downx, downy, fh, fw, C, OH, OW, esize,
                                            int64=int64)
            bh, bw = sh * upy, sw * upx
            ty_n, tx_n = -(-(OH + oy_shift) // bh), -(-(OW + ox_shift) // bw)
            cb_n = -(-C // bc)
            iy = in_range(-oy_shift, ty_n * bh, downy, pady0, upy, fh)
            ix = in_range(-ox_shift, tx_n * bw, downx, padx0, upx, fw)
            big = max(_span(x, (2, 3), (iy, ix)) + cb_n * bc,
                      _span(out, (2, 3), ((-bh, ty_n * bh), (-bw, tx_n * bw))) + cb_n * bc,
                      (ty_n * bh + bw * tx_n) * max(downx, downy) + abs(padx0) + abs(pady0))
            if int64 or big < _I32_LIMIT:
                break
        programs = N * ty_n * tx_n * cb_n
        _launch_1d(upfirdn2d_nhwc_kernel, programs,
                   (out, x, f, C, H, W, OH, OW,
                    x.stride(0), x.stride(2), x.stride(3), out.stride(0), out.stride(2), out.stride(3),
                    padx0, pady0, oy_shift, ox_shift, cb_n, tx_n, ty_n),
                   FH=fh, FW=fw, UPX=upx, UPY=upy, DOWNX=downx, DOWNY=downy, SH=sh, SW=sw, BC=bc,
                   INT64=int64, num_warps=warps)
    else:
        total = out.numel()
        out_cl = (not _stride1(out, 3)) and _stride1(out, 1)
        iy = in_range(0, OH, downy, pady0, upy, fh)
        ix = in_range(0, OW, downx, padx0, upx, fw)
        big = max(total + GENERAL_BLOCK, _span(x, (2, 3), (iy, ix)),
                  _span(out, (2, 3), ((0, OH), (0, OW))),
                  max(abs(v) for v in (*iy, *ix)) * max(upx, upy) + max(downx, downy) * max(OH, OW))
        int64 = big >= _I32_LIMIT
        block = GENERAL_BLOCK_INT64 if int64 else GENERAL_BLOCK
        programs = -(-total // block)
        _launch_1d(upfirdn2d_general_kernel, programs,
                   (out, x, f, total, C, H, W, OH, OW,
                    x.stride(0), x.stride(1), x.stride(2), x.stride(3),
                    out.stride(0), out.stride(1), out.stride(2), out.stride(3),
                    fh, fw, upx, upy, downx, downy, padx0, pady0),
                   OUT_CL=out_cl, INT64=int64, BLOCK=block, num_warps=GENERAL_WARPS)
