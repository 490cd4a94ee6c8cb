"""The upfirdn2d Triton kernels compile ahead of time for sm_90 (no GPU needed) without register
spills, with the launcher's own tile choices, for the StyleGAN2 cases (up 2 / down 2 with a 4-tap
filter, a 3x3 blur), 12-tap filters, up / down 4, the 64-bit offset variants and the general kernel;
NCHW stores and channels_last loads and stores are 16-byte vectors."""
import pytest

from tests.kernels._aot import assert_no_spills, compile_for, global_accesses

pytestmark = pytest.mark.aot

from fastgan.kernels.upfirdn2d import (  # noqa: E402
    GENERAL_BLOCK, GENERAL_BLOCK_INT64, GENERAL_WARPS, nchw_config, nhwc_config,
    upfirdn2d_general_kernel, upfirdn2d_nchw_kernel, upfirdn2d_nhwc_kernel)

ESIZE = {"fp16": 2, "bf16": 2, "fp32": 4, "fp64": 8}
# a 1024 x 1024 image of 512 channels: sizes and strides divisible by 16, as the launcher's
# specialisation sees them; the tile-grid shifts and pid offset are 0 for StyleGAN's paddings
NCHW_SCALARS = dict(C="i32/16", H="i32/16", W="i32/16", OH="i32/16", OW="i32/16", sxn="i32/16",
                    sxc="i32/16", sxh="i32/16", son="i32/16", soc="i32/16", soh="i32/16",
                    padx0="i32", pady0="i32", oy_shift="i32/16", ox_shift="i32/16",
                    tiles_x="i32", tiles_per_plane="i32", pid_off="i32/16")
NHWC_SCALARS = dict(C="i32/16", H="i32/16", W="i32/16", OH="i32/16", OW="i32/16", sxn="i32/16",
                    sxh="i32/16", sxw="i32/16", son="i32/16", soh="i32/16", sow="i32/16",
                    padx0="i32", pady0="i32", oy_shift="i32/16", ox_shift="i32/16",
                    c_blocks="i32", tiles_x="i32", tiles_y="i32", pid_off="i32/16")
GENERAL_SCALARS = dict(total="i32", C="i32", H="i32", W="i32", OH="i32", OW="i32",
                       sxn="i32", sxc="i32", sxh="i32", sxw="i32", son="i32", soc="i32", soh="i32",
                       sow="i32", fh="i32", fw="i32", upx="i32", upy="i32", downx="i32",
                       downy="i32", padx0="i32", pady0="i32", pid_off="i32")

# (up, down, taps): the cases the issue names, plus up / down 4
CASES = [((2, 2), (1, 1), 4), ((1, 1), (2, 2), 4), ((1, 1), (1, 1), 3),
         ((2, 2), (1, 1), 12), ((1, 1), (2, 2), 12), ((1, 1), (1, 1), 12),
         ((4, 4), (1, 1), 4), ((1, 1), (4, 4), 4)]
IDS = [f"up{u[0]}x{u[1]}-down{d[0]}x{d[1]}-{t}tap" for u, d, t in CASES]


def _filt_type(dtype):
    return "*fp64" if dtype == "fp64" else "*fp32"


def _with_int64(scalars, names):
    return {k: ("i64" if k in names else v) for k, v in scalars.items()}


def compile_nchw(dtype, up, down, fh, fw, int64=False):
    sh, sw, warps = nchw_config(up[0], up[1], down[0], down[1], fh, fw, 1024, 1024, ESIZE[dtype],
                                int64=int64)
    scalars = dict(NCHW_SCALARS, filt=_filt_type(dtype))
    if int64:
        scalars = _with_int64(scalars, ("sxn", "son", "sxc", "soc"))
    const = dict(FH=fh, FW=fw, UPX=up[0], UPY=up[1], DOWNX=down[0], DOWNY=down[1], SH=sh, SW=sw,
                 INT64=int64)
    return compile_for(upfirdn2d_nchw_kernel, dtype, scalars, const, num_warps=warps)


