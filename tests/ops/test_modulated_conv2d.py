"""modulated_conv2d on the reference backend: every execution path against the definition written
out per sample in float64 (explicit per-sample weights, explicit resampling), gradients of first and
second order (including the path-length pattern: grad w.r.t. styles with create_graph), the fp16
pre-normalisation, opcheck of the three registered ops, torch.compile, bad input, NaN."""
import importlib
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from fastgan.ops import modulated_conv2d, no_weight_gradients, setup_filter
from fastgan.ops.modulated_conv2d import _dcoefs_op, _dgrad_op, _epilogue_op, _fused_op, _wgrad_op
from tests.ops.test_conv2d_resample import reference as conv2d_resample_definition

ACTS = {"linear": (0.0, 1.0), "lrelu": (0.2, math.sqrt(2)), "tanh": (0.0, 1.0),
        "swish": (0.0, math.sqrt(2)), "relu": (0.0, math.sqrt(2))}


def _act64(v, act, alpha):
    if act == "linear":
        return v
    if act == "lrelu":
        return torch.where(v > 0, v, v * alpha)
    if act == "relu":
        return v.clamp_min(0)
    if act == "tanh":
        return torch.tanh(v)
    return v * torch.sigmoid(v)


def definition(x, weight, styles, noise=None, up=1, down=1, padding=0, f=None, demodulate=True,
               flip_weight=True, bias=None, act="linear", alpha=None, gain=None, clamp=None):
    """float64, per sample: w_n = weight * styles[n] (input channels), demodulate w_n, run the
    general-order conv2d_resample definition with w_n, add noise, bias, activation, gain, clamp."""
    d64 = lambda t: None if t is None else t.detach().to(torch.float64).cpu()  # noqa: E731
    x, weight, styles, noise, bias = map(d64, (x, weight, styles, noise, bias))
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum([1, 2, 3], keepdim=True) + 1e-8).sqrt()
        outs.append(conv2d_resample_definition(x[n:n + 1], w, f=f, up=up, down=down,
                                               padding=padding, flip_weight=flip_weight))
    y = torch.cat(outs)
    if noise is not None:
        y = y + noise
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    da, dg = ACTS[act]
    y = _act64(y, act, da if alpha is None else alpha) * (dg if gain is None else gain)
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return y


def _inputs(n=2, i=3, o=4, h=6, w=5, k=3, dtype=torch.float64, noise="per_sample", grad=False,
            seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, i, h, w, generator=g, dtype=torch.float64)
    wt = torch.randn(o, i, k, k, generator=g, dtype=torch.float64)
    s = torch.randn(n, i, generator=g, dtype=torch.float64) + 1
    b = torch.randn(o, generator=g, dtype=torch.float64)
    nz = None
    if noise == "per_sample":
        nz = torch.randn(n, 1, h, w, generator=g, dtype=torch.float64)
    elif noise == "shared":
        nz = torch.randn(1, 1, h, w, generator=g, dtype=torch.float64)
    elif noise == "full":
        nz = torch.randn(n, o, h, w, generator=g, dtype=torch.float64)
    ts = [t.to(dtype) for t in (x, wt, s, b)] + [None if nz is None else nz.to(dtype)]
    if grad:
        ts = [t if t is None else t.requires_grad_() for t in ts]
    return ts


# ------------------------------------------------------------------------------------------------
# forward vs the definition
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("noise", [None, "per_sample", "shared", "full"])
def test_forward_plain_layer(fused, demodulate, noise):
    x, w, s, b, nz = _inputs(noise=noise)
    y = modulated_conv2d(x, w, s, noise=nz, padding=1, demodulate=demodulate, fused_modconv=fused,
                         impl="ref")
    want = definition(x, w, s, nz, padding=1, demodulate=demodulate)
    torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act,clamp", [("lrelu", None), ("lrelu", 0.7), ("tanh", None),
                                       ("swish", 0.9), ("linear", 0.5), ("relu", None)])
