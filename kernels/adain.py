"""Triton kernels for AdaIN: per-(sample, channel) instance normalisation + affine, and its fused
backward.

Compute only: argument checking, layouts and autograd live in ``fastgan/ops/adain.py``; it calls
:func:`adain_forward_triton` and :func:`adain_backward_triton`.

Contract (shared with csrc/adain.cu).  x, y, dy, dx are [N, C, H, W] with one of two dense layouts:
NCHW (each plane of M = H * W pixels contiguous) or channels_last (C contiguous).  gamma, beta,
dgamma, dbeta are contiguous [N, C] (x's dtype or float32); mean and rstd are contiguous [N, C] in
the compute type (float32; float64 for float64 x)::

    mean = sum(x) / M       var = sum((x - mean)^2) / M       rstd = 1 / sqrt(var + eps)
    y    = (x - mean) * (rstd * gamma) + beta
    sdy  = sum(dy)          sdyx = sum(dy * (x - mean))                       (per plane)
    dx   = k * dy - k * sdy / M - (x - mean) * k * rstd^2 * sdyx / M          k = gamma * rstd
    dgamma = rstd * sdyx    dbeta = sdy

Tiles.  A program owns BP planes and works on [BP, BS] tiles: BP planes x BS contiguous pixels
(NCHW), or BP contiguous channels of one sample x BS pixels (channels_last).  Reductions run along
the pixel axis.

Statistics accuracy.  A tile that holds a whole plane (ONE_TILE) computes an exact two-pass mean /
variance from registers.  Otherwise every lane of the tile keeps its own Welford (count, mean, M2)
over the tiles it sees, and the lanes are merged at the end with Chan's parallel formula; segments
of a plane that were reduced by different programs (split planes) are merged the same way by
``adain_combine_kernel``.  Nothing forms E[x^2] - E[x]^2, so inputs with |mean| >> std (e.g. 1000 +
randn) keep full float32 accuracy.

Modes (``MODE``) of both kernels:
  0  whole planes per program: statistics (or the two gradient sums), then the elementwise pass.  With
     ONE_TILE the plane stays in registers (one read); otherwise the second loop re-reads the plane,
     which the program has just streamed through L2, last tile first (see "Second reads" below).
  1  a segment (pid 1) of each plane: write partial results to ``part`` ([P, splits, 2]).
  2  a segment of each plane: the elementwise pass with statistics / sums read from memory (after
     ``adain_combine_kernel``); the programs of segment 0 also write dgamma / dbeta.  Program ids
     are reversed in both grid dimensions (and each program walks its tiles backwards), so the
     segments that mode 1 read last are re-read first.
Mode 0 is used when there are enough plane blocks to fill the GPU, modes 1 -> combine -> 2 when a
few large planes must be split across programs.

One tile.  A plane fits one tile when the tile holds at most MAX_ONE_TILE compute values of 32
bits: 16384 elements for fp16 / bf16 / fp32 x (e.g. a 128^2 plane in NCHW, or 1024 pixels x 16
channels in channels_last), 8192 for float64, and 8192 too where the tile rows are not 16-element
aligned (M % 16 for NCHW, C % 16 for channels_last; see ``max_one_tile``).  Tiles of 16384
values run with 16 warps (32 values per thread).

Second reads.  When a plane does not fit a tile, x (and dy) is read twice, and the second read is
served by L2 (50 MB on an H100) only for data still resident there.  L2 keeps roughly the most
recently touched lines, i.e. the END of what the first pass streamed, so the elementwise pass
starts there and walks backwards: the data re-read first is the data read last (shortest reuse
distance), and whatever was evicted is reached last.  Walking forwards would start with the
data read longest ago -- the first to be evicted -- and, by re-reading it, evict the tail too.
"""
import contextlib
import functools

import torch
import triton
import triton.language as tl

# Elements per tile of the looping modes; the largest whole-plane tile in 32-bit compute values
# (float64 planes, computed in float64, get half as many elements); the largest tile of several
# small channels_last planes; and the minimum number of programs a launch should have before planes
# are split (per SM).
TILE = 4096
MAX_ONE_TILE = 16384
MAX_PACKED_TILE = 8192
PROGRAMS_PER_SM = 4
_INT64_THRESHOLD = 2 ** 31
_MAX_GRID1 = 65535


