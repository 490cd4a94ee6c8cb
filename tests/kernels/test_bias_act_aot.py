"""The bias_act Triton kernel compiles ahead of time for sm_90 (no GPU needed) in every mode, act
and dtype, without register spills, and with 16-byte vector loads/stores on the streaming path."""
import pytest

from tests.kernels._aot import assert_no_spills, compile_for, global_accesses

pytestmark = pytest.mark.aot

from fastgan.kernels.bias_act import bias_act_kernel, launch_config  # noqa: E402

SCALARS = dict(n="i32/16", inner="i32", channels="i32", alpha="fp32", gain="fp32",
               inv_gain="fp32", clamp="fp32")
BLOCK, WARPS = launch_config(1 << 24, 4)


def _compile(dtype="fp32", int64=False, **flags):
    const = dict(MODE=0, ACT=2, REF_X=False, HAS_B=True, HAS_CLAMP=False, BIAS_PER_BLOCK=False,
                 INT64=int64, BLOCK=BLOCK, REDUCE=0, RC=1)
    const.update(flags)
    scalars = dict(SCALARS, n="i64/16" if int64 else "i32/16")
    part = "fp64" if dtype == "fp64" else "fp32"  # the bias-gradient partials: compute type
    return compile_for(bias_act_kernel, dtype, scalars, const, num_warps=WARPS,
                       ptr_dtypes=dict(part_ptr=part))


ACT_REF_X = {0: False, 1: False, 2: False, 3: False, 4: False, 5: False, 6: False, 7: False, 8: True}


# mode 2 (second order) is only launched for acts with a second derivative (act >= 3)
@pytest.mark.parametrize("mode,act", [(m, a) for m in (0, 1, 2) for a in range(9) if m < 2 or a >= 3])
def test_all_acts_and_modes_fp32(act, mode):
    k = _compile(MODE=mode, ACT=act, REF_X=ACT_REF_X[act] and mode > 0, HAS_CLAMP=True)
    assert_no_spills(k)


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32", "fp64"])
@pytest.mark.parametrize("mode,act,ref_x", [(0, 2, False), (1, 2, False), (0, 8, False),
                                            (1, 8, True), (2, 8, True), (2, 3, False)])
def test_dtypes(dtype, mode, act, ref_x):
    assert_no_spills(_compile(dtype, MODE=mode, ACT=act, REF_X=ref_x, HAS_CLAMP=True))


@pytest.mark.parametrize("per_block", [False, True])
def test_int64_and_bias_variants(per_block):
    assert_no_spills(_compile("fp16", int64=True, BIAS_PER_BLOCK=per_block))
    assert_no_spills(_compile("fp32", BIAS_PER_BLOCK=per_block, HAS_B=True))
    assert_no_spills(_compile("bf16", HAS_B=False))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("mode,has_b,per_block", [(0, False, False), (0, True, True), (1, False, False)])
def test_vectorised_streaming(dtype, mode, has_b, per_block):
    # x / y / dy / out are streamed with 16-byte accesses (.v4.b32: four fp32 or eight packed 16-bit
    # values); a per-block bias is one scalar load.  (The per-element bias gather of the general
    # layout path is scalar by nature and is excluded here.)
    k = _compile(dtype, MODE=mode, ACT=2, HAS_B=has_b, BIAS_PER_BLOCK=per_block)
    loads, stores = global_accesses(k)
    assert stores and all(".v4" in s for s in stores), stores
    scalar = [ld for ld in loads if ".v4" not in ld]
    assert len(scalar) <= int(has_b), loads


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("reduce,rc,per_block", [(1, 1, True), (2, 64, False), (2, 512, False)])
def test_fused_bias_gradient_partials(dtype, reduce, rc, per_block):
    # the backward pass with the bias-gradient partial sums fused in: no spills, and the streaming
    # accesses stay 16 bytes wide (the partials are one small store per program)
    for int64 in (False, True):
        k = _compile(dtype, int64=int64, MODE=1, ACT=2, HAS_B=False, BIAS_PER_BLOCK=per_block,
                     REDUCE=reduce, RC=rc)
        assert_no_spills(k)
    loads, _ = global_accesses(_compile(dtype, MODE=1, ACT=2, HAS_B=False, HAS_CLAMP=True,
                                        BIAS_PER_BLOCK=per_block, REDUCE=reduce, RC=rc))
    assert loads and all(".v4" in ld for ld in loads), loads
