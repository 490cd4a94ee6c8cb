"""GPU tier: the triton and cuda backends against the reference on CUDA tensors (skipped without a
CUDA device; a backend that is not built/installed is reported as a failure, not a skip, when
FASTGAN_REQUIRE_ALL_BACKENDS=1)."""

import pytest
import torch

from fastgan.ops import bias_act
from tests._bias_act_oracle import ACTS, assert_rel_norm_list, value_grads
from tests._gpu import need_impl

pytestmark = pytest.mark.gpu

FUSED = ["triton", "cuda"]
# ||impl - ref(fp64)|| / ||ref||: half types store y/dy rounded; bf16 has an 8-bit mantissa
TOL = {torch.float32: 2e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float64: 1e-13}


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_vs_reference(impl, dtype, act, layout):
    need_impl(impl)
    x = torch.randn(4, 32, 33, 17, device="cuda") * 2
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    b = torch.randn(32, device="cuda")
    x, b = x.to(dtype), b.to(dtype)
    clamp = 4.0 if dtype == torch.float32 else None
    got = value_grads(lambda x, b: bias_act(x, b, act=act, clamp=clamp, impl=impl), x, b,
                      second_order=dtype == torch.float32)
    want = value_grads(lambda x, b: bias_act(x, b, act=act, clamp=clamp, impl="ref"),
                       x.double(), b.double(), second_order=dtype == torch.float32)
    assert got[0].stride() == x.stride()
    # bias gradients sum thousands of terms: judge them at the fp32-accumulation level
    assert_rel_norm_list(got, want, TOL[dtype] * (1 if dtype == torch.float32 else 2), what=impl)


@pytest.mark.parametrize("impl", ["cuda", "triton"])
def test_float64(impl):
    need_impl(impl)
    x = torch.randn(3, 8, 20, 20, device="cuda", dtype=torch.float64)
    b = torch.randn(8, device="cuda", dtype=torch.float64)
    for act in ACTS:
        got = value_grads(lambda x, b: bias_act(x, b, act=act, clamp=3.0, impl=impl), x, b)
        want = value_grads(lambda x, b: bias_act(x, b, act=act, clamp=3.0, impl="ref"), x, b)
        assert_rel_norm_list(got, want, 1e-12, what=act)


@pytest.mark.parametrize("impl", FUSED)
def test_nan_propagates(impl):
    need_impl(impl)
    x = torch.randn(2, 8, 16, 16, device="cuda")
    x[1, 3, 4, 5] = float("nan")
    for act in ACTS:
        y = bias_act(x, torch.randn(8, device="cuda"), act=act, clamp=1.0, impl=impl)
        assert y[1, 3, 4, 5].isnan() and y.isnan().sum() == 1, act


@pytest.mark.parametrize("impl", FUSED)
def test_odd_sizes_every_element(impl):
    need_impl(impl)
    for shape in [(1,), (3, 7, 129, 65), (5, 4097), (2, 3, 64, 64)]:
        x = torch.randn(shape, device="cuda")
        b = torch.randn(shape[1] if len(shape) > 1 else 1, device="cuda")
        dim = 1 if len(shape) > 1 else 0
        out = bias_act(x, b, dim=dim, act="lrelu", clamp=1.5, impl=impl)
        torch.testing.assert_close(out, bias_act(x, b, dim=dim, act="lrelu", clamp=1.5, impl="ref"),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.bigmem
@pytest.mark.slow
@pytest.mark.parametrize("impl", FUSED)
def test_over_2_pow_31_elements(impl):
    need_impl(impl)
    rows = 2 ** 21 + 5  # x has 2**31 + 5120 elements: int32 offsets would wrap
    need = 2 * rows * 1024 * 2 + (1 << 30)
    free, _ = torch.cuda.mem_get_info()
    if free < need:
        pytest.skip(f"needs ~{need / 2**30:.0f} GiB free GPU memory, have {free / 2**30:.0f}")
    x = torch.randn(rows, 1024, device="cuda", dtype=torch.float16)
    b = torch.randn(1024, device="cuda", dtype=torch.float16)
    y = bias_act(x, b, dim=1, act="lrelu", impl=impl)
    for part in (slice(0, 64), slice(rows - 64, None)):
        want = bias_act(x[part].float(), b.float(), dim=1, act="lrelu", impl="ref").half()
        torch.testing.assert_close(y[part], want, rtol=1e-3, atol=1e-3)
