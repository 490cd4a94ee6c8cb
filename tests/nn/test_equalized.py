"""fastgan.nn.EqualLinear / EqualConv2d against float64 definitions written in plain
torch.nn.functional (rosinality's blur + strided convolution for down=2), gradients, layouts,
autocast, torch.compile, bad input, and the impl='triton' interpreter tier."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastgan.nn import EqualConv2d, EqualLinear

D = torch.float64
SQRT2 = math.sqrt(2)


def _randomize(m):
    """Random values for every parameter (biases included) so that each one matters."""
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    return m


def _act(y, act):
    if act in ("lrelu", "fused_lrelu"):
        return F.leaky_relu(y, 0.2) * SQRT2
    if act == "tanh":
        return torch.tanh(y)
    assert act in ("linear", None)
    return y


def _blur_def(x, pad, scale=1.0):
    """rosinality's Blur: pad, then a true convolution with the normalised outer product of
    [1, 3, 3, 1] (times ``scale``), per channel."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype)
    k = torch.outer(k, k)
    k = (k / k.sum() * scale).flip([0, 1])
    c = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, k.expand(c, 1, 4, 4), groups=c)


# ------------------------------------------------------------------------------------------------
# EqualLinear
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("act", ["linear", "lrelu", "fused_lrelu", None, "tanh"])
@pytest.mark.parametrize("bias,lr", [(True, 1.0), (True, 0.01), (False, 0.5)])
def test_equal_linear_vs_definition(act, bias, lr):
    m = _randomize(EqualLinear(6, 5, bias=bias, lr_multiplier=lr, activation=act)).double()
    x = torch.randn(4, 6, dtype=D)
    b = None if not bias else m.bias * lr
    want = _act(F.linear(x, m.weight * (lr / math.sqrt(6)), b), act)
    torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)
    # leading dims are flattened
    x3 = torch.randn(2, 3, 6, dtype=D)
    want3 = _act(F.linear(x3, m.weight * (lr / math.sqrt(6)), b), act)
    torch.testing.assert_close(m(x3), want3, rtol=1e-12, atol=1e-12)


def test_equal_linear_init_and_state_dict():
    m = EqualLinear(300, 200, bias_init=0.5, lr_multiplier=0.01)
    assert list(m.state_dict()) == ["weight", "bias"]
    assert m.weight.shape == (200, 300) and m.bias.shape == (200,)
    assert m.weight.dtype == torch.float32
    assert abs(m.weight.std().item() - 100) < 3  # randn / lr_multiplier
    assert torch.equal(m.bias, torch.full((200,), 0.5))
    assert m.weight_gain == pytest.approx(0.01 / math.sqrt(300)) and m.bias_gain == 0.01
    assert list(EqualLinear(3, 2, bias=False).state_dict()) == ["weight"]
    assert EqualLinear(3, 2, activation="fused_lrelu").activation == "lrelu"
    assert EqualLinear(3, 2, activation=None).activation == "linear"


def test_equal_linear_gradients():
    m = _randomize(EqualLinear(4, 3, activation="tanh")).double()
    x = torch.randn(2, 4, dtype=D, requires_grad=True)
    w = m.weight.detach().clone().requires_grad_()
    b = m.bias.detach().clone().requires_grad_()
    fn = lambda x, w, b: torch.func.functional_call(m, {"weight": w, "bias": b}, (x,))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