@triton.jit
def _planes(pid0, N, C, M, n_cblocks, CL: tl.constexpr, INT64: tl.constexpr, BP: tl.constexpr):
    """(plane index into [N, C] arrays, plane mask, element offset of pixel 0) for BP planes."""
    if CL:
        n = pid0 // n_cblocks
        c = (pid0 % n_cblocks) * BP + tl.arange(0, BP)
        pmask = c < C
        plane = n * C + c
        if INT64:
            base = n.to(tl.int64) * M * C + c
        else:
            base = n * M * C + c
    else:
        plane = pid0 * BP + tl.arange(0, BP)
        pmask = plane < N * C
        if INT64:
            base = plane.to(tl.int64) * M
        else:
            base = plane * M
    return plane, pmask, base


@triton.jit
def _pids(MODE: tl.constexpr):
    """(plane block, segment) of this program.  Mode 2 re-reads what mode 1 streamed: CUDA starts
    blocks in order of blockIdx.x fastest, then y, so mode 1's last programs held the last plane
    blocks' last segments -- the data most likely still in L2.  Reversing both ids makes mode 2's
    first programs re-read exactly those (shortest reuse distance), leaving what L2 has likely
    evicted for last."""
    pid0 = tl.program_id(0)
    pid1 = tl.program_id(1)
    if MODE == 2:
        pid0 = tl.num_programs(0) - 1 - pid0
        pid1 = tl.num_programs(1) - 1 - pid1
    return pid0, pid1


@triton.jit
def _offs(base, s, C, CL: tl.constexpr, INT64: tl.constexpr):
    """[BP, BS] element offsets of pixels s of the planes at ``base``."""
    if CL:
        if INT64:
            return base[:, None] + s.to(tl.int64)[None, :] * C
        return base[:, None] + s[None, :] * C
    return base[:, None] + s[None, :]


@triton.jit
def _welford_segment(x_ptr, base, pmask, s0, s1, C, CDT: tl.constexpr, CL: tl.constexpr,
                     INT64: tl.constexpr, BP: tl.constexpr, BS: tl.constexpr):
    """(mean - k, M2, k) per plane of the pixels [s0, s1): per-lane Welford, lanes merged by Chan.

    The values are shifted by the plane's first pixel k (the same for every segment of a plane):
    Welford's running means then have the magnitude of the spread, not of the mean, so their
    rounding does not leak into M2 when |mean| >> std (x - k is exact for x within a factor 2 of
    k), and split segments are merged in shifted form too."""
    ar = tl.arange(0, BS)
    k = tl.sum(tl.load(x_ptr + _offs(base, tl.arange(0, 1), C, CL, INT64), mask=pmask[:, None],
                       other=0.0).to(CDT), axis=1)
    mean_l = tl.zeros([BP, BS], dtype=CDT)
    m2_l = tl.zeros([BP, BS], dtype=CDT)
    nfull = (s1 - s0) // BS
    # full tiles: every lane has seen t + 1 values, one scalar reciprocal per tile
    for t in range(nfull):
        s = s0 + t * BS + ar
        v = tl.load(x_ptr + _offs(base, s, C, CL, INT64), mask=pmask[:, None], other=0.0).to(CDT) - k[:, None]
        inv = 1.0 / tl.cast(t + 1, CDT)
        d = v - mean_l
        mean_l += d * inv
        m2_l += d * (v - mean_l)
    # ragged tail: per-lane counts
    s = s0 + nfull * BS + ar
    smask = s < s1
    v = tl.load(x_ptr + _offs(base, s, C, CL, INT64), mask=pmask[:, None] & smask[None, :],
                other=0.0).to(CDT) - k[:, None]
    cnt = (nfull + smask.to(tl.int32)).to(CDT)
    d = tl.where(smask[None, :], v - mean_l, 0.0)
    mean_l += d / tl.maximum(cnt, 1.0)[None, :]
    m2_l += tl.where(smask[None, :], d * (v - mean_l), 0.0)
    n_tot = tl.cast(s1 - s0, CDT)
    mean_p = tl.sum(mean_l * cnt[None, :], axis=1) / n_tot
    dm = mean_l - mean_p[:, None]
    m2_p = tl.sum(m2_l + dm * dm * cnt[None, :], axis=1)
    return mean_p, m2_p, k


