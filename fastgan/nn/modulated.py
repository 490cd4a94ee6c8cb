"""StyleGAN2 synthesis layers: ``ModulatedConv2d`` (the styled convolution with noise, bias and
activation), ``ToRGB``, rosinality's ``NoiseInjection`` and ``ConstantInput``.

``ModulatedConv2d`` and ``ToRGB`` are one :func:`fastgan.ops.modulated_conv2d` call each (the
modulation, demodulation, noise, bias, activation and clamp are fused into it), with the style
affine an :class:`~fastgan.nn.EqualLinear` (bias initialised to 1).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..ops.bias_act import ACTIVATIONS
from ..ops.modulated_conv2d import modulated_conv2d
from ..ops.upfirdn2d import upsample2d
from ._util import (check_float, check_int, compute_dtype, filter_buffer, no_autocast,
                    resolve_activation)
from .equalized import EqualLinear

__all__ = ["ModulatedConv2d", "ToRGB", "NoiseInjection", "ConstantInput"]

NOISE_MODES = ("random", "const", "none")


def _shape(t) -> object:
    return tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__


def _check_x_w(cls: str, x, w, in_channels: int, w_dim: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{cls}: x must be [N, in_channels={in_channels}, H, W], got {_shape(x)}")
    if not isinstance(w, Tensor) or w.dim() != 2 or w.shape[1] != w_dim or w.shape[0] != x.shape[0]:
        raise ValueError(f"{cls}: w must be [N={x.shape[0]}, w_dim={w_dim}], got {_shape(w)}")
    check_float(x, "x", cls)
    check_float(w, "w", cls)


def _broadcasts_to(shape, target) -> bool:
    if len(shape) > len(target):
        return False
    shape = (1,) * (len(target) - len(shape)) + tuple(shape)
    return all(a == 1 or a == b for a, b in zip(shape, target))


class ModulatedConv2d(nn.Module):
    """The StyleGAN2 synthesis layer (rosinality's ``StyledConv``, NVlabs' ``SynthesisLayer``):
    a style-modulated, demodulated convolution (optionally upsampling by 2) plus per-pixel noise,
    bias, activation and clamp, in one :func:`fastgan.ops.modulated_conv2d` call.

        styles = affine(w) / sqrt(in_channels * k * k)        (demodulation cancels the scale)
        y = modulated_conv2d(x, weight, styles, noise=noise * noise_strength, up=up,
                             padding=k // 2, resample_filter=resample_filter,
                             demodulate=demodulate, flip_weight=(up == 1), bias=bias,
                             act=activation, gain=def_gain(act) * gain, clamp=conv_clamp * gain)

    ``up=2`` is a transposed stride-2 convolution with the unflipped weight followed by the FIR
    filter (scaled by 4): exactly rosinality's upsampling ``ModulatedConv2d`` + ``Blur``.

    Noise (``forward(..., noise_mode, noise)``), added after demodulation and before the bias;
    none at all when ``use_noise=False``:

    * ``noise`` given: ``noise * noise_strength`` (noise broadcastable to ``[N, 1, OH, OW]``,
      per-channel noise ``[N, out, OH, OW]`` is accepted too);
    * ``noise_mode='random'``: ``randn(N, 1, OH, OW) * noise_strength`` (x's device, compute dtype);
    * ``'const'``: ``noise_const * noise_strength`` (needs ``resolution``);
    * ``'none'``: no noise.

    Args:
        in_channels, out_channels, kernel_size: sizes (square kernel; odd sizes keep H * up).
        w_dim: latent size.
        up: 1 or an integer upsampling factor.
        demodulate: demodulate the weights (False: modulation only).
        activation: any :data:`fastgan.ops.ACTIVATIONS` name ('lrelu' default; None and
            'fused_lrelu' are aliases).
        bias: learn a bias.
        use_noise: learn a noise strength and add noise.
        resolution: output resolution OH = OW; with ``use_noise`` it creates ``noise_const``.
        conv_clamp: clamp of the output (scaled by ``gain``); None for none.
        resample_filter: 1-D FIR taps for ``up > 1``.
        fused_modconv: the op's execution strategy (same function either way).
        impl: backend of every op (None, 'ref', 'triton', 'cuda').

    Shapes: x ``[N, in_channels, H, W]``, w ``[N, w_dim]`` -> ``[N, out_channels, OH, OW]``,
    ``OH = H * up + 2 * (k // 2) - k + 1`` (``H * up`` for odd k), in the compute dtype;
    channels_last stays channels_last.

    Parameters (float32) and buffers, i.e. the state dict:
    ``affine.weight`` ``[in, w_dim]`` randn, ``affine.bias`` ``[in]`` ones (an
    :class:`EqualLinear`); ``weight`` ``[out, in, k, k]`` randn; ``bias`` ``[out]`` zeros (when
    ``bias``); ``noise_strength`` ``[]`` zero (when ``use_noise``); ``noise_const``
    ``[resolution, resolution]`` randn (persistent buffer, when ``use_noise`` and ``resolution``).
    ``resample_filter`` is a non-persistent buffer (None unless ``up > 1``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 up: int = 1, demodulate: bool = True, activation: Optional[str] = "lrelu",
                 bias: bool = True, use_noise: bool = True, resolution: Optional[int] = None,
                 conv_clamp: Optional[float] = None,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), fused_modconv: bool = True,
                 impl: Optional[str] = None):
        super().__init__()
        cls = type(self).__name__
        self.in_channels = check_int(in_channels, "in_channels", cls)
        self.out_channels = check_int(out_channels, "out_channels", cls)
        self.kernel_size = check_int(kernel_size, "kernel_size", cls)
        self.w_dim = check_int(w_dim, "w_dim", cls)
        self.up = check_int(up, "up", cls)
        if resolution is not None:
            resolution = check_int(resolution, "resolution", cls)
        self.resolution = resolution
        self.demodulate = bool(demodulate)
        self.activation = resolve_activation(activation, cls)
        self.act_gain = ACTIVATIONS[self.activation].def_gain
        self.use_noise = bool(use_noise)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.fused_modconv = bool(fused_modconv)
        self.impl = impl
        in_channels, out_channels = self.in_channels, self.out_channels
        kernel_size, w_dim = self.kernel_size, self.w_dim
        self.padding = kernel_size // 2
        self.style_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)

        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0, impl=impl)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.noise_strength = nn.Parameter(torch.zeros([])) if self.use_noise else None
        self.register_buffer("noise_const", torch.randn(resolution, resolution)
                             if self.use_noise and resolution is not None else None)
        self.register_buffer("resample_filter",
                             filter_buffer(resample_filter) if self.up > 1 else None,
                             persistent=False)

    def _out_size(self, h: int, w: int) -> tuple[int, int]:
        k, p = self.kernel_size, self.padding
        return h * self.up + 2 * p - k + 1, w * self.up + 2 * p - k + 1

    def _noise(self, x: Tensor, noise_mode: str, noise: Optional[Tensor], dt: torch.dtype
               ) -> Optional[Tensor]:
        if not self.use_noise:
            return None
        n = x.shape[0]
        oh, ow = self._out_size(x.shape[2], x.shape[3])
        if noise is not None:
            if not isinstance(noise, Tensor) or not noise.is_floating_point() or \
                    not _broadcasts_to(noise.shape, (n, self.out_channels, oh, ow)):
                raise ValueError(f"{type(self).__name__}: noise must be a float tensor "
                                 f"broadcastable to [N, 1, OH, OW] = [{n}, 1, {oh}, {ow}], got "
                                 f"{_shape(noise)}")
            return noise * self.noise_strength.to(noise.dtype)
        if noise_mode == "random":
            return torch.randn(n, 1, oh, ow, device=x.device, dtype=dt) * \
                self.noise_strength.to(dt)
        if noise_mode == "const":
            if self.noise_const is None:
                raise ValueError(f"{type(self).__name__}: noise_mode='const' needs noise_const; "
                                 "construct the layer with use_noise=True and resolution=OH")
            if tuple(self.noise_const.shape) != (oh, ow):
                raise ValueError(f"{type(self).__name__}: noise_const is "
                                 f"{tuple(self.noise_const.shape)} but the output is {oh} x {ow}; "
                                 "x must be [N, in_channels, resolution / up, resolution / up]")
            return self.noise_const * self.noise_strength.to(self.noise_const.dtype)
        return None

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", gain: float = 1.0,
                noise: Optional[Tensor] = None) -> Tensor:
        cls = type(self).__name__
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"{cls}: noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        _check_x_w(cls, x, w, self.in_channels, self.w_dim)
        dt = compute_dtype(x)
        with no_autocast(x):
            x = x.to(dt)
            styles = self.affine(w) * self.style_gain
            nz = self._noise(x, noise_mode, noise, dt)
            clamp = None if self.conv_clamp is None else self.conv_clamp * gain
            return modulated_conv2d(x, self.weight, styles, noise=nz, up=self.up,
                                    padding=self.padding, resample_filter=self.resample_filter,
                                    demodulate=self.demodulate, flip_weight=(self.up == 1),
                                    fused_modconv=self.fused_modconv, bias=self.bias,
                                    act=self.activation, gain=self.act_gain * gain, clamp=clamp,
                                    impl=self.impl)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"w_dim={self.w_dim}, up={self.up}, demodulate={self.demodulate}, "
                f"activation={self.activation!r}, use_noise={self.use_noise}, "
                f"resolution={self.resolution}, conv_clamp={self.conv_clamp}")


