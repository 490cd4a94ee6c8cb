"""Built-in datasets: procedural shapes (interface, determinism, that each label really is the
drawn shape, argument checks) and scikit-learn's digits (against sklearn and F.interpolate)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastgan.data import SHAPE_KINDS, DigitsDataset, ShapesDataset


# ------------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", [4, 16, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_interface(resolution, channels):
    ds = ShapesDataset(resolution, length=12, seed=3, num_channels=channels)
    assert (len(ds), ds.resolution, ds.num_channels, ds.num_classes, ds.name) == \
        (12, resolution, channels, len(SHAPE_KINDS), "shapes")
    for i in range(len(ds)):
        img, label = ds[i]
        assert img.dtype == torch.uint8 and img.is_contiguous()
        assert img.shape == (channels, resolution, resolution)
        assert type(label) is int and 0 <= label < ds.num_classes
        assert img.float().std() > 5.0, "image is (nearly) constant"
    # negative indices count from the end
    assert torch.equal(ds[-1][0], ds[len(ds) - 1][0])


def test_shapes_deterministic_per_seed_and_index():
    a, b, c = ShapesDataset(16, seed=7), ShapesDataset(16, seed=7), ShapesDataset(16, seed=8)
    for i in (0, 5, 9999):
        assert torch.equal(a[i][0], a[i][0])            # repeatable
        assert torch.equal(a[i][0], b[i][0])            # same (seed, index), other instance
        assert not torch.equal(a[i][0], c[i][0])        # other seed
    assert not torch.equal(a[0][0], a[4][0])            # same kind, other index


def test_shapes_all_classes_occur_early():
    ds = ShapesDataset(8, length=64)
    assert {ds[i][1] for i in range(64)} == set(range(ds.num_classes))


def _foreground(img: torch.Tensor) -> np.ndarray:
    """Pixels that are not background: the background is a linear ramp per channel, fitted
    exactly on the border pixels (shapes stay clear of the border)."""
    x = img.double().numpy()                                   # [C, R, R]
    r = x.shape[-1]
    yy, xx = np.mgrid[0:r, 0:r]
    border = np.zeros((r, r), bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    design = np.stack([np.ones(r * r), xx.ravel(), yy.ravel()], 1)
    coef, *_ = np.linalg.lstsq(design[border.ravel()], x.reshape(len(x), -1)[:, border.ravel()].T,
                               rcond=None)
    background = (design @ coef).T.reshape(x.shape)
    return np.linalg.norm(x - background, axis=0) > 40.0


def _classify(mask: np.ndarray) -> str:
    """Shape kind from how the mask fills its bounding box, and its top/bottom balance."""
    ys, xs = np.nonzero(mask)
    box = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    fill = box.mean()
    h = box.shape[0]
    top, bottom = box[:h // 2].sum(), box[h - h // 2:].sum()
    if fill > 0.9:
        return "square"
    if fill > 0.65:
        return "circle"
    return "triangle" if top < 0.6 * bottom else "diamond"


def test_shapes_label_is_the_drawn_shape():
    ds = ShapesDataset(64, length=24, seed=11)
    for i in range(len(ds)):
        img, label = ds[i]
        mask = _foreground(img)
        assert 0.02 < mask.mean() < 0.6, f"item {i}: shape covers {mask.mean():.2f} of the image"
        assert _classify(mask) == SHAPE_KINDS[label], f"item {i}"


@pytest.mark.parametrize("kwargs, error", [
    ({"resolution": 3}, ValueError), ({"resolution": 48}, ValueError),
    ({"resolution": 2048}, ValueError), ({"resolution": 32.0}, TypeError),
    ({"resolution": True}, TypeError), ({"length": 0}, ValueError), ({"seed": -1}, ValueError),
    ({"num_channels": 2}, ValueError),
])
def test_shapes_bad_arguments(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        ShapesDataset(**kwargs)


def test_shapes_bad_index():
    ds = ShapesDataset(8, length=3)
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    with pytest.raises(TypeError, match="index"):
        ds[1.0]


# ------------------------------------------------------------------------------------------------
# digits
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sk_digits():
    return pytest.importorskip("sklearn.datasets").load_digits()


def test_digits_matches_sklearn(sk_digits):
    ds = DigitsDataset(32)
    assert (len(ds), ds.resolution, ds.num_channels, ds.num_classes, ds.name) == \
        (1797, 32, 1, 10, "digits")
    assert ds.labels == sk_digits.target.tolist()
    idx = [0, 1, 500, 1796]
    src = torch.from_numpy(sk_digits.images[idx]).float().unsqueeze(1) / 16.0
    ref = F.interpolate(src, size=(32, 32), mode="bilinear", align_corners=False) * 255.0
    for k, i in enumerate(idx):
        img, label = ds[i]
        assert img.dtype == torch.uint8 and img.shape == (1, 32, 32) and img.is_contiguous()
        assert label == int(sk_digits.target[i])
        assert (img.float() - ref[k]).abs().max() <= 0.5 + 1e-4
    # 0..16 maps onto the full 0..255 range
    values = torch.stack([ds[i][0] for i in range(50)])
    assert values.min() == 0 and values.max() == 255


def test_digits_three_channels_replicate_grey(sk_digits):
    grey, rgb = DigitsDataset(16, num_channels=1), DigitsDataset(16, num_channels=3)
    for i in (3, 42):
        g, c = grey[i][0], rgb[i][0]
        assert c.shape == (3, 16, 16) and c.is_contiguous()
        assert all(torch.equal(c[k], g[0]) for k in range(3))
    # items are copies: writing into one does not change the dataset
    g = grey[3][0]
    g.zero_()
    assert grey[3][0].float().std() > 0


def test_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)   # makes the import fail
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        DigitsDataset()


@pytest.mark.parametrize("kwargs", [{"resolution": 12}, {"num_channels": 4}])
def test_digits_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DigitsDataset(**kwargs)