def compile_nhwc(dtype, up, down, fh, fw, int64=False):
    sh, sw, bc, warps = nhwc_config(up[0], up[1], down[0], down[1], fh, fw, 512, 1024, 1024,
                                    ESIZE[dtype], int64=int64)
    scalars = dict(NHWC_SCALARS, filt=_filt_type(dtype))
    if int64:
        scalars = _with_int64(scalars, ("sxn", "son"))
    const = dict(FH=fh, FW=fw, UPX=up[0], UPY=up[1], DOWNX=down[0], DOWNY=down[1], SH=sh, SW=sw,
                 BC=bc, INT64=int64)
    return compile_for(upfirdn2d_nhwc_kernel, dtype, scalars, const, num_warps=warps)


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("up,down,taps", CASES, ids=IDS)
def test_nchw_fast_path(dtype, up, down, taps):
    k = compile_nchw(dtype, up, down, taps, taps)
    assert_no_spills(k)
    _, stores = global_accesses(k)
    if taps <= 4:
        # whole output rows: 16-byte stores (eight 16-bit or four fp32 values), the up phases
        # interleaved back in registers.  (12x12 = 144 unrolled taps leave room for only a
        # handful of outputs per thread.)
        assert stores and all(".v4" in s for s in stores), stores


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("up,down,taps", CASES, ids=IDS)
def test_nhwc_fast_path(dtype, up, down, taps):
    k = compile_nhwc(dtype, up, down, taps, taps)
    assert_no_spills(k)
    loads, stores = global_accesses(k)
    if taps <= 4:
        # channel vectors: 16-byte stores and x loads; the only scalar loads are the filter taps
        # (once per tap in the unrolled interior path, once in the border path's loop)
        assert stores and all(".v4" in s for s in stores), stores
        scalar = [ld for ld in loads if ".v" not in ld]
        assert any(".v4" in ld for ld in loads) and len(scalar) <= 2 * taps * taps, loads
        if dtype != "fp32":
            assert not any(ld.endswith(".b16") for ld in loads), loads


@pytest.mark.parametrize("up,down,fh,fw", [((2, 1), (1, 2), 4, 1), ((1, 4), (2, 1), 1, 6),
                                           ((4, 1), (1, 1), 12, 5), ((1, 2), (4, 1), 3, 8)])
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_mixed_modes_and_separable_shapes(up, down, fh, fw, dtype):
    assert_no_spills(compile_nchw(dtype, up, down, fh, fw))
    assert_no_spills(compile_nhwc(dtype, up, down, fh, fw))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32", "fp64"])
@pytest.mark.parametrize("up,down,taps", [CASES[0], CASES[1]], ids=IDS[:2])
def test_int64_variants_and_fp64(dtype, up, down, taps):
    assert_no_spills(compile_nchw(dtype, up, down, taps, taps, int64=True))
    assert_no_spills(compile_nhwc(dtype, up, down, taps, taps, int64=True))
    if dtype == "fp64":
        assert_no_spills(compile_nchw(dtype, up, down, taps, taps))
        assert_no_spills(compile_nhwc(dtype, up, down, taps, taps))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32", "fp64"])
@pytest.mark.parametrize("int64", [False, True])
@pytest.mark.parametrize("out_cl", [False, True])
def test_general_kernel(dtype, int64, out_cl):
    scalars = dict(GENERAL_SCALARS, filt=_filt_type(dtype))
    if int64:
        scalars = _with_int64(scalars, ("total", "sxn", "son"))
    const = dict(OUT_CL=out_cl, INT64=int64, BLOCK=GENERAL_BLOCK_INT64 if int64 else GENERAL_BLOCK)
    k = compile_for(upfirdn2d_general_kernel, dtype, scalars, const, num_warps=GENERAL_WARPS)
    assert_no_spills(k)
