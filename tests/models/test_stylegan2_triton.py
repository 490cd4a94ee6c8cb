"""A whole small StyleGAN2 G and D with impl='triton' (TRITON_INTERPRET=1, CPU tensors) against the
same weights with impl='ref': forward, gradients of every parameter, the R1 penalty through D and
the path-length penalty through G (second order), in float32 and float64."""
import pytest
import torch

from fastgan.models.stylegan2 import Discriminator, Generator
from fastgan.ops import path_length_penalty, r1_penalty
from tests.models.test_stylegan2 import randomize_

pytestmark = pytest.mark.interpret

TOL = {torch.float64: 1e-9, torch.float32: 2e-4}


def _pair(cls, dtype, **kw):
    torch.manual_seed(0)
    ref = randomize_(cls(impl="ref", **kw)).to(dtype)
    tri = cls(impl="triton", **kw).to(dtype)
    tri.load_state_dict(ref.state_dict())
    return ref, tri


def _close(got, want, dtype, what):
    scale = max(want.detach().abs().max().item(), 1e-6)
    tol = TOL[dtype]
    torch.testing.assert_close(got.detach(), want.detach(), rtol=tol, atol=tol * scale,
                               msg=lambda m: f"{what}: {m}")


def _grads(model, loss):
    names, params = zip(*[(n, p) for n, p in model.named_parameters()])
    return dict(zip(names, torch.autograd.grad(loss, params, allow_unused=True)))


G_CFG = dict(z_dim=8, w_dim=8, img_resolution=8, channel_base=32, channel_max=4,
             mapping_layers=2)
D_CFG = dict(img_resolution=8, channel_base=32, channel_max=4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_generator_forward_and_gradients(dtype):
    ref, tri = _pair(Generator, dtype, **G_CFG)
    z = torch.randn(2, 8, dtype=dtype)
    ir, it = ref(z, noise_mode="const"), tri(z, noise_mode="const")
    _close(it, ir, dtype, "image")
    gw = torch.randn_like(ir)
    gr, gt = _grads(ref, (ir * gw).sum()), _grads(tri, (it * gw).sum())
    for name in gr:
        if gr[name] is not None:
            _close(gt[name], gr[name], dtype, name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_discriminator_forward_and_r1(dtype):
    ref, tri = _pair(Discriminator, dtype, **D_CFG)
    x = torch.randn(4, 3, 8, 8, dtype=dtype)
    _close(tri(x), ref(x), dtype, "logits")
    pr, pt = r1_penalty(ref, x), r1_penalty(tri, x)
    _close(pt, pr, dtype, "r1")
    gr, gt = _grads(ref, pr), _grads(tri, pt)
    for name in gr:
        if gr[name] is not None:
            _close(gt[name], gr[name], dtype, f"dR1/d{name}")


def test_generator_path_length():
    dtype = torch.float64
    ref, tri = _pair(Generator, dtype, **G_CFG)
    ws = ref.mapping(torch.randn(2, 8, dtype=dtype)).detach()
    out = {}
    for name, G in (("ref", ref), ("triton", tri)):
        w = ws.clone().requires_grad_(True)
        img = G.synthesis(w, noise_mode="const")
        pen, _, lengths = path_length_penalty(img, w, mean=0.2,
                                              generator=torch.Generator().manual_seed(3))
        out[name] = (pen, lengths, _grads(G, pen))
    _close(out["triton"][0], out["ref"][0], dtype, "path-length penalty")
    _close(out["triton"][1], out["ref"][1], dtype, "path lengths")
    for name, g in out["ref"][2].items():
        if g is not None:
            _close(out["triton"][2][name], g, dtype, f"dPL/d{name}")
