"""Gradient penalties: against hand-computed float64 values for critics with analytic gradients,
a discriminator made of fastgan ops against the same one made of plain torch layers (penalty values
and second-order weight gradients), the path-length penalty and its module, bad input, and
torch.compile behaviour."""
import importlib
import math

import pytest
import torch
import torch.nn.functional as F

from fastgan.ops import (PathLengthPenalty, bias_act, conv2d, conv2d_resample, path_length_penalty,
                         r1_penalty, r2_penalty, setup_filter, wgan_gp_penalty)

C = importlib.import_module("fastgan.ops.conv2d")
D64 = torch.float64


class Quadratic(torch.nn.Module):
    """D(x)_n = sum(a * x_n^2): grad_x = 2 a x_n, so the penalties are known in closed form."""

    def __init__(self, shape):
        super().__init__()
        self.a = torch.nn.Parameter(torch.rand(shape, dtype=D64) + 0.5)

    def forward(self, x, scale=1.0, offset=0.0):
        return (self.a * x * x).flatten(1).sum(1) * scale + offset


class Linear(torch.nn.Module):
    """D(x)_n = <w, x_n> + c: grad_x = w for every sample."""

    def __init__(self, shape):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(shape, dtype=D64))
        self.c = torch.nn.Parameter(torch.randn((), dtype=D64))

    def forward(self, x):
        return (self.w * x).flatten(1).sum(1) + self.c


# ---------------------------------------------------------------------------------------------
# analytic critics
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [r1_penalty, r2_penalty])
def test_r1_r2_quadratic_value_and_parameter_gradient(fn):
    D = Quadratic((2, 3, 4))
    x = torch.randn(5, 2, 3, 4, dtype=D64)
    pen = fn(D, x, 1.5, offset=2.0)  # extra args reach D: scale 1.5 -> grad 3 a x
    a = D.a.detach()
    want = (3 * a * x).square().flatten(1).sum(1).mean()
    torch.testing.assert_close(pen, want, rtol=1e-12, atol=0)
    pen.backward()  # d/da mean_n sum 9 a^2 x_n^2 = 18 a mean_n x_n^2
    torch.testing.assert_close(D.a.grad, 18 * a * x.square().mean(0), rtol=1e-12, atol=0)


def test_r1_return_logits():
    D = Quadratic((3, 2))
    x = torch.randn(4, 3, 2, dtype=D64)
    pen, logits = r1_penalty(D, x, return_logits=True)
    torch.testing.assert_close(logits, D(x))
    torch.testing.assert_close(pen, r1_penalty(D, x))
    assert logits.requires_grad
    (F.softplus(-logits).mean() + pen).backward()  # one backward for the loss and the penalty
    a = D.a.detach()
    s = torch.sigmoid(-(a * x * x).flatten(1).sum(1)).view(-1, 1, 1)
    want = -(s * x * x).mean(0) + 8 * a * x.square().mean(0)
    torch.testing.assert_close(D.a.grad, want, rtol=1e-12, atol=1e-14)


def test_wgan_gp_linear_critic():
    D = Linear((3, 4, 4))
    real, fake = torch.randn(6, 3, 4, 4, dtype=D64), torch.randn(6, 3, 4, 4, dtype=D64)
    pen = wgan_gp_penalty(D, real, fake)
    norm = D.w.detach().norm()
    torch.testing.assert_close(pen, (norm - 1) ** 2, rtol=1e-12, atol=0)  # u does not matter
    pen.backward()
    torch.testing.assert_close(D.w.grad, 2 * (norm - 1) * D.w.detach() / norm, rtol=1e-12, atol=0)
    assert D.c.grad is None or D.c.grad.abs().max() == 0