@triton.jit
def _rstd(m2, M, eps, CDT: tl.constexpr):
    v = m2 / M + eps
    if CDT == tl.float64:
        r = 1.0 / tl.sqrt(v)  # float64 sqrt is correctly rounded
    else:
        r = 1.0 / tl.sqrt_rn(v)  # tl.sqrt is the approximate sqrt for float32
    return r


@triton.jit
def adain_fwd_kernel(
    x_ptr, y_ptr, gamma_ptr, beta_ptr, mean_ptr, rstd_ptr, part_ptr, params_ptr,
    N, C, M, n_cblocks, tiles_per_split, eps,
    MODE: tl.constexpr, CL: tl.constexpr, ONE_TILE: tl.constexpr, INT64: tl.constexpr,
    BP: tl.constexpr, BS: tl.constexpr,
):
    pid0, pid1 = _pids(MODE)
    CDT: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    if CDT == tl.float64:
        eps = tl.load(params_ptr)  # Python floats reach a kernel as fp32: exact eps from memory
    plane, pmask, base = _planes(pid0, N, C, M, n_cblocks, CL, INT64, BP)
    ar = tl.arange(0, BS)
    Mf = tl.cast(M, CDT)

    if MODE == 0 and ONE_TILE:
        smask = ar < M
        mask = pmask[:, None] & smask[None, :]
        offs = _offs(base, ar, C, CL, INT64)
        v = tl.load(x_ptr + offs, mask=mask, other=0.0).to(CDT)
        # exact two-pass statistics, shifted by the first pixel k so that the sum keeps the
        # precision of the spread rather than of the mean
        k = tl.sum(tl.where(ar == 0, v, 0.0), axis=1)
        v = tl.where(mask, v - k[:, None], 0.0)
        mean = tl.sum(v, axis=1) / Mf
        d = tl.where(mask, v - mean[:, None], 0.0)
        rstd = _rstd(tl.sum(d * d, axis=1), Mf, eps, CDT)
        mean += k
        g = tl.load(gamma_ptr + plane, mask=pmask, other=0.0).to(CDT)
        b = tl.load(beta_ptr + plane, mask=pmask, other=0.0).to(CDT)
        y = d * (rstd * g)[:, None] + b[:, None]
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)
        tl.store(mean_ptr + plane, mean, mask=pmask)
        tl.store(rstd_ptr + plane, rstd, mask=pmask)
    else:
        s0 = pid1 * tiles_per_split * BS
        s1 = tl.minimum(M, s0 + tiles_per_split * BS)
        if MODE == 1:
            mean, m2, k = _welford_segment(x_ptr, base, pmask, s0, s1, C, CDT, CL, INT64, BP, BS)
            dst = (plane * tl.num_programs(1) + pid1) * 2
            tl.store(part_ptr + dst, mean, mask=pmask)
            tl.store(part_ptr + dst + 1, m2, mask=pmask)
            if pid1 == 0:  # the shift, for the combine kernel (which overwrites it with the mean)
                tl.store(mean_ptr + plane, k, mask=pmask)
        else:
            if MODE == 0:
                mean, m2, k = _welford_segment(x_ptr, base, pmask, s0, s1, C, CDT, CL, INT64, BP,
                                               BS)
                mean += k
                rstd = _rstd(m2, Mf, eps, CDT)
                tl.store(mean_ptr + plane, mean, mask=pmask)
                tl.store(rstd_ptr + plane, rstd, mask=pmask)
            else:
                mean = tl.load(mean_ptr + plane, mask=pmask, other=0.0)
                rstd = tl.load(rstd_ptr + plane, mask=pmask, other=0.0)
            g = tl.load(gamma_ptr + plane, mask=pmask, other=0.0).to(CDT)
            b = tl.load(beta_ptr + plane, mask=pmask, other=0.0).to(CDT)
            scale = rstd * g
            # last tile first: it is the likeliest in L2.  (Start hoisted out of the loop:
            # s0 + (n - 1 - t) * BS made ptxas spill the channels_last fp32 mode-2 backward.)
            s_last = s0 + (tl.cdiv(s1 - s0, BS) - 1) * BS
            for t in range(tl.cdiv(s1 - s0, BS)):
                s = s_last - t * BS + ar
                mask = pmask[:, None] & (s < s1)[None, :]
                offs = _offs(base, s, C, CL, INT64)
                v = tl.load(x_ptr + offs, mask=mask, other=0.0).to(CDT)
                y = (v - mean[:, None]) * scale[:, None] + b[:, None]
                tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _grad_sums_segment(dy_ptr, x_ptr, base, pmask, mean, s0, s1, C, CDT: tl.constexpr,
                       CL: tl.constexpr, INT64: tl.constexpr, BP: tl.constexpr, BS: tl.constexpr):
    """(sum(dy), sum(dy * (x - mean))) per plane over the pixels [s0, s1)."""
    ar = tl.arange(0, BS)
    a_dy = tl.zeros([BP, BS], dtype=CDT)
    a_dyx = tl.zeros([BP, BS], dtype=CDT)
    for t in range(tl.cdiv(s1 - s0, BS)):
        s = s0 + t * BS + ar
        mask = pmask[:, None] & (s < s1)[None, :]
        offs = _offs(base, s, C, CL, INT64)
        g = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(CDT)
        v = tl.load(x_ptr + offs, mask=mask, other=0.0).to(CDT)
        a_dy += g
        a_dyx += g * (v - mean[:, None])
    return tl.sum(a_dy, axis=1), tl.sum(a_dyx, axis=1)


