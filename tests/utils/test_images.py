"""fastgan.utils.images: float -> uint8 mapping, grid layout (4-D and 5-D), PNG saving."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from fastgan.utils import atomic_write, make_grid, save_frames, save_image_grid, to_uint8


def _level(i: int) -> int:
    """The uint8 value of tile i (distinct per tile, far from rounding ties)."""
    return 20 * (i + 1)


def _tiles(n: int, c: int = 3, h: int = 2, w: int = 3) -> torch.Tensor:
    """n constant [c, h, w] tiles in [-1, 1]; tile i quantises to _level(i)."""
    values = torch.tensor([_level(i) / 127.5 - 1 for i in range(n)])
    return values.view(n, 1, 1, 1).expand(n, c, h, w).clone()


def test_to_uint8_mapping_and_layout():
    x = torch.tensor([-1.0, 0.0, 1.0, -3.0, 2.0, float("nan")]).view(1, 1, 2, 3)
    out = to_uint8(x)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3, 1)
    # round half to even: 0 -> 127.5 -> 128; out-of-range clamps; NaN -> 0 (documented)
    assert out[0, :, :, 0].tolist() == [[0, 128, 255], [0, 255, 0]]


def test_to_uint8_channels_last_and_dtypes():
    x = torch.rand(2, 3, 4, 5) * 2 - 1
    ref = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(to_uint8(x), ref)
    np.testing.assert_array_equal(to_uint8(x.double()), ref)
    np.testing.assert_array_equal(to_uint8(x.numpy()), ref)
    u8 = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    np.testing.assert_array_equal(to_uint8(u8), u8.permute(0, 2, 3, 1).numpy())
    half = to_uint8(x.to(torch.bfloat16))  # computed in float32 after the cast
    assert np.abs(half.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("bad, exc", [(torch.rand(2, 2, 4, 4), ValueError),
                                      (torch.rand(2, 4, 4, 4), ValueError),
                                      (torch.rand(3, 4, 4), ValueError),
                                      (torch.ones(1, 3, 2, 2, dtype=torch.int64), TypeError),
                                      ([1, 2, 3], TypeError)])
def test_to_uint8_rejects_bad_input(bad, exc):
    with pytest.raises(exc, match="images"):
        to_uint8(bad)


def test_make_grid_layout_with_padding():
    x = _tiles(5)  # default nrow = ceil(sqrt(5)) = 3 columns, 2 rows
    grid = make_grid(x, padding=1)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 3)
    for i in range(5):
        r, c = divmod(i, 3)
        tile = grid[r * 3:r * 3 + 2, c * 4:c * 4 + 3]
        assert (tile == _level(i)).all(), i
    assert (grid[2, :] == 0).all() and (grid[:, 3] == 0).all()  # padding lines
    assert (grid[3:, 8:] == 0).all()  # empty sixth cell


def test_make_grid_nrow():
    x = _tiles(4)
    grid = make_grid(x, nrow=4)
    assert grid.shape == (2, 12, 3)
    assert [grid[0, 3 * i, 0] for i in range(4)] == [_level(i) for i in range(4)]


def test_make_grid_5d_takes_layout():
    rows, cols = 2, 4
    x = _tiles(rows * cols, c=1).view(rows, cols, 1, 2, 3)
    grid = make_grid(x)
    assert grid.shape == (rows * 2, cols * 3, 1)
    for r in range(rows):
        for c in range(cols):
            assert (grid[r * 2:r * 2 + 2, c * 3:c * 3 + 3] == _level(r * cols + c)).all()
    with pytest.raises(ValueError, match="nrow"):
        make_grid(x, nrow=3)


def test_make_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="images"):
        make_grid(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="non-empty"):
        make_grid(torch.rand(0, 3, 4, 4))
    with pytest.raises(ValueError, match="nrow"):
        make_grid(_tiles(2), nrow=0)
    with pytest.raises(TypeError, match="padding"):
        make_grid(_tiles(2), padding=1.5)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_save_image_grid_round_trip(tmp_path, channels, mode):
    x = torch.rand(6, channels, 5, 4) * 2 - 1
    path = tmp_path / "deep" / "dir" / "grid.png"
    out = save_image_grid(x, path, nrow=3, padding=2)
    assert out == str(path) and path.is_file()
    with Image.open(path) as im:
        assert im.mode == mode
        back = np.asarray(im)
    expected = make_grid(x, nrow=3, padding=2)
    np.testing.assert_array_equal(back, expected[..., 0] if channels == 1 else expected)
    assert [n for n in os.listdir(path.parent) if ".tmp-" in n] == []


def test_save_image_grid_rejects_non_png(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        save_image_grid(_tiles(1), tmp_path / "grid.jpg")
    assert list(tmp_path.iterdir()) == []


def test_save_frames(tmp_path):
    x = torch.rand(3, 3, 4, 4) * 2 - 1
    paths = save_frames(x, tmp_path / "frames", prefix="interp")
    assert [os.path.basename(p) for p in paths] == [f"interp_{i:05d}.png" for i in range(3)]
    expected = to_uint8(x)
    for p, e in zip(paths, expected):
        with Image.open(p) as im:
            np.testing.assert_array_equal(np.asarray(im), e)


def test_atomic_write_failure_leaves_previous_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path) as f:
            f.write(b"new partial")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["f.bin"]