def test_wgan_gp_quadratic_critic_and_generator():
    D = Quadratic((2, 5))
    real, fake = torch.randn(7, 2, 5, dtype=D64), torch.randn(7, 2, 5, dtype=D64)
    pen = wgan_gp_penalty(D, real, fake, generator=torch.Generator().manual_seed(11))
    u = torch.rand((7, 1, 1), generator=torch.Generator().manual_seed(11), dtype=D64)
    xh = real + u * (fake - real)
    want = ((2 * D.a.detach() * xh).flatten(1).norm(dim=1) - 1).square().mean()
    torch.testing.assert_close(pen, want, rtol=1e-12, atol=0)
    again = wgan_gp_penalty(D, real, fake, generator=torch.Generator().manual_seed(11))
    assert torch.equal(pen, again)
    other = wgan_gp_penalty(D, real, fake, generator=torch.Generator().manual_seed(12))
    assert not torch.equal(pen, other)  # u really is random per call


def test_wgan_gp_detaches_real_and_fake():
    D = Quadratic((4,))
    z = torch.randn(3, 4, dtype=D64, requires_grad=True)
    real = torch.randn(3, 4, dtype=D64)
    wgan_gp_penalty(D, real, z * 2).backward()
    assert z.grad is None and D.a.grad is not None


def test_caller_tensor_untouched_and_no_gradient_to_generator():
    D = Quadratic((2, 3))
    x = torch.randn(4, 2, 3, dtype=D64)
    r1_penalty(D, x)
    assert not x.requires_grad and x.grad is None
    z = torch.randn(4, 2, 3, dtype=D64, requires_grad=True)
    fake = z * 3  # attached to a "generator"
    r2_penalty(D, fake).backward()
    assert z.grad is None and D.a.grad is not None


def test_nan_in_nan_out():
    D = Quadratic((3,))
    x = torch.randn(4, 3, dtype=D64)
    x[1, 2] = float("nan")
    assert r1_penalty(D, x).isnan()


def test_bfloat16_critic_gives_float32_penalty():
    D = Quadratic((3, 8, 8))
    x = torch.randn(4, 3, 8, 8, dtype=D64)
    want = r1_penalty(D, x)
    Dh = Quadratic((3, 8, 8)).to(torch.bfloat16)
    with torch.no_grad():
        Dh.a.copy_(D.a)
    pen = r1_penalty(Dh, x.to(torch.bfloat16))
    assert pen.dtype == torch.float32
    torch.testing.assert_close(pen.double(), want, rtol=3e-2, atol=0)


# ---------------------------------------------------------------------------------------------
# a discriminator made of fastgan ops vs the same one in plain torch
# ---------------------------------------------------------------------------------------------

def _d_params(gain):
    g = torch.Generator().manual_seed(5)
    shapes = [(8, 3, 3, 3), (8,), (16, 8, 3, 3), (16,), (16, 8, 1, 1), (16, 4, 4), (1, 16 * 16)]
    ps = [torch.randn(s, generator=g, dtype=D64) * (0.3 if gain is None else 1.0) for s in shapes]
    return [p.requires_grad_() for p in ps]


def _fastgan_d(params, gain, act="lrelu"):
    w1, b1, w2, b2, wskip, _, wfc = params
    f = setup_filter([1, 3, 3, 1]).to(D64)
    s = (lambda w: w * (0.3 / 1.0)) if gain else (lambda w: w)  # computed (non-leaf) weights

    def D(x, c=None):
        h = bias_act(conv2d(x, s(w1), padding=1), b1, act=act)
        skip = conv2d_resample(h, s(wskip), f, down=2)                 # 1x1 down path
        h = conv2d_resample(h, s(w2), f, down=2, padding=1)            # FIR + strided conv
        h = bias_act(h, b2, act=act) + skip
        out = h.flatten(1) @ wfc.reshape(-1, 1)[: h[0].numel()]
        return out if c is None else out * c
    return D


