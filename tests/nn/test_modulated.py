"""fastgan.nn.ModulatedConv2d / ToRGB / NoiseInjection / ConstantInput against float64
definitions in plain torch.nn.functional: per-sample F.conv2d with the explicitly modulated and
demodulated weight, and for up=2 rosinality's upsampling path (per-sample F.conv_transpose2d of
the unflipped weight, then the [1, 3, 3, 1] blur scaled by 4 with pad (1, 1)); the ToRGB skip
against rosinality's Upsample written out.  Also noise modes, gradients (first and second order),
layouts, autocast, torch.compile, bad input, and the impl='triton' interpreter tier."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastgan.nn import ConstantInput, ModulatedConv2d, NoiseInjection, ToRGB

D = torch.float64
SQRT2 = math.sqrt(2)


def _randomize(m):
    """Random values for every parameter (biases and noise strengths included)."""
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    return m


def _blur_def(x, pad, scale=1.0):
    """rosinality's Blur: pad (pad0, pad1) on both axes, then a true convolution with the
    normalised outer product of [1, 3, 3, 1] times ``scale``, per channel."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype)
    k = torch.outer(k, k)
    k = (k / k.sum() * scale).flip([0, 1])
    c = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, k.expand(c, 1, 4, 4), groups=c)


def _upsample_def(x):
    """rosinality's Upsample([1, 3, 3, 1]): zero insertion after each pixel, pad (2, 1), then
    the blur scaled by 4."""
    n, c, h, w = x.shape
    z = x.new_zeros(n, c, 2 * h, 2 * w)
    z[:, :, ::2, ::2] = x
    return _blur_def(z, (2, 1), scale=4)


def _styles_def(m, w):
    k = m.kernel_size
    s = F.linear(w, m.affine.weight / math.sqrt(m.w_dim), m.affine.bias)
    return s / math.sqrt(m.in_channels * k * k)


def _modconv_def(m, x, w, noise=None, gain=1.0, demodulate=True, act="lrelu", clamp=None):
    """Per-sample convolution with the explicitly modulated (and demodulated) weight."""
    k = m.kernel_size
    styles = _styles_def(m, w)
    ys = []
    for n in range(x.shape[0]):
        wn = m.weight * styles[n][None, :, None, None]
        if demodulate:
            wn = wn * (wn.square().sum([1, 2, 3]) + 1e-8).rsqrt()[:, None, None, None]
        xn = x[n:n + 1]
        if getattr(m, "up", 1) == 1:
            ys.append(F.conv2d(xn, wn, padding=k // 2))
        else:  # rosinality's ModulatedConv2d(upsample=True), kernel 3
            assert m.up == 2 and k == 3
            y = F.conv_transpose2d(xn, wn.transpose(0, 1), stride=2, padding=0)
            ys.append(_blur_def(y, (1, 1), scale=4))
    y = torch.cat(ys)
    if noise is not None:
        y = y + noise * m.noise_strength
    if m.bias is not None:
        y = y + m.bias[None, :, None, None]
    if act == "lrelu":
        y = F.leaky_relu(y, 0.2) * SQRT2
    y = y * gain
    if clamp is not None:
        y = y.clamp(-clamp * gain, clamp * gain)
    return y


def _layer(up=1, fused=True, demodulate=True, clamp=None, use_noise=True, i=3, o=4, k=3,
           w_dim=5, res=8, **kw):
    m = ModulatedConv2d(i, o, k, w_dim, up=up, demodulate=demodulate, use_noise=use_noise,
                        resolution=res if use_noise else None, conv_clamp=clamp,
                        fused_modconv=fused, **kw)
    return _randomize(m).double()


CASES = [  # up, fused_modconv, demodulate, conv_clamp
    (1, True, True, None), (1, False, True, None), (1, True, False, None), (1, True, True, 0.4),
    (2, True, True, None), (2, False, True, 0.4), (2, True, False, None),
]


@pytest.mark.parametrize("up,fused,demodulate,clamp", CASES)
def test_modulated_conv2d_vs_definition(up, fused, demodulate, clamp):
    m = _layer(up=up, fused=fused, demodulate=demodulate, clamp=clamp, res=8)
    h = 8 // up
    x, w = torch.randn(2, 3, h, h, dtype=D), torch.randn(2, 5, dtype=D)
    noise = torch.randn(2, 1, 8, 8, dtype=D)
    for gain in (1.0, 0.6):
        y = m(x, w, noise=noise, gain=gain)
        assert y.shape == (2, 4, 8, 8) and y.dtype == D
        want = _modconv_def(m, x, w, noise, gain=gain, demodulate=demodulate, clamp=clamp)
        torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-10)
    # noise_mode='const' is noise_const (shared by the batch); 'none' adds nothing
    torch.testing.assert_close(m(x, w, noise_mode="const"),
                               _modconv_def(m, x, w, m.noise_const, demodulate=demodulate,
                                            clamp=clamp), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m(x, w, noise_mode="none"),
                               _modconv_def(m, x, w, None, demodulate=demodulate, clamp=clamp),
                               rtol=1e-10, atol=1e-10)


def test_modulated_conv2d_1x1_and_tanh():
    m = _layer(k=1, use_noise=False, activation="tanh")
    x, w = torch.randn(3, 3, 5, 6, dtype=D), torch.randn(3, 5, dtype=D)
    want = torch.tanh(_modconv_def(m, x, w, act="linear"))
    torch.testing.assert_close(m(x, w), want, rtol=1e-10, atol=1e-10)


def test_noise_modes():
    m = _layer(up=2, res=8)
    x, w = torch.randn(2, 3, 4, 4, dtype=D), torch.randn(2, 5, dtype=D)
    # 'random': randn [N, 1, OH, OW] from the global generator
    torch.manual_seed(7)
    y = m(x, w)
    torch.manual_seed(7)
    want = _modconv_def(m, x, w, torch.randn(2, 1, 8, 8, dtype=D))
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-10)
    assert not torch.equal(m(x, w), y)  # fresh noise each call
    # 'const' and 'none' are deterministic, and differ (noise_strength != 0)
    assert torch.equal(m(x, w, noise_mode="const"), m(x, w, noise_mode="const"))
    assert torch.equal(m(x, w, noise_mode="none"), m(x, w, noise_mode="none"))
    assert not torch.allclose(m(x, w, noise_mode="const"), m(x, w, noise_mode="none"))
    # explicit noise wins over noise_mode and broadcasts from [1, 1, OH, OW] and [OH, OW]
    nz = torch.randn(8, 8, dtype=D)
    want = _modconv_def(m, x, w, nz)
    for shaped in (nz, nz[None, None], nz.expand(2, 1, 8, 8)):
        torch.testing.assert_close(m(x, w, noise_mode="none", noise=shaped), want,
                                   rtol=1e-10, atol=1e-10)
    # noise_strength starts at zero
    assert ModulatedConv2d(3, 4, 3, 5).noise_strength.item() == 0.0


