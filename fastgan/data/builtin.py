"""Built-in datasets that need no download: procedural shapes and scikit-learn's 8x8 digits.

Both follow the common fastgan dataset interface: ``ds[i] -> (image, label)`` with ``image`` a
contiguous ``torch.uint8`` tensor ``[C, R, R]`` and ``label`` a python int, plus the attributes
``resolution``, ``num_channels``, ``num_classes`` and ``name``.

* :class:`ShapesDataset` draws one solid shape (circle, square, triangle or diamond) on a gently
  graded background, anti-aliased by supersampling.  Item ``i`` is a pure function of
  ``(seed, i)``, so the dataset costs no memory and is identical in every DataLoader worker.
  It is the CPU demo: a GAN trained for minutes at 32^2 learns recognisable shapes.
* :class:`DigitsDataset` upsamples scikit-learn's 1797 bundled 8x8 digit images (no download).
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["ShapesDataset", "DigitsDataset", "SHAPE_KINDS"]

#: The shape kinds of :class:`ShapesDataset`; the label of an item is its index in this tuple.
SHAPE_KINDS = ("circle", "square", "triangle", "diamond")

_MAX_SHAPES_RESOLUTION = 1024
_MIN_CONTRAST = {1: 0.4, 3: 0.55}  # min |fg - bg| (Euclidean over channels, values in [0, 1])


# ------------------------------------------------------------------------------------------------
# argument checks shared by the fastgan.data modules
# ------------------------------------------------------------------------------------------------

def _check_int(value: Any, name: str, where: str, minimum: int | None = None) -> int:
    """``value`` as an int (bools rejected), at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return value


def _check_resolution(value: Any, where: str, maximum: int | None = None) -> int:
    """A power-of-two resolution >= 4 (and <= ``maximum`` when given)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: resolution must be an int (a power of two >= 4), got "
                        f"{type(value).__name__} {value!r}")
    value = int(value)
    if value < 4 or value & (value - 1) or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{where}: resolution must be a power of two >= 4{upper}, got {value}")
    return value


def _check_channels(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in (1, 3):
        raise ValueError(f"{where}: num_channels must be 1 (greyscale) or 3 (RGB), got {value!r}")
    return int(value)


def _check_index(index: Any, length: int, where: str) -> int:
    """A python index in ``[0, length)``; negative indices count from the end."""
    try:
        i = operator.index(index)
    except TypeError:
        raise TypeError(f"{where}: index must be an int, got {type(index).__name__}") from None
    if i < 0:
        i += length
    if not 0 <= i < length:
        raise IndexError(f"{where}: index {index} out of range for a dataset of {length} items")
    return i


# ------------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------------

def _shape_mask(kind: int, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Boolean inside-mask of shape ``kind`` with 'radius' ``r`` centred at the origin.

    The radii are scaled so that the four kinds have similar areas (1.9 r^2 to 3.1 r^2)."""
    if kind == 0:    # circle
        return x * x + y * y <= r * r
    if kind == 1:    # axis-aligned square
        return np.maximum(np.abs(x), np.abs(y)) <= 0.85 * r
    if kind == 2:    # equilateral triangle, apex up (y grows downwards), centroid at the origin
        s = 1.2 * r
        return (y <= 0.5 * s) & (np.sqrt(3.0) * np.abs(x) <= y + s)
    return np.abs(x) + np.abs(y) <= 1.15 * r   # diamond (a square standing on a corner)


def _pixel_span(centre: float, extent: float, res: int) -> tuple[int, int]:
    """[lo, hi) pixel range covering ``centre +- extent`` (coordinates in [-1, 1])."""
    lo = int(np.floor((centre - extent + 1.0) * 0.5 * res)) - 1
    hi = int(np.ceil((centre + extent + 1.0) * 0.5 * res)) + 1
    return max(lo, 0), min(hi, res)


