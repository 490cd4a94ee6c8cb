from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.adain import adain
from ._util import check_float, compute_dtype, no_autocast


class AdaIN(nn.Module):
    """StyleGAN1 adaptive instance normalisation: ``adain(x, 1 + scale, beta)`` with
    ``(scale, beta) = affine(w)``.

    ``affine`` is an equalized-learning-rate linear layer ``w_dim -> 2 * channels``: its weight is
    stored as N(0, 1) and multiplied by ``1 / sqrt(w_dim)`` at run time (Karras et al.), its bias
    starts at zero, so a fresh module starts at gamma = 1 + scale ~ 1 (NVlabs ``style_mod``).

    Shapes: x ``[N, channels, H, W]`` (any layout; half types allowed, the style is applied in
    float32), w ``[N, w_dim]``; output like x, or in the autocast dtype when x is float32 under
    ``torch.autocast`` (the compute dtype, :func:`fastgan.nn._util.compute_dtype`, as in every
    fastgan.nn layer).  ``eps`` is the variance epsilon of the normalisation.  ``impl`` selects
    the backend of :func:`fastgan.ops.adain`.
    """

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-5, impl: Optional[str] = None):
        super().__init__()
        if channels < 1 or w_dim < 1:
            raise ValueError(f"AdaIN: channels and w_dim must be >= 1, got {channels}, {w_dim}")
        self.channels = channels
        self.w_dim = w_dim
        self.eps = eps
        self.impl = impl
        self.weight = nn.Parameter(torch.randn(2 * channels, w_dim))
        self.bias = nn.Parameter(torch.zeros(2 * channels))
        self.weight_gain = 1.0 / math.sqrt(w_dim)

    def style(self, w: torch.Tensor, dtype: torch.dtype = torch.float32
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma, beta), each [N, channels] in ``dtype``: gamma = 1 + scale."""
        if not isinstance(w, torch.Tensor) or w.dim() != 2 or w.shape[1] != self.w_dim:
            shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise ValueError(f"AdaIN: w must be [N, w_dim={self.w_dim}], got shape {shape}")
        check_float(w, "w", "AdaIN")
        # autocast would run F.linear in its own dtype, and fastgan.ops.adain takes gamma / beta
        # only in x's dtype or float32: the style stays in the dtype asked for
        with no_autocast(w):
            s = F.linear(w.to(dtype), self.weight.to(dtype) * self.weight_gain,
                         self.bias.to(dtype))
        scale, beta = s.chunk(2, dim=1)
        return 1 + scale, beta

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"AdaIN: x must be [N, channels={self.channels}, H, W], got shape "
                             f"{shape}")
        check_float(x, "x", "AdaIN")
        dt = compute_dtype(x)
        with no_autocast(x):
            x = x.to(dt)
            gamma, beta = self.style(w, torch.float64 if dt == torch.float64 else torch.float32)
            return adain(x, gamma, beta, eps=self.eps, impl=self.impl)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, w_dim={self.w_dim}, eps={self.eps:g}"
