"""StyleGAN2 Generator / Discriminator on the reference path (CPU): shapes at every resolution, the
config-F layer list, determinism, truncation, style mixing, conditioning, layouts and dtypes,
second-order penalties, torch.compile, and rosinality checkpoint conversion."""
import math

import numpy as np
import pytest
import torch

from fastgan.models import load_rosinality
from fastgan.models.convert import (rosinality_discriminator_state_dict,
                                    rosinality_generator_state_dict)
from fastgan.models.stylegan2 import (Discriminator, Generator, channels_per_resolution,
                                      mix_styles)
from fastgan.ops import PathLengthPenalty, path_length_penalty, r1_penalty

RESOLUTIONS = [4, 8, 16, 32, 64, 128, 256, 512, 1024]


def small_g(res=16, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(z_dim=16, w_dim=16, img_resolution=res, channel_base=8 * res, channel_max=8,
               mapping_layers=2)
    cfg.update(kw)
    return Generator(**cfg)


def small_d(res=16, seed=1, **kw):
    torch.manual_seed(seed)
    cfg = dict(img_resolution=res, channel_base=8 * res, channel_max=8)
    cfg.update(kw)
    return Discriminator(**cfg)


def randomize_(model, seed=2):
    """Random values in every parameter and buffer that starts at zero (biases, noise strengths,
    w_avg), so each term of the forward pass matters in comparisons."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and t.numel() and t.abs().max() == 0:
                t.copy_(0.5 * torch.randn(t.shape, generator=g))
    return model


# ------------------------------------------------------------------------------------------------
# architecture

@pytest.mark.parametrize("res", RESOLUTIONS)
def test_shapes_at_every_resolution(res):
    G = small_g(res, channel_base=2 * res, channel_max=4)
    D = small_d(res, channel_base=2 * res, channel_max=4)
    assert G.num_ws == 2 * int(math.log2(res)) - 2
    z = torch.randn(2, 16)
    with torch.no_grad():
        img = G(z, noise_mode="const")
        assert img.shape == (2, 3, res, res) and img.dtype == torch.float32
        assert img.isfinite().all() and img.std() > 0
        ws = G.mapping(z)
        assert ws.shape == (2, G.num_ws, 16)
        torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), img)
        logits = D(img)
    assert logits.shape == (2, 1) and logits.isfinite().all()


def test_channels_per_resolution():
    ch = channels_per_resolution(1024)
    assert ch == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64,
                  1024: 32}
    assert channels_per_resolution(256, 16384, 256) == {r: min(16384 // r, 256)
                                                        for r in (4, 8, 16, 32, 64, 128, 256)}
    for bad in (0, 3, 6, 48):
        with pytest.raises(ValueError, match="power of two"):
            channels_per_resolution(bad)


def _config_f_expected_generator(res=1024, z=512, w=512, n_mlp=8, img=3):
    """The published config-F generator, layer by layer (Karras et al. 2020, Table/Fig. 7)."""
    ch = {r: min(32768 // r, 512) for r in [2 ** i for i in range(2, int(math.log2(res)) + 1)]}
    exp = {}
    for k in range(n_mlp):
        exp[f"mapping.layers.{k}.weight"] = (w, z if k == 0 else w)
        exp[f"mapping.layers.{k}.bias"] = (w,)

    def conv(name, cin, cout, r):
        exp[f"{name}.weight"] = (cout, cin, 3, 3)
        exp[f"{name}.bias"] = (cout,)
        exp[f"{name}.noise_strength"] = ()
        exp[f"{name}.affine.weight"] = (cin, w)
        exp[f"{name}.affine.bias"] = (cin,)

    def torgb(name, cin):
        exp[f"{name}.weight"] = (img, cin, 1, 1)
        exp[f"{name}.bias"] = (img,)
        exp[f"{name}.affine.weight"] = (cin, w)
        exp[f"{name}.affine.bias"] = (cin,)

    exp["synthesis.b4.const.input"] = (1, 512, 4, 4)
    conv("synthesis.b4.conv1", 512, 512, 4)
    torgb("synthesis.b4.torgb", 512)
    for r in list(ch)[1:]:
        conv(f"synthesis.b{r}.conv0", ch[r // 2], ch[r], r)
        conv(f"synthesis.b{r}.conv1", ch[r], ch[r], r)
        torgb(f"synthesis.b{r}.torgb", ch[r])
    return exp


def test_config_f_layer_list():
    G = Generator()
    got = {n: tuple(p.shape) for n, p in G.named_parameters()}
    assert got == _config_f_expected_generator()
    assert G.num_ws == 18
    # one const-noise map per synthesis conv, at the conv's output resolution
    noises = {n: tuple(b.shape) for n, b in G.named_buffers() if n.endswith("noise_const")}
    assert len(noises) == 17 and noises["synthesis.b1024.conv0.noise_const"] == (1024, 1024)
    assert dict(G.named_buffers())["mapping.w_avg"].shape == (512,)
    del G

    D = Discriminator()
    ch = channels_per_resolution(1024)
    exp = {"b1024.fromrgb.weight": (32, 3, 1, 1), "b1024.fromrgb.bias": (32,)}
    for r in [2 ** i for i in range(10, 2, -1)]:
        exp[f"b{r}.conv0.weight"] = (ch[r], ch[r], 3, 3)
        exp[f"b{r}.conv0.bias"] = (ch[r],)
        exp[f"b{r}.conv1.weight"] = (ch[r // 2], ch[r], 3, 3)
        exp[f"b{r}.conv1.bias"] = (ch[r // 2],)
        exp[f"b{r}.skip.weight"] = (ch[r // 2], ch[r], 1, 1)
    exp.update({"b4.conv.weight": (512, 513, 3, 3), "b4.conv.bias": (512,),
                "b4.fc.weight": (512, 512 * 16), "b4.fc.bias": (512,),
                "b4.out.weight": (1, 512), "b4.out.bias": (1,)})
    assert {n: tuple(p.shape) for n, p in D.named_parameters()} == exp


def test_bad_inputs():
    G, D = small_g(), small_d()
    with pytest.raises(ValueError, match="noise_mode"):
        G(torch.randn(2, 16), noise_mode="fixed")
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="img must be"):
        D(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="img_resolution"):
        Generator(img_resolution=48)
    Dc = small_d(c_dim=3)
    with pytest.raises(ValueError, match="c must be"):
        Dc(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"c must be \[N=2, c_dim=3\], got list"):
        Dc(torch.randn(2, 3, 16, 16), [[1, 0, 0]] * 2)


def test_unconditional_models_reject_c():
    # G always raised; D used to ignore the labels quietly
    G, D = small_g(), small_d()
    img, c = torch.randn(4, 3, 16, 16), torch.randn(4, 5)
    with pytest.raises(ValueError, match="c_dim is 0: c must be None or"):
        G(torch.randn(4, 16), c)
    with pytest.raises(ValueError, match=r"Discriminator: c_dim is 0: c must be None or \[N, 0\], "
                                         r"got \(4, 5\)"):
        D(img, c)
    with torch.no_grad():  # None and NVlabs' empty [N, 0] label are fine
        torch.testing.assert_close(D(img, torch.zeros(4, 0)), D(img), rtol=0, atol=0)


@pytest.mark.parametrize("model,kw,match", [
    ("G", dict(c_dim=-1), "Generator: c_dim must be an int >= 0, got -1"),
    ("D", dict(c_dim=-1), "Discriminator: c_dim must be an int >= 0, got -1"),
    ("G", dict(z_dim=-4), "Generator: z_dim must be an int >= 0"),
    ("G", dict(w_dim=0), "Generator: w_dim must be an int >= 1"),
    ("G", dict(channel_max=0), "Generator: channel_max must be an int >= 1, got 0"),
    ("D", dict(channel_max=0), "Discriminator: channel_max must be an int >= 1, got 0"),
    ("G", dict(channel_base=-256), "Generator: channel_base must be an int >= 1"),
    ("G", dict(img_channels=0), "Generator: img_channels must be an int >= 1"),
    ("D", dict(img_channels=-3), "Discriminator: img_channels must be an int >= 1"),
    ("G", dict(mapping_layers=0), "Generator: mapping_layers must be an int >= 1"),
    ("D", dict(c_dim=3, mapping_layers=0), "Discriminator: mapping_layers must be an int >= 1"),
    ("G", dict(num_fp16_res=-1), "Generator: num_fp16_res must be an int >= 0"),
    ("D", dict(mbstd_num_channels=-1), "Discriminator: mbstd_num_channels must be an int >= 0"),
    ("D", dict(mbstd_group_size=0), "Discriminator: mbstd_group_size must be an int >= 1"),
    ("D", dict(c_dim=3, cmap_dim=0), "Discriminator: cmap_dim must be an int >= 1"),
    ("G", dict(c_dim=2.0), "Generator: c_dim must be an int >= 0, got 2.0"),
    ("G", dict(img_resolution=16.0), "img_resolution must be a power of two"),
    ("D", dict(img_resolution=True), "img_resolution must be a power of two"),
])
def test_bad_sizes(model, kw, match):
    with pytest.raises(ValueError, match=match):
        (small_g if model == "G" else small_d)(**kw)


def test_channels_per_resolution_bad_channels():
    # channel_max=0 used to be blamed on channel_base
    with pytest.raises(ValueError, match="channel_max must be an int >= 1, got 0"):
        channels_per_resolution(16, 256, 0)
    with pytest.raises(ValueError, match="channel_base must be an int >= 1, got -1"):
        channels_per_resolution(16, -1, 32)


@pytest.mark.parametrize("res", [np.int64(16), np.int32(16), torch.tensor(16)])
def test_integer_scalar_sizes(res):
    # numpy / torch integers (e.g. a resolution read from an array) used to be "not a power of 2"
    G = small_g(res, z_dim=np.int64(16), w_dim=np.int64(16), channel_base=np.int64(128))
    D = small_d(res, channel_base=np.int64(128), c_dim=np.int64(0))
    assert type(G.img_resolution) is int and G.img_resolution == 16 and type(G.z_dim) is int
    assert type(D.img_resolution) is int and D.img_resolution == 16
    assert channels_per_resolution(res) == channels_per_resolution(16)
    with torch.no_grad():
        assert D(G(torch.randn(2, 16))).shape == (2, 1)


@pytest.mark.parametrize("psi", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_truncation_psi(psi):
    # psi = nan used to be accepted and give all-nan images
    G = small_g()
    with pytest.raises(ValueError, match="truncation_psi must be a finite number"):
        G(torch.randn(2, 16), truncation_psi=psi)
    with pytest.raises(ValueError, match="truncation_psi must be a finite number"):
        G.style_mix(torch.randn(2, 16), torch.randn(2, 16), 2, truncation_psi=psi)


def test_empty_batch_keeps_w_avg():
    G = randomize_(small_g())
    before = G.mapping.w_avg.clone()
    assert G(torch.randn(0, 16), update_emas=True).shape == (0, 3, 16, 16)
    assert torch.equal(G.mapping.w_avg, before)


# ------------------------------------------------------------------------------------------------
# sampling semantics

def test_determinism_and_noise_modes():
    G1, G2 = small_g(seed=5), small_g(seed=5)
    z = torch.randn(3, 16)
    with torch.no_grad():
        a = G1(z, noise_mode="const")
        torch.testing.assert_close(G2(z, noise_mode="const"), a, rtol=0, atol=0)
        torch.testing.assert_close(G1(z, noise_mode="const"), a, rtol=0, atol=0)
        randomize_(G1)  # non-zero noise strengths: the noise modes now differ
        c1, c2 = G1(z, noise_mode="const"), G1(z, noise_mode="const")
        torch.testing.assert_close(c1, c2, rtol=0, atol=0)
        r1, r2 = G1(z, noise_mode="random"), G1(z, noise_mode="random")
        n = G1(z, noise_mode="none")
    assert (r1 - r2).abs().max() > 1e-3 and (c1 - n).abs().max() > 1e-3
    torch.manual_seed(7)
    with torch.no_grad():
        s1 = G1(z)
    torch.manual_seed(7)
    with torch.no_grad():
        s2 = G1(z)
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)


def test_truncation():
    G = randomize_(small_g())
    G.train()
    for _ in range(3):  # w_avg tracks the mapped w when asked to
        before = G.mapping.w_avg.clone()
        G.mapping(torch.randn(8, 16), update_emas=True)
        assert not torch.equal(before, G.mapping.w_avg)
    G.eval()
    z = torch.randn(4, 16)
    with torch.no_grad():
        img = G(z, truncation_psi=0, noise_mode="const")
        avg = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise_mode="const")
        for k in range(4):
            torch.testing.assert_close(img[k:k + 1], avg, rtol=1e-5, atol=1e-5)
        # psi = 1 leaves ws alone; a cutoff truncates only the first layers
        ws = G.mapping(z)
        ws_t = G.mapping(z, truncation_psi=0.5, truncation_cutoff=4)
        torch.testing.assert_close(ws_t[:, 4:], ws[:, 4:])
        torch.testing.assert_close(ws_t[:, :4], G.mapping.w_avg.lerp(ws[:, :4], 0.5))


def test_style_mixing():
    G = randomize_(small_g())
    a, b = torch.randn(3, G.num_ws, 16), torch.randn(3, G.num_ws, 16)
    m = mix_styles(a, b, 2)
    assert torch.equal(m[:, :2], a[:, :2]) and torch.equal(m[:, 2:], b[:, 2:])
    m = mix_styles(a, b, torch.tensor([0, 3, G.num_ws]))
    assert torch.equal(m[0], b[0]) and torch.equal(m[1, :3], a[1, :3]) and torch.equal(m[2], a[2])
    z = torch.randn(4, 16)
    with torch.no_grad():
        ws = G.mapping(z)
        g = torch.Generator().manual_seed(3)
        mixed = G.mapping_with_mixing(z, mixing_prob=1.0, generator=g)
        same = G.mapping_with_mixing(z, mixing_prob=0.0)
    torch.testing.assert_close(same, ws)
    cut = int((mixed != ws).any(dim=2).any(dim=0).float().argmax())
    assert 1 <= cut < G.num_ws
    torch.testing.assert_close(mixed[:, :cut], ws[:, :cut])
    grid = G.style_mix(torch.randn(2, 16), torch.randn(3, 16), crossover=4)
    assert grid.shape == (2, 3, 3, 16, 16)
    # the same row z with different column z: the coarse styles agree, the images differ
    assert (grid[0, 0] - grid[0, 1]).abs().max() > 0


def test_conditional():
    G = randomize_(small_g(c_dim=5))
    D = randomize_(small_d(c_dim=5))
    z = torch.randn(4, 16)
    c = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 5).float()
    with torch.no_grad():
        img = G(z, c, noise_mode="const")
        img2 = G(z, c.roll(1, 0), noise_mode="const")
        assert img.shape == (4, 3, 16, 16) and (img - img2).abs().max() > 1e-4
        logits = D(img, c)
        assert logits.shape == (4, 1)
        assert (logits - D(img, c.roll(1, 0))).abs().max() > 1e-6
    with pytest.raises(ValueError):
        G(z)  # c is required


# ------------------------------------------------------------------------------------------------
# layouts and dtypes

def test_channels_last():
    G = randomize_(small_g())
    Gcl = small_g(channels_last=True)
    Gcl.load_state_dict(G.state_dict())
    D = randomize_(small_d())
    z = torch.randn(4, 16)
    with torch.no_grad():
        img = G(z, noise_mode="const")
        torch.testing.assert_close(Gcl(z, noise_mode="const"), img, rtol=1e-5, atol=1e-5)
        ref = D(img)
        torch.testing.assert_close(D(img.contiguous(memory_format=torch.channels_last)), ref,
                                   rtol=1e-5, atol=1e-5)
        Dcl = small_d(channels_last=True)
        Dcl.load_state_dict(D.state_dict())
        torch.testing.assert_close(Dcl(img), ref, rtol=1e-5, atol=1e-5)


def test_bf16_autocast():
    G, D = randomize_(small_g()), randomize_(small_d())
    z = torch.randn(4, 16)
    with torch.no_grad():
        img32 = G(z, noise_mode="const")
        l32 = D(img32)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            img16 = G(z, noise_mode="const")
            l16 = D(img32)
    assert img16.dtype == torch.float32 and l16.dtype == torch.float32
    assert not torch.equal(img16, img32)  # it really ran in bf16
    assert (img16 - img32).abs().max() < 0.1 * img32.abs().max()
    assert (l16 - l32).abs().max() < 0.1 * l32.abs().max() + 0.05
    # and trains: the gradients flow in bf16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = D(G(z)).sum()
    loss.backward()
    assert G.synthesis.b16.conv1.weight.grad.isfinite().all()
    assert G.synthesis.b16.conv1.weight.grad.abs().max() > 0


def test_fp16_recipe():
    G = randomize_(small_g(num_fp16_res=2, conv_clamp=256))
    G32 = small_g()
    G32.load_state_dict(G.state_dict())
    assert [b.use_fp16 for b in G.synthesis.blocks()] == [False, True, True]  # top 2: 8, 16
    D = randomize_(small_d(num_fp16_res=2, conv_clamp=256))
    assert [b.use_fp16 for b in D.blocks()] == [True, True]
    z = torch.randn(4, 16)
    with torch.no_grad():
        img = G(z, noise_mode="const")
        ref = G32(z, noise_mode="const")
        logits = D(img)
        ref_l = D(img, force_fp32=True)
    assert img.dtype == torch.float32 and logits.dtype == torch.float32
    assert not torch.equal(img, ref)
    assert (img - ref).abs().max() < 0.05 * ref.abs().max()
    assert (logits - ref_l).abs().max() < 0.05 * ref_l.abs().max() + 0.02


# ------------------------------------------------------------------------------------------------
# second order

def test_r1_through_discriminator_gradcheck():
    D = randomize_(small_d(8, channel_base=16, channel_max=2)).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)

    w0 = D.b8.fromrgb.weight.detach().clone().requires_grad_(True)
    # gradcheck through a parameter: feed it functionally so autograd sees w
    from torch.func import functional_call

    def pen(w):
        return r1_penalty(lambda img: functional_call(D, {"b8.fromrgb.weight": w}, (img,)), x)

    assert torch.autograd.gradcheck(pen, (w0,), eps=1e-6, atol=1e-6)
    # and the penalty's gradient reaches every parameter that x's gradient depends on
    pen_val = r1_penalty(D, x)
    grads = torch.autograd.grad(pen_val, list(D.parameters()), allow_unused=True)
    names = [n for n, _ in D.named_parameters()]
    missing = [n for n, g in zip(names, grads) if g is None or g.abs().max() == 0]
    # biases after the (nonlinear) minibatch-stddev layer move x's gradient only through lrelu's
    # piecewise-constant slope, so their R1 gradient is zero; everything else gets one
    assert missing == ["b4.conv.bias", "b4.fc.bias", "b4.out.bias"], missing


def test_path_length_through_generator_gradcheck():
    from torch.func import functional_call

    G = randomize_(small_g(8, channel_base=16, channel_max=2)).double()
    ws = G.mapping(torch.randn(3, 16, dtype=torch.float64)).detach()
    a0 = G.synthesis.b8.conv1.affine.bias.detach().clone().requires_grad_(True)
    seed = 11

    def pen(a):
        w = ws.clone().requires_grad_(True)
        img = functional_call(G.synthesis, {"b8.conv1.affine.bias": a}, (w,),
                              {"noise_mode": "const"})
        g = torch.Generator().manual_seed(seed)
        penalty, _, _ = path_length_penalty(img, w, mean=0.3, generator=g)
        return penalty

    assert torch.autograd.gradcheck(pen, (a0,), eps=1e-6, atol=1e-6)
    pl = PathLengthPenalty()
    w = ws.float().clone().requires_grad_(True)
    Gf = G.float()
    out = pl(Gf.synthesis(w, noise_mode="const"), w)
    out.backward()
    assert Gf.synthesis.b4.conv1.weight.grad.abs().max() > 0 and pl.pl_mean.item() > 0


# ------------------------------------------------------------------------------------------------
# torch.compile

@pytest.mark.slow
def test_compile_fullgraph_matches_eager():
    G = randomize_(small_g())
    D = randomize_(small_d())
    z = torch.randn(4, 16)
    with torch.no_grad():
        img = G(z, noise_mode="const")
        Gc = torch.compile(G, fullgraph=True)
        torch.testing.assert_close(Gc(z, noise_mode="const"), img, rtol=1e-4, atol=1e-4)
        Dc = torch.compile(D, fullgraph=True)
        torch.testing.assert_close(Dc(img), D(img), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# rosinality checkpoints

ROS_CHANNELS = {4: 8, 8: 8, 16: 4, 32: 2}


def _ros_models(size=32, seed=0):
    from tests import _rosinality_oracle as ro

    g = torch.Generator().manual_seed(seed)
    chans = {r: c for r, c in ROS_CHANNELS.items() if r <= size}
    gsd = ro.make_generator_state_dict(size, 16, 3, channels=chans, generator=g)
    dsd = ro.make_discriminator_state_dict(size, channels=chans, generator=g)
    return ro, gsd, dsd


def test_rosinality_generator_conversion_is_exact():
    ro, gsd, _ = _ros_models()
    state, cfg = rosinality_generator_state_dict(gsd, latent_avg=torch.randn(16,
                                                                             dtype=torch.float64))
    assert cfg["img_resolution"] == 32 and cfg["mapping_layers"] == 3
    assert channels_per_resolution(32, cfg["channel_base"], cfg["channel_max"]) == ROS_CHANNELS
    G = Generator(**cfg, impl="ref").double()
    G.load_state_dict(state)  # strict: every parameter and buffer is mapped
    z = torch.randn(3, 16, dtype=torch.float64)
    with torch.no_grad():
        ours = G(z, noise_mode="const")
        theirs = ro.generator_forward(gsd, [z], n_mlp=3)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
        # truncation towards latent_avg, style mixing with two z
        w_avg = state["mapping.w_avg"]
        ours = G(z, truncation_psi=0.7, noise_mode="const")
        theirs = ro.generator_forward(gsd, [z], n_mlp=3, truncation=0.7, truncation_latent=w_avg)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
        z2 = torch.randn(3, 16, dtype=torch.float64)
        ws = mix_styles(G.mapping(z), G.mapping(z2), 5)
        theirs = ro.generator_forward(gsd, [z, z2], n_mlp=3, inject_index=5)
        torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), theirs, rtol=1e-10,
                                   atol=1e-10)


def test_rosinality_discriminator_conversion_is_exact():
    ro, _, dsd = _ros_models()
    state, cfg = rosinality_discriminator_state_dict(dsd)
    D = Discriminator(**cfg, impl="ref").double()
    D.load_state_dict(state)
    img = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(D(img), ro.discriminator_forward(dsd, img), rtol=1e-10,
                                   atol=1e-10)


def test_load_rosinality_checkpoint_file(tmp_path):
    ro, gsd, dsd = _ros_models(16)
    gsd32 = {k: v.float() for k, v in gsd.items()}
    ckpt = {"g": gsd32, "g_ema": gsd32, "d": {k: v.float() for k, v in dsd.items()},
            "args": {"size": 16}}
    path = tmp_path / "ros.pt"
    torch.save(ckpt, path)
    G = load_rosinality(path)
    D = load_rosinality(path, which="d")
    assert isinstance(G, Generator) and isinstance(D, Discriminator) and not G.training
    z = torch.randn(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(G(z, noise_mode="const"),
                                   ro.generator_forward(gsd32, [z], n_mlp=3), rtol=1e-4,
                                   atol=1e-4)
        img = torch.randn(4, 3, 16, 16)
        torch.testing.assert_close(D(img), ro.discriminator_forward(D_sd := ckpt["d"], img),
                                   rtol=1e-4, atol=1e-4)
        # no latent_avg in the file: w_avg is the mean mapped w (rosinality's mean_latent)
        w = G.mapping(torch.randn(4096, 16))[:, 0].mean(0)
        assert (G.mapping.w_avg - w).abs().max() < 0.1 * w.abs().max() + 0.02
    del D_sd
    with pytest.raises(KeyError, match="g_ema"):
        load_rosinality({"g": gsd32, "d": ckpt["d"]})
    with pytest.raises(KeyError, match="not a rosinality"):
        load_rosinality({"foo.weight": torch.zeros(1)})