class ShapesDataset(Dataset):
    """Procedural coloured shapes: one solid shape per image on a different-coloured background.

    Each item draws, from a numpy Generator seeded with ``(seed, index)``, a background colour
    with a slight linear gradient, a foreground colour at least a fixed distance away from it, a
    size and a position keeping the whole shape clear of the border pixels.  The shape kind is
    ``index % num_classes`` (classes are exactly balanced); kinds are :data:`SHAPE_KINDS`.
    Shapes are rasterised on a supersampled grid (4x up to 64^2, 2x above) and box-filtered,
    which anti-aliases the edges.

    Args:
        resolution: image side, a power of two in [4, 1024].
        length: number of items.
        seed: non-negative int; different seeds give different images for the same index.
        num_channels: 3 (RGB) or 1 (greyscale; the colours are then grey levels).
    """

    def __init__(self, resolution: int = 32, length: int = 10000, seed: int = 0,
                 num_channels: int = 3) -> None:
        where = "ShapesDataset"
        self.resolution = _check_resolution(resolution, where, _MAX_SHAPES_RESOLUTION)
        self.length = _check_int(length, "length", where, minimum=1)
        self.seed = _check_int(seed, "seed", where, minimum=0)
        self.num_channels = _check_channels(num_channels, where)
        self.num_classes = len(SHAPE_KINDS)
        self.class_names = list(SHAPE_KINDS)
        self.name = "shapes"
        self._supersample = 4 if self.resolution <= 64 else 2
        # pixel-centre coordinates in [-1, 1] on the supersampled grid; shared by every item
        side = self.resolution * self._supersample
        self._fine = (np.arange(side, dtype=np.float32) + 0.5) / side * 2.0 - 1.0
        self._coarse = (np.arange(self.resolution, dtype=np.float32) + 0.5) / self.resolution \
            * 2.0 - 1.0

    def __len__(self) -> int:
        return self.length

    def _colours(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(background, foreground) colours in [0, 1] that differ by the minimum contrast."""
        c = self.num_channels
        bg = rng.uniform(0.0, 1.0, size=c)
        for _ in range(64):
            fg = rng.uniform(0.0, 1.0, size=c)
            if np.linalg.norm(fg - bg) >= _MIN_CONTRAST[c]:
                return bg, fg
        # practically unreachable; fall back to the complementary colour, always far enough
        return bg, np.where(bg < 0.5, 1.0, 0.0)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        i = _check_index(index, self.length, "ShapesDataset")
        rng = np.random.default_rng([self.seed, i])
        kind = i % self.num_classes
        bg, fg = self._colours(rng)
        r = rng.uniform(0.3, 0.6)                       # in units of the half image side
        margin = 0.9 - 1.2 * r                          # every kind stays 0.1 inside the border
        cx, cy = rng.uniform(-margin, margin, size=2)
        angle = rng.uniform(0.0, 2.0 * np.pi)           # direction of the background gradient
        ramp = rng.uniform(0.03, 0.1)                   # its amplitude

        ss, res = self._supersample, self.resolution
        # rasterise only the shape's bounding box (every kind lies within 1.2 r of its centre)
        cover = np.zeros((res, res), dtype=np.float32)
        x0, x1 = _pixel_span(cx, 1.2 * r, res)
        y0, y1 = _pixel_span(cy, 1.2 * r, res)
        x = (self._fine[x0 * ss:x1 * ss] - cx)[None, :]
        y = (self._fine[y0 * ss:y1 * ss] - cy)[:, None]
        inside = _shape_mask(kind, x, y, r).astype(np.float32)
        cover[y0:y1, x0:x1] = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))

        g = np.cos(angle) * self._coarse[None, :] + np.sin(angle) * self._coarse[:, None]
        bg, fg = bg.astype(np.float32), fg.astype(np.float32)
        img = bg[:, None, None] + np.float32(ramp) * g[None]                 # [C, R, R]
        img += (fg[:, None, None] - img) * cover[None]
        img = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
        return torch.from_numpy(np.ascontiguousarray(img)), kind

    def __repr__(self) -> str:
        return (f"ShapesDataset(resolution={self.resolution}, length={self.length}, "
                f"seed={self.seed}, num_channels={self.num_channels})")


# ------------------------------------------------------------------------------------------------
# digits
# ------------------------------------------------------------------------------------------------

_DIGITS_CACHE_MAX_RESOLUTION = 256  # above this, items are upscaled on the fly (cache > 118 MB)


def _load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images [1797, 8, 8] float in 0..16, targets [1797] int) from scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("DigitsDataset needs scikit-learn (its 8x8 digits are bundled with "
                          "it, no download): pip install scikit-learn") from err
    digits = load_digits()
    return np.asarray(digits.images, dtype=np.float32), np.asarray(digits.target, dtype=np.int64)


def _upscale_digits(images: np.ndarray, resolution: int) -> Tensor:
    """[N, 8, 8] float in 0..16 -> [N, R, R] uint8 in 0..255, bilinear.

    Upscaling (R >= 8) uses no antialiasing; the rare downscale to 4^2 turns it on, else the
    bilinear filter would just drop pixels."""
    x = torch.from_numpy(images).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                      antialias=resolution < images.shape[-1])
    return (x[:, 0] * 255.0).round_().clamp_(0, 255).to(torch.uint8)


class DigitsDataset(Dataset):
    """scikit-learn's 1797 handwritten 8x8 digits, bilinearly upscaled to ``resolution``.

    The source values 0..16 map to 0..255.  Labels are the digits (``num_classes = 10``).  With
    ``num_channels=3`` the grey image is replicated into R, G and B.  The upscaled images are
    cached in memory (29 MB at 128^2) up to 256^2; larger resolutions are upscaled per item.

    Args:
        resolution: image side, a power of two >= 4.
        num_channels: 1 (greyscale) or 3 (grey replicated to RGB).

    Raises:
        ImportError: scikit-learn is not installed (raised here, not at import).
    """

    def __init__(self, resolution: int = 32, num_channels: int = 1) -> None:
        where = "DigitsDataset"
        self.resolution = _check_resolution(resolution, where)
        self.num_channels = _check_channels(num_channels, where)
        images, targets = _load_sklearn_digits()
        self.num_classes = 10
        self.class_names = [str(d) for d in range(10)]
        self.name = "digits"
        self._labels = targets.tolist()
        self._source = images
        self._cache = (_upscale_digits(images, self.resolution)
                       if self.resolution <= _DIGITS_CACHE_MAX_RESOLUTION else None)

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def labels(self) -> list[int]:
        """The digit of every item, in order."""
        return list(self._labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        i = _check_index(index, len(self), "DigitsDataset")
        if self._cache is not None:
            grey = self._cache[i]
        else:
            grey = _upscale_digits(self._source[i:i + 1], self.resolution)[0]
        img = grey.unsqueeze(0).repeat(self.num_channels, 1, 1)  # a copy: never a cache view
        return img, self._labels[i]

    def __repr__(self) -> str:
        return f"DigitsDataset(resolution={self.resolution}, num_channels={self.num_channels})"