@pytest.mark.parametrize("fused", [True, False])
def test_forward_epilogue(act, clamp, fused):
    x, w, s, b, nz = _inputs()
    y = modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act=act, clamp=clamp,
                         fused_modconv=fused, impl="ref")
    torch.testing.assert_close(y, definition(x, w, s, nz, padding=1, bias=b, act=act, clamp=clamp),
                               rtol=1e-12, atol=1e-12)


RESAMPLE = [  # (up, down, padding, kernel) -- StyleGAN2's layers and a few odd ones
    (2, 1, 1, 3), (1, 2, 1, 3), (2, 1, 0, 1), (1, 2, 0, 1), (1, 1, [1, 0, 2, 1], 3),
    (1, 1, [0, 0, 1, 1], 3), (2, 2, 1, 3),
]


@pytest.mark.parametrize("up,down,padding,k", RESAMPLE)
@pytest.mark.parametrize("flip_weight", [True, False])
def test_forward_resampling(up, down, padding, k, flip_weight):
    x, w, s, b, _ = _inputs(k=k, noise=None)
    f = setup_filter([1, 3, 3, 1]).to(torch.float64)
    y = modulated_conv2d(x, w, s, up=up, down=down, padding=padding, resample_filter=f,
                         flip_weight=flip_weight, bias=b, act="lrelu", impl="ref")
    want = definition(x, w, s, up=up, down=down, padding=padding, f=f, flip_weight=flip_weight,
                      bias=b, act="lrelu")
    torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12)
    nz = torch.randn(x.shape[0], 1, *want.shape[2:], dtype=torch.float64)
    y = modulated_conv2d(x, w, s, noise=nz, up=up, down=down, padding=padding, resample_filter=f,
                         flip_weight=flip_weight, impl="ref")
    want = definition(x, w, s, nz, up=up, down=down, padding=padding, f=f, flip_weight=flip_weight)
    torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12)


def test_flip_weight_fused_path():
    x, w, s, b, nz = _inputs(k=3)
    w = w[:, :, :, :2].contiguous()  # an asymmetric 3x2 kernel makes a wrong flip visible
    y = modulated_conv2d(x, w, s, noise=None, padding=0, flip_weight=False, impl="ref")
    torch.testing.assert_close(y, definition(x, w, s, padding=0, flip_weight=False),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2),
                                       (torch.float16, 5e-3)])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("fused", [True, False])
def test_low_precision_and_layout(dtype, tol, fmt, fused):
    x, w, s, b, nz = _inputs(n=2, i=8, o=6, h=7, w=7)
    want = definition(x, w, s, nz, padding=1, bias=b, act="lrelu")
    xl = x.to(dtype).contiguous(memory_format=fmt)
    y = modulated_conv2d(xl, w.float(), s.float(), noise=nz.float(), padding=1, bias=b.float(),
                         act="lrelu", fused_modconv=fused, impl="ref")
    assert y.dtype == dtype
    assert y.is_contiguous(memory_format=fmt)
    scale = want.abs().max()
    assert (y.double() - want).abs().max() <= tol * scale


def test_fp16_prenormalisation_prevents_overflow():
    # per-sample weights of ~1e3 * 1e3 overflow float16 (max 65504) without the pre-normalisation
    x, w, s, b, nz = _inputs(n=2, i=16, o=4, h=5, w=5)
    w, s = w * 1e3, s * 1e3
    y = modulated_conv2d(x.half(), w.float(), s.float(), padding=1, impl="ref")
    want = definition(x, w, s, padding=1)
    assert torch.isfinite(y).all()
    assert (y.double() - want).abs().max() <= 5e-3 * want.abs().max()


# ------------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------------

GRAD_CASES = [  # (fused, up, down, padding, act, clamp, demodulate)
    (True, 1, 1, 1, "lrelu", None, True),
    (True, 1, 1, 1, "tanh", None, True),
    (True, 1, 1, 0, "swish", 1.2, True),
    (True, 1, 1, 1, "linear", None, False),
    (False, 1, 1, 1, "tanh", None, True),
    (False, 2, 1, 1, "lrelu", None, True),
    (False, 1, 2, 1, "swish", None, False),
]