def _plain_d(params, gain, act="lrelu"):
    w1, b1, w2, b2, wskip, _, wfc = params
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=D64)
    k = torch.outer(k, k) / 64
    s = (lambda w: w * 0.3) if gain else (lambda w: w)

    def blur(x, pad):  # depthwise FIR (the [1, 3, 3, 1] filter is symmetric: no flip needed)
        c = x.shape[1]
        return F.conv2d(F.pad(x, [pad] * 4), k.expand(c, 1, 4, 4), groups=c)

    def lrelu(x, b):
        if act == "tanh":
            return torch.tanh(x + b.view(1, -1, 1, 1))
        return F.leaky_relu(x + b.view(1, -1, 1, 1), 0.2) * math.sqrt(2)

    def D(x, c=None):
        h = lrelu(F.conv2d(x, s(w1), padding=1), b1)
        skip = F.conv2d(blur(h, 1)[:, :, ::2, ::2], s(wskip))
        h = F.conv2d(blur(h, 2), s(w2), stride=2)
        h = lrelu(h, b2) + skip
        out = h.flatten(1) @ wfc.reshape(-1, 1)[: h[0].numel()]
        return out if c is None else out * c
    return D


@pytest.mark.parametrize("kind,gain,act", [("r1", False, "lrelu"), ("r1", True, "tanh"),
                                            ("r2", True, "lrelu"), ("wgan", False, "tanh"),
                                            ("wgan", True, "lrelu")])
def test_fastgan_d_matches_plain_torch_d(kind, gain, act):
    ours, ref = _d_params(gain), _d_params(gain)
    x = torch.randn(3, 3, 8, 8, dtype=D64)
    y = torch.randn(3, 3, 8, 8, dtype=D64)
    Dx, Dr = _fastgan_d(ours, gain, act), _plain_d(ref, gain, act)
    torch.testing.assert_close(Dx(x), Dr(x), rtol=1e-12, atol=1e-12)
    if kind == "wgan":
        pen = wgan_gp_penalty(Dx, x, y, generator=torch.Generator().manual_seed(1))
        want = wgan_gp_penalty(Dr, x, y, generator=torch.Generator().manual_seed(1))
    else:
        fn = r1_penalty if kind == "r1" else r2_penalty
        pen, want = fn(Dx, x, 0.7), fn(Dr, x, c=0.7)
    assert want > 0
    torch.testing.assert_close(pen, want, rtol=1e-11, atol=0)
    got_g = torch.autograd.grad(pen, ours, allow_unused=True)
    want_g = torch.autograd.grad(want, ref, allow_unused=True)
    for i, (g, t) in enumerate(zip(got_g, want_g)):
        if t is None:  # the unused stand-in parameter
            assert g is None, i
            continue
        # (with lrelu the biases only move the sign masks: their penalty gradient is 0)
        assert t.abs().max() > 0 or (act == "lrelu" and i in (1, 3)), i
        torch.testing.assert_close(g, t, rtol=1e-9, atol=1e-12, msg=f"param {i}")


def test_penalty_matches_direct_autograd_float64():
    """The same R1 written out with plain torch autograd (no penalty helper, no switch)."""
    ps = _d_params(False)
    x = torch.randn(2, 3, 8, 8, dtype=D64)
    pen = r1_penalty(_fastgan_d(ps, False), x)
    ref = _d_params(False)
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(_plain_d(ref, False)(xr).sum(), xr, create_graph=True)
    want = g.square().sum((1, 2, 3)).mean()
    torch.testing.assert_close(pen, want, rtol=1e-11, atol=0)
    for a, b in zip(torch.autograd.grad(pen, ps[:5]), torch.autograd.grad(want, ref[:5])):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_inner_pass_skips_weight_gradients(monkeypatch):
    calls = []
    real = C._weight_grad
    monkeypatch.setattr(C, "_weight_grad", lambda *a: (calls.append(1), real(*a))[1])
    ps = _d_params(False)  # leaf weights: skipped because the engine will not run their nodes
    pen = r1_penalty(_fastgan_d(ps, False), torch.randn(2, 3, 8, 8, dtype=D64))
    assert calls == []      # the inner pass computed no weight gradient ...
    pen.backward()
    assert len(calls) > 0   # ... the penalty's backward does
    assert all(p.grad is not None for p in ps[:5])


