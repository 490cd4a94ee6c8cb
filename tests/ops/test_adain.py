"""adain: reference path against an independent float64 oracle (values, first, second and third
order), gradcheck / gradgradcheck of both registered ops, layouts, dtypes, numerics (large means,
H*W = 1, NaN), bad input, torch.library registration (opcheck, torch.compile)."""
import sys

import pytest
import torch

from fastgan.ops import adain
from fastgan.ops._backend import BackendUnavailableError
from tests._adain_oracle import assert_rel_norm_list, definition, layouts, value_grads

SHAPES = [(2, 3, 5, 7), (1, 4, 1, 1), (3, 2, 1, 6), (2, 1, 8, 8)]


def _rand(*shape, dtype=torch.float64, scale=2.0, shift=0.5):
    return torch.randn(*shape, dtype=dtype) * scale + shift


def _args(shape, dtype=torch.float64):
    n, c = shape[:2]
    return _rand(*shape, dtype=dtype), _rand(n, c, dtype=dtype, scale=1.0, shift=1.0), \
        _rand(n, c, dtype=dtype, scale=1.0, shift=0.0)


def _ops():
    import fastgan.ops.adain  # noqa: F401
    return sys.modules["fastgan.ops.adain"]


@pytest.mark.parametrize("shape", SHAPES)
def test_ref_matches_definition(shape):
    x, g, b = _args(shape)
    got = value_grads(lambda x, g, b: adain(x, g, b, impl="ref"), x, g, b)
    want = value_grads(definition, x, g, b)
    assert_rel_norm_list(got, want, 1e-12, what=str(shape))


@pytest.mark.parametrize("eps", [1e-5, 0.3])
def test_ref_statistics(eps):
    x, g, b = _args((3, 4, 6, 5))
    y, mean, rstd = _ops().adain_with_stats(x, g, b, eps=eps, impl="ref")
    torch.testing.assert_close(mean, x.mean((2, 3)), rtol=1e-14, atol=1e-14)
    var = ((x - x.mean((2, 3), keepdim=True)) ** 2).mean((2, 3))
    torch.testing.assert_close(rstd, 1 / torch.sqrt(var + eps), rtol=1e-14, atol=0)
    torch.testing.assert_close(y, definition(x, g, b, eps), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 1), (2, 2, 3, 1)])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_ref_gradcheck_gradgradcheck(shape, fmt):
    x, g, b = _args(shape)
    x = x.contiguous(memory_format=fmt)
    inputs = tuple(t.requires_grad_() for t in (x, g, b))
    fn = lambda x, g, b: adain(x, g, b, impl="ref")  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_backward_op_gradcheck():
    """fastgan::adain_backward on its own: mean and rstd are independent inputs with exact partial
    derivatives (what makes any order work), checked numerically w.r.t. all five tensors -- and its
    own backward is differentiable again (gradgradcheck = third order of adain)."""
    x, g, _ = _args((2, 3, 4, 5))
    dy = _rand(2, 3, 4, 5)
    mean = _rand(2, 3, scale=0.3)
    rstd = _rand(2, 3, scale=0.2, shift=1.0)
    inputs = tuple(t.requires_grad_() for t in (dy, x, g, mean, rstd))
    op = torch.ops.fastgan.adain_backward.default
    fn = lambda *a: op(*a, torch.float64, "ref")  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_third_order_matches_definition():
    # eps large enough that no third-order term is pure cancellation noise
    x, g, b = _args((2, 3, 5, 4))

    def third(fn):
        xs = [t.detach().clone().requires_grad_() for t in (x, g, b)]
        y = fn(*xs)
        w = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=y.dtype)
        (gx,) = torch.autograd.grad((y * w).sum() + (y ** 3).sum(), xs[0], create_graph=True)
        h = torch.autograd.grad((gx ** 2).sum(), xs, create_graph=True)
        k = torch.autograd.grad(sum((t ** 2).sum() for t in h), xs)
        return list(h) + list(k)

    got = third(lambda x, g, b: adain(x, g, b, eps=0.5, impl="ref"))
    want = third(lambda x, g, b: definition(x, g, b, eps=0.5))
    assert_rel_norm_list(got, want, 1e-12, what="third order")


# ---------------------------------------------------------------------------------------------
# layouts and dtypes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced", "permuted"])
def test_ref_layouts(layout):
    x = layouts((2, 3, 4, 5))[layout]
    _, g, b = _args((2, 3, 4, 5))
    y = adain(x, g, b, impl="ref")
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    else:
        assert y.is_contiguous()
    got = value_grads(lambda x, g, b: adain(x, g, b, impl="ref"), x, g, b)
    want = value_grads(definition, x.contiguous(), g, b)
    assert_rel_norm_list(got, want, 1e-12, what=layout)


