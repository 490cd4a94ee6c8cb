"""fastgan.train.augment: each DiffAugment op against its definition (translation against an
independent slicing shift, cutout's rectangle and centre range, color's per-sample affine
structure), reproducibility, float64 gradcheck + gradgradcheck and R1 through the augmentation,
ADA's per-sample probability, p schedule, state dict and fast path, dtypes and channels_last, and
bad input."""
from __future__ import annotations

import pytest
import torch

from fastgan.ops import r1_penalty
from fastgan.train.augment import (ADA_OPS, DIFFAUG_OPS, AdaptiveAugment, DiffAugment,
                                   diff_augment, make_augment)

D64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def distinct_images(n: int, c: int, h: int, w: int) -> torch.Tensor:
    """Positive images whose pixel values are all different (so a shift is identifiable and no
    pixel is 0 before cutout)."""
    return (torch.randperm(n * c * h * w).to(D64) + 1).view(n, c, h, w)


def shift_ref(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[..., i, j] = x[..., i + dy, j + dx], 0 outside, by slicing."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    oy, ox = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    sy, sx = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
    out[..., oy, ox] = x[..., sy, sx]
    return out


def find_shifts(x: torch.Tensor, out: torch.Tensor, reach: int) -> list:
    """Per sample, every (dy, dx) with |dy|, |dx| <= reach such that out == shift_ref(x, dy, dx)."""
    found = [[] for _ in range(x.shape[0])]
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            hit = (out == shift_ref(x, dy, dx)).flatten(1).all(1)
            for n in hit.nonzero().flatten().tolist():
                found[n].append((dy, dx))
    return found


def check_cutout(x: torch.Tensor, out: torch.Tensor):
    """Asserts out is x with one clipped axis-aligned rectangle zeroed per sample (x has no zeros);
    returns per sample (first row, row count, first col, col count)."""
    zero = out == 0
    assert torch.equal(out[~zero], x[~zero])
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # the same pixels in every channel
    boxes = []
    for z in zero[:, 0]:
        rows, cols = z.any(1).nonzero().flatten(), z.any(0).nonzero().flatten()
        assert torch.equal(z, z.any(1)[:, None] & z.any(0)[None, :])  # a rectangle
        assert torch.equal(rows, torch.arange(rows[0], rows[0] + len(rows)))  # contiguous
        assert torch.equal(cols, torch.arange(cols[0], cols[0] + len(cols)))
        boxes.append((int(rows[0]), len(rows), int(cols[0]), len(cols)))
    return boxes


# ---------------------------------------------------------------------------------------------
# DiffAugment ops
# ---------------------------------------------------------------------------------------------

def test_translation_moves_every_sample_by_one_shift_in_range():
    n, h, w = 160, 16, 24                     # max shifts int(16/8 + .5) = 2, int(24/8 + .5) = 3
    x = distinct_images(n, 2, h, w)
    out = diff_augment(x, "translation", generator=gen(0))
    found = find_shifts(x, out, reach=5)
    assert all(len(f) == 1 for f in found), "each sample must be x shifted by exactly one offset"
    dys = {f[0][0] for f in found}
    dxs = {f[0][1] for f in found}
    assert dys == set(range(-2, 3)) and dxs == set(range(-3, 4))  # the whole range, no more


def test_cutout_zeroes_one_clipped_square_of_the_expected_size():
    n, h, w = 300, 16, 10                     # cutout 8 x 5 (even and odd sizes)
    x = distinct_images(n, 3, h, w)
    boxes = check_cutout(x, diff_augment(x, "cutout", generator=gen(1)))
    for size, extent, first, count in ((8, h, 0, 1), (5, w, 2, 3)):
        counts = [b[count] for b in boxes]
        # centre offset in [0, extent + 1 - size % 2): clipped at most to size - size // 2
        assert min(counts) == size - size // 2 and max(counts) == size
        for b in boxes:                       # a smaller rectangle only where it is clipped
            assert b[count] == size or b[first] == 0 or b[first] + b[count] == extent
        # fully inside squares start at every position 0 .. extent - size
        assert {b[first] for b in boxes if b[count] == size} == set(range(extent - size + 1))


def test_color_is_brightness_saturation_contrast_per_sample():
    n = 64
    x = torch.randn(n, 3, 5, 4, dtype=D64)
    out = diff_augment(x, "color", generator=gen(2))
    mean_x, mean_o = x.mean((1, 2, 3)), out.mean((1, 2, 3))
    mc_x, mc_o = x.mean(1, keepdim=True), out.mean(1, keepdim=True)
    # saturation keeps the channel mean and contrast the sample mean: the shift is the brightness
    bright = mean_o - mean_x
    # the channel-mean image is scaled about the sample mean by the contrast factor
    contrast = ((mc_o - mean_o.view(n, 1, 1, 1)) / (mc_x - mean_x.view(n, 1, 1, 1))).flatten(1)
    torch.testing.assert_close(contrast, contrast[:, :1].expand_as(contrast))
    # deviations from the channel mean are scaled by saturation * contrast
    both = ((out - mc_o) / (x - mc_x)).flatten(1)
    torch.testing.assert_close(both, both[:, :1].expand_as(both))
    sat = both[:, 0] / contrast[:, 0]
    for f, lo, hi in ((bright, -0.5, 0.5), (sat, 0.0, 2.0), (contrast[:, 0], 0.5, 1.5)):
        assert f.min() >= lo and f.max() < hi
        assert f.min() < lo + 0.2 * (hi - lo) and f.max() > hi - 0.2 * (hi - lo)  # spread


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout",
                                    " cutout , color "])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_shape_dtype_preserved(policy, dtype):
    x = torch.randn(4, 3, 8, 8).to(dtype)
    out = diff_augment(x, policy, generator=gen(3))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert torch.isfinite(out.float()).all() and not torch.equal(out, x)