def test_use_noise_false_state_dict_and_init():
    m = ModulatedConv2d(3, 4, 3, 5, use_noise=False, bias=False)
    assert m.noise_strength is None and m.noise_const is None
    assert sorted(m.state_dict()) == ["affine.bias", "affine.weight", "weight"]
    m = _randomize(m).double()
    x, w = torch.randn(2, 3, 4, 4, dtype=D), torch.randn(2, 5, dtype=D)
    want = _modconv_def(m, x, w)
    for kw in ({}, {"noise_mode": "const"}, {"noise": torch.randn(2, 1, 4, 4, dtype=D)}):
        torch.testing.assert_close(m(x, w, **kw), want, rtol=1e-10, atol=1e-10)

    m = ModulatedConv2d(3, 4, 3, 5, up=2, resolution=16)
    sd = m.state_dict()
    assert sorted(sd) == ["affine.bias", "affine.weight", "bias", "noise_const", "noise_strength",
                          "weight"]  # resample_filter is not persistent
    assert sd["weight"].shape == (4, 3, 3, 3) and sd["bias"].shape == (4,)
    assert sd["noise_strength"].shape == () and sd["noise_const"].shape == (16, 16)
    assert sd["affine.weight"].shape == (3, 5) and torch.equal(sd["affine.bias"], torch.ones(3))
    assert torch.equal(m.bias, torch.zeros(4)) and m.resample_filter.shape == (4, 4)
    assert all(t.dtype == torch.float32 for t in sd.values())
    assert ModulatedConv2d(3, 4, 3, 5).resample_filter is None


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv2d_gradcheck(up):
    m = _layer(up=up, i=2, o=2, w_dim=3, res=4)
    h = 4 // up
    x = torch.randn(2, 2, h, h, dtype=D, requires_grad=True)
    w = torch.randn(2, 3, dtype=D, requires_grad=True)
    wt = m.weight.detach().clone().requires_grad_()

    def fn(x, wt, w):
        return torch.func.functional_call(m, {"weight": wt}, (x, w), {"noise_mode": "const"})

    # the up=2 path is several ops (~0.1 s a call here): full Jacobians would take ~10 s
    assert torch.autograd.gradcheck(fn, (x, wt, w), fast_mode=(up > 1))
    assert torch.autograd.gradgradcheck(fn, (x, wt, w), fast_mode=True)


