"""Sanity checks of tests/_rosinality_oracle.py, the plain-PyTorch float64 re-implementation of
rosinality/stylegan2-pytorch's Generator / Discriminator forward passes on a state dict."""
import math

import pytest
import torch
import torch.nn.functional as F

from tests import _rosinality_oracle as O
from tests._upfirdn2d_oracle import upfirdn2d_definition

F64 = torch.float64
SMALL = {4: 7, 8: 6, 16: 5, 32: 4}


def _small(size):
    return {r: c for r, c in SMALL.items() if r <= size}


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# key layout (rosinality's model.py at 7e46e47: Generator / Discriminator state_dict())
# --------------------------------------------------------------------------------------------------

def _expected_generator_layout(size, style_dim, n_mlp, ch, img=3):
    """(key, shape) in state_dict order, from rosinality's Generator constructor."""
    log = int(math.log2(size))
    out = []
    for i in range(1, n_mlp + 1):
        out += [(f"style.{i}.weight", (style_dim, style_dim)), (f"style.{i}.bias", (style_dim,))]
    out.append(("input.input", (1, ch[4], 4, 4)))

    def modconv(p, cin, cout, k, up):
        r = [(p + "weight", (1, cout, cin, k, k))]
        if up:
            r.append((p + "blur.kernel", (4, 4)))
        return r + [(p + "modulation.weight", (cin, style_dim)), (p + "modulation.bias", (cin,))]

    def styled(p, cin, cout, up):
        return modconv(p + "conv.", cin, cout, 3, up) + [
            (p + "noise.weight", (1,)), (p + "activate.bias", (cout,))]

    def rgb(p, cin, up):
        return ([(p + "bias", (1, img, 1, 1))] + ([(p + "upsample.kernel", (4, 4))] if up else [])
                + modconv(p + "conv.", cin, img, 1, False))

    out += styled("conv1.", ch[4], ch[4], False) + rgb("to_rgb1.", ch[4], False)
    cin = ch[4]
    for i in range(3, log + 1):
        out += styled(f"convs.{2 * (i - 3)}.", cin, ch[2 ** i], True)
        out += styled(f"convs.{2 * (i - 3) + 1}.", ch[2 ** i], ch[2 ** i], False)
        cin = ch[2 ** i]
    for i in range(3, log + 1):
        out += rgb(f"to_rgbs.{i - 3}.", ch[2 ** i], True)
    for j in range((log - 2) * 2 + 1):
        out.append((f"noises.noise_{j}", (1, 1, 2 ** ((j + 5) // 2), 2 ** ((j + 5) // 2))))
    return out


def _expected_discriminator_layout(size, ch, img=3):
    log = int(math.log2(size))
    out = [("convs.0.0.weight", (ch[size], img, 1, 1)), ("convs.0.1.bias", (ch[size],))]
    cin = ch[size]
    for k, i in enumerate(range(log, 2, -1), start=1):
        cout = ch[2 ** (i - 1)]
        p = f"convs.{k}."
        out += [(p + "conv1.0.weight", (cin, cin, 3, 3)), (p + "conv1.1.bias", (cin,)),
                (p + "conv2.0.kernel", (4, 4)), (p + "conv2.1.weight", (cout, cin, 3, 3)),
                (p + "conv2.2.bias", (cout,)), (p + "skip.0.kernel", (4, 4)),
                (p + "skip.1.weight", (cout, cin, 1, 1))]
        cin = cout
    out += [("final_conv.0.weight", (ch[4], cin + 1, 3, 3)), ("final_conv.1.bias", (ch[4],)),
            ("final_linear.0.weight", (ch[4], ch[4] * 16)), ("final_linear.0.bias", (ch[4],)),
            ("final_linear.1.weight", (1, ch[4])), ("final_linear.1.bias", (1,))]
    return out


def _layout(sd):
    return [(k, tuple(v.shape)) for k, v in sd.items()]


def test_rosinality_channels():
    assert O.rosinality_channels(1024) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256,
                                           256: 128, 512: 64, 1024: 32}
    assert O.rosinality_channels(1024, 1) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256,
                                              128: 128, 256: 64, 512: 32, 1024: 16}
    assert O.rosinality_channels(8) == {4: 512, 8: 512}
    for bad in (2, 12, 2048):
        with pytest.raises(ValueError):
            O.rosinality_channels(bad)


def test_generator_keys_size8_explicit():
    sd = O.make_generator_state_dict(8, 6, 2, channels={4: 12, 8: 10}, generator=_g())
    want = [
        ("style.1.weight", (6, 6)), ("style.1.bias", (6,)),
        ("style.2.weight", (6, 6)), ("style.2.bias", (6,)),
        ("input.input", (1, 12, 4, 4)),
        ("conv1.conv.weight", (1, 12, 12, 3, 3)),
        ("conv1.conv.modulation.weight", (12, 6)), ("conv1.conv.modulation.bias", (12,)),
        ("conv1.noise.weight", (1,)), ("conv1.activate.bias", (12,)),
        ("to_rgb1.bias", (1, 3, 1, 1)), ("to_rgb1.conv.weight", (1, 3, 12, 1, 1)),
        ("to_rgb1.conv.modulation.weight", (12, 6)), ("to_rgb1.conv.modulation.bias", (12,)),
        ("convs.0.conv.weight", (1, 10, 12, 3, 3)), ("convs.0.conv.blur.kernel", (4, 4)),
        ("convs.0.conv.modulation.weight", (12, 6)), ("convs.0.conv.modulation.bias", (12,)),
        ("convs.0.noise.weight", (1,)), ("convs.0.activate.bias", (10,)),
        ("convs.1.conv.weight", (1, 10, 10, 3, 3)),
        ("convs.1.conv.modulation.weight", (10, 6)), ("convs.1.conv.modulation.bias", (10,)),
        ("convs.1.noise.weight", (1,)), ("convs.1.activate.bias", (10,)),
        ("to_rgbs.0.bias", (1, 3, 1, 1)), ("to_rgbs.0.upsample.kernel", (4, 4)),
        ("to_rgbs.0.conv.weight", (1, 3, 10, 1, 1)),
        ("to_rgbs.0.conv.modulation.weight", (10, 6)), ("to_rgbs.0.conv.modulation.bias", (10,)),
        ("noises.noise_0", (1, 1, 4, 4)), ("noises.noise_1", (1, 1, 8, 8)),
        ("noises.noise_2", (1, 1, 8, 8)),
    ]
    assert _layout(sd) == want
    assert _layout(sd) == _expected_generator_layout(8, 6, 2, {4: 12, 8: 10})
    k = torch.tensor([1.0, 3, 3, 1], dtype=F64)
    up = torch.outer(k, k) / 64 * 4          # Blur(upsample_factor=2) and Upsample: make_kernel * 4
    assert torch.equal(sd["convs.0.conv.blur.kernel"], up)
    assert torch.equal(sd["to_rgbs.0.upsample.kernel"], up)
    assert all(v.dtype == F64 for v in sd.values())


def test_discriminator_keys_size8_explicit():
    sd = O.make_discriminator_state_dict(8, channels={4: 12, 8: 10}, generator=_g())
    want = [
        ("convs.0.0.weight", (10, 3, 1, 1)), ("convs.0.1.bias", (10,)),
        ("convs.1.conv1.0.weight", (10, 10, 3, 3)), ("convs.1.conv1.1.bias", (10,)),
        ("convs.1.conv2.0.kernel", (4, 4)), ("convs.1.conv2.1.weight", (12, 10, 3, 3)),
        ("convs.1.conv2.2.bias", (12,)),
        ("convs.1.skip.0.kernel", (4, 4)), ("convs.1.skip.1.weight", (12, 10, 1, 1)),
        ("final_conv.0.weight", (12, 13, 3, 3)), ("final_conv.1.bias", (12,)),
        ("final_linear.0.weight", (12, 192)), ("final_linear.0.bias", (12,)),
        ("final_linear.1.weight", (1, 12)), ("final_linear.1.bias", (1,)),
    ]
    assert _layout(sd) == want
    k = torch.tensor([1.0, 3, 3, 1], dtype=F64)
    assert torch.equal(sd["convs.1.conv2.0.kernel"], torch.outer(k, k) / 64)  # normalised
    assert torch.equal(sd["convs.1.skip.0.kernel"], torch.outer(k, k) / 64)


@pytest.mark.parametrize("size,cm", [(16, 2), (32, 2), (32, 1)])
def test_key_layout_default_channels(size, cm):
    ch = {4: 512, 8: 512, 16: 512, 32: 512}
    g = O.make_generator_state_dict(size, 32, 8, channel_multiplier=cm, dtype=torch.float32)
    assert _layout(g) == _expected_generator_layout(size, 32, 8, ch)
    assert sum(k.startswith("noises.") for k in g) == (int(math.log2(size)) - 2) * 2 + 1
    d = O.make_discriminator_state_dict(size, channel_multiplier=cm, dtype=torch.float32)
    assert _layout(d) == _expected_discriminator_layout(size, ch)
    assert all(v.dtype == torch.float32 for v in list(g.values()) + list(d.values()))


def test_key_layout_table_and_img_channels():
    ch = O.rosinality_channels(64, 1)
    assert ch[64] == 256
    # layout only depends on the table through shapes; img_channels != 3 is a test-only extension
    g = O.make_generator_state_dict(64, 8, 1, channels=_small(32) | {64: 3}, img_channels=1)
    assert _layout(g) == _expected_generator_layout(64, 8, 1, _small(32) | {64: 3}, img=1)
    d = O.make_discriminator_state_dict(64, channels=_small(32) | {64: 3}, img_channels=1)
    assert _layout(d) == _expected_discriminator_layout(64, _small(32) | {64: 3}, img=1)
    with pytest.raises(ValueError, match="missing"):
        O.make_generator_state_dict(16, 8, 1, channels={4: 4, 16: 4})


def test_builders_are_random_nontrivial_and_seeded():
    g1 = O.make_generator_state_dict(16, 8, 2, channels=_small(16), generator=_g(3))
    g2 = O.make_generator_state_dict(16, 8, 2, channels=_small(16), generator=_g(3))
    assert all(torch.equal(g1[k], g2[k]) for k in g1)
    for k, v in g1.items():
        assert (v != 0).all(), k
    for k, v in g1.items():
        if k.endswith("noise.weight"):
            assert 0.1 <= v.abs().item() <= 0.5
        if k.endswith("modulation.bias"):
            assert (v - 1).abs().mean() < 0.5 and not torch.allclose(v, torch.ones_like(v))
    st = O.generator_structure(g1)
    assert st == dict(size=16, log_size=4, n_mlp=2, num_layers=5, n_latent=6, style_dim=8,
                      img_channels=3, channels=_small(16))
    d = O.make_discriminator_state_dict(16, channels=_small(16), generator=_g(3))
    for k, v in d.items():
        assert (v != 0).all(), k


# --------------------------------------------------------------------------------------------------
# primitives
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up,down,pad", [(1, 1, (0, 0)), (2, 1, (2, 1)), (1, 2, (2, 2)),
                                         (2, 1, (3, 2)), (1, 1, (-1, 2)), (2, 2, (1, 0, 2, -1))])
