"""The modulated-conv epilogue and coefficient Triton kernels compile ahead of time for sm_90 (no
GPU needed) without register spills; the c -> y stream uses 16-byte vector loads and stores."""
import pytest

from tests.kernels._aot import assert_no_spills, compile_for, global_accesses

pytestmark = pytest.mark.aot

from fastgan.kernels.modconv_epilogue import (  # noqa: E402
    EPILOGUE_BLOCK, EPILOGUE_WARPS, modconv_dcoefs_kernel, modconv_epilogue_kernel)

SCALARS = dict(total="i32/16", O="i32", H="i32", W="i32", snn="i32", sno="i32", snh="i32",
               snw="i32", alpha="fp32", gain="fp32", clamp="fp32")


def _epilogue(dtype, int64=False, **flags):
    const = dict(CL=False, ACT=2, HAS_D=True, HAS_NOISE=True, HAS_B=True, HAS_CLAMP=False,
                 INT64=int64, BLOCK=EPILOGUE_BLOCK)
    const.update(flags)
    cdt = "fp64" if dtype == "fp64" else "fp32"
    scalars = dict(SCALARS, total="i64/16" if int64 else "i32/16")
    return compile_for(modconv_epilogue_kernel, dtype, scalars, const, num_warps=EPILOGUE_WARPS,
                       ptr_dtypes=dict(d_ptr=cdt, noise_ptr="fp32", params_ptr=cdt))


# float64 runs (a correctness path, not a speed one) only with the StyleGAN acts: fp64 division
# in sigmoid-type acts calls a slow-path subroutine that keeps an 8-byte stack frame.
@pytest.mark.parametrize("dtype,act", [(d, a) for d in ("fp16", "bf16", "fp32") for a in range(9)]
                         + [("fp64", a) for a in (0, 1, 2)])
@pytest.mark.parametrize("cl", [False, True])
def test_epilogue_no_spills(dtype, cl, act):
    assert_no_spills(_epilogue(dtype, CL=cl, ACT=act, HAS_CLAMP=True))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
def test_epilogue_int64_no_spills(dtype):
    assert_no_spills(_epilogue(dtype, int64=True, CL=True))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("cl", [False, True])
def test_epilogue_streams_16_byte_vectors(dtype, cl):
    # without the gathers (d, noise, bias) every global access is the c -> y stream
    loads, stores = global_accesses(_epilogue(dtype, CL=cl, HAS_D=False, HAS_NOISE=False,
                                              HAS_B=False))
    assert loads and all(".v4" in ld for ld in loads), loads
    assert stores and all(".v4" in st for st in stores), stores
    # with them, the c load and y store stay vectorised
    loads, stores = global_accesses(_epilogue(dtype, CL=cl))
    assert stores and all(".v4" in st for st in stores), stores
    assert any(".v4" in ld for ld in loads), loads


@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
def test_dcoefs_no_spills(dtype):
    k = compile_for(modconv_dcoefs_kernel, dtype, dict(N="i32", I="i32", O="i32", eps="fp32"),
                    dict(BLOCK_O=64, BLOCK_I=64), num_warps=4)
    assert_no_spills(k)