def test_wgan_gp_zero_input_gradient_gives_finite_parameter_gradients():
    # a masked critic: sample 0's input gradient is exactly 0, so its term is (0 - 1)^2 = 1 and
    # its norm's derivative is the zero subgradient (sqrt(sum g^2) would make it inf * 0 = NaN)
    real, fake = torch.randn(4, 3, 2, 2, dtype=D64), torch.randn(4, 3, 2, 2, dtype=D64)
    w = torch.randn(3, 2, 2, dtype=D64, requires_grad=True)
    mask = torch.tensor([0.0, 1.0, 1.0, 2.0], dtype=D64)
    pen = wgan_gp_penalty(lambda x: (x * w).flatten(1).sum(1) * mask, real, fake)
    norm = w.detach().norm()
    expect = ((torch.tensor([0.0, 1.0, 1.0, 2.0], dtype=D64) * norm - 1) ** 2).mean()
    torch.testing.assert_close(pen.detach(), expect)
    pen.backward()
    # d/dw mean_n (m_n ||w|| - 1)^2 = mean_n 2 (m_n ||w|| - 1) m_n w / ||w||
    m = mask
    gw = (2 * (m * norm - 1) * m).mean() * w.detach() / norm
    torch.testing.assert_close(w.grad, gw)


def test_path_length_zero_gradient_sample_is_finite():
    # sample 0 of the images ignores ws entirely: its path length is 0 and the penalty's
    # parameter gradients must stay finite (vector_norm's zero subgradient)
    M = torch.randn(12, 6, dtype=D64, requires_grad=True)
    ws = torch.randn(3, 2, 3, dtype=D64, requires_grad=True)
    mask = torch.tensor([0.0, 1.0, 1.0], dtype=D64)[:, None]
    img = ((ws.flatten(1) @ M.T) * mask).view(3, 3, 2, 2)
    pen, _, lengths = path_length_penalty(img, ws, 0.5)
    assert lengths[0] == 0 and (lengths[1:] > 0).all()
    pen.backward()
    assert torch.isfinite(M.grad).all() and M.grad.abs().sum() > 0


@pytest.mark.parametrize("fn", [r1_penalty, r2_penalty])
def test_penalty_when_d_uses_x_as_a_conv_weight(fn):
    # x as the *weight* of a fastgan conv: the inner pass asks for this leaf weight's gradient,
    # which the weight-gradient pruning must not drop
    k = torch.randn(2, 3, 5, 5, dtype=D64)
    x = torch.randn(4, 3, 3, 3, dtype=D64)
    got = fn(lambda x: conv2d(k, x).square().sum(), x)
    x0 = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(F.conv2d(k, x0).square().sum(), x0)
    torch.testing.assert_close(got, g.square().flatten(1).sum(1).mean())


def test_penalties_under_no_grad_and_inference_mode():
    D = Quadratic((3, 4, 4))
    x = torch.randn(5, 3, 4, 4, dtype=D64)
    expect = r1_penalty(D, x)
    with torch.no_grad():  # an evaluation loop logging the penalty: still computed
        torch.testing.assert_close(r1_penalty(D, x), expect)
        torch.manual_seed(0)
        a = wgan_gp_penalty(D, x, x + 1)
    torch.manual_seed(0)
    torch.testing.assert_close(a, wgan_gp_penalty(D, x, x + 1))
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match="inference_mode"):
            r1_penalty(D, x)


# ---------------------------------------------------------------------------------------------
# path length
# ---------------------------------------------------------------------------------------------

def _linear_g(ws_dim):
    """img_n = reshape(M @ ws_n.flatten()): pl_grads_n = reshape(M^T noise_n.flatten())."""
    g = torch.Generator().manual_seed(9)
    k = 1
    for s in ws_dim:
        k *= s
    M = torch.randn(2 * 4 * 3, k, generator=g, dtype=D64).requires_grad_()

    def G(ws):
        return (ws.flatten(1) @ M.T).view(-1, 2, 4, 3)
    return G, M


