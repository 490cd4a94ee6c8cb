"""Image batches -> uint8 arrays, grids and PNG files (sample grids, style-mixing grids, frames).

Float images are taken to lie in [-1, 1] (the generator's output range) and mapped to [0, 255] with
``((x + 1) * 127.5).round().clamp(0, 255)``.  ``torch.round`` rounds half to even, so -1 -> 0,
0 -> 128 (127.5 rounds to the even 128) and 1 -> 255.  NaN maps to 0, +inf to 255 and -inf to 0, so
a diverged generator still gives a viewable (black) grid instead of an error.

PNGs are written atomically (temp file + ``os.replace``): a crash never leaves a half-written image
where a viewer or a later run would read it.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["to_uint8", "make_grid", "save_image_grid", "save_frames"]

ImageBatch = Union[Tensor, np.ndarray]


def _as_tensor(fn: str, images: object) -> Tensor:
    if isinstance(images, np.ndarray):
        return torch.from_numpy(images)
    if not isinstance(images, Tensor):
        raise TypeError(f"{fn}: images must be a torch.Tensor or numpy array, "
                        f"got {type(images).__name__}")
    return images


def _check_nchw(fn: str, x: Tensor, layout: str = "[N, C, H, W]") -> None:
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise TypeError(f"{fn}: images must be floating point (in [-1, 1]) or uint8, got {x.dtype}")
    if x.shape[-3] not in (1, 3):
        raise ValueError(f"{fn}: images must have 1 or 3 channels (dim -3 of {layout}), "
                         f"got shape {tuple(x.shape)}")


def _check_int(fn: str, name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value}")


def _to_uint8_nhwc(x: Tensor) -> np.ndarray:
    """Checked [N, C, H, W] tensor -> uint8 numpy [N, H, W, C] (quantised on x's device)."""
    x = x.detach()
    if x.dtype != torch.uint8:
        x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
        x = torch.nan_to_num(x, nan=-1.0, posinf=1.0, neginf=-1.0)
        x = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def to_uint8(images: ImageBatch) -> np.ndarray:
    """Float images in [-1, 1], ``[N, C, H, W]`` (any float dtype, any device) -> uint8 numpy
    ``[N, H, W, C]``; uint8 input is only transposed.  C must be 1 or 3.  See the module docstring
    for the rounding and NaN / inf handling."""
    x = _as_tensor("to_uint8", images)
    if x.dim() != 4:
        raise ValueError(f"to_uint8: images must be [N, C, H, W], got shape {tuple(x.shape)}")
    _check_nchw("to_uint8", x)
    return _to_uint8_nhwc(x)


def make_grid(images: ImageBatch, nrow: Optional[int] = None, padding: int = 0) -> np.ndarray:
    """Tile images into one uint8 ``[H', W', C]`` array.

    ``images``: ``[N, C, H, W]``, laid out row-major with ``nrow`` images per row (default
    ``ceil(sqrt(N))``; unused cells of the last row are black), or ``[rows, cols, C, H, W]``, which
    fixes the layout (style-mixing grids); ``nrow`` must then be None or ``cols``.
    ``padding``: black pixels between neighbouring tiles (none around the border)."""
    x = _as_tensor("make_grid", images)
    _check_int("make_grid", "padding", padding, minimum=0)
    if nrow is not None:
        _check_int("make_grid", "nrow", nrow, minimum=1)
    if x.numel() == 0:
        raise ValueError(f"make_grid: images must be non-empty, got shape {tuple(x.shape)}")
    if x.dim() == 5:
        _check_nchw("make_grid", x, "[rows, cols, C, H, W]")
        rows, cols = x.shape[:2]
        if nrow is not None and nrow != cols:
            raise ValueError(f"make_grid: nrow={nrow} conflicts with the {cols} columns of the 5-D "
                             f"images {tuple(x.shape)}; pass nrow=None")
        x = x.reshape(rows * cols, *x.shape[2:])
    elif x.dim() == 4:
        _check_nchw("make_grid", x)
        cols = nrow if nrow is not None else math.ceil(math.sqrt(x.shape[0]))
        rows = math.ceil(x.shape[0] / cols)
    else:
        raise ValueError(f"make_grid: images must be [N, C, H, W] or [rows, cols, C, H, W], "
                         f"got shape {tuple(x.shape)}")
    tiles = _to_uint8_nhwc(x)
    n, h, w, c = tiles.shape
    grid = np.zeros((rows * h + (rows - 1) * padding, cols * w + (cols - 1) * padding, c),
                    dtype=np.uint8)
    for i in range(n):
        top, left = (i // cols) * (h + padding), (i % cols) * (w + padding)
        grid[top:top + h, left:left + w] = tiles[i]
    return grid


def _save_png(array: np.ndarray, path: object, fn: str) -> str:
    """Write a uint8 ``[H, W, 1 | 3]`` array as an L / RGB PNG at ``path``, atomically."""
    from PIL import Image  # deferred: only image-saving callers need PIL

    from . import atomic_write, check_path

    path = check_path(fn, "path", path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"{fn}: path must end with .png, got {path!r}")
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)  # L or RGB
    with atomic_write(path) as f:
        image.save(f, format="PNG")
    return path


def save_image_grid(images: ImageBatch, path: Union[str, "os.PathLike[str]"],
                    nrow: Optional[int] = None, padding: int = 0) -> str:
    """Save ``make_grid(images, nrow, padding)`` as a PNG (mode L for 1 channel, RGB for 3) at
    ``path`` (must end with .png; parent directories are created).  Returns the path."""
    return _save_png(make_grid(images, nrow=nrow, padding=padding), path, "save_image_grid")


def save_frames(images: ImageBatch, out_dir: Union[str, "os.PathLike[str]"],
                prefix: str = "frame") -> list[str]:
    """Save each image of ``[N, C, H, W]`` as ``<out_dir>/<prefix>_00000.png``, ... (e.g. the
    frames of a latent interpolation); ``out_dir`` is created.  Returns the paths in order."""
    from . import check_path

    out_dir = check_path("save_frames", "out_dir", out_dir)
    if not isinstance(prefix, str) or not prefix or os.sep in prefix or "/" in prefix:
        raise ValueError(f"save_frames: prefix must be a non-empty file-name prefix without path "
                         f"separators, got {prefix!r}")
    frames = to_uint8(images)
    return [_save_png(frame, os.path.join(out_dir, f"{prefix}_{i:05d}.png"), "save_frames")
            for i, frame in enumerate(frames)]