@pytest.mark.parametrize("fused,up,down,padding,act,clamp,demodulate", GRAD_CASES)
def test_gradcheck_and_gradgradcheck(fused, up, down, padding, act, clamp, demodulate):
    k = 3
    x, w, s, b, _ = _inputs(n=2, i=2, o=3, h=5, w=4, k=k, noise=None, grad=True)
    f = setup_filter([1, 3, 3, 1]).to(torch.float64) if up > 1 or down > 1 else None
    with torch.no_grad():
        oh = modulated_conv2d(x, w, s, up=up, down=down, padding=padding, resample_filter=f,
                              impl="ref").shape[2:]
    nz = torch.randn(2, 1, *oh, dtype=torch.float64, requires_grad=True)

    def fn(x, w, s, nz, b):
        return modulated_conv2d(x, w, s, noise=nz, up=up, down=down, padding=padding,
                                resample_filter=f, demodulate=demodulate, fused_modconv=fused,
                                bias=b, act=act, clamp=clamp, impl="ref")

    args = (x, w, s, nz, b)
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


@pytest.mark.parametrize("fused", [True, False])
def test_gradients_match_definition_autograd(fused):
    """First-order gradients of every input equal torch autograd through the plain composite."""
    x, w, s, b, nz = _inputs(n=3, i=4, o=5, h=6, w=6, grad=True)
    y = modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="lrelu", fused_modconv=fused,
                         impl="ref")
    dy = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, w, s, nz, b), dy)

    def plain(x, w, s, nz, b):
        wn = w[None] * s[:, None, :, None, None]
        d = (wn.square().sum([2, 3, 4]) + 1e-8).rsqrt()
        c = F.conv2d(x * s[:, :, None, None], w, padding=1)
        return F.leaky_relu(c * d[:, :, None, None] + nz + b[None, :, None, None], 0.2) * math.sqrt(2)

    want = torch.autograd.grad(plain(x, w, s, nz, b), (x, w, s, nz, b), dy)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fused", [True, False])
def test_path_length_second_order(fused):
    """The path-length pattern: grad of (y * noise).sum() w.r.t. the styles with create_graph,
    then the backward of a penalty on it reaches weight and styles' source."""
    x, w, _, b, nz = _inputs(n=2, i=3, o=4, h=5, w=5, grad=True)
    wlat = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    aff = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)

    def run(mc):
        s = wlat @ aff.t() + 1
        y = mc(s)
        pl_noise = torch.sin(torch.arange(y.numel(), dtype=torch.float64)).reshape(y.shape)
        (g,) = torch.autograd.grad((y * pl_noise).sum(), wlat, create_graph=True)
        pen = g.square().sum(1).sqrt().sub(1).square().mean()
        return torch.autograd.grad(pen, (w, aff, x, b))

    got = run(lambda s: modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="tanh",
                                         fused_modconv=fused, impl="ref"))

    def plain(s):
        wn = w[None] * s[:, None, :, None, None]
        d = (wn.square().sum([2, 3, 4]) + 1e-8).rsqrt()
        c = F.conv2d(x * s[:, :, None, None], w, padding=1)
        return torch.tanh(c * d[:, :, None, None] + nz + b[None, :, None, None])

    want = run(plain)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("fused", [True, False])
def test_path_length_pass_skips_bias_and_noise_gradients(fused, monkeypatch):
    """The path-length inner pass (grad w.r.t. the latents) does not need d/d bias or d/d noise:
    the epilogue backward is asked for neither (the engine says their nodes will not run); a
    pass that asks for them gets them, equal to torch autograd of the composite."""
    M = importlib.import_module("fastgan.ops.modulated_conv2d")
    seen, real = [], M._epilogue_backward

    def spy(*args, needs):
        seen.append(tuple(bool(v) for v in needs))
        return real(*args, needs=needs)

    monkeypatch.setattr(M, "_epilogue_backward", spy)

    x, w, _, b, nz = _inputs(n=2, i=3, o=4, h=5, w=5, grad=True)
    wlat = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    aff = torch.randn(3, 6, dtype=torch.float64)

    def layer(mc_fused):
        return modulated_conv2d(x, w, wlat @ aff.t() + 1, noise=nz, padding=1, bias=b,
                                act="lrelu", fused_modconv=mc_fused, impl="ref")

    torch.autograd.grad(layer(fused).sum(), wlat)
    assert seen and all(n[2:] == (False, False) for n in seen)   # (c, d, noise, bias)
    seen.clear()
    got = torch.autograd.grad(layer(fused).square().sum(), (nz, b))
    assert seen and all(n[2:] == (True, True) for n in seen)

    def plain():
        s = wlat @ aff.t() + 1
        wn = w[None] * s[:, None, :, None, None]
        d = (wn.square().sum([2, 3, 4]) + 1e-8).rsqrt()
        c = F.conv2d(x * s[:, :, None, None], w, padding=1)
        return F.leaky_relu(c * d[:, :, None, None] + nz + b[None, :, None, None], 0.2) \
            * math.sqrt(2)

    want = torch.autograd.grad(plain().square().sum(), (nz, b))
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