@triton.jit
def adain_bwd_kernel(
    dy_ptr, x_ptr, dx_ptr, gamma_ptr, mean_ptr, rstd_ptr, sums_ptr, part_ptr,
    dgamma_ptr, dbeta_ptr,
    N, C, M, n_cblocks, tiles_per_split,
    MODE: tl.constexpr, CL: tl.constexpr, ONE_TILE: tl.constexpr, INT64: tl.constexpr,
    BP: tl.constexpr, BS: tl.constexpr,
):
    pid0, pid1 = _pids(MODE)
    CDT: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    plane, pmask, base = _planes(pid0, N, C, M, n_cblocks, CL, INT64, BP)
    ar = tl.arange(0, BS)
    Mf = tl.cast(M, CDT)
    mean = tl.load(mean_ptr + plane, mask=pmask, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=pmask, other=0.0)

    if MODE == 0 and ONE_TILE:
        mask = pmask[:, None] & (ar < M)[None, :]
        offs = _offs(base, ar, C, CL, INT64)
        g = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(CDT)
        xm = tl.load(x_ptr + offs, mask=mask, other=0.0).to(CDT) - mean[:, None]
        sdy = tl.sum(g, axis=1)
        sdyx = tl.sum(g * xm, axis=1)
        k = tl.load(gamma_ptr + plane, mask=pmask, other=0.0).to(CDT) * rstd
        c2 = -k * sdy / Mf
        c3 = -k * rstd * rstd * sdyx / Mf
        dx = k[:, None] * g + c2[:, None] + c3[:, None] * xm
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
        tl.store(dgamma_ptr + plane, (rstd * sdyx).to(dgamma_ptr.dtype.element_ty), mask=pmask)
        tl.store(dbeta_ptr + plane, sdy.to(dbeta_ptr.dtype.element_ty), mask=pmask)
    else:
        s0 = pid1 * tiles_per_split * BS
        s1 = tl.minimum(M, s0 + tiles_per_split * BS)
        if MODE == 1:
            sdy, sdyx = _grad_sums_segment(dy_ptr, x_ptr, base, pmask, mean, s0, s1, C, CDT, CL,
                                           INT64, BP, BS)
            dst = (plane * tl.num_programs(1) + pid1) * 2
            tl.store(part_ptr + dst, sdy, mask=pmask)
            tl.store(part_ptr + dst + 1, sdyx, mask=pmask)
        else:
            if MODE == 0:
                sdy, sdyx = _grad_sums_segment(dy_ptr, x_ptr, base, pmask, mean, s0, s1, C, CDT,
                                               CL, INT64, BP, BS)
            else:
                sdy = tl.load(sums_ptr + plane * 2, mask=pmask, other=0.0)
                sdyx = tl.load(sums_ptr + plane * 2 + 1, mask=pmask, other=0.0)
            if MODE == 0 or pid1 == 0:  # pid1: the segment index (remapped in mode 2)
                tl.store(dgamma_ptr + plane, (rstd * sdyx).to(dgamma_ptr.dtype.element_ty),
                         mask=pmask)
                tl.store(dbeta_ptr + plane, sdy.to(dbeta_ptr.dtype.element_ty), mask=pmask)
            k = tl.load(gamma_ptr + plane, mask=pmask, other=0.0).to(CDT) * rstd
            c2 = -k * sdy / Mf
            c3 = -k * rstd * rstd * sdyx / Mf
            s_last = s0 + (tl.cdiv(s1 - s0, BS) - 1) * BS  # last tile first, as in the forward
            for t in range(tl.cdiv(s1 - s0, BS)):
                s = s_last - t * BS + ar
                mask = pmask[:, None] & (s < s1)[None, :]
                offs = _offs(base, s, C, CL, INT64)
                g = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(CDT)
                xm = tl.load(x_ptr + offs, mask=mask, other=0.0).to(CDT) - mean[:, None]
                dx = k[:, None] * g + c2[:, None] + c3[:, None] * xm
                tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def adain_combine_kernel(part_ptr, out_a_ptr, out_b_ptr, params_ptr, P, M, seg_len, n_splits, eps,
                         MODE: tl.constexpr, BLOCK: tl.constexpr):
    """Merge the per-segment partials ``part`` [P, n_splits, 2] of mode 1.
    MODE 0 (statistics): Chan's merge of (mean - k, M2) -> out_a = mean, out_b = rstd (out_a
    holds the shift k on entry).
    MODE 1 (gradient sums): out_a[P, 2] = the sums over segments."""
    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pm = p < P
    CDT: tl.constexpr = part_ptr.dtype.element_ty
    if CDT == tl.float64:
        eps = tl.load(params_ptr)
    src = p * (n_splits * 2)
    if MODE == 0:
        n_a = tl.zeros([BLOCK], dtype=CDT)
        mean_a = tl.zeros([BLOCK], dtype=CDT)
        m2_a = tl.zeros([BLOCK], dtype=CDT)
        for k in range(n_splits):
            n_b = tl.cast(tl.minimum(seg_len, M - k * seg_len), CDT)
            mean_b = tl.load(part_ptr + src + 2 * k, mask=pm, other=0.0)
            m2_b = tl.load(part_ptr + src + 2 * k + 1, mask=pm, other=0.0)
            n = n_a + n_b
            delta = mean_b - mean_a
            mean_a += delta * (n_b / n)
            m2_a += m2_b + delta * delta * (n_a * n_b / n)
            n_a = n
        k = tl.load(out_a_ptr + p, mask=pm, other=0.0)
        tl.store(out_a_ptr + p, mean_a + k, mask=pm)
        tl.store(out_b_ptr + p, _rstd(m2_a, tl.cast(M, CDT), eps, CDT), mask=pm)
    else:
        s_a = tl.zeros([BLOCK], dtype=CDT)
        s_b = tl.zeros([BLOCK], dtype=CDT)
        for k in range(n_splits):
            s_a += tl.load(part_ptr + src + 2 * k, mask=pm, other=0.0)
            s_b += tl.load(part_ptr + src + 2 * k + 1, mask=pm, other=0.0)
        tl.store(out_a_ptr + p * 2, s_a, mask=pm)
        tl.store(out_a_ptr + p * 2 + 1, s_b, mask=pm)