@pytest.mark.parametrize("up,fused", [(1, True), (1, False), (2, True)])
def test_modulated_conv2d_channels_last(up, fused):
    m = _randomize(ModulatedConv2d(4, 6, 3, 5, up=up, fused_modconv=fused, resolution=8))
    x, w = torch.randn(2, 4, 8 // up, 8 // up), torch.randn(2, 5)
    y = m(x.contiguous(memory_format=torch.channels_last), w, noise_mode="const")
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, m(x, w, noise_mode="const"), rtol=1e-5, atol=1e-5)


def test_autocast_bf16():
    mods = [_randomize(ModulatedConv2d(4, 6, 3, 5, resolution=8)),
            _randomize(ModulatedConv2d(4, 6, 3, 5, up=2, resolution=16, fused_modconv=False)),
            _randomize(ToRGB(4, 3, 5))]
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 5)
    for m in mods:
        kw = {"noise_mode": "const"} if isinstance(m, ModulatedConv2d) else \
            {"skip": torch.randn(2, 3, 4, 4)}
        want = m(x, w, **kw)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = m(x, w, **kw)
        assert got.dtype == torch.bfloat16
        tol = 0.03 * want.abs().max().item()
        torch.testing.assert_close(got.float(), want, rtol=0.05, atol=tol)
    ni = _randomize(NoiseInjection())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ni(x).dtype == torch.bfloat16


def test_modulated_conv2d_bad_input():
    m = ModulatedConv2d(3, 4, 3, 5, resolution=8)
    x, w = torch.randn(2, 3, 8, 8), torch.randn(2, 5)
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        m(x, w, noise_mode="const_")
    with pytest.raises(ValueError, match=r"x must be \[N, in_channels=3, H, W\]"):
        m(torch.randn(2, 4, 8, 8), w)
    with pytest.raises(ValueError, match=r"w must be \[N=2, w_dim=5\]"):
        m(x, torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"w must be \[N=2, w_dim=5\]"):
        m(x, torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"noise must be .*\[2, 1, 8, 8\]"):
        m(x, w, noise=torch.randn(2, 1, 4, 4))
    with pytest.raises(ValueError, match="noise_const"):
        m(torch.randn(2, 3, 4, 4), w, noise_mode="const")  # resolution 8, output 4
    with pytest.raises(ValueError, match="needs noise_const"):
        ModulatedConv2d(3, 4, 3, 5)(x, w, noise_mode="const")
    with pytest.raises(ValueError, match="up must be an int >= 1"):
        ModulatedConv2d(3, 4, 3, 5, up=0)


def test_non_float_inputs_are_type_errors():
    # an integer w used to go through the style affine in integer math (weights truncated to 0)
    # and quietly give a wrong image; an integer x failed deep inside torch.randn
    m, rgb = ModulatedConv2d(3, 4, 3, 5, resolution=8), ToRGB(3, 3, 5)
    x, w = torch.randn(2, 3, 8, 8), torch.randn(2, 5)
    for mod in (m, rgb):
        name = type(mod).__name__
        with pytest.raises(TypeError, match=f"{name}: w must be a floating-point tensor"):
            mod(x, w.long())
        with pytest.raises(TypeError, match=f"{name}: x must be a floating-point tensor"):
            mod(x.long(), w)
    with pytest.raises(TypeError, match="ToRGB: skip must be a floating-point tensor"):
        rgb(x, w, skip=torch.ones(2, 3, 8, 8, dtype=torch.long))
    ni = NoiseInjection()
    with pytest.raises(TypeError, match="NoiseInjection: image must be a floating-point tensor"):
        ni(x.long())
    with pytest.raises(TypeError, match="NoiseInjection: noise must be a floating-point tensor"):
        ni(x, torch.ones(2, 1, 8, 8, dtype=torch.long))


def test_numpy_integer_sizes():
    m = ModulatedConv2d(np.int64(3), np.int64(4), np.int64(3), np.int64(5), up=np.int64(2),
                        resolution=np.int64(8))
    assert all(type(v) is int for v in (m.in_channels, m.out_channels, m.kernel_size, m.w_dim,
                                        m.up, m.resolution))
    assert m(torch.randn(2, 3, 4, 4), torch.randn(2, 5), noise_mode="const").shape == (2, 4, 8, 8)
    rgb = ToRGB(np.int64(4), np.int64(3), np.int64(5))
    assert rgb(torch.randn(2, 4, 8, 8), torch.randn(2, 5)).shape == (2, 3, 8, 8)
    assert ConstantInput(np.int64(6), np.int64(4))(2).shape == (2, 6, 4, 4)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inductor's own imports
