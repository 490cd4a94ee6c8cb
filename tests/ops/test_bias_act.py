"""bias_act: reference path (float64 gradcheck / gradgradcheck, against an independent oracle),
layouts, dtypes, bad input, torch.library registration (opcheck, torch.compile)."""
import math
import sys

import pytest
import torch

import fastgan
from fastgan.ops import bias_act, fused_leaky_relu
from tests._bias_act_oracle import (ACTS, SECOND_ORDER_ACTS, assert_close_list, definition,
                                    value_grads)

CASES = [  # (shape, dim)
    ((3, 4, 5), 1),
    ((4, 3), -1),
    ((2, 3, 2, 3), 1),
    ((6,), 0),
]


def _rand(shape, dtype=torch.float64, scale=2.0):
    return torch.randn(shape, dtype=dtype) * scale


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("clamp", [None, 0.8])
@pytest.mark.parametrize("shape,dim", CASES)
def test_ref_gradcheck_gradgradcheck(act, with_bias, clamp, shape, dim):
    x = _rand(shape).requires_grad_()
    b = _rand((shape[dim],)).requires_grad_() if with_bias else None
    inputs = (x, b) if with_bias else (x,)

    def fn(*args):
        return bias_act(args[0], args[1] if with_bias else None, dim=dim, act=act, clamp=clamp,
                        impl="ref")

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("act,alpha,gain", [("lrelu", -0.3, 1.5), ("lrelu", 0.0, 2.0),
                                            ("tanh", None, 0.0), ("swish", None, -1.3),
                                            ("sigmoid", 0.7, 3.0)])
def test_ref_gradcheck_unusual_params(act, alpha, gain):
    # negative lrelu slope and zero gain cannot be inverted from y: the x-ref path must take over
    x = _rand((3, 5, 4)).requires_grad_()
    b = _rand((5,)).requires_grad_()

    def fn(x, b):
        return bias_act(x, b, act=act, alpha=alpha, gain=gain, impl="ref")

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))
    torch.testing.assert_close(fn(x, b), definition(x, b, act=act, alpha=alpha, gain=gain))


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_ref_matches_definition(act, clamp):
    x, b = _rand((4, 6, 5, 3)), _rand((6,))
    want = value_grads(lambda x, b: definition(x, b, act=act, clamp=clamp), x, b)
    got = value_grads(lambda x, b: bias_act(x, b, act=act, clamp=clamp, impl="ref"), x, b)
    assert_close_list(got, want, rtol=1e-10, atol=1e-10, what=act)


def test_default_alpha_gain():
    x, b = _rand((2, 3, 4)), _rand((3,))
    s = x + b.view(1, 3, 1)
    torch.testing.assert_close(bias_act(x, b, act="lrelu"),
                               torch.nn.functional.leaky_relu(s, 0.2) * math.sqrt(2))
    torch.testing.assert_close(bias_act(x, b, act="relu"), torch.relu(s) * math.sqrt(2))
    torch.testing.assert_close(bias_act(x, b, act="swish"), torch.nn.functional.silu(s) * math.sqrt(2))
    torch.testing.assert_close(bias_act(x, b, act="tanh"), torch.tanh(s))
    torch.testing.assert_close(bias_act(x, b, act="elu", alpha=0.5), torch.nn.functional.elu(s))
    torch.testing.assert_close(bias_act(x, b, act="lrelu", clamp=-1.0),
                               torch.nn.functional.leaky_relu(s, 0.2) * math.sqrt(2))
    torch.testing.assert_close(bias_act(x, b, act="linear", clamp=0.5), s.clamp(-0.5, 0.5))


def test_clamp_zeroes_gradient_where_saturated():
    x = _rand((4, 8, 8)).requires_grad_()
    y = bias_act(x, act="linear", gain=1.0, clamp=1.0, impl="ref")
    (g,) = torch.autograd.grad(y.sum(), x)
    saturated = x.detach().abs() > 1.0
    assert saturated.any() and (~saturated).any()
    assert (g[saturated] == 0).all() and (g[~saturated] == 1).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("act", ["lrelu", "swish", "tanh", "softplus"])
