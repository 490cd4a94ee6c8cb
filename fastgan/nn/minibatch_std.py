"""The minibatch standard-deviation layer of the StyleGAN discriminators."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ._util import check_int, memory_format

__all__ = ["MinibatchStdDev"]


class MinibatchStdDev(nn.Module):
    """Appends the mean standard deviation over sample groups as extra feature maps (NVlabs
    ``MinibatchStdLayer``; rosinality's ``stddev_group`` / ``stddev_feat`` block).

    With ``G = min(group_size, N)`` (``N`` when group_size is None), ``F = num_channels`` and
    ``c = C // F``, sample n is grouped with the samples ``m = n (mod N / G)``:

        y = x.reshape(G, -1, F, c, H, W)                  (in float32; float64 for float64 x)
        y = sqrt(mean_g((y - mean_g(y))^2) + 1e-8)        (per group, channel and pixel)
        y = mean over (c, H, W) -> [N / G, F], tiled to [N, F, H, W]
        out = cat([x, y.to(x.dtype)], 1)

    Shapes: x ``[N, C, H, W]`` with ``N % G == 0`` and ``C % F == 0`` -> ``[N, C + F, H, W]`` in
    x's dtype; channels_last stays channels_last.  No parameters or buffers (empty state dict).
    Plain torch ops (no fastgan op); compile-friendly (Python ints only).
    """

    def __init__(self, group_size: Optional[int] = 4, num_channels: int = 1):
        super().__init__()
        if group_size is not None:
            group_size = check_int(group_size, "group_size", "MinibatchStdDev")
        self.group_size = group_size
        self.num_channels = check_int(num_channels, "num_channels", "MinibatchStdDev")

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"MinibatchStdDev: x must be a float tensor [N, C, H, W], got {shape}")
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        f = self.num_channels
        if g == 0 or n % g != 0:
            raise ValueError(f"MinibatchStdDev: the batch size N = {n} must be divisible by the "
                             f"group size G = min(group_size={self.group_size}, N) = {g}")
        if c % f != 0:
            raise ValueError(f"MinibatchStdDev: x's C = {c} channels must be divisible by "
                             f"num_channels = {f} (x is {tuple(x.shape)})")
        dt = torch.float64 if x.dtype == torch.float64 else torch.float32
        y = x.reshape(g, -1, f, c // f, h, w).to(dt)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        out = torch.cat([x, y.to(x.dtype)], dim=1)
        fmt = memory_format(x)
        return out if fmt == torch.contiguous_format else out.contiguous(memory_format=fmt)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