def test_equal_linear_bad_input():
    m = EqualLinear(4, 3)
    with pytest.raises(ValueError, match=r"x must be \[N, in_features=4\]"):
        m(torch.randn(2, 5))
    with pytest.raises(ValueError, match="unknown activation"):
        EqualLinear(4, 3, activation="gelu")
    with pytest.raises(ValueError, match="in_features must be an int >= 1"):
        EqualLinear(0, 3)
    with pytest.raises(ValueError, match="in_features must be an int >= 1"):
        EqualLinear(4.0, 3)
    with pytest.raises(ValueError, match="in_features must be an int >= 1"):
        EqualLinear(True, 3)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_non_float_input_is_a_type_error(dtype):
    # an integer x used to run integer math: the scaled weight truncated to 0, zeros returned
    x = torch.ones(2, 4, 8, 8, dtype=dtype)
    with pytest.raises(TypeError, match=rf"EqualLinear: x must be a floating-point tensor, got "
                                        rf"dtype {dtype}"):
        EqualLinear(8, 3)(torch.ones(2, 8, dtype=dtype))
    for m in (EqualConv2d(4, 6, 3), EqualConv2d(4, 6, 3, down=2), EqualConv2d(4, 6, 1, up=2)):
        with pytest.raises(TypeError, match="EqualConv2d: x must be a floating-point tensor"):
            m(x)


def test_numpy_and_torch_integer_sizes():
    lin = EqualLinear(np.int64(8), torch.tensor(3))
    conv = EqualConv2d(np.int32(4), np.int64(6), np.int64(3), down=np.int64(2))
    assert type(lin.in_features) is int and type(lin.out_features) is int
    assert lin.weight.shape == (3, 8) and lin(torch.randn(2, 8)).shape == (2, 3)
    assert all(type(v) is int for v in (conv.in_channels, conv.out_channels, conv.kernel_size,
                                        conv.down))
    assert conv(torch.randn(2, 4, 8, 8)).shape == (2, 6, 4, 4)


# ------------------------------------------------------------------------------------------------
# EqualConv2d
# ------------------------------------------------------------------------------------------------

