"""The adain Triton kernels compile ahead of time for sm_90 (no GPU needed) without register spills,
in every mode the launcher uses, with its own tile choices for the StyleGAN1 shapes, for
fp16 / bf16 / fp32 (and fp64), both layouts and the 64-bit offset variants -- the 16384-element
whole-plane tiles (16 warps) and the unaligned planes that keep 8192-element tiles included; the
streaming accesses of the whole-plane (one tile) and looping paths are 16-byte vectors."""
import pytest

from tests.kernels._aot import assert_no_spills, compile_for, global_accesses

pytestmark = pytest.mark.aot

from fastgan.kernels.adain import (COMBINE_BLOCK, MAX_ONE_TILE, adain_bwd_kernel,  # noqa: E402
                                   adain_combine_kernel, adain_fwd_kernel, plan)

ESIZE = {"fp16": 2, "bf16": 2, "fp32": 4, "fp64": 8}
H100_SMS = 132
# sizes and strides as the launcher's specialisation sees a StyleGAN layer (C, M multiples of 16)
SCALARS = dict(N="i32", C="i32/16", M="i32/16", n_cblocks="i32", tiles_per_split="i32")

# (label, shape, channels_last): StyleGAN1 layers at batch 32 covering every plan
SHAPES = [
    ("512x4^2-nchw", (32, 512, 4, 4), False),         # 256 planes per program, one tile
    ("512x64^2-nchw", (32, 512, 64, 64), False),      # one plane per program, one tile
    ("64x64x128-nchw", (32, 64, 64, 128), False),     # one 8192-pixel plane per tile
    ("256x128^2-nchw", (32, 256, 128, 128), False),   # 16384-pixel tile, 16 warps (fp64: looped)
    ("32x1024^2-nchw", (1, 32, 1024, 1024), False),   # few planes: split (modes 1 + 2, combine)
    ("512x8^2-cl", (32, 512, 8, 8), True),            # channels_last, one tile
    ("512x64^2-cl", (32, 512, 64, 64), True),         # channels_last, split
    ("32x1024^2-cl", (32, 32, 1024, 1024), True),     # channels_last, split
    ("128x256^2-nchw", (32, 128, 256, 256), False),   # planes looped over tiles (mode 0)
    ("512x32^2-cl", (32, 512, 32, 32), True),         # channels_last one tile (16-bit: 16 x 1024)
    ("256x128^2-cl", (32, 256, 128, 128), True),      # channels_last 16384-pixel planes: split
]
BY_LABEL = {s[0]: s for s in SHAPES}


def _cdt(dtype):
    return "fp64" if dtype == "fp64" else "fp32"


def _compile(kernel, dtype, p, cl, mode, int64=False, scalars=SCALARS):
    const = dict(MODE=mode, CL=cl, ONE_TILE=p["one_tile"], INT64=int64, BP=p["BP"], BS=p["BS"])
    stats = _cdt(dtype)
    ptrs = dict(mean_ptr=stats, rstd_ptr=stats, part_ptr=stats, params_ptr=stats, sums_ptr=stats)
    scalars = dict(scalars)
    if kernel is adain_fwd_kernel:
        scalars["eps"] = "fp32"
    return compile_for(kernel, dtype, scalars, const, num_warps=p["num_warps"], ptr_dtypes=ptrs)


def _modes(p):
    return (0,) if p["splits"] == 1 else (1, 2)


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("label,shape,cl", SHAPES, ids=[s[0] for s in SHAPES])
def test_launcher_plans_compile_without_spills(dtype, label, shape, cl):
    n, c, h, w = shape
    p = plan(n, c, h * w, cl, ESIZE[dtype], H100_SMS)
    for kernel in (adain_fwd_kernel, adain_bwd_kernel):
        for mode in _modes(p):
            assert_no_spills(_compile(kernel, dtype, p, cl, mode))


def test_plans_cover_every_path():
    seen = set()
    for _, (n, c, h, w), cl in SHAPES:
        p = plan(n, c, h * w, cl, 2, H100_SMS)
        seen.add((cl, p["one_tile"], p["splits"] > 1))
    assert {(False, True, False), (False, False, False), (False, False, True), (True, True, False),
            (True, False, True)} <= seen
    # the 16384-element one-tile plans (16 warps) are among them, for 16-bit and fp32
    for label in ("256x128^2-nchw", "512x32^2-cl"):
        _, (n, c, h, w), cl = BY_LABEL[label]
        p = plan(n, c, h * w, cl, 2, H100_SMS)
        assert p["one_tile"] and p["BP"] * p["BS"] == 16384 and p["num_warps"] == 16, (label, p)


@pytest.mark.parametrize("cl", [False, True])
def test_16384_element_planes_fit_one_tile(cl):
    # a 128^2 plane (NCHW), or 1024 pixels x the 16 channels of a 32-byte fp16 row (channels_last),
    # is one 16384-element tile for 16-bit and fp32 x, with 16 warps; float64 keeps 8192 and loops
    assert MAX_ONE_TILE == 16384
    n, c, h, w = (32, 512, 32, 32) if cl else (32, 256, 128, 128)
    for esize in (2, 4):
        p = plan(n, c, h * w, cl, esize, H100_SMS)
        assert p["one_tile"] and p["splits"] == 1, p
        # fp32 channels_last rows are 8 channels (32 bytes): 8 x 1024
        assert p["BP"] * p["BS"] == (8192 if cl and esize == 4 else 16384), p
        assert p["num_warps"] == (16 if p["BP"] * p["BS"] == 16384 else 8)
    p = plan(n, c, h * w, cl, 8, H100_SMS)
    if cl:
        assert p["one_tile"] and p["BP"] * p["BS"] == 8192  # 8 x 1024 float64 values
    p = plan(32, 256, 128 * 128, False, 8, H100_SMS)  # a 128^2 float64 plane loops
    assert not p["one_tile"] and (p["BP"], p["BS"]) == (1, 4096)
    p = plan(32, 16, 2048, True, 4, H100_SMS)  # fp32 channels_last: 8 channels x 2048 pixels
    assert p["one_tile"] and (p["BP"], p["BS"], p["num_warps"]) == (8, 2048, 16)
    for esize in (2, 4):  # channels_last 128^2 planes (16+ channels per row) still split
        assert not plan(32, 256, 128 * 128, True, esize, H100_SMS)["one_tile"]


