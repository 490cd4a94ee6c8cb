"""Equalized-learning-rate layers (Karras et al.): ``EqualLinear`` and ``EqualConv2d``.

Weights are stored as N(0, 1) / lr_multiplier and multiplied by ``lr_multiplier / sqrt(fan_in)``
at run time; biases are multiplied by ``lr_multiplier``.  The math and the state-dict names
(``weight``, ``bias``) are those of rosinality's ``EqualLinear`` / ``EqualConv2d`` and NVlabs'
``FullyConnectedLayer`` / ``Conv2dLayer``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ..ops.bias_act import ACTIVATIONS, bias_act
from ..ops.conv2d_resample import conv2d_resample
from ._util import (check_float, check_int, compute_dtype, filter_buffer, no_autocast,
                    resolve_activation, scaled_param)

__all__ = ["EqualLinear", "EqualConv2d"]


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate and a fused bias + activation.

        y = bias_act(x @ (weight * weight_gain).T, bias * bias_gain, act=activation)

    with ``weight_gain = lr_multiplier / sqrt(in_features)`` and ``bias_gain = lr_multiplier``;
    the activation's default gain applies (sqrt(2) for 'lrelu').  For 'linear' with a bias the
    product is one ``torch.addmm``.

    Args:
        in_features, out_features: sizes.
        bias: learn a bias.
        bias_init: initial value of every bias entry (1.0 for the style affines of StyleGAN2).
        lr_multiplier: learning-rate multiplier (0.01 in StyleGAN2's mapping network).
        activation: any :data:`fastgan.ops.ACTIVATIONS` name, or rosinality's 'fused_lrelu' /
            None (aliases of 'lrelu' / 'linear').
        impl: backend of :func:`fastgan.ops.bias_act` (None, 'ref', 'triton', 'cuda').

    Shapes: x ``[..., in_features]`` (leading dims flattened for the product) ->
    ``[..., out_features]`` in the compute dtype (:func:`fastgan.nn._util.compute_dtype`).

    Parameters (float32): ``weight`` ``[out_features, in_features]`` initialised
    ``randn / lr_multiplier``; ``bias`` ``[out_features]`` initialised ``bias_init`` (None when
    ``bias=False``).  State dict: ``weight``, ``bias`` (rosinality's and NVlabs' names).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 bias_init: float = 0.0, lr_multiplier: float = 1.0,
                 activation: Optional[str] = "linear", impl: Optional[str] = None):
        super().__init__()
        cls = type(self).__name__
        self.in_features = check_int(in_features, "in_features", cls)
        self.out_features = check_int(out_features, "out_features", cls)
        if not lr_multiplier > 0:
            raise ValueError(f"{cls}: lr_multiplier must be > 0, got {lr_multiplier!r}")
        self.activation = resolve_activation(activation, cls)
        self.lr_multiplier = float(lr_multiplier)
        self.impl = impl
        in_features, out_features = self.in_features, self.out_features
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = (nn.Parameter(torch.full((out_features,), float(bias_init)))
                     if bias else None)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = float(lr_multiplier)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__}: x must be [N, in_features="
                             f"{self.in_features}] (or [..., {self.in_features}]), got {shape}")
        check_float(x, "x", type(self).__name__)
        dt = compute_dtype(x)
        with no_autocast(x):
            lead = x.shape[:-1]
            x2 = x.to(dt).reshape(-1, self.in_features)
            w = scaled_param(self.weight, self.weight_gain, dt)
            b = None if self.bias is None else scaled_param(self.bias, self.bias_gain, dt)
            if self.activation == "linear" and b is not None:
                y = torch.addmm(b.unsqueeze(0), x2, w.t())
            else:
                y = x2.matmul(w.t())
                if b is not None or self.activation != "linear":
                    y = bias_act(y, b, dim=1, act=self.activation, impl=self.impl)
            return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, lr_multiplier={self.lr_multiplier:g}, "
                f"activation={self.activation!r}")


class EqualConv2d(nn.Module):
    """2-D convolution with equalized learning rate, optional FIR up/downsampling and a fused
    bias + activation + clamp (NVlabs ``Conv2dLayer`` semantics).

        y = conv2d_resample(x, weight * weight_gain, resample_filter, up, down,
                            padding=kernel_size // 2, flip_weight=(up == 1))
        y = bias_act(y, bias * bias_gain, act=activation, gain=def_gain(act) * gain,
                     clamp=conv_clamp * gain)

    with ``weight_gain = lr_multiplier / sqrt(in_channels * kernel_size ** 2)``, ``bias_gain =
    lr_multiplier``.  ``down=2`` with kernel 3 is rosinality's ``ConvLayer(downsample=True)``
    (``Blur(pad=(2, 2))`` then a stride-2 convolution); kernel 1 with ``down=2`` is its skip
    layer (``Blur(pad=(1, 1))`` then a stride-2 1x1 convolution).  ``up=2`` is a transposed
    stride-2 convolution with the (unflipped) weight followed by the FIR filter (NVlabs).

    Args:
        in_channels, out_channels, kernel_size: sizes (square kernel).
        bias: learn a bias (initialised to zero).
        activation: as :class:`EqualLinear` ('linear' default).
        up, down: integer resampling factors.
        resample_filter: 1-D FIR taps (outer product, normalised) for up/down.
        conv_clamp: clamp the output to [-conv_clamp * gain, conv_clamp * gain] (None: no clamp).
        lr_multiplier: learning-rate multiplier.
        impl: backend of :func:`fastgan.ops.conv2d_resample` and :func:`fastgan.ops.bias_act`.

    Shapes: x ``[N, in_channels, H, W]`` -> ``[N, out_channels, OH, OW]`` with ``OH = (H * up +
    2 * (kernel_size // 2) - kernel_size + 1) // down`` (``H * up // down`` for odd kernels), in
    the compute dtype; channels_last stays channels_last.

    Parameters (float32): ``weight`` ``[out, in, k, k]`` ``randn / lr_multiplier``; ``bias``
    ``[out]`` zeros (None when ``bias=False``).  Buffer ``resample_filter`` (non-persistent,
    ``setup_filter(resample_filter)``).  State dict: ``weight``, ``bias``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: Optional[str] = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: Optional[float] = None, lr_multiplier: float = 1.0,
                 impl: Optional[str] = None):
        super().__init__()
        cls = type(self).__name__
        self.in_channels = check_int(in_channels, "in_channels", cls)
        self.out_channels = check_int(out_channels, "out_channels", cls)
        self.kernel_size = check_int(kernel_size, "kernel_size", cls)
        self.up = check_int(up, "up", cls)
        self.down = check_int(down, "down", cls)
        if not lr_multiplier > 0:
            raise ValueError(f"{cls}: lr_multiplier must be > 0, got {lr_multiplier!r}")
        self.activation = resolve_activation(activation, cls)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.lr_multiplier = float(lr_multiplier)
        self.impl = impl
        in_channels, out_channels = self.in_channels, self.out_channels
        kernel_size = self.kernel_size
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_channels * kernel_size * kernel_size)
        self.bias_gain = float(lr_multiplier)
        self.act_gain = ACTIVATIONS[self.activation].def_gain
        self.register_buffer("resample_filter", filter_buffer(resample_filter), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__}: x must be [N, in_channels="
                             f"{self.in_channels}, H, W], got {shape}")
        check_float(x, "x", type(self).__name__)
        dt = compute_dtype(x)
        with no_autocast(x):
            x = x.to(dt)
            w = scaled_param(self.weight, self.weight_gain, dt)
            f = self.resample_filter if (self.up > 1 or self.down > 1) else None
            y = conv2d_resample(x, w, f, up=self.up, down=self.down, padding=self.padding,
                                flip_weight=(self.up == 1), impl=self.impl)
            b = None if self.bias is None else scaled_param(self.bias, self.bias_gain, dt)
            clamp = None if self.conv_clamp is None else self.conv_clamp * gain
            if b is None and self.activation == "linear" and gain == 1 and clamp is None:
                return y
            return bias_act(y, b, dim=1, act=self.activation, gain=self.act_gain * gain,
                            clamp=clamp, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"bias={self.bias is not None}, activation={self.activation!r}, up={self.up}, "
                f"down={self.down}, conv_clamp={self.conv_clamp}, "
                f"lr_multiplier={self.lr_multiplier:g}")