def test_expanded_upstream_gradient():
    x, g, b = (t.requires_grad_() for t in _args((2, 3, 4, 4)))
    adain(x.contiguous(memory_format=torch.channels_last), g, b, impl="ref").sum().backward()
    # d sum(y) / dx = 0 (the normalised plane sums to zero); d/dbeta = M; d/dgamma = sum(x_hat) = 0
    torch.testing.assert_close(x.grad, torch.zeros_like(x), atol=1e-12, rtol=0)
    torch.testing.assert_close(b.grad, torch.full_like(b, 16.0))
    torch.testing.assert_close(g.grad, torch.zeros_like(g), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("param_dtype", ["x", "float32"])
def test_ref_half_types_compute_in_fp32(dtype, param_dtype):
    x, g, b = _args((2, 5, 6, 7), dtype)
    if param_dtype == "float32":
        g, b = g.float(), b.float()
    got = value_grads(lambda x, g, b: adain(x, g, b, impl="ref"), x, g, b, second_order=False)
    assert got[0].dtype == dtype and got[2].dtype == g.dtype and got[3].dtype == b.dtype
    want = value_grads(definition, x.double(), g.double(), b.double(), second_order=False)
    tol = {torch.float16: 2e-3, torch.bfloat16: 1.5e-2, torch.float32: 1e-6}[dtype]
    assert_rel_norm_list(got, want, tol, what=str(dtype))


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_large_mean_no_cancellation(fmt):
    # var = E[x^2] - E[x]^2 in float32 would be off by ~1e6 * 6e-8 = 0.06 (6%) here
    x = (1000 + torch.randn(2, 3, 32, 32)).contiguous(memory_format=fmt)
    g, b = torch.randn(2, 3), torch.randn(2, 3)
    y, mean, rstd = _ops().adain_with_stats(x, g, b, impl="ref")
    xd = x.double()
    var = ((xd - xd.mean((2, 3), keepdim=True)) ** 2).mean((2, 3))
    torch.testing.assert_close(rstd.double(), 1 / torch.sqrt(var + 1e-5), rtol=1e-5, atol=0)
    torch.testing.assert_close(y.double(), definition(xd, g, b), rtol=0, atol=1e-4)


@pytest.mark.parametrize("value,eps", [(1234.567, 1e-5), (1000.1, 1e-8), (-3.0e4, 1e-5)])
def test_constant_planes_map_to_beta(value, eps):
    # var = 0 exactly: y = beta, rstd = 1/sqrt(eps); x - float32(mean) without the first-pixel
    # shift is not 0 for such values (max|y - beta| was 0.04-0.5)
    x = torch.full((2, 3, 64, 7), value)
    x[1] = value / 3  # another constant, per plane
    g, b = torch.randn(2, 3), torch.randn(2, 3)
    y, mean, rstd = _ops().adain_with_stats(x, g, b, eps=eps, impl="ref")
    torch.testing.assert_close(y, b[:, :, None, None].expand_as(y), rtol=0, atol=0)
    torch.testing.assert_close(rstd, torch.full_like(rstd, eps ** -0.5), rtol=1e-6, atol=0)
    torch.testing.assert_close(mean, x[:, :, 0, 0], rtol=0, atol=0)


def test_large_mean_small_spread_statistics():
    # |mean| / std = 1e6 in float32: rstd keeps ~1e-7 relative accuracy
    x = 1e4 + 0.01 * torch.randn(2, 3, 13, 33)
    _, mean, rstd = _ops().adain_with_stats(x, torch.ones(2, 3), torch.zeros(2, 3), impl="ref")
    var, m = torch.var_mean(x.double(), (2, 3), unbiased=False)
    torch.testing.assert_close(rstd.double(), (var + 1e-5).rsqrt(), rtol=1e-6, atol=0)
    torch.testing.assert_close(mean.double(), m, rtol=1e-7, atol=0)


def test_single_pixel_planes():
    # H * W = 1: var = 0, x_hat = 0, y = beta; dx = 0, dgamma = 0, dbeta = dy
    x, g, b = (t.requires_grad_() for t in _args((3, 4, 1, 1)))
    y = adain(x, g, b, impl="ref")
    torch.testing.assert_close(y, b.detach()[:, :, None, None])
    dy = _rand(3, 4, 1, 1)
    dx, dg, db = torch.autograd.grad(y, (x, g, b), dy)
    assert (dx == 0).all() and (dg == 0).all()
    torch.testing.assert_close(db, dy[:, :, 0, 0])


def test_nan_in_nan_out():
    x, g, b = _args((2, 3, 4, 5))
    x[1, 2, 3, 1] = float("nan")
    y = adain(x, g, b, impl="ref")
    assert y[1, 2].isnan().all()  # the statistics of that plane are NaN
    y[1, 2] = 0
    assert not y.isnan().any()


def test_empty():
    x = torch.empty(0, 3, 4, 4, requires_grad=True)
    g = torch.empty(0, 3, requires_grad=True)
    b = torch.empty(0, 3, requires_grad=True)
    y = adain(x, g, b)
    assert y.shape == (0, 3, 4, 4)
    y.sum().backward()
    assert x.grad.shape == x.shape and g.grad.shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=torch.randn(2, 3, 4)), ValueError, r"x must be 4-D \[N, C, H, W\]"),
    (dict(x=torch.randn(2, 3, 0, 4)), ValueError, "H \\* W >= 1"),
    (dict(x=torch.ones(2, 3, 4, 4, dtype=torch.int32)), TypeError, "x must be float16"),
    (dict(x=[1.0]), TypeError, "x must be a torch.Tensor"),
    (dict(gamma=torch.randn(3)), ValueError, r"gamma must have shape \[N, C\] = \[2, 3\]"),
    (dict(beta=torch.randn(2, 3, 1)), ValueError, r"beta must have shape \[N, C\]"),
    (dict(gamma=torch.randn(2, 3, dtype=torch.float64)), TypeError, "gamma must be float32, got torch.float64"),
    (dict(beta=torch.randn(2, 3).half()), TypeError, "beta must be float32, got torch.float16"),
    (dict(gamma=None), TypeError, "gamma must be a torch.Tensor"),
    (dict(beta=torch.empty(2, 3, device="meta")), ValueError, "beta must be on x's device"),
    (dict(eps=0.0), ValueError, "eps must be a finite float > 0"),
    (dict(eps=-1e-5), ValueError, "eps"),
    (dict(eps=float("nan")), ValueError, "eps"),
    (dict(eps=True), TypeError, "eps must be a float"),
    (dict(eps=torch.tensor(1e-5)), TypeError, "eps must be a float"),
    (dict(impl="numba"), ValueError, "impl"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(x=torch.randn(2, 3, 4, 4), gamma=torch.randn(2, 3), beta=torch.randn(2, 3))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        adain(**args)


def test_half_x_accepts_float32_params():
    x = torch.randn(2, 3, 4, 4).half()
    y = adain(x, torch.randn(2, 3), torch.randn(2, 3).half())
    assert y.dtype == torch.float16


def test_explicit_unavailable_backend_raises():
    x, g, b = _args((1, 2, 3, 3), torch.float32)
    with pytest.raises(BackendUnavailableError, match="cuda"):
        adain(x, g, b, impl="cuda")


def test_auto_impl_is_ref_on_cpu(monkeypatch):
    mod = _ops()
    seen = []
    real = mod._launch_forward
    monkeypatch.setattr(mod, "_launch_forward", lambda impl, *a: (seen.append(impl), real(impl, *a))[1])
    x, g, b = _args((1, 2, 3, 3), torch.float32)
    adain(x, g, b)
    monkeypatch.setenv("FASTGAN_IMPL", "ref")
    adain(x, g, b)
    assert seen == ["ref", "ref"]


# ---------------------------------------------------------------------------------------------
# torch.library registration
# ---------------------------------------------------------------------------------------------

def _fwd_samples():
    x, g, b = _args((2, 3, 4, 5))
    xcl = _rand(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    return [
        (x.requires_grad_(), g.requires_grad_(), b.requires_grad_(), 1e-5, "ref"),
        (xcl.requires_grad_(), g, b, 0.1, "ref"),
        (x.detach().float(), g.detach().float(), b.detach().float(), 1e-5, "ref"),
        (x.detach().half().requires_grad_(), g.detach().float().requires_grad_(),
         b.detach().half().requires_grad_(), 1e-5, "ref"),
        (_rand(2, 3, 8, 5)[:, :, ::2].requires_grad_(), g, b, 1e-5, "ref"),
        (_rand(2, 3, 1, 1).requires_grad_(), g, b, 1e-5, "ref"),
    ]


@pytest.mark.parametrize("i", range(6))
def test_opcheck_forward(i):
    torch.library.opcheck(torch.ops.fastgan.adain.default, _fwd_samples()[i])


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck_backward(fmt, dtype):
    x, g, b = _args((2, 3, 4, 5), dtype)
    x = x.contiguous(memory_format=fmt)
    _, mean, rstd = _ops().adain_with_stats(x, g, b, impl="ref")
    dy = _rand(2, 3, 4, 5, dtype=dtype)
    args = (dy.requires_grad_(), x.requires_grad_(), g.requires_grad_(),
            mean.requires_grad_(), rstd.requires_grad_(), torch.float32, "ref")
    torch.library.opcheck(torch.ops.fastgan.adain_backward.default, args)


def test_torch_compile_fullgraph_forward_backward():
    torch._dynamo.reset()

    def layer(x, g, b):
        return adain(x * 1.5, g, b) * 0.5

    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    for shape, fmt in [((2, 4, 6, 6), torch.channels_last), ((3, 4, 5, 7), torch.contiguous_format)]:
        x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_()
        g, b = torch.randn(shape[:2], requires_grad=True), torch.randn(shape[:2], requires_grad=True)
        x2, g2, b2 = (t.detach().clone().requires_grad_() for t in (x, g, b))
        y1, y2 = layer(x, g, b), compiled(x2, g2, b2)
        torch.testing.assert_close(y2, y1)
        y1.square().sum().backward()
        y2.square().sum().backward()
        for a, e in ((x2, x), (g2, g), (b2, b)):
            torch.testing.assert_close(a.grad, e.grad, rtol=1e-4, atol=1e-5)


def test_torch_compile_no_graph_break():
    torch._dynamo.reset()
    x, g, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4), torch.randn(2, 4)
    explanation = torch._dynamo.explain(lambda x, g, b: adain(x, g, b) + 1)(x, g, b)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
