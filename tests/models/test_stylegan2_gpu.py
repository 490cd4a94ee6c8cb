"""GPU tier for the StyleGAN2 models: every fused backend against impl='ref' with the same weights
on CUDA — G and D forward, parameter gradients, R1 through D and path length through G — in
float32, under bf16 autocast, with the fp16 recipe and channels_last; torch.compile(fullgraph=True)
of G and D against eager.  Skipped without a CUDA device; with FASTGAN_REQUIRE_ALL_BACKENDS=1 a
backend that is not built fails instead of skipping."""

import pytest
import torch

from fastgan.models.stylegan2 import Discriminator, Generator
from fastgan.ops import path_length_penalty, r1_penalty
from tests.models.test_stylegan2 import randomize_
from tests._gpu import need_impl

pytestmark = pytest.mark.gpu

FUSED = ["triton", "cuda"]
G_CFG = dict(z_dim=64, w_dim=64, img_resolution=64, channel_base=2048, channel_max=64,
             mapping_layers=4)
D_CFG = dict(img_resolution=64, channel_base=2048, channel_max=64)


def _pair(cls, impl, **kw):
    torch.manual_seed(0)
    ref = randomize_(cls(impl="ref", **kw)).cuda()
    other = cls(impl=impl, **kw).cuda()
    other.load_state_dict(ref.state_dict())
    return ref, other


def _rel(got, want):
    return ((got.double() - want.double()).norm() / want.double().norm().clamp_min(1e-30)).item()


def _grads(model, loss):
    names, params = zip(*model.named_parameters())
    return dict(zip(names, torch.autograd.grad(loss, params, allow_unused=True)))


def _check_grads(g_other, g_ref, tol):
    for name, g in g_ref.items():
        if g is not None and g.abs().max() > 0:
            assert _rel(g_other[name], g) < tol, name


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("mode", ["fp32", "bf16", "fp16_recipe", "channels_last"])
def test_generator_matches_ref(impl, mode):
    need_impl(impl)
    kw = dict(G_CFG)
    if mode == "fp16_recipe":
        kw.update(num_fp16_res=2, conv_clamp=256)
    if mode == "channels_last":
        kw.update(channels_last=True)
    ref, G = _pair(Generator, impl, **kw)
    z = torch.randn(8, 64, device="cuda")
    tol = {"fp32": 1e-4, "channels_last": 1e-4, "bf16": 3e-2, "fp16_recipe": 1e-2}[mode]
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(mode == "bf16")):
        ir, ig = ref(z, noise_mode="const"), G(z, noise_mode="const")
        gw = torch.randn_like(ir)
        gr, gg = _grads(ref, (ir * gw).sum()), _grads(G, (ig * gw).sum())
    assert ig.dtype == torch.float32 and ig.isfinite().all()
    assert _rel(ig, ir) < tol
    _check_grads(gg, gr, 5 * tol)


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("mode", ["fp32", "bf16", "fp16_recipe"])
def test_discriminator_and_r1_match_ref(impl, mode):
    need_impl(impl)
    kw = dict(D_CFG)
    if mode == "fp16_recipe":
        kw.update(num_fp16_res=2, conv_clamp=256)
    ref, D = _pair(Discriminator, impl, **kw)
    x = torch.randn(8, 3, 64, 64, device="cuda")
    tol = {"fp32": 1e-4, "bf16": 3e-2, "fp16_recipe": 1e-2}[mode]
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(mode == "bf16")):
        assert _rel(D(x), ref(x)) < tol
        pr, pd = r1_penalty(ref, x), r1_penalty(D, x)
        assert pd.isfinite() and _rel(pd, pr) < 5 * tol
        _check_grads(_grads(D, pd), _grads(ref, pr), 10 * tol)


@pytest.mark.parametrize("impl", FUSED)
def test_path_length_matches_ref(impl):
    need_impl(impl)
    ref, G = _pair(Generator, impl, **G_CFG)
    ws = ref.mapping(torch.randn(4, 64, device="cuda")).detach()
    res = {}
    for name, m in (("ref", ref), ("impl", G)):
        w = ws.clone().requires_grad_(True)
        img = m.synthesis(w, noise_mode="const")
        pen, _, _ = path_length_penalty(img, w, mean=0.5,
                                        generator=torch.Generator("cuda").manual_seed(1))
        res[name] = (pen, _grads(m, pen))
    assert _rel(res["impl"][0], res["ref"][0]) < 1e-3
    _check_grads(res["impl"][1], res["ref"][1], 1e-2)


@pytest.mark.parametrize("impl", ["ref", "triton", "cuda"])
def test_compile_fullgraph(impl):
    if impl != "ref":
        need_impl(impl)
    torch.manual_seed(0)
    G = randomize_(Generator(impl=impl, **G_CFG)).cuda().eval()
    D = randomize_(Discriminator(impl=impl, **D_CFG)).cuda().eval()
    z = torch.randn(8, 64, device="cuda")
    with torch.no_grad():
        img = G(z, noise_mode="const")
        assert _rel(torch.compile(G, fullgraph=True)(z, noise_mode="const"), img) < 1e-4
        assert _rel(torch.compile(D, fullgraph=True)(img), D(img)) < 1e-4