def test_ref_half_types_compute_in_fp32(dtype, act):
    # (clamp is set but not reached: in half precision an output that *rounds* to +-clamp counts as
    # saturated, since only the rounded output is saved -- the fp64 tests cover the clamp itself)
    x, b = _rand((2, 8, 6, 5), dtype), _rand((8,), dtype)
    got = value_grads(lambda x, b: bias_act(x, b, act=act, clamp=100.0, impl="ref"), x, b)
    want = value_grads(lambda x, b: definition(x, b, act=act, clamp=100.0), x.double(), b.double())
    for t in got:
        assert t.dtype == dtype
    tol = {torch.float16: 2e-2, torch.bfloat16: 1e-1, torch.float32: 1e-4}[dtype]
    # compare y and first-order grads (the second order of a half-precision pipeline is too noisy)
    assert_close_list(got[:3], want[:3], rtol=tol, atol=tol * 4, what=str(dtype))


# ---------------------------------------------------------------------------------------------
# layouts
# ---------------------------------------------------------------------------------------------

def _layouts():
    base = _rand((2, 6, 5, 4))
    return {
        "contiguous": base,
        "channels_last": base.contiguous(memory_format=torch.channels_last),
        "sliced": _rand((2, 6, 10, 4))[:, :, ::2],
        "transposed": _rand((2, 4, 5, 6)).permute(0, 3, 2, 1),
        "expanded": _rand((1, 6, 5, 4)).expand(2, 6, 5, 4),
    }


@pytest.mark.parametrize("layout", list(_layouts()))
@pytest.mark.parametrize("act", ["lrelu", "swish", "softplus"])
def test_ref_layouts(layout, act):
    x = _layouts()[layout]
    b = _rand((6,))
    y = bias_act(x, b, act=act, impl="ref")
    assert y.stride() == torch.empty_like(x).stride()  # output keeps a dense input's layout
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    got = value_grads(lambda x, b: bias_act(x, b, act=act, impl="ref"), x, b)
    want = value_grads(lambda x, b: definition(x, b, act=act), x.contiguous(), b)
    assert_close_list(got, want, rtol=1e-10, atol=1e-10, what=layout)


def test_expanded_upstream_gradient():
    x = _rand((2, 3, 4, 4)).contiguous(memory_format=torch.channels_last).requires_grad_()
    b = _rand((3,)).requires_grad_()
    bias_act(x, b, act="tanh", impl="ref").sum().backward()  # dy is an expanded (stride-0) tensor
    s = x.detach() + b.detach().view(1, 3, 1, 1)
    torch.testing.assert_close(x.grad, 1 - torch.tanh(s) ** 2)
    torch.testing.assert_close(b.grad, (1 - torch.tanh(s) ** 2).sum((0, 2, 3)))


# ---------------------------------------------------------------------------------------------
# edge cases and bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("act", ACTS)
def test_nan_in_nan_out(act):
    x = _rand((2, 3, 4))
    x[0, 1, 2] = float("nan")
    y = bias_act(x, _rand((3,)), act=act, clamp=0.5)
    assert y[0, 1, 2].isnan()
    assert not y.isnan().any() or y.isnan().sum() == 1


def test_empty():
    x = torch.empty(0, 3, 4, dtype=torch.float32, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    y = bias_act(x, b, act="lrelu")
    assert y.shape == (0, 3, 4)
    y.sum().backward()
    assert x.grad.shape == x.shape and torch.equal(b.grad, torch.zeros(3))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(act="gelu"), ValueError, "act"),
    (dict(b=torch.randn(3, 1)), ValueError, "b must be 1-D"),
    (dict(b=torch.randn(5)), ValueError, "length"),
    (dict(dim=3), ValueError, "dim"),
    (dict(dim=-4), ValueError, "dim"),
    (dict(b=torch.randn(4, dtype=torch.float64)), TypeError, "dtype"),
    (dict(impl="numba"), ValueError, "impl"),
    (dict(gain="2"), TypeError, "gain must be a real number"),
    (dict(alpha=[0.1], act="lrelu"), TypeError, "alpha must be a real number"),
    (dict(clamp=float("nan")), ValueError, "clamp must not be NaN"),
    (dict(clamp=True), TypeError, "clamp must be a real number"),
])
def test_bad_input(kwargs, exc, match):
    x = torch.randn(2, 4, 3)
    with pytest.raises(exc, match=match):
        bias_act(x, **kwargs)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.uint8])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match="x must be"):
        bias_act(torch.ones(2, 3, dtype=dtype))


def test_device_mismatch():
    with pytest.raises(ValueError, match="b must be on x's device"):
        bias_act(torch.randn(2, 3), torch.empty(3, device="meta"))