def test_bf16_under_autocast_and_channels_last():
    x = torch.randn(4, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = diff_augment(x.bfloat16(), generator=gen(4))
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    cl = x.contiguous(memory_format=torch.channels_last)
    for fn in (lambda t: diff_augment(t, generator=gen(5)),
               lambda t: AdaptiveAugment(p=1.0)(t, generator=gen(5))):
        want, got = fn(x), fn(cl)
        assert got.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(got, want)  # the means may sum in another order


def test_empty_policy_is_identity():
    x = torch.randn(2, 3, 4, 4)
    assert diff_augment(x, "") is x and diff_augment(x, "none") is x
    assert DiffAugment("none")(x) is x


def test_reproducible_from_generator_and_global_rng():
    x = torch.randn(8, 3, 8, 8)
    for fn in (diff_augment, lambda t, generator: AdaptiveAugment(p=0.7)(t, generator)):
        a, b, c = (fn(x, generator=gen(s)) for s in (10, 10, 11))
        assert torch.equal(a, b) and not torch.equal(a, c)
        torch.manual_seed(7)
        d = fn(x, generator=None)
        torch.manual_seed(7)
        assert torch.equal(d, fn(x, generator=None))


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: (lambda t, generator: diff_augment(t, "color,translation,cutout", generator)),
    lambda: AdaptiveAugment(p=1.0),
    lambda: AdaptiveAugment("rotate90,xflip,translation,color,cutout", p=0.5),
], ids=["diffaug", "ada-p1", "ada-p0.5"])
def test_gradcheck_and_gradgradcheck(make):
    aug = make()

    def f(t):  # reseeded per call: a deterministic function of t
        return aug(t, generator=gen(12))

    x = torch.randn(3, 2, 6, 6, dtype=D64, requires_grad=True)
    assert not torch.equal(f(x), x)
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_r1_penalty_through_the_augmentation():
    w = torch.nn.Parameter(torch.rand(3, 8, 8, dtype=D64) + 0.5)
    aug = AdaptiveAugment(p=1.0)

    def D(t):
        return (w * aug(t, generator=gen(13)).square()).flatten(1).sum(1)

    reals = torch.randn(4, 3, 8, 8, dtype=D64)
    penalty = r1_penalty(D, reals)
    penalty.backward()
    assert penalty > 0 and w.grad is not None and w.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# AdaptiveAugment
# ---------------------------------------------------------------------------------------------

def test_ada_p0_returns_input_and_tiny_p_runs_all_false_masks():
    x = torch.randn(16, 3, 8, 8)
    assert AdaptiveAugment()(x) is x
    aug = AdaptiveAugment(p=0.5)
    aug.set_p(1e-12)                           # not the fast path: every mask is false
    out = aug(x, generator=gen(14))
    assert out is not x and torch.equal(out, x)


