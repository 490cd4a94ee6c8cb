"""rosinality/stylegan2-pytorch's ``op`` package on fastgan's ops.

Replace ``from op import FusedLeakyReLU, fused_leaky_relu, upfirdn2d`` with
``from fastgan.ops.compat.rosinality import FusedLeakyReLU, fused_leaky_relu, upfirdn2d``; the
signatures and results are the same (and every function takes an extra ``impl`` keyword).  Its
``Blur`` / ``Upsample`` / ``Downsample`` layers are :mod:`fastgan.nn.resample`.

rosinality's ``upfirdn2d`` is the NVlabs one with a different spelling of the padding:

    upfirdn2d(input, kernel, up, down, pad=(p0, p1))          == NVlabs padding [p0, p1, p0, p1]
    upfirdn2d(input, kernel, up, down, pad=(x0, x1, y0, y1))  == NVlabs padding [x0, x1, y0, y1]

(zero insertion by ``up``, pad / crop, a true convolution with the 2-D ``kernel``, keep every
``down``-th pixel).
"""
from __future__ import annotations

from collections import abc
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ...nn.activation import FusedLeakyReLU
from ..bias_act import fused_leaky_relu as _fused_leaky_relu
from ..upfirdn2d import upfirdn2d as _upfirdn2d

__all__ = ["upfirdn2d", "fused_leaky_relu", "FusedLeakyReLU", "make_kernel"]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def rosinality_padding(pad: Sequence[int]) -> list:
    """rosinality's ``pad`` -> NVlabs ``[x0, x1, y0, y1]``: ``(p0, p1)`` pads both axes by p0
    before and p1 after; a 4-tuple is already ``(x0, x1, y0, y1)``."""
    if isinstance(pad, (list, tuple)) and all(_is_int(p) for p in pad):
        if len(pad) == 2:
            return [pad[0], pad[1], pad[0], pad[1]]
        if len(pad) == 4:
            return list(pad)
    raise ValueError(f"upfirdn2d: pad must be (pad0, pad1) or (x0, x1, y0, y1) of ints, got {pad!r}")


def upfirdn2d(input: Tensor, kernel: Tensor, up: Union[int, Sequence[int]] = 1,
              down: Union[int, Sequence[int]] = 1, pad: Sequence[int] = (0, 0),
              impl: Optional[str] = None) -> Tensor:
    """rosinality's ``upfirdn2d``: upsample, pad, FIR-filter (true convolution), downsample.

    Args:
        input: ``[N, C, H, W]``.
        kernel: 2-D FIR kernel ``[kh, kw]`` (e.g. from :func:`make_kernel`).  Like the original,
            the kernel is never differentiated (it is used detached).
        up: upsampling factor, an int or ``(x, y)``.
        down: downsampling factor, an int or ``(x, y)``.
        pad: ``(pad0, pad1)`` for both axes, or ``(x0, x1, y0, y1)``; negative values crop.
        impl: backend (see :func:`fastgan.ops.upfirdn2d.upfirdn2d`).

    Returns:
        ``[N, C, (H * up_y + y0 + y1 - kh) // down_y + 1, (W * up_x + x0 + x1 - kw) // down_x + 1]``.
    """
    if not isinstance(kernel, Tensor) or kernel.dim() != 2:
        shape = tuple(kernel.shape) if isinstance(kernel, Tensor) else type(kernel).__name__
        raise ValueError(f"upfirdn2d: kernel must be a 2-D tensor [kh, kw], got {shape}")
    if isinstance(up, abc.Iterable):
        up = list(up)
    if isinstance(down, abc.Iterable):
        down = list(down)
    return _upfirdn2d(input, kernel.detach(), up=up, down=down, padding=rosinality_padding(pad),
                      impl=impl)


def fused_leaky_relu(input: Tensor, bias: Optional[Tensor] = None, negative_slope: float = 0.2,
                     scale: float = 2 ** 0.5, impl: Optional[str] = None) -> Tensor:
    """rosinality's ``fused_leaky_relu``: ``leaky_relu(input + bias, negative_slope) * scale``, the
    bias ``[C]`` along dim 1 of ``input [N, C, *]``; the bias is cast to input's dtype.  See
    :func:`fastgan.ops.bias_act.fused_leaky_relu`."""
    if bias is not None and isinstance(input, Tensor):
        bias = bias.to(input.dtype)
    return _fused_leaky_relu(input, bias, negative_slope, scale, impl=impl)


def make_kernel(k) -> Tensor:
    """rosinality's ``make_kernel``: a float32 2-D FIR kernel from a 1-D (outer product with itself)
    or 2-D list / array / tensor, normalised to sum 1."""
    k = torch.as_tensor(k, dtype=torch.float32).clone()
    if k.dim() not in (1, 2) or k.numel() == 0:
        raise ValueError(f"make_kernel: k must be a non-empty 1-D or 2-D kernel, got shape "
                         f"{tuple(k.shape)}")
    if k.dim() == 1:
        k = k[None, :] * k[:, None]
    total = k.sum()
    if total == 0:
        raise ValueError("make_kernel: the kernel's taps sum to 0, so it cannot be normalised")
    return k / total