def test_no_input_grad_skips_c():
    """Forward-only calls do not write the raw convolution (the fused op returns an empty c)."""
    x, w, s, b, nz = _inputs()
    with torch.no_grad():
        y, c = _fused_op(x, w, s, None, None, None, 1, 1, "tanh", 0.0, 1.0, -1.0, False, "ref")
    assert c.numel() == 0 and y.shape == (2, 4, 6, 5)


# ------------------------------------------------------------------------------------------------
# registration: opcheck, torch.compile
# ------------------------------------------------------------------------------------------------

def test_opcheck_ops():
    x, w, s, b, nz = _inputs(grad=True)
    d = torch.rand(2, 4, dtype=torch.float64, requires_grad=True) + 0.5
    wsq = torch.rand(4, 3, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(_dcoefs_op.op, (s, wsq, "ref"))
    torch.library.opcheck(_fused_op.op, (x, w, s, d, nz, b, 1, 1, "lrelu", 0.2, 1.4, -1.0, True, "ref"))
    torch.library.opcheck(_fused_op.op, (x, w, s, None, None, None, 0, 1, "swish", 0.0, 1.0, 0.8, False,
                                      "ref"))
    c = torch.randn(2, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(_epilogue_op.op, (c, d, nz, b, "tanh", 0.0, 1.0, -1.0, "ref"))
    torch.library.opcheck(_epilogue_op.op, (c.detach().contiguous(memory_format=torch.channels_last),
                                         None, None, None, "lrelu", 0.2, 1.0, 0.5, "ref"))
    # the first-order data-gradient op (no autograd of its own: inputs without grad)
    dc = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    torch.library.opcheck(_dgrad_op.op, (dc, w.detach(), s.detach(), x.detach(), 1, 1, "ref"))
    torch.library.opcheck(_dgrad_op.op, (dc.contiguous(memory_format=torch.channels_last),
                                         w.detach(), s.detach(),
                                         x.detach().contiguous(memory_format=torch.channels_last),
                                         1, 1, "ref"))
    # and the first-order weight-gradient op
    torch.library.opcheck(_wgrad_op.op, (dc, x.detach(), s.detach(), 3, 3, 1, 1, "ref"))
    torch.library.opcheck(_wgrad_op.op, (dc.contiguous(memory_format=torch.channels_last),
                                         x.detach().contiguous(memory_format=torch.channels_last),
                                         s.detach(), 3, 3, 1, 1, "ref"))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("wgrad_op", [False, True], ids=["torch_wgrad", "wgrad_op"])
def test_torch_compile_fullgraph(fused, wgrad_op, monkeypatch):
    # wgrad_op: FASTGAN_MODCONV_TRITON_WGRAD=1, the backward traced through fastgan::modconv_wgrad
    monkeypatch.setattr(importlib.import_module("fastgan.ops.modulated_conv2d"), "_TRITON_WGRAD",
                        wgrad_op)
    x, w, s, b, nz = _inputs(dtype=torch.float32, grad=True)

    def fn(x, w, s, nz, b):
        return modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="lrelu",
                                fused_modconv=fused, impl="ref")

    torch._dynamo.reset()
    cfn = torch.compile(fn, fullgraph=True, backend="aot_eager")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        y = cfn(x, w, s, nz, b)
    # the backend checks are cached without functools.lru_cache, which Dynamo warns about
    assert not [str(r.message) for r in rec if "lru_cache" in str(r.message)]
    y0 = fn(x, w, s, nz, b)
    torch.testing.assert_close(y, y0)
    dy = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, w, s, nz, b), dy)
    want = torch.autograd.grad(y0, (x, w, s, nz, b), dy)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)