def _conv_def(m, x, gain=1.0):
    """EqualConv2d written out: (rosinality blur +) F.conv2d / F.conv_transpose2d, bias, act."""
    k = m.kernel_size
    wt = m.weight * (m.lr_multiplier / math.sqrt(m.in_channels * k * k))
    if m.up == 1 and m.down == 1:
        y = F.conv2d(x, wt, padding=k // 2)
    elif m.down == 2:  # rosinality's ConvLayer(downsample=True) / skip layer
        p = (4 - 2) + (k - 1)
        y = F.conv2d(_blur_def(x, ((p + 1) // 2, p // 2)), wt, stride=2)
    else:  # up == 2, k == 3: rosinality's upsampling path
        assert m.up == 2 and k == 3
        y = _blur_def(F.conv_transpose2d(x, wt.transpose(0, 1), stride=2), (1, 1), scale=4)
    if m.bias is not None:
        y = y + (m.bias * m.lr_multiplier)[None, :, None, None]
    y = _act(y, m.activation) * gain
    if m.conv_clamp is not None:
        y = y.clamp(-m.conv_clamp * gain, m.conv_clamp * gain)
    return y


@pytest.mark.parametrize("k,up,down,act,clamp,bias,lr", [
    (3, 1, 1, "lrelu", None, True, 1.0),
    (1, 1, 1, "linear", None, True, 0.1),
    (3, 1, 1, "lrelu", 0.3, False, 1.0),
    (3, 1, 2, "lrelu", None, True, 1.0),    # rosinality ConvLayer(downsample=True)
    (1, 1, 2, "linear", None, False, 1.0),  # rosinality's skip
    (3, 1, 2, "tanh", 0.5, True, 1.0),
    (3, 2, 1, "lrelu", None, True, 1.0),
])
def test_equal_conv2d_vs_definition(k, up, down, act, clamp, bias, lr):
    m = _randomize(EqualConv2d(3, 5, k, bias=bias, activation=act, up=up, down=down,
                               conv_clamp=clamp, lr_multiplier=lr)).double()
    x = torch.randn(2, 3, 8, 8, dtype=D)
    y = m(x)
    assert y.shape == (2, 5, 8 * up // down, 8 * up // down) and y.dtype == D
    torch.testing.assert_close(y, _conv_def(m, x), rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(m(x, gain=0.7), _conv_def(m, x, gain=0.7), rtol=1e-11, atol=1e-11)


def test_equal_conv2d_init_and_state_dict():
    m = EqualConv2d(4, 6, 3, down=2)
    assert list(m.state_dict()) == ["weight", "bias"]  # resample_filter is not persistent
    assert m.weight.shape == (6, 4, 3, 3) and torch.equal(m.bias, torch.zeros(6))
    assert m.resample_filter.shape == (4, 4)
    torch.testing.assert_close(m.resample_filter.sum(), torch.tensor(1.0))
    assert m.weight_gain == pytest.approx(1 / math.sqrt(4 * 9))
    assert list(EqualConv2d(4, 6, 1, bias=False).state_dict()) == ["weight"]


@pytest.mark.parametrize("down", [1, 2])
def test_equal_conv2d_gradcheck(down):
    m = _randomize(EqualConv2d(2, 2, 3, activation="lrelu", down=down)).double()
    x = torch.randn(2, 2, 4, 4, dtype=D, requires_grad=True)
    w = m.weight.detach().clone().requires_grad_()
    b = m.bias.detach().clone().requires_grad_()
    fn = lambda x, w, b: torch.func.functional_call(m, {"weight": w, "bias": b}, (x,))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b), fast_mode=True)  # tiny but slow otherwise


@pytest.mark.parametrize("up,down", [(1, 1), (1, 2), (2, 1)])
def test_equal_conv2d_channels_last(up, down):
    m = _randomize(EqualConv2d(4, 6, 3, activation="lrelu", up=up, down=down))
    x = torch.randn(2, 4, 8, 8)
    y = m(x.contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, m(x), rtol=1e-5, atol=1e-5)


def test_equal_autocast_bf16():
    conv = _randomize(EqualConv2d(4, 6, 3, activation="lrelu", down=2))
    lin = _randomize(EqualLinear(8, 5, activation="lrelu"))
    lin_plain = _randomize(EqualLinear(8, 5))
    x, z = torch.randn(2, 4, 8, 8), torch.randn(3, 8)
    for m, a in ((conv, x), (lin, z), (lin_plain, z)):
        want = m(a)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = m(a)
        assert got.dtype == torch.bfloat16 and m.weight.dtype == torch.float32
        tol = 0.05 * want.abs().max().item()
        torch.testing.assert_close(got.float(), want, rtol=0.05, atol=tol)


def test_equal_conv2d_bad_input():
    m = EqualConv2d(4, 6, 3)
    with pytest.raises(ValueError, match=r"x must be \[N, in_channels=4, H, W\]"):
        m(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"x must be \[N, in_channels=4, H, W\]"):
        m(torch.randn(4, 8, 8))
    with pytest.raises(ValueError, match="down must be an int >= 1"):
        EqualConv2d(4, 6, 3, down=0)
    with pytest.raises(ValueError, match="unknown activation"):
        EqualConv2d(4, 6, 3, activation="nope")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inductor's own imports
def test_equal_conv2d_torch_compile_down2():
    torch._dynamo.reset()
    m = _randomize(EqualConv2d(4, 6, 3, activation="lrelu", down=2, conv_clamp=1.0))
    x = torch.randn(2, 4, 8, 8)
    compiled = torch.compile(m, fullgraph=True)
    torch.testing.assert_close(compiled(x), m(x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# interpreter tier: impl='triton' (TRITON_INTERPRET=1, CPU tensors) against impl='ref'
# ------------------------------------------------------------------------------------------------

@pytest.mark.interpret
def test_equal_conv2d_down2_triton_matches_ref():
    ref = _randomize(EqualConv2d(3, 4, 3, activation="lrelu", down=2, impl="ref"))
    tri = EqualConv2d(3, 4, 3, activation="lrelu", down=2, impl="triton")
    tri.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 8, 8)
    xr, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, yt = ref(xr), tri(xt)
    torch.testing.assert_close(yt, yr, rtol=1e-4, atol=1e-4)
    dy = torch.randn_like(yr)
    yr.backward(dy)
    yt.backward(dy)
    torch.testing.assert_close(xt.grad, xr.grad, rtol=1e-4, atol=1e-4)
