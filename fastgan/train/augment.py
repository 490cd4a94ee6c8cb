"""Differentiable augmentation for GAN training: DiffAugment and ADA-style adaptive augmentation.

    diff_augment(x, policy="color,translation,cutout", generator=None) -> Tensor
    DiffAugment(policy="color,translation,cutout")                  fixed policy, as a module
    AdaptiveAugment(policy="xflip,rotate90,translation,color,cutout", p=0.0, target=0.6,
                    speed_kimg=500, interval=4, max_p=1.0)        ADA: p tuned from D's outputs
    make_augment(kind, **kw)                                        "none" | "diffaug" | "ada"

The trainer augments both reals and fakes before D, so D's losses, G's loss and the R1 penalty
(``r1_penalty(lambda x: D(aug(x), c), reals)``) are differentiated through the augmentation, the
last one twice.  Every op is therefore built from ops with double-backward support (arithmetic,
``mean``, ``torch.where``, ``gather``, ``flip``, ``rot90``, ``F.pad``), never ``grid_sample``; for
fixed random draws each augmentation is an affine function of its input.

Images are ``[N, C, H, W]`` floats in roughly [-1, 1], of any float dtype and device, contiguous or
channels_last; the output has the input's shape, dtype, device and memory format.  Random draws
come from the optional ``generator`` (a ``torch.Generator`` on the images' device) or else from
torch's global RNG; they are drawn in float32 whatever the image dtype, so a seed gives the same
augmentation in every precision.  Per-sample decisions are tensors: nothing synchronises with the
host (no ``.item()``), so the augmentation is asynchronous and CUDA-graph friendly.  The only host
sync is :meth:`AdaptiveAugment.update`, once every ``interval`` steps.

The ops (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):

* ``color``: brightness ``x + (u1 - 0.5)``, then saturation ``(x - m_c) * 2 u2 + m_c`` with ``m_c``
  the mean over channels of each pixel, then contrast ``(x - m) * (u3 + 0.5) + m`` with ``m`` the
  mean over C, H, W of each sample; ``u1, u2, u3 ~ U[0, 1)`` per sample.
* ``translation``: an integer shift per sample, ``ty`` uniform in ``[-sy, sy]`` and ``tx`` in
  ``[-sx, sx]`` with ``sy = int(H / 8 + 0.5)``, ``sx = int(W / 8 + 0.5)``;
  ``out[n, :, i, j] = x[n, :, i + ty, j + tx]``, zero where that falls outside the image.
* ``cutout``: zeroes a rectangle of ``int(H / 2 + 0.5)`` x ``int(W / 2 + 0.5)`` pixels per
  sample, centred at a uniform offset in ``[0, H + 1 - size % 2)`` (resp. W) and clipped at the
  borders.

:class:`AdaptiveAugment` adds ``xflip`` (horizontal flip) and ``rotate90`` (``k`` quarter turns,
``k`` uniform in {1, 2, 3}; on non-square images, where a quarter turn would change the shape,
always the half turn ``k = 2``).  Its ``translation`` uses zero fill, like DiffAugment's.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["diff_augment", "DiffAugment", "AdaptiveAugment", "make_augment",
           "DIFFAUG_OPS", "ADA_OPS", "AUGMENT_KINDS"]

DIFFAUG_OPS = ("color", "translation", "cutout")
ADA_OPS = ("xflip", "rotate90", "translation", "color", "cutout")
AUGMENT_KINDS = ("none", "diffaug", "ada")

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------

def _parse_policy(fn: str, policy: Any, valid: Tuple[str, ...]) -> Tuple[str, ...]:
    """'a, b' -> ('a', 'b'); '' or 'none' -> (); unknown, empty or repeated names -> ValueError."""
    if not isinstance(policy, str):
        raise TypeError(f"{fn}: policy must be a comma-separated str of names from {valid}, "
                        f"got {type(policy).__name__}")
    text = policy.strip()
    if text == "" or text.lower() == "none":
        return ()
    names = tuple(name.strip() for name in text.split(","))
    for name in names:
        if name not in valid:
            what = "an empty name" if name == "" else f"unknown op {name!r}"
            raise ValueError(f"{fn}: policy {policy!r} has {what}; valid names are "
                             f"{', '.join(valid)} (or '' / 'none' for no augmentation)")
    if len(set(names)) != len(names):
        raise ValueError(f"{fn}: policy {policy!r} lists an op more than once")
    return names


def _check_images(fn: str, x: Any, generator: Any) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: x must be a floating-point tensor, got {x.dtype}")
    if x.dim() != 4:
        raise ValueError(f"{fn}: x must be 4-D images [N, C, H, W], got shape {tuple(x.shape)}")
    if x.shape[1] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{fn}: x must have C, H, W >= 1, got shape {tuple(x.shape)}")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"{fn}: generator must be a torch.Generator or None, "
                            f"got {type(generator).__name__}")
        if generator.device.type != x.device.type:
            raise ValueError(f"{fn}: generator must be on x's device ({x.device}), "
                             f"got a generator on {generator.device}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _like_input(out: Tensor, x: Tensor) -> Tensor:
    """out in x's dtype and, for channels_last x, in channels_last (no-ops when already so)."""
    out = out.to(x.dtype)
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


