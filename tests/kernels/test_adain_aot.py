"""The adain Triton kernels compile ahead of time for sm_90 (no GPU needed) without register spills,
in every mode the launcher uses, with its own tile choices for the StyleGAN1 shapes, for
fp16 / bf16 / fp32 (and fp64), both layouts and the 64-bit offset variants; the streaming accesses
of the whole-plane (one tile) and looping paths are 16-byte vectors."""
import pytest

from tests.kernels._aot import assert_no_spills, compile_for, global_accesses

pytestmark = pytest.mark.aot

from fastgan.kernels.adain import (COMBINE_BLOCK, adain_bwd_kernel, adain_combine_kernel,  # noqa: E402
                                   adain_fwd_kernel, plan)

ESIZE = {"fp16": 2, "bf16": 2, "fp32": 4, "fp64": 8}
H100_SMS = 132
# sizes and strides as the launcher's specialisation sees a StyleGAN layer (C, M multiples of 16)
SCALARS = dict(N="i32", C="i32/16", M="i32/16", n_cblocks="i32", tiles_per_split="i32")

# (label, shape, channels_last): StyleGAN1 layers at batch 32 covering every plan
SHAPES = [
    ("512x4^2-nchw", (32, 512, 4, 4), False),         # 256 planes per program, one tile
    ("512x64^2-nchw", (32, 512, 64, 64), False),      # one plane per program, one tile
    ("64x64x128-nchw", (32, 64, 64, 128), False),     # the largest whole-plane tile (MAX_ONE_TILE)
    ("256x128^2-nchw", (32, 256, 128, 128), False),   # planes looped over tiles (mode 0)
    ("32x1024^2-nchw", (1, 32, 1024, 1024), False),   # few planes: split (modes 1 + 2, combine)
    ("512x8^2-cl", (32, 512, 8, 8), True),            # channels_last, one tile
    ("512x64^2-cl", (32, 512, 64, 64), True),         # channels_last, split
    ("32x1024^2-cl", (32, 32, 1024, 1024), True),     # channels_last, split
]


def _cdt(dtype):
    return "fp64" if dtype == "fp64" else "fp32"


def _compile(kernel, dtype, p, cl, mode, int64=False):
    const = dict(MODE=mode, CL=cl, ONE_TILE=p["one_tile"], INT64=int64, BP=p["BP"], BS=p["BS"])
    stats = _cdt(dtype)
    ptrs = dict(mean_ptr=stats, rstd_ptr=stats, part_ptr=stats, params_ptr=stats, sums_ptr=stats)
    scalars = dict(SCALARS)
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


@pytest.mark.parametrize("dtype", ["fp16", "fp32", "fp64"])
@pytest.mark.parametrize("cl", [False, True])
def test_int64_and_fp64_variants(dtype, cl):
    n, c, h, w = (32, 32, 1024, 1024) if cl else (32, 256, 128, 128)
    p = plan(n, c, h * w, cl, ESIZE[dtype], H100_SMS)
    for kernel in (adain_fwd_kernel, adain_bwd_kernel):
        for mode in (0, 1, 2):
            assert_no_spills(_compile(kernel, dtype, p, cl, mode, int64=True))


@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
@pytest.mark.parametrize("mode", [0, 1])
def test_combine_kernel(dtype, mode):
    k = compile_for(adain_combine_kernel, dtype,
                    dict(P="i32", M="i32", seg_len="i32", n_splits="i32", eps="fp32"),
                    dict(MODE=mode, BLOCK=COMBINE_BLOCK), num_warps=4)
    assert_no_spills(k)


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("label,shape,cl", [SHAPES[1], SHAPES[2], SHAPES[4], SHAPES[6]],
                         ids=[SHAPES[i][0] for i in (1, 2, 4, 6)])
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
