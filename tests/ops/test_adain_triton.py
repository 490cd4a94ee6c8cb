"""adain Triton kernels under TRITON_INTERPRET=1 on CPU tensors, against the reference: forward,
backward and double backward, NCHW and channels_last, fp32/fp64, odd sizes; every launch plan
(a whole plane in one tile, planes looped over tiles, planes split across programs + combine) by
shrinking the plan's tile sizes; Welford / Chan accuracy on large means; 64-bit offsets."""
import sys

import pytest
import torch

from fastgan.ops import adain
from tests._adain_oracle import assert_rel_norm_list, value_grads

pytestmark = pytest.mark.interpret

TOL = {torch.float32: 2e-6, torch.float64: 1e-12}  # ||triton - ref|| / ||ref||


def _ops():
    import fastgan.ops.adain  # noqa: F401
    return sys.modules["fastgan.ops.adain"]


def _kern():
    import fastgan.kernels.adain as k
    return k


def _args(shape, dtype, fmt=torch.contiguous_format, shift=0.5):
    n, c = shape[:2]
    x = (torch.randn(shape, dtype=dtype) * 2 + shift).contiguous(memory_format=fmt)
    return x, torch.randn(n, c, dtype=dtype) + 1, torch.randn(n, c, dtype=dtype)


def _compare(x, g, b, eps=1e-5, second_order=True, tol=None):
    got = value_grads(lambda x, g, b: adain(x, g, b, eps=eps, impl="triton"), x, g, b,
                      second_order=second_order)
    want = value_grads(lambda x, g, b: adain(x, g, b, eps=eps, impl="ref"), x, g, b,
                       second_order=second_order)
    assert got[0].stride() == x.stride() or not (
        x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
    assert_rel_norm_list(got, want, tol or TOL[x.dtype], what=f"{tuple(x.shape)} {x.dtype}")


@pytest.fixture
def plan_mode(request, monkeypatch):
    """Force a launch plan on small tensors: 'one_tile' (defaults), 'loop' (planes looped over
    16-pixel tiles in one program) or 'split' (planes split across programs, then combined)."""
    k = _kern()
    mode = request.param
    if mode != "one_tile":
        monkeypatch.setattr(k, "MAX_ONE_TILE", 8)
        monkeypatch.setattr(k, "TILE", 16)
        monkeypatch.setattr(k, "PROGRAMS_PER_SM", 0 if mode == "loop" else 1000)
    return mode


def _check_plan(x, mode):
    k = _kern()
    n, c, h, w = x.shape
    p = k.plan(n, c, h * w, not x.is_contiguous(), x.element_size(), k.num_sms(x.device))
    if mode == "one_tile":
        assert p["one_tile"]
    elif mode == "loop":
        assert not p["one_tile"] and p["splits"] == 1 and p["ntiles"] > 1
    else:
        assert p["splits"] > 1


@pytest.mark.parametrize("plan_mode", ["one_tile", "loop", "split"], indirect=True)
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 5, 9, 4)])
def test_forward_backward_double_backward(plan_mode, fmt, dtype, shape):
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x, g, b = _args(shape, dtype, mf)
    _check_plan(x, plan_mode)
    _compare(x, g, b)


@pytest.mark.parametrize("shape,fmt", [
    ((3, 3, 91, 97), "nchw"),          # 8827 pixels > MAX_ONE_TILE, 9 plane blocks: looped planes
    ((1, 2, 91, 97), "nchw"),          # 2 plane blocks: split into 3 segments + combine
    ((1, 3, 70, 70), "channels_last"), # C = 3 (not a power of 2), split
    ((2, 37, 6, 5), "channels_last"),  # many channels, several channel blocks, one tile
    ((5, 64, 3, 3), "nchw"),           # many planes per program
])
def test_default_plans(shape, fmt):
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x, g, b = _args(shape, torch.float32, mf)
    _compare(x, g, b, second_order=False)