@pytest.mark.parametrize("ws_shape", [(5, 3, 6), (5, 6)])
def test_path_length_linear_generator(ws_shape):
    G, M = _linear_g(ws_shape[1:])
    ws = torch.randn(ws_shape, dtype=D64, requires_grad=True)
    img = G(ws)
    mean = torch.tensor(0.8, dtype=D64)
    pen, new_mean, lengths = path_length_penalty(img, ws, mean, decay=0.1,
                                                 generator=torch.Generator().manual_seed(4))
    noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(4), dtype=D64) / math.sqrt(12)
    Md = M.detach()
    grads = (noise.flatten(1) @ Md).view(ws_shape)
    sq = grads.square().sum(-1)
    want_len = (sq.mean(1) if len(ws_shape) == 3 else sq).sqrt()
    torch.testing.assert_close(lengths, want_len, rtol=1e-12, atol=0)
    want_mean = mean + 0.1 * (want_len.mean() - mean)
    torch.testing.assert_close(new_mean, want_mean, rtol=1e-12, atol=0)
    torch.testing.assert_close(pen, (want_len - want_mean).square().mean(), rtol=1e-12, atol=0)
    assert not new_mean.requires_grad and not lengths.requires_grad
    # second order: d pen / d M against plain torch autograd of the same definition (float64)
    (gM,) = torch.autograd.grad(pen, M)
    Mr = Md.clone().requires_grad_()
    gr = (noise.flatten(1) @ Mr).view(ws_shape)
    sq = gr.square().sum(-1)
    ln = (sq.mean(1) if len(ws_shape) == 3 else sq).sqrt()
    nm = mean.lerp(ln.mean(), 0.1)
    (want_gM,) = torch.autograd.grad((ln - nm).square().mean(), Mr)
    torch.testing.assert_close(gM, want_gM, rtol=1e-10, atol=1e-13)


def test_path_length_through_modulated_fastgan_conv():
    """ws -> styles -> modulated conv weights: the weight gradient carries d img / d ws, so it must
    survive the weight-gradient pruning of the penalty's inner pass."""
    g = torch.Generator().manual_seed(2)
    A = torch.randn(4, 6, generator=g, dtype=D64, requires_grad=True)
    W = torch.randn(5, 4, 3, 3, generator=g, dtype=D64, requires_grad=True)
    x = torch.randn(1, 4, 6, 6, generator=g, dtype=D64)

    def G(ws, conv):
        imgs = []
        for n in range(ws.shape[0]):
            style = ws[n] @ A.T                                  # [4]
            imgs.append(conv(x, W * style.view(1, 4, 1, 1), padding=1))
        return torch.cat(imgs)

    ws = torch.randn(3, 6, dtype=D64, requires_grad=True)
    pen, _, lengths = path_length_penalty(G(ws, conv2d), ws, 0.0,
                                          generator=torch.Generator().manual_seed(3))
    ws2 = ws.detach().clone().requires_grad_()
    want, _, want_len = path_length_penalty(G(ws2, F.conv2d), ws2, 0.0,
                                            generator=torch.Generator().manual_seed(3))
    assert lengths.min() > 0
    torch.testing.assert_close(lengths, want_len, rtol=1e-12, atol=0)
    torch.testing.assert_close(pen, want, rtol=1e-12, atol=0)
    ga = torch.autograd.grad(pen, (A, W))
    gb = torch.autograd.grad(want, (A, W))
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_path_length_module():
    G, M = _linear_g((3, 6))
    mod = PathLengthPenalty(decay=0.25)
    assert "pl_mean" in mod.state_dict() and mod.pl_mean.item() == 0
    ws = torch.randn(4, 3, 6, dtype=D64, requires_grad=True)
    pen = mod(G(ws), ws, generator=torch.Generator().manual_seed(1))
    want, want_mean, want_len = path_length_penalty(G(ws), ws, 0.0, 0.25,
                                                    generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pen.double(), want)
    assert mod.pl_mean.dtype == torch.float32 and not mod.pl_mean.requires_grad
    torch.testing.assert_close(mod.pl_mean, want_mean.float())
    torch.testing.assert_close(mod.last_lengths, want_len)
    pen.backward()
    assert M.grad is not None and M.grad.abs().max() > 0
    prev = mod.pl_mean.clone()
    mod(G(ws), ws)
    assert not torch.equal(prev, mod.pl_mean)  # the running mean moves each call
    with pytest.raises(ValueError, match="decay"):
        PathLengthPenalty(decay=1.5)


