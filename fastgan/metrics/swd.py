"""Laplacian-pyramid sliced Wasserstein distance (SWD): a cheap, download-free image-quality metric.

Implements the metric of Karras et al., "Progressive Growing of GANs" (ICLR 2018), appendix D, used
to pick the "best" checkpoint without an Inception network:

1. each image gets a Laplacian pyramid: a 5x5 binomial blur ([1, 4, 6, 4, 1] / 16 on each axis,
   mirror padding) and a 2x decimation per step, from full resolution down to 16x16; a level is
   the image minus its upsampled coarser version, and the 16x16 level is the blurred image itself;
2. every level gives ``patches_per_image`` random 7x7 neighbourhoods per image, descriptors of
   ``C * 49`` values; each set's descriptors are normalised per channel by that set's own mean
   and standard deviation over all its descriptors of the level;
3. per level, both descriptor sets are projected on ``repeats * dirs`` random unit directions; the
   1-D Wasserstein-1 distance of each pair of projections (the mean absolute difference of the
   sorted values) is averaged over the directions (``dirs`` per repeat, then over the repeats);
4. the result is reported times 1e3 (ProGAN's convention) per level, and averaged over levels.

    sliced_wasserstein_distance(real, fake, patches_per_image=64, dirs=128, repeats=4, seed=0,
                                *, device=None, chunk_size=64)
        -> {"levels": {resolution: swd}, "mean": swd}
    SWDMetric(real_images, *, patches_per_image=64, dirs=128, repeats=4, seed=0, device=None,
              chunk_size=64)(fake_images) -> the same dict; the real descriptors are cached

Conventions and choices:

* Images are ``[N, C, H, W]`` with C in {1, 3} and H == W a power of two >= 16, either uint8
  (0..255, mapped to ``x / 127.5 - 1``) or floating point (taken as is; the intended range is
  [-1, 1]).  Because each set is normalised per channel, the value does not change under a
  per-channel affine change of intensities of a whole set: float images in [0, 1] and the same
  images in [-1, 1] score the same, and a colour cast shared by every image is not measured.
* Randomness comes only from CPU ``torch.Generator`` s seeded from ``seed`` and the level, so the
  value is the same on every device and every call.  Both sets use the same patch positions for
  image ``i`` (positions do not depend on content): identical sets score exactly 0 and swapping
  the arguments gives the same value.
* The sets may differ in size.  The 1-D distance needs equally many descriptors, so per level the
  larger set's descriptors are subsampled to the smaller count (seeded, without replacement).
* Work runs on ``device`` (default: the real images' device) in float32, ``chunk_size`` images at
  a time; descriptors are stored per level (``N * patches_per_image * C * 49`` floats each, e.g.
  77 MB per level for 2048 RGB images), and projections are formed a block of directions at a
  time.  The projections' dot products are accumulated in float64 (float32 on devices without
  float64, e.g. MPS), so a global TF32 matmul setting cannot degrade them.
* Non-finite images give a NaN distance, which never compares as better than a finite one.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["sliced_wasserstein_distance", "SWDMetric"]

PATCH_SIZE = 7          # side of the descriptor neighbourhood
MIN_RESOLUTION = 16     # coarsest pyramid level
SWD_SCALE = 1e3         # ProGAN reports SWD * 1e3
_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)
_STD_EPS = 1e-8         # floor for a level's per-channel std (a constant level stays finite)
_MAX_PROJECTION_ELEMENTS = 1 << 24   # projection values per block of directions (64 MB float32)
_STREAM_POSITIONS, _STREAM_DIRECTIONS, _STREAM_SUBSAMPLE = 0, 1, 2

DeviceLike = Union[str, torch.device, None]


# ----------------------------------------------------------------------------------- validation

def _check_positive_int(fn: str, name: str, value: Any) -> int:
    """``value`` if it is an int >= 1 (not a bool); TypeError / ValueError naming ``name`` else."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{fn}: {name} must be >= 1, got {value}")
    return value