def test_torch_compile_inductor_forward():
    x, w, s, b, nz = _inputs(dtype=torch.float32)
    fn = lambda x: modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="lrelu", impl="ref")  # noqa: E731
    torch._dynamo.reset()
    torch.testing.assert_close(torch.compile(fn, fullgraph=True)(x), fn(x))


# ------------------------------------------------------------------------------------------------
# bad input, NaN
# ------------------------------------------------------------------------------------------------

def test_bad_inputs():
    x, w, s, b, nz = _inputs()
    with pytest.raises(ValueError, match="x must be 4-D"):
        modulated_conv2d(x[0], w, s, impl="ref")
    with pytest.raises(ValueError, match="styles must be"):
        modulated_conv2d(x, w, s[:, :2], impl="ref")
    with pytest.raises(ValueError, match="weight must be"):
        modulated_conv2d(x, w[:, :2], s, impl="ref")
    with pytest.raises(ValueError, match="bias must be"):
        modulated_conv2d(x, w, s, bias=b[:2], impl="ref")
    with pytest.raises(ValueError, match="noise of shape"):
        modulated_conv2d(x, w, s, noise=torch.randn(2, 1, 3, 3, dtype=x.dtype), padding=1, impl="ref")
    with pytest.raises(ValueError, match="noise of shape"):
        modulated_conv2d(x, w, s, noise=torch.randn(2, 1, 3, 3, dtype=x.dtype), padding=1,
                         fused_modconv=False, impl="ref")
    with pytest.raises(TypeError, match="x must be float"):
        modulated_conv2d(x.long(), w, s, impl="ref")
    with pytest.raises(TypeError, match="styles must be a torch.Tensor"):
        modulated_conv2d(x, w, [1.0, 2.0], impl="ref")
    with pytest.raises(ValueError, match="unknown act"):
        modulated_conv2d(x, w, s, act="gelu", impl="ref")
    with pytest.raises(ValueError, match="up must be"):
        modulated_conv2d(x, w, s, up=0, impl="ref")
    with pytest.raises(ValueError, match="padding must be"):
        modulated_conv2d(x, w, s, padding="same", impl="ref")
    with pytest.raises(ValueError, match="output would be empty"):
        modulated_conv2d(x[:, :, :2, :2], w, s, impl="ref")
    for fused in (True, False):  # the two paths used to disagree (a shape or an internal error)
        with pytest.raises(ValueError, match="at least one channel"):
            modulated_conv2d(x[:, :0], w[:, :0], s[:, :0], fused_modconv=fused, impl="ref")
        with pytest.raises(ValueError, match="at least one output"):
            modulated_conv2d(x, w[:0], s, fused_modconv=fused, impl="ref")
    with pytest.raises(TypeError, match="resample_filter must be a tensor"):
        modulated_conv2d(x, w, s, up=2, resample_filter=[1, 3, 3, 1], impl="ref")
    with pytest.raises(TypeError, match="modulated_conv2d: alpha must be a real number"):
        modulated_conv2d(x, w, s, act="lrelu", alpha="x", impl="ref")
    with pytest.raises(ValueError, match="modulated_conv2d: clamp must not be NaN"):
        modulated_conv2d(x, w, s, clamp=float("nan"), impl="ref")