def test_bad_rank_and_type():
    with pytest.raises(ValueError, match="at least 1 dimension"):
        bias_act(torch.tensor(1.0))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        bias_act([1.0, 2.0])


def test_third_order_raises_clearly():
    x = _rand((2, 3)).requires_grad_()
    y = bias_act(x, act="tanh", dim=1, impl="ref")
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.square().sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="third-order"):
        torch.autograd.grad(h.sum(), x)


@pytest.mark.parametrize("act", ["lrelu", "swish"])
def test_bias_gradient_only_where_the_pass_uses_it(act, monkeypatch):
    """A penalty's inner pass (autograd.grad w.r.t. x) computes no dL/db for a leaf bias, first
    or second order; passes that ask for b get it, equal to torch autograd of the definition."""
    B = sys.modules["fastgan.ops.bias_act"]  # the module (fastgan.ops.bias_act is the function)
    seen, real = [], B._bias_act_grad_op
    monkeypatch.setattr(B, "_bias_act_grad_op", lambda *a: (seen.append(a[-1]), real(*a))[1])
    reduces, real_reduce = [], B._reduce_to_bias
    monkeypatch.setattr(B, "_reduce_to_bias", lambda *a: (reduces.append(1), real_reduce(*a))[1])
    x, b = _rand((3, 4, 5)).requires_grad_(), _rand((4,)).requires_grad_()

    def ours(x, b):
        return bias_act(x, b, act=act, impl="ref")

    def theirs(x, b):
        s = x + b.view(1, -1, 1)
        return (torch.nn.functional.leaky_relu(s, 0.2) if act == "lrelu" else s * s.sigmoid()) \
            * math.sqrt(2)

    (g,) = torch.autograd.grad(ours(x, b).square().sum(), x, create_graph=True)
    assert seen == [False]                          # first order: no db
    pen = g.square().sum()
    (gx,) = torch.autograd.grad(pen, x, retain_graph=True)
    assert reduces == []                            # second order w.r.t. x only: no reduction
    (gb,) = torch.autograd.grad(pen, b)
    assert reduces                                  # ... w.r.t. b: reduced

    (g_t,) = torch.autograd.grad(theirs(x, b).square().sum(), x, create_graph=True)
    want = torch.autograd.grad(g_t.square().sum(), (x, b))
    torch.testing.assert_close(g, g_t)
    torch.testing.assert_close(gx, want[0])
    torch.testing.assert_close(gb, want[1])
    seen.clear()
    got = torch.autograd.grad(ours(x, b).square().sum(), (x, b))
    assert seen == [True]
    torch.testing.assert_close(got[1], torch.autograd.grad(theirs(x, b).square().sum(), b)[0])


# ---------------------------------------------------------------------------------------------
# rosinality drop-ins
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("slope", [0.2, 0.01, 0.5])
def test_fused_leaky_relu_matches_rosinality_formula(slope):
    x, bias = _rand((2, 5, 3, 3)), _rand((5,))
    want = torch.nn.functional.leaky_relu(x + bias.view(1, -1, 1, 1), slope) * 2 ** 0.5
    torch.testing.assert_close(fused_leaky_relu(x, bias, negative_slope=slope), want)
    torch.testing.assert_close(fused_leaky_relu(x, None, slope, scale=1.0),
                               torch.nn.functional.leaky_relu(x, slope))


def test_nvlabs_module_spelling():
    x, b = _rand((2, 3, 4)), _rand((3,))
    torch.testing.assert_close(bias_act.bias_act(x, b, act="lrelu", clamp=1.0),
                               bias_act(x, b, act="lrelu", clamp=1.0))


# ---------------------------------------------------------------------------------------------
# torch.library registration
# ---------------------------------------------------------------------------------------------

def _op_samples():
    x = _rand((2, 3, 4)).requires_grad_()
    b = _rand((3,)).requires_grad_()
    xcl = _rand((2, 3, 4, 5)).contiguous(memory_format=torch.channels_last).requires_grad_()
    return [
        (x, b, 1, "lrelu", 0.2, math.sqrt(2), -1.0, "ref"),
        (x, None, 2, "tanh", 0.0, 1.0, 0.5, "ref"),
        (x, b, 1, "swish", 0.0, math.sqrt(2), 0.9, "ref"),
        (xcl, b, 1, "softplus", 0.0, 1.0, -1.0, "ref"),
        (x.detach().float(), b.detach().float(), 1, "selu", 0.0, 1.0, -1.0, "ref"),
        (_rand((2, 3, 8))[:, :, ::2].requires_grad_(), b, 1, "sigmoid", 0.0, 1.0, -1.0, "ref"),
    ]


