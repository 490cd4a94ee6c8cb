"""rosinality/stylegan2-pytorch's FIR resampling layers: ``Blur``, ``Upsample``, ``Downsample``.

Same constructor signatures, attributes (``pad``, ``factor``) and state dict (the normalised 2-D
kernel as the persistent buffer ``kernel``, so rosinality checkpoints load unchanged) as the
originals, plus an ``impl`` keyword; the work is one :func:`fastgan.ops.upfirdn2d.upfirdn2d` call.
``kernel`` is a 1-D (outer product with itself) or 2-D list / array / tensor, normalised to sum 1
by :func:`fastgan.ops.compat.rosinality.make_kernel`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ..ops.compat.rosinality import make_kernel, upfirdn2d
from ._util import check_int

__all__ = ["Blur", "Upsample", "Downsample", "make_kernel"]


def _check_factor(factor, cls: str) -> int:
    return check_int(factor, "factor", cls)


class Blur(nn.Module):
    """FIR filter without resampling: ``upfirdn2d(x, kernel, pad=pad)``.

    Shapes: x ``[N, C, H, W]`` -> ``[N, C, H + pad0 + pad1 - k + 1, W + pad0 + pad1 - k + 1]``
    (k the kernel size; ``pad`` may also be ``(x0, x1, y0, y1)``), same layout as x.

    ``upsample_factor > 1`` scales the kernel by ``upsample_factor ** 2``: the blur that follows a
    stride-``upsample_factor`` transposed convolution (rosinality's ``ModulatedConv2d`` /
    ``ConvLayer`` upsampling) so the zero-inserted image keeps its mean.
    """

    def __init__(self, kernel, pad: Sequence[int], upsample_factor: int = 1,
                 impl: Optional[str] = None):
        super().__init__()
        kernel = make_kernel(kernel)
        if upsample_factor > 1:
            kernel = kernel * (upsample_factor ** 2)
        self.register_buffer("kernel", kernel)
        self.pad = tuple(pad)
        self.impl = impl

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(input, self.kernel, pad=self.pad, impl=self.impl)

    def extra_repr(self) -> str:
        return f"kernel_size={tuple(self.kernel.shape)}, pad={self.pad}"


class Upsample(nn.Module):
    """FIR upsampling by ``factor``: ``upfirdn2d(x, kernel * factor**2, up=factor, pad=pad)`` with
    ``pad = ((p + 1) // 2 + factor - 1, p // 2)``, ``p = k - factor``.

    Shapes: x ``[N, C, H, W]`` -> ``[N, C, H * factor, W * factor]``, same layout as x.  A
    constant image stays constant away from the (zero-padded) border.
    """

    def __init__(self, kernel, factor: int = 2, impl: Optional[str] = None):
        super().__init__()
        self.factor = factor = _check_factor(factor, "Upsample")
        kernel = make_kernel(kernel) * (factor ** 2)
        self.register_buffer("kernel", kernel)
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.impl = impl

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(input, self.kernel, up=self.factor, down=1, pad=self.pad, impl=self.impl)

    def extra_repr(self) -> str:
        return f"kernel_size={tuple(self.kernel.shape)}, factor={self.factor}, pad={self.pad}"


class Downsample(nn.Module):
    """FIR downsampling by ``factor``: ``upfirdn2d(x, kernel, down=factor, pad=pad)`` with
    ``pad = ((p + 1) // 2, p // 2)``, ``p = k - factor``.

    Shapes: x ``[N, C, H, W]`` -> ``[N, C, H // factor, W // factor]``, same layout as x.
    """

    def __init__(self, kernel, factor: int = 2, impl: Optional[str] = None):
        super().__init__()
        self.factor = factor = _check_factor(factor, "Downsample")
        kernel = make_kernel(kernel)
        self.register_buffer("kernel", kernel)
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)
        self.impl = impl

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(input, self.kernel, up=1, down=self.factor, pad=self.pad, impl=self.impl)

    def extra_repr(self) -> str:
        return f"kernel_size={tuple(self.kernel.shape)}, factor={self.factor}, pad={self.pad}"
