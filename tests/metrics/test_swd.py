"""Laplacian-pyramid sliced Wasserstein distance: the pyramid against a numpy transcription of its
definition, patch gathering and per-set normalisation, the 1-D core against a closed form, and the
metric's behaviour on smooth random image sets (zero for identical sets, growing with noise, blur
and colour shifts, symmetry, determinism, uint8/float agreement, chunking, unequal set sizes),
plus bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastgan.metrics import SWDMetric, sliced_wasserstein_distance
from fastgan.metrics import swd as swd_mod

N, RES = 64, 32
FAST = dict(dirs=32, repeats=2)   # 64 directions: the ordering tests do not need 512


def smooth_fields(n: int, res: int = RES, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Images in [-1, 1] with content at several scales: bicubic upsampled 4/8/16-pixel noise."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(n, channels, res, res)
    for side, weight in ((4, 1.0), (8, 0.5), (16, 0.25)):
        low = torch.randn(n, channels, side, side, generator=g)
        out += weight * F.interpolate(low, size=(res, res), mode="bicubic", align_corners=False)
    return (out / 1.2).clamp(-1, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    t = torch.arange(-3.0, 4.0)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = torch.outer(k, k) / k.sum() ** 2
    c = x.shape[1]
    return F.conv2d(F.pad(x, (3, 3, 3, 3), mode="reflect"), k.expand(c, 1, 7, 7), groups=c)


@pytest.fixture(scope="module")
def real() -> torch.Tensor:
    return smooth_fields(N)


@pytest.fixture(scope="module")
def noise() -> torch.Tensor:
    return torch.randn(N, 3, RES, RES, generator=torch.Generator().manual_seed(7))


# ------------------------------------------------------------------------- building blocks

def _np_blur(img: np.ndarray, gain: float) -> np.ndarray:
    """5x5 binomial filter of a 2-D array with mirror ('reflect') borders, by explicit sums."""
    k = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
    k = np.outer(k, k) / 256.0 * gain
    padded = np.pad(img, 2, mode="reflect")
    h, w = img.shape
    return sum(k[i, j] * padded[i:i + h, j:j + w] for i in range(5) for j in range(5))


def _np_laplacian_pyramid(img: np.ndarray) -> list:
    levels, current = [], img
    while current.shape[0] > 16:
        coarser = _np_blur(current, 1.0)[::2, ::2]
        up = np.zeros_like(current)
        up[::2, ::2] = coarser
        levels.append(current - _np_blur(up, 4.0))
        current = coarser
    return levels + [current]


def test_pyramid_matches_definition():
    x = smooth_fields(2, res=64, seed=3)
    ours = swd_mod._laplacian_pyramid(x)
    assert [lvl.shape[-1] for lvl in ours] == [64, 32, 16]
    for n in range(2):
        for c in range(3):
            ref = _np_laplacian_pyramid(x[n, c].double().numpy())
            for got, want in zip(ours, ref):
                np.testing.assert_allclose(got[n, c].numpy(), want, rtol=0, atol=2e-6)
    # a constant image has empty band-pass levels and is its own coarsest level
    const = torch.full((1, 1, 32, 32), 0.37)
    band, coarse = swd_mod._laplacian_pyramid(const)
    assert band.abs().max() < 1e-6
    torch.testing.assert_close(coarse, torch.full((1, 1, 16, 16), 0.37))


def test_patches_and_per_set_normalisation():
    level = torch.randn(3, 3, 16, 16)
    pos = swd_mod._patch_positions(3, 16, 5, seed=11)
    assert int(pos.min()) >= 0 and int(pos.max()) <= 16 - 7
    desc = swd_mod._extract_patches(level, pos)
    assert desc.shape == (15, 3 * 49)
    for i in range(3):
        for p in range(5):
            y, x = pos[i, p].tolist()
            torch.testing.assert_close(desc[i * 5 + p], level[i, :, y:y + 7, x:x + 7].reshape(-1))

    images = smooth_fields(6, seed=4) * torch.tensor([0.2, 1.0, 3.0]).view(1, 3, 1, 1)
    described = swd_mod._describe(images, [32, 16], patches=8, seed=0, device=torch.device("cpu"),
                                  chunk_size=4)
    for desc in described.values():
        per_channel = desc.view(-1, 3, 49).transpose(0, 1).reshape(3, -1)
        torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
        torch.testing.assert_close(per_channel.std(1, correction=0), torch.ones(3), atol=1e-5,
                                   rtol=0)


def test_sliced_wasserstein_core_closed_form():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(500, 6, generator=g)
    shift = torch.tensor([0.5, -1.0, 0.0, 2.0, 0.25, -0.3])
    dirs = swd_mod._directions(seed=1, resolution=16, dim=6, count=40, device=torch.device("cpu"))
    torch.testing.assert_close(dirs.norm(dim=1), torch.ones(40, dtype=dirs.dtype))
    # A translated copy: every 1-D projection is translated by <d, shift>, so W1 = |<d, shift>|.
    b = (a + shift)[torch.randperm(500, generator=g)]      # row order must not matter
    expected = (dirs @ shift.double()).abs().mean().item()
    assert swd_mod._sliced_wasserstein(a, b, dirs) == pytest.approx(expected, rel=1e-5)
    assert swd_mod._sliced_wasserstein(a, a[torch.randperm(500, generator=g)], dirs) == 0.0


# ------------------------------------------------------------------------------- the metric

def test_identical_sets_score_zero(real):
    iid = torch.rand(real.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    baseline = sliced_wasserstein_distance(real, iid)
    same = sliced_wasserstein_distance(real, real.clone())
    assert set(same["levels"]) == set(baseline["levels"]) == {32, 16}
    assert baseline["mean"] > 1.0
    assert same["mean"] < 1e-6 * baseline["mean"]
    assert all(v < 1e-6 * baseline["mean"] for v in same["levels"].values())
    assert baseline["mean"] == pytest.approx(sum(baseline["levels"].values()) / 2)
    assert all(type(v) is float for v in baseline["levels"].values())


def _corrupt(kind: str, real: torch.Tensor, noise: torch.Tensor, strength: int) -> torch.Tensor:
    if kind == "noise":
        return real + (0.02, 0.1, 0.4)[strength] * noise
    if kind == "blur":
        return gaussian_blur(real, (0.5, 1.0, 2.0)[strength])
    # colour: a per-image cast (a cast shared by the whole set is normalised away by design)
    cast = noise[:, :, :1, :1]
    return (real + (0.05, 0.2, 0.6)[strength] * cast).clamp(-1, 1)


@pytest.mark.parametrize("kind", ["noise", "blur", "colour"])
def test_distance_grows_with_corruption(real, noise, kind):
    metric = SWDMetric(real, **FAST)
    values = [metric(_corrupt(kind, real, noise, s))["mean"] for s in range(3)]
    assert values[0] > 0
    assert values[0] < values[1] < values[2], values
    assert values[2] > 2 * values[0], values


def test_symmetric_deterministic_and_seeded(real, noise):
    fake = real + 0.1 * noise
    forward = sliced_wasserstein_distance(real, fake, **FAST, seed=3)
    assert sliced_wasserstein_distance(fake, real, **FAST, seed=3)["mean"] == pytest.approx(
        forward["mean"], rel=1e-6)
    assert sliced_wasserstein_distance(real, fake, **FAST, seed=3) == forward
    assert sliced_wasserstein_distance(real, fake, **FAST, seed=4)["mean"] != forward["mean"]
    metric = SWDMetric(real, **FAST, seed=3)
    assert metric(fake) == forward and metric(fake) == forward     # cached real set is unchanged


def test_uint8_and_float_inputs_agree(real, noise):
    real_u8 = ((real + 1) * 127.5).round().to(torch.uint8)
    fake_u8 = ((real + 0.1 * noise).clamp(-1, 1).add(1).mul(127.5)).round().to(torch.uint8)
    from_u8 = sliced_wasserstein_distance(real_u8, fake_u8, **FAST)
    from_float = sliced_wasserstein_distance((real_u8.double() - 127.5) / 127.5,
                                             (fake_u8.float() - 127.5) / 127.5, **FAST)
    assert from_u8["mean"] > 1.0
    for res in (32, 16):
        assert from_u8["levels"][res] == pytest.approx(from_float["levels"][res], rel=1e-5)
    mixed = sliced_wasserstein_distance(real_u8, (fake_u8.float() - 127.5) / 127.5, **FAST)
    assert mixed["mean"] == pytest.approx(from_u8["mean"], rel=1e-5)


def test_chunking_and_unequal_sizes(real, noise):
    fake = real + 0.1 * noise
    whole = sliced_wasserstein_distance(real, fake, **FAST, chunk_size=64)
    chunked = sliced_wasserstein_distance(real, fake, **FAST, chunk_size=5)
    for res in (32, 16):
        assert chunked["levels"][res] == pytest.approx(whole["levels"][res], rel=1e-5)
    # 40 fake vs 64 real images: the real descriptors are subsampled, seeded, symmetrically
    short = fake[:40]
    a = sliced_wasserstein_distance(real, short, **FAST)
    assert a == sliced_wasserstein_distance(real, short, **FAST)
    assert a["mean"] == pytest.approx(sliced_wasserstein_distance(short, real, **FAST)["mean"],
                                      rel=1e-6)
    assert 0 < a["mean"] < sliced_wasserstein_distance(real, fake[:40] + noise[:40], **FAST)["mean"]


def test_resolutions_channels_and_collapse():
    gray = smooth_fields(8, res=64, channels=1, seed=5)
    out = sliced_wasserstein_distance(gray, smooth_fields(8, res=64, channels=1, seed=6), **FAST,
                                      patches_per_image=16)
    assert list(out["levels"]) == [64, 32, 16]
    assert SWDMetric(gray[:, :, :16, :16], **FAST).resolutions == (16,)
    # a collapsed generator (one constant image) scores finite and far worse than a noisy copy
    metric = SWDMetric(gray, **FAST, patches_per_image=16)
    collapsed = metric(torch.full_like(gray, 0.3))
    jitter = torch.randn(gray.shape, generator=torch.Generator().manual_seed(0))
    noisy = metric(gray + 0.05 * jitter)
    assert all(np.isfinite(v) for v in collapsed["levels"].values())
    assert collapsed["mean"] > 3 * noisy["mean"] > 0


def test_generator_output_is_not_modified_or_differentiated(real):
    weight = torch.tensor(0.9, requires_grad=True)
    fake = real * weight
    before = fake.detach().clone()
    out = SWDMetric(real, **FAST)(fake)
    assert out["mean"] > 0 and weight.grad is None
    torch.testing.assert_close(fake.detach(), before, rtol=0, atol=0)


# -------------------------------------------------------------------------------- bad input

IMG = torch.zeros(4, 3, 16, 16)


@pytest.mark.parametrize("real, fake, kwargs, exc, match", [
    ([[0.0]], IMG, {}, TypeError, "real must be a torch.Tensor"),
    (IMG.int(), IMG, {}, TypeError, "real must be uint8"),
    (IMG, IMG[0], {}, ValueError, r"fake must have shape \[N, C, H, W\]"),
    (IMG[:1], IMG, {}, ValueError, "real must hold at least 2 images, got N = 1"),
    (IMG, IMG[:1], {}, ValueError, "fake must hold at least 2 images"),
    (IMG[:, :2], IMG[:, :2], {}, ValueError, "real must have 1 or 3 channels, got C = 2"),
    (IMG, IMG[:, :, :, :8], {}, ValueError, "fake must be square"),
    (torch.zeros(2, 3, 24, 24), torch.zeros(2, 3, 24, 24), {}, ValueError,
     "real must be square with a power-of-two side >= 16, got H x W = 24 x 24"),
    (torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), {}, ValueError,
     "real must be square .* got H x W = 8 x 8"),
    (IMG, torch.zeros(4, 3, 32, 32), {}, ValueError, r"fake has \[C, H, W\] = \[3, 32, 32\]"),
    (IMG, IMG[:, :1], {}, ValueError, r"fake has \[C, H, W\] = \[1, 16, 16\] but real"),
    (IMG, IMG, {"patches_per_image": 0}, ValueError, "patches_per_image must be >= 1"),
    (IMG, IMG, {"dirs": 1.5}, TypeError, "dirs must be an int"),
    (IMG, IMG, {"repeats": True}, TypeError, "repeats must be an int"),
    (IMG, IMG, {"seed": "0"}, TypeError, "seed must be an int"),
    (IMG, IMG, {"chunk_size": -1}, ValueError, "chunk_size must be >= 1"),
    (IMG, IMG, {"device": 3}, TypeError, "device must be None"),
    (IMG, IMG, {"device": "nonsense"}, ValueError, "device 'nonsense'"),
])
def test_bad_input(real, fake, kwargs, exc, match):
    with pytest.raises(exc, match=f"sliced_wasserstein_distance: {match}"):
        sliced_wasserstein_distance(real, fake, **kwargs)


def test_bad_input_names_metric_arguments():
    with pytest.raises(ValueError, match="SWDMetric: real_images must hold at least 2 images"):
        SWDMetric(IMG[:1])
    metric = SWDMetric(IMG + torch.rand(IMG.shape), dirs=4, repeats=1)
    with pytest.raises(ValueError, match=r"SWDMetric: fake_images has \[C, H, W\] = \[3, 32, 32\] "
                                         r"but real_images has \[3, 16, 16\]"):
        metric(torch.zeros(4, 3, 32, 32))
    with pytest.raises(TypeError, match="SWDMetric: fake_images must be a torch.Tensor"):
        metric(np.zeros((4, 3, 16, 16), dtype=np.float32))