class ToRGB(nn.Module):
    """StyleGAN2's ToRGB: a modulated (not demodulated) convolution to image channels plus bias,
    then the skip connection from the previous resolution, FIR-upsampled when it is half size.

        y = modulated_conv2d(x, weight, affine(w) / sqrt(in_channels * k * k), demodulate=False,
                             padding=k // 2, bias=bias, act='linear', clamp=conv_clamp)
        y = y + upsample2d(skip, resample_filter, up=2)     (skip at half y's size)
        y = y + skip                                        (skip at y's size)

    Args: in_channels, img_channels, w_dim, kernel_size (1), conv_clamp, resample_filter (for the
    skip upsampling), fused_modconv, impl (backend of every op).

    Shapes: x ``[N, in_channels, H, W]``, w ``[N, w_dim]``, skip None or
    ``[N, img_channels, H, W]`` / ``[N, img_channels, H / 2, W / 2]`` ->
    ``[N, img_channels, H, W]`` (odd k) in the compute dtype.

    State dict: ``affine.weight`` ``[in, w_dim]`` randn, ``affine.bias`` ``[in]`` ones;
    ``weight`` ``[img_channels, in, k, k]`` randn; ``bias`` ``[img_channels]`` zeros.
    ``resample_filter`` is a non-persistent buffer.
    """

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: Optional[float] = None,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), fused_modconv: bool = True,
                 impl: Optional[str] = None):
        super().__init__()
        cls = type(self).__name__
        self.in_channels = check_int(in_channels, "in_channels", cls)
        self.img_channels = check_int(img_channels, "img_channels", cls)
        self.w_dim = check_int(w_dim, "w_dim", cls)
        self.kernel_size = check_int(kernel_size, "kernel_size", cls)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.fused_modconv = bool(fused_modconv)
        self.impl = impl
        in_channels, img_channels = self.in_channels, self.img_channels
        kernel_size, w_dim = self.kernel_size, self.w_dim
        self.padding = kernel_size // 2
        self.style_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0, impl=impl)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.register_buffer("resample_filter", filter_buffer(resample_filter), persistent=False)

    def forward(self, x: Tensor, w: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        cls = type(self).__name__
        _check_x_w(cls, x, w, self.in_channels, self.w_dim)
        dt = compute_dtype(x)
        with no_autocast(x):
            x = x.to(dt)
            styles = self.affine(w) * self.style_gain
            y = modulated_conv2d(x, self.weight, styles, padding=self.padding, demodulate=False,
                                 fused_modconv=self.fused_modconv, bias=self.bias, act="linear",
                                 clamp=self.conv_clamp, impl=self.impl)
            if skip is None:
                return y
            n, c, oh, ow = y.shape
            if not isinstance(skip, Tensor) or skip.dim() != 4 or skip.shape[0] != n or \
                    skip.shape[1] != c:
                raise ValueError(f"{cls}: skip must be [N, img_channels, OH, OW] = [{n}, {c}, "
                                 f"{oh}, {ow}] or [{n}, {c}, {oh // 2}, {ow // 2}], got "
                                 f"{_shape(skip)}")
            check_float(skip, "skip", cls)
            sh, sw = skip.shape[2], skip.shape[3]
            if (sh, sw) == (oh // 2, ow // 2) and sh * 2 == oh and sw * 2 == ow:
                skip = upsample2d(skip, self.resample_filter, up=2, impl=self.impl)
            elif (sh, sw) != (oh, ow):
                raise ValueError(f"{cls}: skip must be [N, img_channels, OH, OW] = [{n}, {c}, "
                                 f"{oh}, {ow}] or half that size [{n}, {c}, {oh // 2}, "
                                 f"{ow // 2}], got {_shape(skip)}")
            return y + skip.to(y.dtype)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.img_channels}, w_dim={self.w_dim}, "
                f"kernel_size={self.kernel_size}, conv_clamp={self.conv_clamp}")