def test_unaligned_rows_keep_8192_element_tiles():
    # rows Triton cannot prove 16-element aligned (M % 16 NCHW, C % 16 channels_last) keep the
    # 8-warp limit of 8192 elements: 16384 values would each need their own 64-bit address
    for esize in (2, 4):
        assert not plan(32, 3, 16383, False, esize, H100_SMS)["one_tile"]
        assert plan(32, 3, 16384, False, esize, H100_SMS)["one_tile"]
        assert plan(32, 3, 8191, False, esize, H100_SMS)["BS"] == 8192
        assert not plan(32, 8, 2048, True, esize, H100_SMS)["one_tile"]
        assert plan(32, 16, 512 * esize, True, esize, H100_SMS)["one_tile"]  # 16384 elements


UNALIGNED = [  # (label, shape, channels_last)
    ("3x127x129-nchw", (32, 3, 127, 129), False),     # M = 16383: looped
    ("3x91x90-nchw", (32, 3, 91, 90), False),         # M = 8190: one 8192-element tile
    ("2x64^2-cl", (32, 2, 64, 64), True),             # 2 channels x 4096 pixels: one tile
    ("8x32x64-cl", (32, 8, 32, 64), True),            # 8 x 2048 would be 16384: looped
    ("5x32^2-cl", (32, 5, 32, 32), True),             # C = 5: 8 x 1024, one tile
]


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("label,shape,cl", UNALIGNED, ids=[s[0] for s in UNALIGNED])
def test_unaligned_plans_compile_without_spills(dtype, label, shape, cl):
    n, c, h, w = shape
    p = plan(n, c, h * w, cl, ESIZE[dtype], H100_SMS)
    assert p["BP"] * p["BS"] <= 8192, p
    scalars = dict(SCALARS, C="i32" if c % 16 else "i32/16", M="i32" if (h * w) % 16 else "i32/16")
    for kernel in (adain_fwd_kernel, adain_bwd_kernel):
        for mode in _modes(p):
            for int64 in (False, True):
                assert_no_spills(_compile(kernel, dtype, p, cl, mode, int64, scalars))


@pytest.mark.parametrize("dtype", ["fp16", "fp32", "fp64"])
@pytest.mark.parametrize("cl", [False, True])
def test_int64_and_fp64_variants(dtype, cl):
    # looping tiles of TILE elements, in every mode
    n, c, h, w = (32, 32, 1024, 1024) if cl else (32, 128, 256, 256)
    p = plan(n, c, h * w, cl, ESIZE[dtype], H100_SMS)
    assert not p["one_tile"]
    for kernel in (adain_fwd_kernel, adain_bwd_kernel):
        for mode in (0, 1, 2):
            assert_no_spills(_compile(kernel, dtype, p, cl, mode, int64=True))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32", "fp64"])
@pytest.mark.parametrize("label", ["256x128^2-nchw", "512x32^2-cl", "64x64x128-nchw"])
def test_int64_one_tile_variants(dtype, label):
    # the largest whole-plane tiles (16384 elements with 16 warps for 16-bit / fp32) with 64-bit
    # offsets, in the modes the launcher uses for them
    _, (n, c, h, w), cl = BY_LABEL[label]
    p = plan(n, c, h * w, cl, ESIZE[dtype], H100_SMS)
    for kernel in (adain_fwd_kernel, adain_bwd_kernel):
        for mode in _modes(p):
            assert_no_spills(_compile(kernel, dtype, p, cl, mode, int64=True))


@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
@pytest.mark.parametrize("mode", [0, 1])
def test_combine_kernel(dtype, mode):
    k = compile_for(adain_combine_kernel, dtype,
                    dict(P="i32", M="i32", seg_len="i32", n_splits="i32", eps="fp32"),
                    dict(MODE=mode, BLOCK=COMBINE_BLOCK), num_warps=4)
    assert_no_spills(k)


VECTORISED = ["512x64^2-nchw", "64x64x128-nchw", "256x128^2-nchw", "32x1024^2-nchw",
              "128x256^2-nchw", "512x64^2-cl", "512x32^2-cl"]


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("label,shape,cl", [BY_LABEL[k] for k in VECTORISED], ids=VECTORISED)
def test_streaming_accesses_are_vectorised(dtype, label, shape, cl):
    # x / dy loads and y / dx stores move 16 bytes per access; per-plane values (gamma, beta,
    # mean, rstd, the Welford shift, dgamma, dbeta) are the only narrow accesses
    n, c, h, w = shape
    p = plan(n, c, h * w, cl, ESIZE[dtype], H100_SMS)
    for kernel in (adain_fwd_kernel, adain_bwd_kernel):
        for mode in _modes(p):
            loads, stores = global_accesses(_compile(kernel, dtype, p, cl, mode))
            if mode != 1:  # mode 1 writes partial sums only
                assert any(".v4" in s for s in stores), stores
            wide = [ld for ld in loads if ".v4" in ld]
            assert wide, loads