def test_upfirdn2d_matches_definition(up, down, pad):
    x = torch.randn(2, 3, 7, 6, dtype=F64)
    k = torch.rand(4, 3, dtype=F64) + 0.1  # asymmetric: a missing flip or swapped axes shows
    want_pad = [pad[0], pad[1], pad[0], pad[1]] if len(pad) == 2 else list(pad)
    torch.testing.assert_close(O.upfirdn2d(x, k, up=up, down=down, pad=pad),
                               upfirdn2d_definition(x, k, up=up, down=down, padding=want_pad),
                               rtol=1e-13, atol=1e-13)


def test_mapping_formula():
    sd = O.make_generator_state_dict(8, 5, 1, channels=_small(8), generator=_g(1))
    z = torch.randn(4, 5, dtype=F64)
    x = z / torch.sqrt((z ** 2).mean(1, keepdim=True) + 1e-8)
    w_eff = sd["style.1.weight"] * 0.01 / math.sqrt(5)
    want = F.leaky_relu(x @ w_eff.T + sd["style.1.bias"] * 0.01, 0.2) * math.sqrt(2)
    torch.testing.assert_close(O.mapping_forward(sd, z, n_mlp=1), want, rtol=1e-13, atol=1e-13)


def _demodulated(sd, prefix, w, demodulate=True):
    """Per-sample modulated (and demodulated) weights [N, out, in, k, k], written out."""
    weight = sd[prefix + "weight"][0]
    cin, k = weight.shape[1], weight.shape[-1]
    s = (w @ (sd[prefix + "modulation.weight"] / math.sqrt(w.shape[1])).T
         + sd[prefix + "modulation.bias"])
    wm = weight[None] / math.sqrt(cin * k * k) * s[:, None, :, None, None]
    if demodulate:
        wm = wm / torch.sqrt((wm ** 2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    return wm


def test_modulated_conv_plain_path_equals_input_scaling_form():
    # same-resolution StyledConv: modulating the input and demodulating the output is the same op
    sd = O.make_generator_state_dict(8, 6, 1, channels=_small(8), generator=_g(2))
    p = "convs.1.conv."
    x = torch.randn(3, 6, 8, 8, dtype=F64)
    w = torch.randn(3, 6, dtype=F64)
    weight = sd[p + "weight"][0] / math.sqrt(6 * 9)
    s = w @ (sd[p + "modulation.weight"] / math.sqrt(6)).T + sd[p + "modulation.bias"]
    d = torch.rsqrt(((weight[None] * s[:, None, :, None, None]) ** 2).sum((2, 3, 4)) + 1e-8)
    want = F.conv2d(x * s[:, :, None, None], weight, padding=1) * d[:, :, None, None]
    got = O._modconv_forward(sd, p, x, w, demodulate=True, upsample=False)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_upsampling_styled_conv_two_ways():
    """conv_transpose2d(stride 2) + Blur(4K, pad (1, 1)) == zero-insert upsample x2 and the full
    4x4 FIR (upfirdn2d(up=2, pad=(3, 2)) with 4K), then a valid correlation with the spatially
    FLIPPED modulated kernel (i.e. a true convolution with it).

    1-D derivation, z = zero-inserted x, '*' = true convolution:
      transposed conv: y = W * z;  Blur pad (1, 1), 4 taps: out[i] = (K * y)[i + 2]
      alternative: u[n] = (K * z)[n + 3 - 3] (pad 3 before, 2 after: length 2H + 2, nothing cut),
      valid correlation with flip(W): v[i] = (W * u)[i + 2] = (W * K * z)[i + 2] = out[i]."""
    sd = O.make_generator_state_dict(8, 6, 1, channels=_small(8), generator=_g(4))
    n, h = 3, 4
    x = torch.randn(n, 7, h, h, dtype=F64)
    w = torch.randn(n, 6, dtype=F64)
    noise = torch.randn(n, 1, 2 * h, 2 * h, dtype=F64)
    got = O.styled_conv_forward(sd, "convs.0.", x, w, noise)
    assert got.shape == (n, 6, 2 * h, 2 * h)

    wm = _demodulated(sd, "convs.0.conv.", w)
    kern = sd["convs.0.conv.blur.kernel"]
    u = upfirdn2d_definition(x, kern, up=2, padding=[3, 2, 3, 2])
    assert u.shape[-1] == 2 * h + 2
    conv = torch.cat([F.conv2d(u[i:i + 1], wm[i].flip([2, 3])) for i in range(n)])
    want = conv + sd["convs.0.noise.weight"] * noise + sd["convs.0.activate.bias"][:, None, None]
    want = F.leaky_relu(want, 0.2) * math.sqrt(2)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)

    # the flip matters (random kernels are not symmetric), so the check above is not vacuous
    wrong = torch.cat([F.conv2d(u[i:i + 1], wm[i]) for i in range(n)])
    assert not torch.allclose(wrong, conv, atol=1e-3)
    # and the oracle's own transposed-conv path agrees with its modulated_conv2d primitive
    s = (w @ (sd["convs.0.conv.modulation.weight"] / math.sqrt(6)).T
         + sd["convs.0.conv.modulation.bias"])
    torch.testing.assert_close(
        O.modulated_conv2d(x, sd["convs.0.conv.weight"], s, upsample=True, blur_kernel=kern), conv,
        rtol=1e-12, atol=1e-12)


def test_upsample_of_constant_is_constant_inside():
    sd = O.make_generator_state_dict(8, 6, 1, channels=_small(8), generator=_g(5))
    x = torch.randn(2, 6, 8, 8, dtype=F64)
    w = torch.randn(2, 6, dtype=F64)
    skip = torch.full((2, 3, 4, 4), 2.5, dtype=F64)
    up = (O.to_rgb_forward(sd, "to_rgbs.0.", x, w, skip)
          - O.to_rgb_forward(sd, "to_rgbs.0.", x, w, None))
    assert up.shape == (2, 3, 8, 8)
    torch.testing.assert_close(up[:, :, 1:-1, 1:-1], torch.full_like(up[:, :, 1:-1, 1:-1], 2.5))
    # pad (2, 1): the first and last rows/columns see one missing tap of weight 1/4 per axis
    torch.testing.assert_close(up[:, :, 0, 1:-1], torch.full((2, 3, 6), 2.5 * 0.75, dtype=F64))
    torch.testing.assert_close(up[:, :, 1:-1, -1], torch.full((2, 3, 6), 2.5 * 0.75, dtype=F64))
    torch.testing.assert_close(up[:, :, 0, 0], torch.full((2, 3), 2.5 * 0.75 ** 2, dtype=F64))
    torch.testing.assert_close(up[:, :, -1, -1], torch.full((2, 3), 2.5 * 0.75 ** 2, dtype=F64))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 8, 12])