@pytest.mark.parametrize("plan_mode", ["one_tile", "loop", "split"], indirect=True)
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_large_mean_statistics(plan_mode, fmt):
    """x = 1000 + randn: two-pass (one tile), per-lane Welford (loop) and Chan's merge (split) all
    keep float32 accuracy; E[x^2] - E[x]^2 would be off by ~6% here."""
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x = (1000 + torch.randn(2, 3, 16, 20)).contiguous(memory_format=mf)
    g, b = torch.randn(2, 3), torch.randn(2, 3)
    _check_plan(x, plan_mode)
    y, mean, rstd = _ops().adain_with_stats(x, g, b, impl="triton")
    xd = x.double()
    var = ((xd - xd.mean((2, 3), keepdim=True)) ** 2).mean((2, 3))
    torch.testing.assert_close(mean.double(), xd.mean((2, 3)), rtol=1.5e-7, atol=0)  # ~2 ulp
    torch.testing.assert_close(rstd.double(), 1 / torch.sqrt(var + 1e-5), rtol=1e-5, atol=0)
    yd = (xd - xd.mean((2, 3), keepdim=True)) * (g.double() / torch.sqrt(var + 1e-5))[..., None, None] \
        + b.double()[..., None, None]
    torch.testing.assert_close(y.double(), yd, rtol=0, atol=1e-4)


@pytest.mark.parametrize("layout", ["sliced", "permuted"])
def test_non_dense_layouts(layout):
    if layout == "sliced":
        x = torch.randn(2, 3, 6, 14)[:, :, :, 1::2]
    else:
        x = torch.randn(7, 3, 6, 2).permute(3, 1, 2, 0)
    g, b = torch.randn(2, 3), torch.randn(2, 3)
    y = adain(x, g, b, impl="triton")
    assert y.is_contiguous()
    _compare(x, g, b)


def test_expanded_upstream_gradient():
    x, g, b = _args((2, 3, 5, 5), torch.float32, torch.channels_last)
    grads = []
    for impl in ("triton", "ref"):
        leaves = [t.clone().requires_grad_() for t in (x, g, b)]
        adain(*leaves, impl=impl).sum().backward()  # dy is an expanded (stride-0) tensor
        grads.append([t.grad for t in leaves])
    for a, e in zip(*grads):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("param_dtype", ["x", "float32"])
def test_half_types(dtype, param_dtype):
    x, g, b = _args((2, 4, 9, 7), torch.float32)
    x = x.to(dtype)
    if param_dtype == "x":
        g, b = g.to(dtype), b.to(dtype)
    got = value_grads(lambda x, g, b: adain(x, g, b, impl="triton"), x, g, b, second_order=False)
    want = value_grads(lambda x, g, b: adain(x, g, b, impl="ref"), x, g, b, second_order=False)
    for a, e in zip(got, want):
        assert a.dtype == e.dtype
    assert_rel_norm_list(got, want, 4e-3 if dtype == torch.float16 else 2e-2, what=str(dtype))


def test_single_pixel_planes_and_empty():
    x, g, b = _args((3, 4, 1, 1), torch.float64)
    _compare(x, g, b)
    e = torch.empty(0, 3, 4, 4)
    assert adain(e, torch.empty(0, 3), torch.empty(0, 3), impl="triton").shape == (0, 3, 4, 4)


@pytest.mark.parametrize("plan_mode", ["one_tile", "split"], indirect=True)
def test_nan_propagates(plan_mode):
    x, g, b = _args((2, 3, 6, 5), torch.float32)
    x[1, 2, 3, 1] = float("nan")
    y = adain(x, g, b, impl="triton")
    assert y[1, 2].isnan().all()
    y[1, 2] = 0
    assert not y.isnan().any()


@pytest.mark.parametrize("plan_mode", ["one_tile", "loop", "split"], indirect=True)
def test_int64_offsets(plan_mode, monkeypatch):
    # force the 64-bit offset variant on a small tensor: same results as the 32-bit one
    x, g, b = _args((2, 3, 7, 6), torch.float32, torch.channels_last)
    want = value_grads(lambda x, g, b: adain(x, g, b, impl="triton"), x, g, b, second_order=False)
    monkeypatch.setattr(_kern(), "_INT64_THRESHOLD", 0)
    got = value_grads(lambda x, g, b: adain(x, g, b, impl="triton"), x, g, b, second_order=False)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_opcheck_triton_backend(fmt):
    # the fake implementations agree with what the Triton path returns (strides, dtypes)
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x, g, b = _args((2, 3, 5, 4), torch.float32, mf)
    torch.library.opcheck(torch.ops.fastgan.adain.default,
                          (x.requires_grad_(), g.requires_grad_(), b.requires_grad_(), 1e-5, "triton"))
    _, mean, rstd = _ops().adain_with_stats(x.detach(), g.detach(), b.detach(), impl="ref")
    dy = torch.randn(2, 3, 5, 4)
    torch.library.opcheck(torch.ops.fastgan.adain_backward.default,
                          (dy, x.detach(), g.detach(), mean, rstd, torch.float32, "triton"))