# --------------------------------------------------------------------------------------------
# host side
# --------------------------------------------------------------------------------------------

COMBINE_BLOCK = 128


def _pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


@functools.lru_cache(maxsize=None)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def num_sms(device: torch.device) -> int:
    """SMs of a CUDA device; under the interpreter a small stand-in, so CPU tests split planes."""
    if device.type == "cuda":
        return _sm_count(device.index if device.index is not None else torch.cuda.current_device())
    return 2


def max_one_tile(esize: int, aligned: bool = True) -> int:
    """The most elements a whole-plane tile may hold for x of ``esize`` bytes: MAX_ONE_TILE 32-bit
    compute values (fp16 / bf16 / fp32 compute in float32), half as many float64 ones.

    ``aligned``: the tile rows start 16-element aligned (M % 16 == 0 for NCHW, C % 16 == 0 for
    channels_last), which Triton's launcher specialises on.  Then every thread's values move as
    16-byte vectors; otherwise each value needs its own 64-bit address, and a 16-warp tile of 16384
    values (at most 128 registers per thread) sits at the register limit and spills in the 64-bit
    offset variant, so unaligned planes keep the 8-warp limit of MAX_ONE_TILE // 2."""
    n = MAX_ONE_TILE * 4 // max(4, esize)
    return n if aligned else min(n, MAX_ONE_TILE // 2)


def plan(N: int, C: int, M: int, channels_last: bool, esize: int, sms: int) -> dict:
    """Launch plan shared by forward and backward: tile [BP, BS], whether a plane fits one tile,
    and how many segments (splits) each plane is cut into (1: mode 0, whole planes).

    A plane fits one tile when the smallest tile of whole planes -- one plane (NCHW), or the
    fewest channels that give 32-byte rows (channels_last) -- holds at most max_one_tile()
    elements; both layouts use the same limit, by element size and row alignment.  Several small
    planes share a tile of TILE (NCHW) or up to MAX_PACKED_TILE (channels_last) elements."""
    max_one = max_one_tile(esize, (C if channels_last else M) % 16 == 0)
    if channels_last:
        # at least 32 contiguous bytes per tile row (one DRAM sector), up to 128 bytes
        bp_min = min(_pow2(C), max(1, 32 // esize))
        ms = _pow2(M)
        if ms * bp_min <= max_one:
            bs = ms
            bp = max(bp_min, min(_pow2(C), 128 // esize, min(max_one, MAX_PACKED_TILE) // ms))
        else:
            bp = min(_pow2(C), max(1, 128 // esize))
            bs = max(1, TILE // bp)
        n_pblocks = N * triton.cdiv(C, bp)
    else:
        bs = _pow2(M) if M <= max_one else TILE
        bp = max(1, min(TILE // bs, _pow2(N * C)))
        n_pblocks = triton.cdiv(N * C, bp)
    one_tile = M <= bs
    ntiles = triton.cdiv(M, bs)
    splits = 1
    target = PROGRAMS_PER_SM * sms
    if not one_tile and n_pblocks < target:
        splits = min(ntiles, triton.cdiv(target, n_pblocks))
    tiles_per_split = triton.cdiv(ntiles, splits)
    splits = triton.cdiv(ntiles, tiles_per_split)
    if splits == 1:
        tiles_per_split = ntiles
    # 16 to 32 values per thread in a full tile; 16384-value tiles: 16 warps x 32 values
    warps = 16 if bp * bs >= 16384 else 8 if bp * bs >= 4096 else 4
    return dict(BP=bp, BS=bs, one_tile=one_tile, n_pblocks=n_pblocks,
                n_cblocks=triton.cdiv(C, bp) if channels_last else 1, ntiles=ntiles,
                splits=splits, tiles_per_split=tiles_per_split, num_warps=warps)


def _apply_split(p: dict):
    """(grid dim 1, tiles per program) of the mode-2 elementwise pass: one tile per program where
    the grid allows."""
    tps = triton.cdiv(p["ntiles"], _MAX_GRID1)
    return triton.cdiv(p["ntiles"], tps), tps


def _device_ctx(t):
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _params(t, eps):
    """float64 runs read eps from memory (a Python float reaches a kernel as fp32)."""
    if t.dtype == torch.float64:
        return torch.tensor([eps], dtype=torch.float64, device=t.device)
    return None


def _is_cl(x) -> bool:
    return not x.is_contiguous()


def _launch_plan(x, sms):
    """(N, C, M, plan, the constexpr / warp arguments shared by every launch) for x."""
    N, C, H, W = x.shape
    cl = _is_cl(x)
    p = plan(N, C, H * W, cl, x.element_size(), sms or num_sms(x.device))
    int64 = x.numel() >= _INT64_THRESHOLD - p["BP"] * p["BS"]
    common = dict(CL=cl, ONE_TILE=p["one_tile"], INT64=int64, BP=p["BP"], BS=p["BS"],
                  num_warps=p["num_warps"])
    return N, C, H * W, p, common


def adain_forward_triton(y, mean, rstd, x, gamma, beta, eps: float, sms: int | None = None):
    """Fill y (x's layout), mean and rstd ([N, C], compute type) for x NCHW- or channels_last-dense."""
    if x.numel() == 0:
        return
    N, C, M, p, common = _launch_plan(x, sms)
    params = _params(x, eps)
    dummy = mean
    with _device_ctx(x):
        if p["splits"] == 1:
            adain_fwd_kernel[(p["n_pblocks"], 1)](
                x, y, gamma, beta, mean, rstd, dummy, dummy if params is None else params,
                N, C, M, p["n_cblocks"], p["tiles_per_split"], float(eps), MODE=0, **common)
            return
        part = torch.empty((N * C, p["splits"], 2), dtype=mean.dtype, device=x.device)
        adain_fwd_kernel[(p["n_pblocks"], p["splits"])](
            x, y, gamma, beta, mean, rstd, part, dummy if params is None else params,
            N, C, M, p["n_cblocks"], p["tiles_per_split"], float(eps), MODE=1, **common)
        adain_combine_kernel[(triton.cdiv(N * C, COMBINE_BLOCK),)](
            part, mean, rstd, dummy if params is None else params, N * C, M,
            p["tiles_per_split"] * p["BS"], p["splits"], float(eps), MODE=0, BLOCK=COMBINE_BLOCK,
            num_warps=4)
        g1, tps = _apply_split(p)
        adain_fwd_kernel[(p["n_pblocks"], g1)](
            x, y, gamma, beta, mean, rstd, part, dummy if params is None else params,
            N, C, M, p["n_cblocks"], tps, float(eps), MODE=2, **common)


def adain_backward_triton(dx, dgamma, dbeta, dy, x, gamma, mean, rstd, sms: int | None = None):
    """Fill dx (x's layout; dy has the same strides as x), dgamma and dbeta ([N, C])."""
    if x.numel() == 0:
        return
    N, C, M, p, common = _launch_plan(x, sms)
    dummy = mean
    with _device_ctx(x):
        if p["splits"] == 1:
            adain_bwd_kernel[(p["n_pblocks"], 1)](
                dy, x, dx, gamma, mean, rstd, dummy, dummy, dgamma, dbeta,
                N, C, M, p["n_cblocks"], p["tiles_per_split"], MODE=0, **common)
            return
        part = torch.empty((N * C, p["splits"], 2), dtype=mean.dtype, device=x.device)
        sums = torch.empty((N * C, 2), dtype=mean.dtype, device=x.device)
        adain_bwd_kernel[(p["n_pblocks"], p["splits"])](
            dy, x, dx, gamma, mean, rstd, sums, part, dgamma, dbeta,
            N, C, M, p["n_cblocks"], p["tiles_per_split"], MODE=1, **common)
        adain_combine_kernel[(triton.cdiv(N * C, COMBINE_BLOCK),)](
            part, sums, sums, dummy, N * C, M, p["tiles_per_split"] * p["BS"], p["splits"], 0.0,
            MODE=1, BLOCK=COMBINE_BLOCK, num_warps=4)
        g1, tps = _apply_split(p)
        adain_bwd_kernel[(p["n_pblocks"], g1)](
            dy, x, dx, gamma, mean, rstd, sums, part, dgamma, dbeta,
            N, C, M, p["n_cblocks"], tps, MODE=2, **common)


__all__ = ["adain_forward_triton", "adain_backward_triton", "plan", "adain_fwd_kernel",
           "adain_bwd_kernel", "adain_combine_kernel", "TILE", "MAX_ONE_TILE", "max_one_tile"]
