from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..ops.bias_act import fused_leaky_relu


class FusedLeakyReLU(nn.Module):
    """rosinality's ``FusedLeakyReLU``: ``leaky_relu(x + bias, negative_slope) * scale``.

    Shapes: x ``[N, channels, *]`` (bias along dim 1), output the same shape and layout.
    Parameters: ``bias`` of shape ``[channels]``, initialised to zero (state-dict compatible with
    rosinality checkpoints).  Calls ``fastgan.ops.bias_act`` (act='lrelu').
    """

    def __init__(self, channels: int, bias: bool = True, negative_slope: float = 0.2,
                 scale: float = 2 ** 0.5, impl: Optional[str] = None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return fused_leaky_relu(x, bias, self.negative_slope, self.scale, impl=self.impl)

    def extra_repr(self) -> str:
        c = 0 if self.bias is None else self.bias.shape[0]
        return f"channels={c}, negative_slope={self.negative_slope}, scale={self.scale:.4g}"