def test_modulated_conv2d_torch_compile_const_noise():
    torch._dynamo.reset()
    m = _randomize(ModulatedConv2d(4, 6, 3, 5, resolution=8, conv_clamp=1.5))
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 5)
    compiled = torch.compile(m, fullgraph=True)
    torch.testing.assert_close(compiled(x, w, noise_mode="const"), m(x, w, noise_mode="const"),
                               rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# ToRGB, NoiseInjection, ConstantInput
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k,clamp,fused", [(1, None, True), (3, 0.5, False), (1, 0.5, True)])
def test_torgb_vs_definition(k, clamp, fused):
    m = _randomize(ToRGB(4, 3, 5, kernel_size=k, conv_clamp=clamp, fused_modconv=fused)).double()
    x, w = torch.randn(2, 4, 8, 8, dtype=D), torch.randn(2, 5, dtype=D)
    y0 = _modconv_def(m, x, w, demodulate=False, act="linear", clamp=clamp)
    torch.testing.assert_close(m(x, w), y0, rtol=1e-10, atol=1e-10)
    skip = torch.randn(2, 3, 8, 8, dtype=D)
    torch.testing.assert_close(m(x, w, skip=skip), y0 + skip, rtol=1e-10, atol=1e-10)
    skip = torch.randn(2, 3, 4, 4, dtype=D)
    torch.testing.assert_close(m(x, w, skip=skip), y0 + _upsample_def(skip), rtol=1e-10,
                               atol=1e-10)


def test_torgb_state_dict_layout_and_bad_skip():
    m = ToRGB(8, 3, 5)
    sd = m.state_dict()
    assert sorted(sd) == ["affine.bias", "affine.weight", "bias", "weight"]
    assert sd["weight"].shape == (3, 8, 1, 1) and torch.equal(sd["bias"], torch.zeros(3))
    assert torch.equal(sd["affine.bias"], torch.ones(8)) and m.resample_filter.shape == (4, 4)
    _randomize(m)
    x, w = torch.randn(2, 8, 8, 8), torch.randn(2, 5)
    skip = torch.randn(2, 3, 4, 4)
    y = m(x.contiguous(memory_format=torch.channels_last), w,
          skip.contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, m(x, w, skip), rtol=1e-5, atol=1e-5)
    for bad in (torch.randn(2, 3, 3, 3), torch.randn(2, 3, 16, 16), torch.randn(2, 4, 8, 8),
                torch.randn(1, 3, 8, 8)):
        with pytest.raises(ValueError, match="skip must be"):
            m(x, w, skip=bad)


def test_noise_injection():
    m = _randomize(NoiseInjection()).double()
    assert list(NoiseInjection().state_dict()) == ["weight"]
    assert NoiseInjection().weight.shape == (1,)
    x, nz = torch.randn(2, 3, 5, 5, dtype=D), torch.randn(2, 1, 5, 5, dtype=D)
    torch.testing.assert_close(m(x, nz), x + m.weight * nz)
    torch.manual_seed(3)
    y = m(x)
    torch.manual_seed(3)
    torch.testing.assert_close(y, x + m.weight * torch.randn(2, 1, 5, 5, dtype=D))
    with pytest.raises(ValueError, match="noise must broadcast"):
        m(x, torch.randn(2, 1, 4, 4, dtype=D))


def test_constant_input():
    m = ConstantInput(6, size=4)
    assert list(m.state_dict()) == ["input"] and m.input.shape == (1, 6, 4, 4)
    y = m(3)
    assert y.shape == (3, 6, 4, 4) and torch.equal(y[2], m.input[0])
    assert m(torch.randn(5, 9)).shape == (5, 6, 4, 4)
    y.sum().backward()
    torch.testing.assert_close(m.input.grad, torch.full_like(m.input, 3.0))
    with pytest.raises(ValueError, match="batch must be"):
        m(-1)
    with pytest.raises(ValueError, match="batch must be"):
        m(torch.tensor(2.0))


# ------------------------------------------------------------------------------------------------
# interpreter tier: impl='triton' (TRITON_INTERPRET=1, CPU tensors) against impl='ref'
# ------------------------------------------------------------------------------------------------

@pytest.mark.interpret
@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv2d_triton_matches_ref(up):
    ref = _randomize(ModulatedConv2d(3, 4, 3, 5, up=up, resolution=8, impl="ref"))
    tri = ModulatedConv2d(3, 4, 3, 5, up=up, resolution=8, impl="triton")
    tri.load_state_dict(ref.state_dict())
    x, w = torch.randn(2, 3, 8 // up, 8 // up), torch.randn(2, 5)
    xr, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, yt = ref(xr, w, noise_mode="const"), tri(xt, w, noise_mode="const")
    torch.testing.assert_close(yt, yr, rtol=1e-4, atol=1e-4)
    dy = torch.randn_like(yr)
    yr.backward(dy)
    yt.backward(dy)
    torch.testing.assert_close(xt.grad, xr.grad, rtol=1e-4, atol=1e-4)