# ---------------------------------------------------------------------------------------------
# the ops: (x, generator) -> augmented x, every sample augmented
# ---------------------------------------------------------------------------------------------

def _uniform(x: Tensor, generator: Optional[torch.Generator], *lead: int) -> Tensor:
    """U[0, 1) of shape [*lead, N, 1, 1, 1] in x's dtype (drawn in float32)."""
    u = torch.rand(*lead, x.shape[0], 1, 1, 1, generator=generator, device=x.device,
                   dtype=torch.float32)
    return u.to(x.dtype)


def _color(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Brightness, saturation, contrast, each with its own per-sample factor."""
    u = _uniform(x, generator, 3)
    x = x + (u[0] - 0.5)
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (u[1] * 2) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * (u[2] + 0.5) + m


def _shift(x: Tensor, ty: Tensor, tx: Tensor) -> Tensor:
    """out[n, :, i, j] = x[n, :, i + ty[n], j + tx[n]], 0 outside: two gathers from a 1-padded x."""
    n, c, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1))
    rows = (torch.arange(h, device=x.device) + ty.view(n, 1) + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device) + tx.view(n, 1) + 1).clamp(0, w + 1)
    xp = xp.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2))
    return xp.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def _translation(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    ty = torch.randint(-sy, sy + 1, (n,), generator=generator, device=x.device)
    tx = torch.randint(-sx, sx + 1, (n,), generator=generator, device=x.device)
    return _shift(x, ty, tx)


def _cutout(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    n, _, h, w = x.shape
    size_h, size_w = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    cy = torch.randint(0, h + 1 - size_h % 2, (n, 1), generator=generator, device=x.device)
    cx = torch.randint(0, w + 1 - size_w % 2, (n, 1), generator=generator, device=x.device)
    top, left = cy - size_h // 2, cx - size_w // 2
    i = torch.arange(h, device=x.device)
    j = torch.arange(w, device=x.device)
    in_rows = (i >= top) & (i < top + size_h)            # [N, H]
    in_cols = (j >= left) & (j < left + size_w)          # [N, W]
    keep = ~(in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w))
    return x * keep.to(x.dtype)


def _xflip(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    return x.flip(3)


def _rotate90(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """k in {1, 2, 3} quarter turns per sample; non-square images: always the half turn."""
    if x.shape[2] != x.shape[3]:
        return x.flip((2, 3))
    k = torch.randint(1, 4, (x.shape[0], 1, 1, 1), generator=generator, device=x.device)
    quarter = x.rot90(1, (2, 3))
    return torch.where(k == 1, quarter, torch.where(k == 2, x.flip((2, 3)), quarter.flip((2, 3))))


_OPS: Dict[str, Callable[[Tensor, Optional[torch.Generator]], Tensor]] = {
    "color": _color, "translation": _translation, "cutout": _cutout,
    "xflip": _xflip, "rotate90": _rotate90,
}


# ---------------------------------------------------------------------------------------------
# DiffAugment
# ---------------------------------------------------------------------------------------------

def diff_augment(x: Tensor, policy: str = "color,translation,cutout",
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """DiffAugment (Zhao et al. 2020): apply every op of ``policy`` to every sample, in order.

    Args:
        x: images ``[N, C, H, W]``, any float dtype and device, contiguous or channels_last.
        policy: comma-separated names from ``color``, ``translation``, ``cutout`` (see the module
            docstring); ``""`` or ``"none"`` returns x itself.
        generator: optional ``torch.Generator`` on x's device; None uses torch's global RNG.

    Returns the augmented images, differentiable twice w.r.t. x, with x's shape, dtype, device
    and memory format.
    """
    fn = "diff_augment"
    ops = _parse_policy(fn, policy, DIFFAUG_OPS)
    _check_images(fn, x, generator)
    if not ops:
        return x
    out = x
    for name in ops:
        out = _OPS[name](out, generator)
    return _like_input(out, x)


class DiffAugment(torch.nn.Module):
    """:func:`diff_augment` with a fixed policy, with the same interface as
    :class:`AdaptiveAugment`: ``forward(x, generator=None)``; ``accumulate`` and ``update`` do
    nothing and return None; ``p`` is 1.0 (every sample is augmented)."""

    def __init__(self, policy: str = "color,translation,cutout"):
        super().__init__()
        self.ops = _parse_policy("DiffAugment", policy, DIFFAUG_OPS)
        self.policy = ",".join(self.ops)

    @property
    def p(self) -> float:
        """The probability that a sample is augmented: always 1.0 (for logging)."""
        return 1.0

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        return diff_augment(x, self.policy, generator)

    def accumulate(self, real_logits: Tensor) -> None:
        """No-op (DiffAugment does not adapt)."""
        return None

    def update(self, batch_size_total: int) -> None:
        """No-op (DiffAugment does not adapt)."""
        return None

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"


# ---------------------------------------------------------------------------------------------
# ADA
# ---------------------------------------------------------------------------------------------

class AdaptiveAugment(torch.nn.Module):
    """ADA-style adaptive augmentation (Karras et al. 2020, "Training Generative Adversarial
    Networks with Limited Data").

    ``forward(x, generator=None)`` applies each op of ``policy``, in the order listed, to each
    sample independently with probability ``p`` (``color`` counts as one op: its brightness,
    saturation and contrast are applied together).  Each op is computed for the whole batch and
    selected per sample with ``torch.where`` by a Bernoulli(p) mask, so the result stays
    differentiable and nothing syncs with the host.  The augmentation is applied in train and
    eval mode alike.

    The overfitting heuristic ``r_t = E[sign(D(reals))]`` tunes p: call ``accumulate(real_logits)``
    every step and ``update(batch_size_total)`` every ``interval`` steps; p moves by
    ``sign(r_t - target) * batch_size_total * interval / (speed_kimg * 1000)`` per update, so it can
    go from 0 to 1 in ``speed_kimg`` thousand images, and is clamped to ``[0, max_p]``.

    ``p`` is a float32 scalar buffer (saved in the state dict).  A python float mirror of it lets
    ``forward`` return x itself, doing no work, while p is 0 (the start of training): change p only
    through :meth:`update`, :meth:`set_p` or ``load_state_dict``, which keep the mirror in step
    (after writing the buffer some other way, e.g. a broadcast, call ``set_p(float(aug.p))``).

    Args:
        policy: comma-separated names from ``xflip``, ``rotate90``, ``translation``, ``color``,
            ``cutout``; ``""`` or ``"none"``: no ops (forward returns x).
        p: the initial probability, in ``[0, max_p]``.
        target: the target value of ``r_t``, in (0, 1).
        speed_kimg: thousands of images for p to change by 1, > 0.
        interval: steps between calls of :meth:`update`, >= 1 (enters the step size).
        max_p: the upper bound of p, in (0, 1].
    """

    def __init__(self, policy: str = "xflip,rotate90,translation,color,cutout", p: float = 0.0,
                 target: float = 0.6, speed_kimg: float = 500, interval: int = 4,
                 max_p: float = 1.0):
        super().__init__()
        fn = "AdaptiveAugment"
        self.ops = _parse_policy(fn, policy, ADA_OPS)
        self.policy = ",".join(self.ops)
        if not _is_number(max_p) or not 0 < max_p <= 1:
            raise ValueError(f"{fn}: max_p must be a number in (0, 1], got {max_p!r}")
        if not _is_number(p) or not 0 <= p <= max_p:
            raise ValueError(f"{fn}: p must be a number in [0, max_p={max_p}], got {p!r}")
        if not _is_number(target) or not 0 < target < 1:
            raise ValueError(f"{fn}: target must be a number in (0, 1), got {target!r}")
        if not _is_number(speed_kimg) or not speed_kimg > 0:
            raise ValueError(f"{fn}: speed_kimg must be a number > 0, got {speed_kimg!r}")
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise ValueError(f"{fn}: interval must be an int >= 1, got {interval!r}")
        self.target = float(target)
        self.speed_kimg = float(speed_kimg)
        self.interval = interval
        self.max_p = float(max_p)
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float32))
        # [sum of sign(real logits), number of logits] since the last update; float64 counts
        # exactly up to 2^53.  Not saved: an interval cut by a checkpoint is simply restarted.
        self.register_buffer("ada_stats", torch.zeros(2, dtype=torch.float64), persistent=False)
        self._p_host = float(self.p)

    # ---- p -------------------------------------------------------------------------------------

    def set_p(self, p: float) -> None:
        """Set p (in ``[0, max_p]``) and its host mirror."""
        if not _is_number(p) or not 0 <= p <= self.max_p:
            raise ValueError(f"AdaptiveAugment.set_p: p must be a number in "
                             f"[0, max_p={self.max_p}], got {p!r}")
        self._write_p(float(p))

    def _write_p(self, p: float) -> None:
        p32 = float(torch.tensor(p, dtype=torch.float32))  # the mirror equals the buffer exactly
        with torch.no_grad():
            self.p.fill_(p32)
        self._p_host = p32

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if prefix + "p" in state_dict and self.p.device.type != "meta":
            p = float(self.p)
            if not 0 <= p <= 1:  # also catches NaN
                error_msgs.append(f"AdaptiveAugment: the loaded p must be in [0, 1], got {p}")
            self._p_host = p

    def _apply(self, fn, *args, **kwargs):
        # .half() / .to(dtype) must not turn p or the counters into low precision.
        super()._apply(fn, *args, **kwargs)
        if self.p.dtype != torch.float32:
            self.p = self.p.to(torch.float32)
        if self.ada_stats.dtype != torch.float64:
            self.ada_stats = self.ada_stats.to(torch.float64)
        return self

    # ---- augmentation ----------------------------------------------------------------------------

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Augment x ``[N, C, H, W]``: each op applied to each sample with probability p.

        ``generator``: optional ``torch.Generator`` on x's device; None uses torch's global RNG.
        Returns x itself while p is 0 or the policy is empty."""
        _check_images("AdaptiveAugment", x, generator)
        if self._p_host == 0.0 or not self.ops:
            return x
        p = self.p.to(x.device)
        out = x
        for name in self.ops:
            apply = torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device,
                               dtype=torch.float32) < p
            out = torch.where(apply, _OPS[name](out, generator), out)
        return _like_input(out, x)

    # ---- the heuristic -------------------------------------------------------------------------

    def accumulate(self, real_logits: Tensor) -> None:
        """Add ``sign(real_logits).sum()`` and their count to the on-device accumulators (no sync;
        the logits are detached)."""
        if not isinstance(real_logits, Tensor):
            raise TypeError(f"AdaptiveAugment.accumulate: real_logits must be a torch.Tensor, "
                            f"got {type(real_logits).__name__}")
        logits = real_logits.detach()
        if self.ada_stats.device != logits.device:
            self.ada_stats = self.ada_stats.to(logits.device)
        with torch.no_grad():
            self.ada_stats[0] += logits.sign().sum().to(torch.float64)
            self.ada_stats[1] += logits.numel()

    def update(self, batch_size_total: int) -> Optional[float]:
        """Adjust p from the logits accumulated since the last update; call every ``interval``
        steps on every rank (the accumulators are summed over ranks when torch.distributed is
        initialised).

        ``batch_size_total``: the global batch of one step (all ranks).  Returns ``r_t`` (NaN if
        the logits were NaN, leaving p unchanged), or None, leaving p unchanged, when nothing was
        accumulated.  Syncs with the host once.
        """
        if not isinstance(batch_size_total, int) or isinstance(batch_size_total, bool) \
                or batch_size_total < 1:
            raise ValueError(f"AdaptiveAugment.update: batch_size_total must be an int >= 1, "
                             f"got {batch_size_total!r}")
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.ada_stats, op=dist.ReduceOp.SUM)
        sum_sign, count = self.ada_stats.tolist()
        self.ada_stats.zero_()
        if count == 0:
            return None
        r_t = sum_sign / count
        direction = (r_t > self.target) - (r_t < self.target)  # sign; 0 for NaN
        step = batch_size_total * self.interval / (self.speed_kimg * 1000)
        self._write_p(min(max(self._p_host + direction * step, 0.0), self.max_p))
        return r_t

    def extra_repr(self) -> str:
        return (f"policy={self.policy!r}, p={self._p_host:.4g}, target={self.target}, "
                f"speed_kimg={self.speed_kimg:g}, interval={self.interval}, max_p={self.max_p}")


# ---------------------------------------------------------------------------------------------
# factory
# ---------------------------------------------------------------------------------------------

def make_augment(kind: str, **kw: Any) -> Union[None, DiffAugment, AdaptiveAugment]:
    """``"none"`` -> None, ``"diffaug"`` -> ``DiffAugment(**kw)``, ``"ada"`` ->
    ``AdaptiveAugment(**kw)``.  Keyword arguments with ``"none"`` raise TypeError."""
    if not isinstance(kind, str):
        raise TypeError(f"make_augment: kind must be a str, one of {AUGMENT_KINDS}, "
                        f"got {type(kind).__name__}")
    if kind == "none":
        if kw:
            raise TypeError(f"make_augment: kind='none' takes no keyword arguments, "
                            f"got {sorted(kw)}")
        return None
    if kind == "diffaug":
        return DiffAugment(**kw)
    if kind == "ada":
        return AdaptiveAugment(**kw)
    raise ValueError(f"make_augment: kind must be one of {AUGMENT_KINDS}, got {kind!r}")