class NoiseInjection(nn.Module):
    """rosinality's ``NoiseInjection``: ``image + weight * noise``, noise ``randn [N, 1, H, W]``
    (image's device, compute dtype) when not given.

    Shapes: image ``[N, C, H, W]``, noise broadcastable to it (typically ``[N, 1, H, W]``) ->
    ``[N, C, H, W]`` in the compute dtype.  Parameter ``weight`` ``[1]`` initialised to zero
    (state dict ``weight``, rosinality's).  Plain torch ops (no fastgan op).
    """

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: Tensor, noise: Optional[Tensor] = None) -> Tensor:
        if not isinstance(image, Tensor) or image.dim() != 4:
            raise ValueError(f"NoiseInjection: image must be [N, C, H, W], got {_shape(image)}")
        check_float(image, "image", "NoiseInjection")
        n, _, h, w = image.shape
        dt = compute_dtype(image)
        with no_autocast(image):
            image = image.to(dt)
            if noise is None:
                noise = torch.randn(n, 1, h, w, device=image.device, dtype=dt)
            elif not isinstance(noise, Tensor) or not _broadcasts_to(noise.shape, image.shape):
                raise ValueError(f"NoiseInjection: noise must broadcast to [N, 1, H, W] = "
                                 f"[{n}, 1, {h}, {w}], got {_shape(noise)}")
            else:
                check_float(noise, "noise", "NoiseInjection")
            return image + self.weight.to(dt) * noise.to(dt)


class ConstantInput(nn.Module):
    """rosinality's ``ConstantInput``: the learned constant ``input`` ``[1, channels, size, size]``
    (initialised randn) expanded to the batch size.

    ``forward(batch)``: batch an int or a tensor (its ``shape[0]``) -> ``[N, channels, size,
    size]`` (an expanded view of the float32 parameter).  State dict: ``input``.
    """

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        channels = check_int(channels, "channels", "ConstantInput")
        size = check_int(size, "size", "ConstantInput")
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: Union[int, Tensor]) -> Tensor:
        if isinstance(batch, Tensor):
            if batch.dim() < 1:
                raise ValueError("ConstantInput: batch must be an int or a tensor with a batch "
                                 f"dim, got a tensor of shape {tuple(batch.shape)}")
            n = batch.shape[0]
        elif isinstance(batch, int) and not isinstance(batch, bool) and batch >= 0:
            n = batch
        else:
            raise ValueError(f"ConstantInput: batch must be an int >= 0 or a tensor, got {batch!r}")
        return self.input.expand(n, -1, -1, -1)

    def extra_repr(self) -> str:
        return f"channels={self.input.shape[1]}, size={self.input.shape[2]}"