def test_minibatch_stddev_direct(n):
    x = torch.randn(n, 5, 3, 3, dtype=F64)
    got = O.minibatch_stddev(x)
    assert got.shape == (n, 6, 3, 3)
    assert torch.equal(got[:, :5], x)
    g = min(n, 4)
    m = n // g
    for i in range(n):
        members = x[[i % m + m * j for j in range(g)]]  # strided groups: view(group, -1, ...)
        mean = members.mean(0)
        var = ((members - mean) ** 2).mean(0)
        want = torch.sqrt(var + 1e-8).mean()
        torch.testing.assert_close(got[i, 5], torch.full((3, 3), want.item(), dtype=F64),
                                   rtol=1e-13, atol=1e-13)
    if n == 1:
        torch.testing.assert_close(got[0, 5], torch.full((3, 3), 1e-4, dtype=F64))


def test_minibatch_stddev_bad_batch():
    with pytest.raises(ValueError, match="divisible"):
        O.minibatch_stddev(torch.randn(6, 2, 2, 2, dtype=F64))


def test_discriminator_groups_are_strided():
    sd = O.make_discriminator_state_dict(8, channels=_small(8), generator=_g(6))
    img = torch.randn(8, 3, 8, 8, dtype=F64)
    base = O.discriminator_forward(sd, img)
    img2 = img.clone()
    img2[4] += 1.0  # same group as sample 0 (0, 2, 4, 6), not as 1 (1, 3, 5, 7)
    out = O.discriminator_forward(sd, img2)
    assert not torch.allclose(out[0], base[0], atol=1e-9)
    torch.testing.assert_close(out[[1, 3, 5, 7]], base[[1, 3, 5, 7]], rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------
# generator / discriminator forward
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,img_channels", [(4, 3), (8, 3), (16, 3), (16, 1)])
def test_output_shapes(size, img_channels):
    gsd = O.make_generator_state_dict(size, 8, 2, channels=_small(size),
                                      img_channels=img_channels, generator=_g(7))
    z = torch.randn(3, 8, dtype=F64)
    img, latent = O.generator_forward(gsd, [z], n_mlp=2, return_latents=True)
    assert img.shape == (3, img_channels, size, size) and img.dtype == F64
    assert latent.shape == (3, int(math.log2(size)) * 2 - 2, 8)
    assert torch.isfinite(img).all()
    dsd = O.make_discriminator_state_dict(size, channels=_small(size), img_channels=img_channels,
                                          generator=_g(8))
    for n in (1, 2, 4, 8):
        logits = O.discriminator_forward(dsd, torch.randn(n, img_channels, size, size, dtype=F64))
        assert logits.shape == (n, 1) and torch.isfinite(logits).all()


def test_determinism_and_noise():
    sd = O.make_generator_state_dict(8, 8, 2, channels=_small(8), generator=_g(9))
    z = torch.randn(2, 8, dtype=F64)
    a = O.generator_forward(sd, [z], n_mlp=2)
    assert torch.equal(a, O.generator_forward(sd, [z], n_mlp=2))
    stored = [sd[f"noises.noise_{j}"] for j in range(3)]
    assert torch.equal(a, O.generator_forward(sd, [z], noise=stored))
    assert not torch.allclose(a, O.generator_forward(sd, [z], randomize_noise=True))
    assert not torch.allclose(a, O.generator_forward(sd, [z], noise=[stored[0], None, stored[2]]))
    for j in range(3):  # every stored noise reaches the image
        sd2 = dict(sd)
        sd2[f"noises.noise_{j}"] = torch.randn_like(sd[f"noises.noise_{j}"])
        assert not torch.allclose(a, O.generator_forward(sd2, [z]), atol=1e-6)
    with pytest.raises(ValueError, match="noise"):
        O.generator_forward(sd, [z], noise=stored[:2])


def test_truncation_zero_gives_identical_images():
    sd = O.make_generator_state_dict(8, 8, 2, channels=_small(8), generator=_g(10))
    tl = O.mapping_forward(sd, torch.randn(64, 8, dtype=F64)).mean(0, keepdim=True)
    z = torch.randn(3, 8, dtype=F64)
    img = O.generator_forward(sd, [z], truncation=0.0, truncation_latent=tl)
    assert torch.equal(img[0], img[1]) and torch.equal(img[0], img[2])
    torch.testing.assert_close(
        img, O.generator_forward(sd, [tl.expand(3, 8)], input_is_latent=True))
    half = O.generator_forward(sd, [z], truncation=0.5, truncation_latent=tl)
    w = O.mapping_forward(sd, z)
    torch.testing.assert_close(
        half, O.generator_forward(sd, [tl + 0.5 * (w - tl)], input_is_latent=True))
    with pytest.raises(ValueError, match="truncation_latent"):
        O.generator_forward(sd, [z], truncation=0.5)


def test_latent_paths_and_style_mixing():
    sd = O.make_generator_state_dict(16, 8, 2, channels=_small(16), generator=_g(11))
    z1, z2 = torch.randn(2, 8, dtype=F64), torch.randn(2, 8, dtype=F64)
    w1, w2 = O.mapping_forward(sd, z1), O.mapping_forward(sd, z2)
    a = O.generator_forward(sd, [z1])
    torch.testing.assert_close(a, O.generator_forward(sd, [w1], input_is_latent=True),
                               rtol=0, atol=0)
    n_latent = 6
    torch.testing.assert_close(
        a, O.generator_forward(sd, [w1[:, None].expand(2, n_latent, 8)], input_is_latent=True))
    # inject_index = n_latent keeps only the first style
    torch.testing.assert_close(a, O.generator_forward(sd, [z1, z2], inject_index=n_latent))
    for k in (1, 3, 5):
        mixed, latent = O.generator_forward(sd, [z1, z2], inject_index=k, return_latents=True)
        want_latent = torch.cat([w1[:, None].expand(2, k, 8),
                                 w2[:, None].expand(2, n_latent - k, 8)], 1)
        torch.testing.assert_close(latent, want_latent, rtol=0, atol=0)
        torch.testing.assert_close(
            mixed, O.generator_forward(sd, want_latent, input_is_latent=True), rtol=0, atol=0)
        assert not torch.allclose(mixed, a)
    # only latent[:, 0..n_latent-1] is used, to_rgb1 shares index 1 with the first up conv
    lat = w1[:, None].repeat(1, n_latent, 1)
    base = O.generator_forward(sd, lat, input_is_latent=True)
    for idx in range(n_latent):
        lat2 = lat.clone()
        lat2[:, idx] = w2
        assert not torch.allclose(base, O.generator_forward(sd, lat2, input_is_latent=True))
    with pytest.raises(ValueError, match="latent must have"):
        O.generator_forward(sd, lat[:, :5], input_is_latent=True)


def test_float32_checkpoint_evaluated_in_float64():
    sd = O.make_generator_state_dict(8, 8, 2, channels=_small(8), generator=_g(12))
    sd32 = {k: v.float() for k, v in sd.items()}
    sd32_as64 = {k: v.double() for k, v in sd32.items()}
    z = torch.randn(2, 8, dtype=F64)
    out = O.generator_forward(sd32, [z])
    assert out.dtype == F64
    torch.testing.assert_close(out, O.generator_forward(sd32_as64, [z]), rtol=0, atol=0)
    out32 = O.generator_forward(sd32, [z.float()])
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out, rtol=1e-4, atol=1e-4)
    dsd = O.make_discriminator_state_dict(8, channels=_small(8), generator=_g(13),
                                          dtype=torch.float32)
    img = torch.randn(4, 3, 8, 8, dtype=F64)
    assert O.discriminator_forward(dsd, img).dtype == F64