@pytest.mark.parametrize("fused", [True, False])
def test_fp16_zero_styles_or_weight_row_stay_finite(fused):
    # NVlabs' fp16 pre-normalisation divides by the rows' inf-norms: an all-zero styles row (or
    # weight row) was 0/0 = NaN; the math (and float32) gives 0 there
    x, w, s, b, nz = _inputs()
    s, w = s.clone(), w.clone()
    s[1] = 0
    w[2] = 0
    y16 = modulated_conv2d(x.half(), w.float(), s.float(), padding=1, fused_modconv=fused,
                           impl="ref")
    y32 = modulated_conv2d(x.float(), w.float(), s.float(), padding=1, fused_modconv=fused,
                           impl="ref")
    assert torch.isfinite(y16).all()
    assert (y16[1] == 0).all() and (y16[:, 2] == 0).all()
    torch.testing.assert_close(y16.float(), y32, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("fused", [True, False])
def test_nan_propagates(fused):
    x, w, s, b, nz = _inputs()
    x = x.clone()
    x[1, 0, 2, 2] = float("nan")
    y = modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="lrelu", fused_modconv=fused,
                         impl="ref")
    assert torch.isnan(y[1, :, 1:4, 1:4]).all()   # the 3x3 neighbourhood of the NaN
    assert torch.isfinite(y[0]).all()