def test_ada_p1_applies_each_op_to_every_sample():
    x = distinct_images(48, 2, 8, 8)
    torch.testing.assert_close(AdaptiveAugment("xflip", p=1.0)(x), x.flip(3), rtol=0, atol=0)
    rot = AdaptiveAugment("rotate90", p=1.0)(x, generator=gen(15))
    ks = []
    for n in range(x.shape[0]):
        match = [k for k in range(4) if torch.equal(rot[n], x[n].rot90(k, (1, 2)))]
        assert len(match) == 1 and match[0] != 0
        ks.append(match[0])
    assert set(ks) == {1, 2, 3}
    wide = distinct_images(6, 1, 4, 6)        # non-square: always the half turn
    torch.testing.assert_close(AdaptiveAugment("rotate90", p=1.0)(wide), wide.flip((2, 3)),
                               rtol=0, atol=0)
    moved = AdaptiveAugment("translation", p=1.0)(x, generator=gen(16))
    assert all(len(f) == 1 for f in find_shifts(x, moved, reach=2))
    assert sum(f[0] != (0, 0) for f in find_shifts(x, moved, reach=2)) > x.shape[0] // 2
    check_cutout(x, AdaptiveAugment("cutout", p=1.0)(x, generator=gen(17)))
    coloured = AdaptiveAugment("color", p=1.0)(x, generator=gen(18))
    assert (coloured != x).flatten(1).all(1).all()


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_ada_fraction_of_augmented_samples_is_p(p):
    n = 4000
    x = torch.tensor([1.0, 2.0]).expand(n, 1, 1, 2)
    out = AdaptiveAugment("xflip", p=p)(x, generator=gen(19))
    flipped = (out != x).flatten(1).any(1).double().mean()
    assert abs(flipped - p) < 0.04           # ~5 standard deviations at n = 4000


def test_ada_update_moves_p_by_the_step_and_clamps():
    aug = AdaptiveAugment(p=0.5, target=0.6, speed_kimg=2, interval=3)
    batch = 8
    step = batch * 3 / 2000
    assert aug.update(batch) is None and aug._p_host == 0.5  # nothing accumulated: no change
    logits = torch.rand(batch, 1) + 0.1
    aug.accumulate(logits)
    aug.accumulate(logits)
    assert aug.update(batch) == 1.0
    assert aug._p_host == float(aug.p) and abs(aug._p_host - (0.5 + step)) < 1e-7
    assert aug.update(batch) is None                      # the accumulators were reset
    aug.accumulate(torch.tensor([1.0, -2.0, -3.0, 0.5, -0.1]))
    assert aug.update(batch) == pytest.approx(-0.2)
    assert abs(float(aug.p) - 0.5) < 1e-7
    for _ in range(300):                                   # falls to 0 and stays there
        aug.accumulate(-logits)
        aug.update(batch)
    assert float(aug.p) == 0.0 and aug._p_host == 0.0
    capped = AdaptiveAugment(p=0.49, speed_kimg=1, interval=1, max_p=0.5)
    for _ in range(3):
        capped.accumulate(logits)
        capped.update(10)
    assert float(capped.p) == 0.5 and capped._p_host == 0.5


def test_ada_state_dict_round_trip_restores_p_and_mirror():
    aug = AdaptiveAugment(p=0.25)
    aug.accumulate(torch.ones(4))
    aug.update(64)
    sd = torch.nn.ModuleDict({"aug": aug}).state_dict()
    assert set(sd) == {"aug.p"}
    fresh = torch.nn.ModuleDict({"aug": AdaptiveAugment()})
    fresh.load_state_dict(sd)
    assert float(fresh["aug"].p) == float(aug.p) and fresh["aug"]._p_host == aug._p_host > 0.25
    x = torch.randn(4, 3, 8, 8)
    assert fresh["aug"](x) is not x
    fresh["aug"].load_state_dict(AdaptiveAugment().state_dict())  # p = 0: the fast path again
    assert fresh["aug"](x) is x
    with pytest.raises(RuntimeError, match="p must be in"):
        fresh["aug"].load_state_dict({"p": torch.tensor(1.5)})