def _check_images(fn: str, name: str, images: Any) -> None:
    """Raise unless ``images`` is a [N >= 2, C in {1, 3}, R, R] uint8/float tensor, R = 2^k >= 16"""
    if not isinstance(images, Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(images).__name__}")
    if not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise TypeError(f"{fn}: {name} must be uint8 (0..255) or floating point ([-1, 1]), "
                        f"got {images.dtype}")
    if images.dim() != 4:
        raise ValueError(f"{fn}: {name} must have shape [N, C, H, W], got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if n < 2:
        raise ValueError(f"{fn}: {name} must hold at least 2 images, got N = {n}")
    if c not in (1, 3):
        raise ValueError(f"{fn}: {name} must have 1 or 3 channels, got C = {c} "
                         f"(shape {tuple(images.shape)})")
    if h != w or h < MIN_RESOLUTION or h & (h - 1):
        raise ValueError(f"{fn}: {name} must be square with a power-of-two side >= "
                         f"{MIN_RESOLUTION}, got H x W = {h} x {w}")


def _check_same_layout(fn: str, name: str, images: Tensor, ref_name: str,
                       ref_chw: Sequence[int]) -> None:
    """Raise unless ``images`` has the reference set's [C, H, W]."""
    if tuple(images.shape[1:]) != tuple(ref_chw):
        raise ValueError(f"{fn}: {name} has [C, H, W] = {list(images.shape[1:])} but {ref_name} "
                         f"has {list(ref_chw)}; both sets need the same channels and resolution")


def _resolve_device(fn: str, device: DeviceLike, default: torch.device) -> torch.device:
    """``device`` as a torch.device (``default`` for None)."""
    if device is None:
        return default
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{fn}: device must be None, a str or a torch.device, "
                        f"got {type(device).__name__}")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"{fn}: device {device!r} is not a valid torch device ({err})") from None


# -------------------------------------------------------------------------------------- pyramid

