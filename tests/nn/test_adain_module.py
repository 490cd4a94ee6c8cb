"""fastgan.nn.AdaIN: StyleGAN1 semantics (gamma = 1 + scale, equalized-LR affine, zero bias init),
shapes and dtypes, gradients to x, w and the affine parameters (first and second order)."""
import math

import pytest
import torch
import torch.nn.functional as F

from fastgan.nn import AdaIN
from tests._adain_oracle import definition


def _manual(mod, x, w):
    """The module written out: style = w (W / sqrt(w_dim))^T + b; gamma = 1 + style[:, :C]."""
    wd = mod.weight.double() / math.sqrt(mod.w_dim)
    style = w.double() @ wd.t() + mod.bias.double()
    c = mod.channels
    return definition(x.double(), 1 + style[:, :c], style[:, c:], eps=mod.eps)


def test_init_and_state_dict():
    torch.manual_seed(0)
    mod = AdaIN(256, 64)
    assert set(mod.state_dict()) == {"weight", "bias"}
    assert mod.weight.shape == (512, 64) and mod.bias.shape == (512,)
    assert torch.equal(mod.bias, torch.zeros(512))
    # weights stored at unit scale (the 1 / sqrt(w_dim) gain is applied at run time)
    assert abs(mod.weight.std().item() - 1) < 0.02 and abs(mod.weight.mean().item()) < 0.02
    assert mod.weight_gain == pytest.approx(1 / 8)
    assert "channels=256, w_dim=64" in repr(mod)


def test_gamma_is_one_plus_scale():
    mod = AdaIN(3, 4)
    with torch.no_grad():
        mod.weight.copy_(torch.arange(24.0).reshape(6, 4) / 10)
        mod.bias.copy_(torch.tensor([0.1, 0.2, 0.3, -1.0, 0.0, 1.0]))
    w = torch.tensor([[1.0, 0.0, -1.0, 2.0]])
    gamma, beta = mod.style(w)
    style = w @ (mod.weight / 2).t() + mod.bias  # 1 / sqrt(4) = 1/2
    torch.testing.assert_close(gamma, 1 + style[:, :3])
    torch.testing.assert_close(beta, style[:, 3:])


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_forward_matches_definition(fmt):
    torch.manual_seed(1)
    mod = AdaIN(5, 7).double()
    with torch.no_grad():
        mod.bias.normal_()
    x = torch.randn(3, 5, 6, 4, dtype=torch.float64).contiguous(memory_format=fmt)
    w = torch.randn(3, 7, dtype=torch.float64)
    y = mod(x, w)
    assert y.shape == x.shape and y.dtype == torch.float64
    torch.testing.assert_close(y, _manual(mod, x, w), rtol=1e-12, atol=1e-12)


def test_fresh_module_with_zero_style_is_instance_norm():
    mod = AdaIN(4, 8)
    x = torch.randn(2, 4, 5, 5)
    y = mod(x, torch.zeros(2, 8))  # scale = 0, beta = 0: gamma = 1
    torch.testing.assert_close(y, F.instance_norm(x, eps=1e-5), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_x(dtype):
    mod = AdaIN(4, 8)
    x = torch.randn(2, 4, 6, 6).to(dtype)
    w = torch.randn(2, 8)
    y = mod(x, w)
    assert y.dtype == dtype
    tol = 1e-2 if dtype == torch.float16 else 5e-2
    torch.testing.assert_close(y.double(), _manual(mod, x, w), rtol=tol, atol=tol)


def test_autocast_bf16():
    """Under autocast AdaIN computes in the autocast dtype like every fastgan.nn layer; it used to
    fail (autocast ran the style affine in bf16, which fastgan.ops.adain does not take)."""
    torch.manual_seed(4)
    mod = AdaIN(8, 16)
    with torch.no_grad():
        mod.bias.normal_()
    x = torch.randn(2, 8, 6, 6)
    w = torch.randn(2, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mod(x, w)
        gamma, beta = mod.style(w)
    assert y.dtype == torch.bfloat16
    assert gamma.dtype == beta.dtype == torch.float32  # the style is applied in float32
    want = _manual(mod, x, w.detach())
    torch.testing.assert_close(y.double(), want, rtol=5e-2, atol=5e-2)
    assert not torch.equal(y.double(), want.to(torch.float32).double())  # it really ran in bf16
    # and trains: gradients reach the affine layer and w
    y.float().square().sum().backward()
    assert mod.weight.grad.isfinite().all() and mod.weight.grad.abs().sum() > 0
    assert w.grad.isfinite().all() and w.grad.abs().sum() > 0


def test_non_float_inputs_are_type_errors():
    mod = AdaIN(4, 8)
    x, w = torch.randn(2, 4, 5, 5), torch.randn(2, 8)
    with pytest.raises(TypeError, match="AdaIN: x must be a floating-point tensor"):
        mod(x.long(), w)
    with pytest.raises(TypeError, match="AdaIN: w must be a floating-point tensor"):
        mod(x, w.long())


def test_equalized_lr_gradients():
    """d loss / d weight carries the runtime gain 1 / sqrt(w_dim) (the equalized-LR effect)."""
    torch.manual_seed(2)
    mod = AdaIN(3, 16).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    w = torch.randn(2, 16, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    (mod(x, w) * g).sum().backward()
    # the same computation with an explicit, pre-scaled weight as a leaf
    wl = (mod.weight.detach() / 4).requires_grad_()  # sqrt(16) = 4
    bl = mod.bias.detach().clone().requires_grad_()
    wi = w.detach().clone().requires_grad_()
    style = wi @ wl.t() + bl
    (definition(x, 1 + style[:, :3], style[:, 3:]) * g).sum().backward()
    torch.testing.assert_close(mod.weight.grad, wl.grad / 4, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(mod.bias.grad, bl.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w.grad, wi.grad, rtol=1e-10, atol=1e-12)
    assert mod.weight.grad.abs().sum() > 0 and mod.bias.grad.abs().sum() > 0


def test_gradcheck_through_module():
    torch.manual_seed(3)
    mod = AdaIN(2, 3).double()
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    params = (mod.weight, mod.bias)

    def fn(x, w, weight, bias):
        return torch.func.functional_call(mod, {"weight": weight, "bias": bias}, (x, w))

    assert torch.autograd.gradcheck(fn, (x, w, *params))
    assert torch.autograd.gradgradcheck(fn, (x, w, *params))


def test_gradient_penalty_reaches_affine_weights():
    # a gradient penalty through the layer (create_graph) still trains the affine layer
    mod = AdaIN(4, 8)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    w = torch.randn(2, 8)
    y = mod(x, w)
    (gx,) = torch.autograd.grad((y ** 3).sum(), x, create_graph=True)
    gx.square().sum().backward()
    assert mod.weight.grad is not None and mod.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("x_shape,w_shape,match", [
    ((2, 3, 4, 4), (2, 8), "x must be"),
    ((2, 4, 4), (2, 8), "x must be"),
    ((2, 4, 4, 4), (2, 7), "w must be"),
    ((2, 4, 4, 4), (2, 8, 1), "w must be"),
])
def test_bad_shapes(x_shape, w_shape, match):
    mod = AdaIN(4, 8)
    with pytest.raises(ValueError, match=match):
        mod(torch.randn(x_shape), torch.randn(w_shape))


def test_bad_construction():
    with pytest.raises(ValueError, match="channels and w_dim"):
        AdaIN(0, 8)