def test_ada_keeps_p_float32_and_repr():
    aug = AdaptiveAugment("xflip,color", p=0.3, target=0.7, speed_kimg=100, interval=2,
                          max_p=0.8).half()
    assert aug.p.dtype == torch.float32 and aug.ada_stats.dtype == D64
    text = repr(aug)
    for part in ("'xflip,color'", "p=0.3", "target=0.7", "speed_kimg=100", "interval=2",
                 "max_p=0.8"):
        assert part in text
    out = aug(torch.randn(4, 3, 8, 8, dtype=torch.bfloat16), generator=gen(20))
    assert out.dtype == torch.bfloat16 and out.shape == (4, 3, 8, 8)


# ---------------------------------------------------------------------------------------------
# DiffAugment module, factory, bad input
# ---------------------------------------------------------------------------------------------

def test_diffaugment_module_and_make_augment():
    x = torch.randn(4, 3, 8, 8)
    mod = make_augment("diffaug", policy="translation,cutout")
    assert isinstance(mod, DiffAugment) and mod.p == 1.0 and "translation,cutout" in repr(mod)
    assert torch.equal(mod(x, generator=gen(21)), diff_augment(x, "translation,cutout", gen(21)))
    assert mod.accumulate(torch.randn(4)) is None and mod.update(4) is None
    ada = make_augment("ada", target=0.5)
    assert isinstance(ada, AdaptiveAugment) and ada.target == 0.5
    assert ada.policy == ",".join(ADA_OPS)
    assert make_augment("none") is None and DiffAugment().policy == ",".join(DIFFAUG_OPS)
    with pytest.raises(ValueError, match="none.*diffaug.*ada"):
        make_augment("adaptive")
    with pytest.raises(TypeError, match="kind"):
        make_augment(None)
    with pytest.raises(TypeError, match="none"):
        make_augment("none", policy="color")


@pytest.mark.parametrize("policy, exc, match", [
    ("colour", ValueError, "unknown op 'colour'.*color, translation, cutout"),
    ("color,,cutout", ValueError, "empty name"),
    ("color,color", ValueError, "more than once"),
    ("xflip", ValueError, "unknown op 'xflip'"),
    (["color"], TypeError, "policy must be"),
])
def test_diff_augment_bad_policy(policy, exc, match):
    with pytest.raises(exc, match=match):
        diff_augment(torch.randn(2, 3, 4, 4), policy)
    with pytest.raises(exc, match=match):
        DiffAugment(policy)


@pytest.mark.parametrize("x, generator, exc, match", [
    ([1.0], None, TypeError, "x must be a torch.Tensor"),
    (torch.ones(2, 3, 4, 4, dtype=torch.int64), None, TypeError, "floating-point"),
    (torch.randn(3, 4, 4), None, ValueError, "4-D"),
    (torch.randn(2, 3, 0, 4), None, ValueError, "C, H, W >= 1"),
    (torch.randn(2, 3, 4, 4), 0, TypeError, "generator must be a torch.Generator"),
])
def test_bad_images(x, generator, exc, match):
    with pytest.raises(exc, match=match):
        diff_augment(x, generator=generator)
    with pytest.raises(exc, match=match):
        AdaptiveAugment(p=0.5)(x, generator=generator)


@pytest.mark.parametrize("kw, match", [
    (dict(policy="xflip,hue"), "unknown op 'hue'.*xflip, rotate90"),
    (dict(target=1.0), "target"), (dict(target=0), "target"),
    (dict(speed_kimg=0), "speed_kimg"), (dict(speed_kimg=float("inf")), "speed_kimg"),
    (dict(interval=0), "interval"), (dict(interval=2.0), "interval"),
    (dict(p=-0.1), "p must"), (dict(p=0.6, max_p=0.5), "p must"), (dict(max_p=0), "max_p"),
    (dict(max_p=1.5), "max_p"),
])
def test_ada_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveAugment(**kw)


def test_ada_bad_calls():
    aug = AdaptiveAugment(max_p=0.5)
    with pytest.raises(ValueError, match="batch_size_total"):
        aug.update(0)
    with pytest.raises(ValueError, match="batch_size_total"):
        aug.update(8.0)
    with pytest.raises(TypeError, match="real_logits"):
        aug.accumulate([1.0])
    with pytest.raises(ValueError, match="p must"):
        aug.set_p(0.6)