# ---------------------------------------------------------------------------------------------
# bad input, compile
# ---------------------------------------------------------------------------------------------

def test_d_not_depending_on_x():
    p = torch.nn.Parameter(torch.randn(4))
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="does not depend on its input x"):
        r1_penalty(lambda x: p * 2, x)
    with pytest.raises(ValueError, match="does not require grad"):
        r1_penalty(lambda x: x.detach().sum(1), x)
    with pytest.raises(ValueError, match="does not depend"):
        wgan_gp_penalty(lambda x: p * 2, x, x + 1)
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        r2_penalty(lambda x: (x.sum(1),), x)


@pytest.mark.parametrize("call,exc,match", [
    (lambda D, x: r1_penalty(D, [1.0, 2.0]), TypeError, "x must be a torch.Tensor"),
    (lambda D, x: r1_penalty(D, x[0, 0]), ValueError, "x must be batched"),
    (lambda D, x: r1_penalty(D, x[:0]), ValueError, "empty batch"),
    (lambda D, x: r1_penalty(D, x.long()), TypeError, "floating-point"),
    (lambda D, x: r1_penalty("D", x), TypeError, "D must be callable"),
    (lambda D, x: wgan_gp_penalty(D, x, x[:2]), ValueError, "same shape"),
    (lambda D, x: wgan_gp_penalty(D, x, x.float()), TypeError, "same dtype"),
    (lambda D, x: wgan_gp_penalty(D, x, x.to("meta")), ValueError, "same device"),
    (lambda D, x: wgan_gp_penalty(D, x, None), TypeError, "fake must be a torch.Tensor"),
])
def test_bad_input(call, exc, match):
    D = Quadratic((3, 2))
    x = torch.randn(4, 3, 2, dtype=D64)
    with pytest.raises(exc, match=match):
        call(D, x)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(img=torch.randn(2, 3, 4)), ValueError, "img must be 4-D"),
    (dict(ws=torch.randn(2, 3, 4, 5, requires_grad=True)), ValueError, "ws must be"),
    (dict(ws=torch.randn(3, 6, requires_grad=True)), ValueError, "same non-empty batch"),
    (dict(ws=torch.randn(2, 6)), ValueError, "ws does not require grad"),
    (dict(decay=2.0), ValueError, "decay must be"),
    (dict(mean=torch.zeros(2)), ValueError, "mean must be a scalar"),
    (dict(img=[1.0]), TypeError, "must be torch.Tensors"),
])
def test_path_length_bad_input(kwargs, exc, match):
    ws = torch.randn(2, 6, requires_grad=True)
    args = dict(img=(ws @ torch.randn(6, 12)).view(2, 1, 3, 4), ws=ws, mean=0.0, decay=0.01)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        path_length_penalty(**args)


def test_path_length_unrelated_ws():
    ws = torch.randn(2, 6, requires_grad=True)
    img = torch.randn(2, 1, 3, 4, requires_grad=True)
    with pytest.raises(ValueError, match="does not depend on its input"):
        path_length_penalty(img, ws, 0.0)


def test_torch_compile_runs_penalty_eagerly_or_refuses_fullgraph():
    torch._dynamo.reset()
    D = Quadratic((3, 4))
    x = torch.randn(2, 3, 4, dtype=D64)

    def step(x):
        return r1_penalty(D, x * 2) + 1

    want = step(x)
    torch.testing.assert_close(torch.compile(step, backend="eager")(x), want)  # graph break
    torch._dynamo.reset()
    with pytest.raises(Exception, match="disable"):
        torch.compile(step, backend="eager", fullgraph=True)(x)