@pytest.mark.parametrize("i", range(6))
def test_opcheck_forward(i):
    torch.library.opcheck(torch.ops.fastgan.bias_act.default, _op_samples()[i])


@pytest.mark.parametrize("act,clamp", [("lrelu", -1.0), ("tanh", 0.5), ("swish", 0.9), ("linear", -1.0)])
def test_opcheck_backward_ops(act, clamp):
    x = _rand((2, 3, 4)).requires_grad_()
    b = _rand((3,)).requires_grad_()
    from fastgan.ops.bias_act import ACTIVATIONS, _ref_x
    ref_x = _ref_x(act, 0.2, 1.3)
    y = bias_act(x, b, act=act, alpha=0.2, gain=1.3, clamp=clamp, impl="ref").detach()
    dy = _rand((2, 3, 4)).requires_grad_()
    xs, bs = (x, b) if ref_x else (None, None)
    ys = y if (clamp >= 0 or (not ref_x and ACTIVATIONS[act].ref)) else None
    for with_db in (False, True):
        args = (dy, xs, bs, ys, 1, act, 0.2, 1.3, clamp, "ref", with_db)
        torch.library.opcheck(torch.ops.fastgan.bias_act_grad.default, args)
    if ACTIVATIONS[act].has_2nd_grad:
        args2 = (_rand((2, 3, 4)), dy.detach(), None if xs is None else xs.detach(),
                 None if bs is None else bs.detach(), ys, 1, act, 0.2, 1.3, clamp, "ref")
        torch.library.opcheck(torch.ops.fastgan.bias_act_grad2.default, args2)


def test_torch_compile_fullgraph_forward_backward():
    torch._dynamo.reset()

    def layer(x, b):
        y = bias_act(x, b, act="lrelu", clamp=256.0)
        return bias_act(y * 0.5, None, act="swish", dim=1)

    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    for shape in [(2, 4, 6, 6), (3, 4, 5, 7)]:
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
        b = torch.randn(4, requires_grad=True)
        x2, b2 = x.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
        y1, y2 = layer(x, b), compiled(x2, b2)
        torch.testing.assert_close(y2, y1)
        y1.square().sum().backward()
        y2.square().sum().backward()
        torch.testing.assert_close(x2.grad, x.grad)
        torch.testing.assert_close(b2.grad, b.grad)


def test_torch_compile_no_graph_break():
    torch._dynamo.reset()
    x, b = torch.randn(2, 4, 3, 3), torch.randn(4)
    explanation = torch._dynamo.explain(lambda x, b: bias_act(x, b, act="tanh") + 1)(x, b)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_auto_choice_uses_the_triton_block():
    pytest.importorskip("triton")
    from fastgan.kernels.bias_act import launch_config
    assert launch_config(1 << 26, 2)[0] == launch_config(1 << 20, 4)[0] == 4096


def test_auto_impl_resolves_inside_each_op(monkeypatch):
    """impl=None reaches the ops as 'auto' (chosen per op); FASTGAN_IMPL still forces one."""
    import fastgan.ops.bias_act  # noqa: F401
    mod = sys.modules["fastgan.ops.bias_act"]
    seen = []
    real = mod._launch
    monkeypatch.setattr(mod, "_launch", lambda impl, *a, **k: (seen.append(impl), real(impl, *a, **k))[1])
    x = torch.randn(2, 3, 4, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    (g,) = torch.autograd.grad(bias_act(x, b, act="tanh").sum(), x, create_graph=True)
    g.sum().backward()
    assert seen and set(seen) == {"ref"}, seen  # CPU tensors: the reference everywhere
    monkeypatch.setenv("FASTGAN_IMPL", "ref")
    seen.clear()
    bias_act(x, b, act="tanh").sum().backward()
    assert set(seen) == {"ref"}
    with pytest.raises(ValueError, match="impl"):
        bias_act(x, b, impl="auto")


def test_scalar_tensor_parameters():
    x, b = torch.randn(2, 4, 3), torch.randn(4)
    want = bias_act(x, b, act="lrelu", alpha=0.1, gain=1.5, clamp=0.5)
    got = bias_act(x, b, act="lrelu", alpha=torch.tensor(0.1), gain=torch.tensor(1.5),
                   clamp=torch.tensor(0.5))
    torch.testing.assert_close(got, want)