# ------------------------------------------------------------------------------------------------
# no_weight_gradients
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False])
def test_no_weight_gradients_skips_dw_and_keeps_penalty_exact(fused):
    from fastgan.ops import no_weight_gradients

    x, w, s, b, nz = _inputs(n=2, i=3, o=4, h=5, w=5, grad=True)
    # without demodulation the weight reaches y only through the convolution
    y = modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="tanh", fused_modconv=fused,
                         demodulate=False, impl="ref")
    with no_weight_gradients():
        gx, gw = torch.autograd.grad(y.sum(), (x, w), create_graph=True, allow_unused=True)
    assert gw is None  # the leaf weight's gradient was not computed inside the switch
    assert gx is not None

    def penalty(switch):
        yy = modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="tanh",
                              fused_modconv=fused, impl="ref")
        with no_weight_gradients(switch):
            (g,) = torch.autograd.grad(yy.sum(), x, create_graph=True)
        return torch.autograd.grad(g.square().sum(), (w, s, b))

    for got, want in zip(penalty(True), penalty(False)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("demodulate,up,fused", [(True, 1, True), (True, 1, False),
                                                  (False, 2, True), (True, 2, False)])
def test_no_weight_gradients_drops_a_leaf_weight_on_every_path(demodulate, up, fused):
    # the leaf weight reaches y through the convolution (transposed and flipped for up = 2) and
    # the demodulation coefficients: inside the switch it gets no gradient at all, not a part
    x, w, s, b, nz = _inputs(n=2, i=3, o=4, h=5, w=5, grad=True)
    f = setup_filter([1, 3, 3, 1], device=x.device).to(x.dtype) if up > 1 else None
    y = modulated_conv2d(x, w, s, padding=1, up=up, resample_filter=f, demodulate=demodulate,
                         fused_modconv=fused, impl="ref")
    (gx_want,) = torch.autograd.grad(y.sum(), x, retain_graph=True)
    with no_weight_gradients():
        gx, gw = torch.autograd.grad(y.sum(), (x, w), allow_unused=True, retain_graph=True)
    assert gw is None
    torch.testing.assert_close(gx, gx_want, rtol=0, atol=0)
    (gw,) = torch.autograd.grad(y.sum(), w)  # outside the switch: the full gradient again
    assert gw.abs().sum() > 0


# ------------------------------------------------------------------------------------------------
# the backward's data-gradient op: first order only
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("padding,k", [(1, 3), (0, 1), (2, 3)])
def test_first_order_backward_takes_the_dgrad_op(monkeypatch, padding, k):
    # A plain backward takes (dx, ds) from fastgan::modconv_dgrad (one fused launch on 'triton');
    # a create_graph backward must not (the op has no derivative) and keeps torch's differentiable
    # convolution gradients.  Both give the definition's gradients.
    mc = importlib.import_module("fastgan.ops.modulated_conv2d")  # the module, not the function
    calls = []
    orig = mc._dgrad_op
    monkeypatch.setattr(mc, "_dgrad_op", lambda *a: calls.append(1) or orig(*a))
    x, w, s, b, nz = _inputs(k=k, grad=True, noise=None)
    h, wd = x.shape[2] + 2 * padding - k + 1, x.shape[3] + 2 * padding - k + 1
    nz = torch.randn(2, 1, h, wd, dtype=torch.float64, requires_grad=True)
    kw = dict(noise=nz, padding=padding, bias=b, act="lrelu")
    y = modulated_conv2d(x, w, s, impl="ref", **kw)
    dy = torch.randn_like(y)
    first = torch.autograd.grad(y, (x, w, s, nz, b), dy)
    assert len(calls) == 1
    graph = torch.autograd.grad(modulated_conv2d(x, w, s, impl="ref", **kw), (x, w, s, nz, b), dy,
                                create_graph=True)
    assert len(calls) == 1
    leaves = [t.detach().requires_grad_() for t in (x, w, s, nz, b)]
    ref = torch.autograd.grad(_definition_autograd(*leaves, padding), leaves, dy)
    for a, g, r in zip(first, graph, ref):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
    # only the grads that are asked for: x alone, the style alone
    (gs,) = torch.autograd.grad(modulated_conv2d(x, w, s, impl="ref", **kw), s, dy)
    torch.testing.assert_close(gs, ref[2], rtol=1e-10, atol=1e-10)
    assert len(calls) == 2
    # FASTGAN_MODCONV_FUSED_DGRAD=0 (the A/B switch) keeps the unfused backward
    monkeypatch.setattr(mc, "_FUSED_DGRAD", False)
    (gx,) = torch.autograd.grad(modulated_conv2d(x, w, s, impl="ref", **kw), x, dy)
    torch.testing.assert_close(gx, ref[0], rtol=1e-10, atol=1e-10)
    assert len(calls) == 2


def _definition_autograd(x, w, s, nz, b, padding):
    """The fused layer written with differentiable torch ops (float64): the gradient oracle."""
    wn = w[None] * s[:, None, :, None, None]
    wn = wn / (wn.square().sum([2, 3, 4], keepdim=True) + 1e-8).sqrt()
    c = torch.cat([F.conv2d(x[n:n + 1], wn[n], padding=padding) for n in range(x.shape[0])])
    return F.leaky_relu(c + nz + b[None, :, None, None], 0.2) * math.sqrt(2)


@pytest.mark.parametrize("padding,k", [(1, 3), (0, 1), (2, 3)])
def test_first_order_backward_takes_the_wgrad_op_when_switched_on(monkeypatch, padding, k):
    # FASTGAN_MODCONV_TRITON_WGRAD=1: a plain backward takes dw from fastgan::modconv_wgrad; a
    # create_graph backward, a backward that needs no dw and the default (switch off) do not.
    mc = importlib.import_module("fastgan.ops.modulated_conv2d")
    calls = []
    orig = mc._wgrad_op
    monkeypatch.setattr(mc, "_wgrad_op", lambda *a: calls.append(1) or orig(*a))
    x, w, s, b, _ = _inputs(k=k, grad=True, noise=None)
    kw = dict(padding=padding, bias=b, act="lrelu")
    y = modulated_conv2d(x, w, s, impl="ref", **kw)
    dy = torch.randn_like(y)
    leaves = [t.detach().requires_grad_() for t in (x, w, s)]
    h, wd = y.shape[2:]
    zero_noise = torch.zeros(1, 1, h, wd, dtype=torch.float64)
    ref = torch.autograd.grad(_definition_autograd(*leaves, zero_noise, b.detach(), padding),
                              leaves, dy)
    assert not mc._TRITON_WGRAD  # off by default
    (gw,) = torch.autograd.grad(modulated_conv2d(x, w, s, impl="ref", **kw), w, dy)
    assert calls == []
    torch.testing.assert_close(gw, ref[1], rtol=1e-10, atol=1e-10)
    monkeypatch.setattr(mc, "_TRITON_WGRAD", True)
    first = torch.autograd.grad(modulated_conv2d(x, w, s, impl="ref", **kw), (x, w, s), dy)
    assert len(calls) == 1
    for a, r in zip(first, ref):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10)
    graph = torch.autograd.grad(modulated_conv2d(x, w, s, impl="ref", **kw), (x, w, s), dy,
                                create_graph=True)
    with no_weight_gradients():  # dw not wanted
        torch.autograd.grad(modulated_conv2d(x, w, s, impl="ref", **kw), s, dy)
    assert len(calls) == 1
    for g, r in zip(graph, ref):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