def _level_resolutions(resolution: int) -> List[int]:
    """Pyramid level sides, finest first: [R, R/2, ..., 16]."""
    out = [resolution]
    while out[-1] > MIN_RESOLUTION:
        out.append(out[-1] // 2)
    return out


def _binomial_kernel(like: Tensor, gain: float) -> Tensor:
    """The normalised 5x5 binomial filter times ``gain``, [1, 1, 5, 5], in like's dtype/device."""
    k = torch.tensor(_BINOMIAL, dtype=like.dtype)
    k = torch.outer(k, k) * (gain / sum(_BINOMIAL) ** 2)
    return k.view(1, 1, 5, 5).to(like.device)


def _pyr_down(x: Tensor) -> Tensor:
    """Binomial blur (mirror padding) and keep every second row and column: [N, C, 2r, 2r] -> r."""
    n, c, h, w = x.shape
    y = F.pad(x.reshape(n * c, 1, h, w), (2, 2, 2, 2), mode="reflect")
    return F.conv2d(y, _binomial_kernel(x, 1.0), stride=2).view(n, c, h // 2, w // 2)


def _pyr_up(x: Tensor) -> Tensor:
    """Zero-insertion upsampling followed by the binomial blur with gain 4: [N, C, r, r] -> 2r."""
    n, c, h, w = x.shape
    up = x.new_zeros(n * c, 1, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x.reshape(n * c, 1, h, w)
    up = F.pad(up, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(up, _binomial_kernel(x, 4.0)).view(n, c, 2 * h, 2 * w)


def _laplacian_pyramid(x: Tensor) -> List[Tensor]:
    """Laplacian pyramid of float images, finest level first; the last (16x16) level is Gaussian."""
    levels = []
    current = x
    while current.shape[-1] > MIN_RESOLUTION:
        coarser = _pyr_down(current)
        levels.append(current - _pyr_up(coarser))
        current = coarser
    levels.append(current)
    return levels


# ---------------------------------------------------------------------------------- descriptors

def _generator(seed: int, resolution: int, stream: int) -> torch.Generator:
    """CPU generator for one (seed, level, purpose); distinct triples give distinct seeds."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + resolution) * 16 + stream) % 2**63)


def _patch_positions(num_images: int, resolution: int, patches: int, seed: int) -> Tensor:
    """Top-left corners [N, P, 2] (row, col) of random 7x7 patches; image i's are the same for any
    N > i, so two sets share positions image by image."""
    g = _generator(seed, resolution, _STREAM_POSITIONS)
    return torch.randint(0, resolution - PATCH_SIZE + 1, (num_images, patches, 2), generator=g)


def _extract_patches(level: Tensor, positions: Tensor) -> Tensor:
    """Gather 7x7 patches: level [n, C, R, R], positions [n, P, 2] -> descriptors [n * P, C * 49]"""
    n, c, r, _ = level.shape
    p = positions.shape[1]
    span = torch.arange(PATCH_SIZE, device=level.device)
    offsets = (span[:, None] * r + span[None, :]).reshape(-1)                     # [49]
    corners = positions[..., 0] * r + positions[..., 1]                            # [n, P]
    index = (corners[:, :, None] + offsets).reshape(n, 1, p * PATCH_SIZE ** 2)
    patches = level.reshape(n, c, r * r).gather(2, index.expand(n, c, -1))         # [n, C, P*49]
    return patches.view(n, c, p, PATCH_SIZE ** 2).transpose(1, 2).reshape(n * p, -1)


def _normalize_(desc: Tensor, channels: int) -> Tensor:
    """In place: zero mean and unit std per channel over all descriptors and patch pixels."""
    view = desc.view(desc.shape[0], channels, PATCH_SIZE ** 2)
    var, mean = torch.var_mean(view, dim=(0, 2), correction=0, keepdim=True)
    view.sub_(mean).div_(var.sqrt().clamp_min(_STD_EPS))
    return desc


def _to_float(images: Tensor) -> Tensor:
    """float32 images; uint8 0..255 is mapped to [-1, 1]."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 127.5 - 1.0
    return images.to(torch.float32)


def _describe(images: Tensor, resolutions: Sequence[int], patches: int, seed: int,
              device: torch.device, chunk_size: int) -> Dict[int, Tensor]:
    """Normalised descriptors [N * patches, C * 49] per level, built chunk_size images at a time."""
    n, c = images.shape[:2]
    out = {res: torch.empty(n * patches, c * PATCH_SIZE ** 2, device=device) for res in resolutions}
    positions = {res: _patch_positions(n, res, patches, seed).to(device) for res in resolutions}
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        x = _to_float(images[start:stop].to(device))
        for res, level in zip(resolutions, _laplacian_pyramid(x)):
            rows = slice(start * patches, stop * patches)
            out[res][rows] = _extract_patches(level, positions[res][start:stop])
    for desc in out.values():
        _normalize_(desc, c)
    return out


# ------------------------------------------------------------------------------------------ SWD

def _projection_dtype(device: torch.device) -> torch.dtype:
    """float64 for the projections, except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _directions(seed: int, resolution: int, dim: int, count: int, device: torch.device) -> Tensor:
    """``count`` random unit vectors [count, dim] (normalised Gaussians), projection dtype."""
    g = _generator(seed, resolution, _STREAM_DIRECTIONS)
    d = torch.randn(count, dim, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=1, keepdim=True)
    return d.to(_projection_dtype(device)).to(device)


def _subsample(desc: Tensor, count: int, seed: int, resolution: int) -> Tensor:
    """``count`` of the rows of desc, chosen seeded and without replacement (all rows if equal)."""
    if desc.shape[0] == count:
        return desc
    g = _generator(seed, resolution, _STREAM_SUBSAMPLE)
    keep = torch.randperm(desc.shape[0], generator=g)[:count].to(desc.device)
    return desc.index_select(0, keep)


def _sliced_wasserstein(a: Tensor, b: Tensor, directions: Tensor) -> float:
    """Mean over unit directions of the 1-D Wasserstein-1 distance of the projected rows of a, b.

    a, b: [M, D] with equally many rows; directions: [K, D].  Unscaled (no 1e3).
    """
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets must have the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    m = a.shape[0]
    a_p, b_p = a.to(directions.dtype), b.to(directions.dtype)
    block = max(1, _MAX_PROJECTION_ELEMENTS // m)
    total = torch.zeros((), dtype=directions.dtype, device=a.device)
    for start in range(0, directions.shape[0], block):
        d = directions[start:start + block]
        proj_a = torch.sort((d @ a_p.T).to(torch.float32), dim=1).values      # [k, M]
        proj_b = torch.sort((d @ b_p.T).to(torch.float32), dim=1).values
        total += (proj_a - proj_b).abs().mean(dim=1, dtype=directions.dtype).sum()
    return float(total) / directions.shape[0]


# ------------------------------------------------------------------------------------------ API

class SWDMetric:
    """Sliced Wasserstein distance of image sets to a fixed real set (ProGAN appendix D).

    The real images are described once (their normalised descriptors are cached per level on
    ``device``); each call describes the given fake images and returns
    ``{"levels": {resolution: swd * 1e3}, "mean": mean over levels}`` as python floats.  Lower is
    better.  The estimate carries a positive sampling bias that shrinks as the descriptor count
    grows, so compare values taken with the same settings and the same number of fake images.
    See the module docstring for the conventions.

    Args:
        real_images: [N, C, H, W] uint8 or float, N >= 2, C in {1, 3}, H == W = 2^k >= 16.
        patches_per_image: 7x7 patches drawn per image and level (ProGAN used 128).
        dirs: random projection directions per repeat.
        repeats: repeats of ``dirs`` directions; the distance averages over all of them.
        seed: seeds the patch positions, the directions and any subsampling.
        device: where to compute and cache (default: ``real_images.device``); inputs on other
            devices are moved there ``chunk_size`` images at a time.
        chunk_size: images per pyramid batch (bounds the temporary memory).
    """

    def __init__(self, real_images: Tensor, *, patches_per_image: int = 64, dirs: int = 128,
                 repeats: int = 4, seed: int = 0, device: DeviceLike = None,
                 chunk_size: int = 64) -> None:
        self._setup("SWDMetric", "real_images", real_images, patches_per_image, dirs, repeats,
                    seed, device, chunk_size)

    def _setup(self, fn: str, name: str, real_images: Tensor, patches_per_image: int, dirs: int,
               repeats: int, seed: int, device: DeviceLike, chunk_size: int) -> None:
        """Validate (errors name ``fn`` and ``name``) and cache the real descriptors."""
        _check_images(fn, name, real_images)
        self.patches_per_image = _check_positive_int(fn, "patches_per_image", patches_per_image)
        self.dirs = _check_positive_int(fn, "dirs", dirs)
        self.repeats = _check_positive_int(fn, "repeats", repeats)
        self.chunk_size = _check_positive_int(fn, "chunk_size", chunk_size)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"{fn}: seed must be an int, got {type(seed).__name__}")
        self.seed = seed
        self.device = _resolve_device(fn, device, real_images.device)
        self.image_shape = tuple(real_images.shape[1:])
        self.num_real = real_images.shape[0]
        self.resolutions = tuple(_level_resolutions(real_images.shape[-1]))
        dim = real_images.shape[1] * PATCH_SIZE ** 2
        with torch.no_grad():
            self._real = _describe(real_images, self.resolutions, self.patches_per_image, seed,
                                   self.device, self.chunk_size)
            self._directions = {res: _directions(seed, res, dim, dirs * repeats, self.device)
                                for res in self.resolutions}

    def __call__(self, fake_images: Tensor) -> Dict[str, Any]:
        """SWD (* 1e3) of ``fake_images`` (the real set's [C, H, W], any N >= 2) to the real set."""
        return self._evaluate("SWDMetric", "fake_images", fake_images, "real_images")

    def _evaluate(self, fn: str, name: str, fake: Tensor, real_name: str) -> Dict[str, Any]:
        """Validate ``fake`` (errors name ``fn`` and ``name``), describe it, compare per level."""
        _check_images(fn, name, fake)
        _check_same_layout(fn, name, fake, real_name, self.image_shape)
        with torch.no_grad():
            described = _describe(fake, self.resolutions, self.patches_per_image, self.seed,
                                  self.device, self.chunk_size)
            levels: Dict[int, float] = {}
            for res in self.resolutions:
                real, gen = self._real[res], described.pop(res)
                count = min(real.shape[0], gen.shape[0])
                real = _subsample(real, count, self.seed, res)
                gen = _subsample(gen, count, self.seed, res)
                levels[res] = _sliced_wasserstein(real, gen, self._directions[res]) * SWD_SCALE
        return {"levels": levels, "mean": sum(levels.values()) / len(levels)}

    def __repr__(self) -> str:
        return (f"SWDMetric(num_real={self.num_real}, image_shape={self.image_shape}, "
                f"resolutions={self.resolutions}, patches_per_image={self.patches_per_image}, "
                f"dirs={self.dirs}, repeats={self.repeats}, seed={self.seed}, "
                f"device={self.device})")


def sliced_wasserstein_distance(real: Tensor, fake: Tensor, patches_per_image: int = 64,
                                dirs: int = 128, repeats: int = 4, seed: int = 0, *,
                                device: DeviceLike = None, chunk_size: int = 64) -> Dict[str, Any]:
    """Laplacian-pyramid SWD (* 1e3) between two image sets: ``{"levels": {res: v}, "mean": v}``.

    ``real`` and ``fake`` are [N, C, H, W] uint8 (0..255) or float ([-1, 1]) tensors with the same
    [C, H, W] (C in {1, 3}, H == W = 2^k >= 16) and N >= 2 each (the Ns may differ).  Symmetric in
    its arguments and deterministic for a seed.  For repeated comparisons against one real set,
    use :class:`SWDMetric`, which caches the real descriptors.
    """
    fn = "sliced_wasserstein_distance"
    _check_images(fn, "real", real)
    _check_images(fn, "fake", fake)
    _check_same_layout(fn, "fake", fake, "real", real.shape[1:])
    metric = SWDMetric.__new__(SWDMetric)
    metric._setup(fn, "real", real, patches_per_image, dirs, repeats, seed, device, chunk_size)
    return metric._evaluate(fn, "fake", fake, "real")
