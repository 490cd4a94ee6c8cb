"""2-D convolution combined with FIR up/downsampling: ``conv2d_resample`` (NVlabs semantics).

The result is defined by the slow, general order

    1. upfirdn2d(x, f, up=up, padding=p', gain=up**2)     zero-insert by ``up``, pad, FIR with f
                                                          (f is skipped when up == 1)
    2. conv2d(., w, groups=groups)                        valid correlation (true convolution when
                                                          flip_weight=False)
    3. upfirdn2d(., f, down=down)                         FIR with f and decimate (skipped when
                                                          down == 1)

where ``p'`` is the user's ``padding`` (relative to the upsampled image, applied once at the
beginning) plus the padding that centres the resampling filter:

    up > 1:   x0 += (fw + up - 1) // 2    x1 += (fw - up) // 2     (same for y with fh)
    down > 1: x0 += (fw - down + 1) // 2  x1 += (fw - down) // 2

Every op above is linear and shift invariant, so they may be reordered; ``conv2d_resample`` picks
the cheapest order, as NVlabs does:

* 1x1 kernel, downsampling only: FIR + decimate first, then the (cheap) convolution.
* 1x1 kernel, upsampling only: the convolution first, then upsample.
* downsampling only: FIR, then a convolution with ``stride=down`` (decimation is free).
* upsampling (maybe also downsampling): a transposed convolution with ``stride=up`` does the zero
  insertion and the convolution in one step, then the FIR (and the FIR + decimation for ``down``).
* no resampling: a plain ``conv2d`` when the padding is symmetric and non-negative.
* otherwise the general order above.

The FIR steps run on :func:`fastgan.ops.upfirdn2d.upfirdn2d` (``impl`` is passed to it); the
convolutions are PyTorch's ``conv2d`` / ``conv_transpose2d``, so every path is differentiable twice
w.r.t. x and w.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

from torch import Tensor

from .upfirdn2d import upfirdn2d

__all__ = ["conv2d_resample"]

Padding = Union[int, Sequence[int]]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_padding(padding: Padding) -> Tuple[int, int, int, int]:
    """int p -> (p, p, p, p); [px, py] -> (px, px, py, py); [x0, x1, y0, y1] as is."""
    if _is_int(padding):
        return padding, padding, padding, padding
    if isinstance(padding, (list, tuple)) and all(_is_int(p) for p in padding):
        if len(padding) == 2:
            px, py = padding
            return px, px, py, py
        if len(padding) == 4:
            return tuple(padding)
    raise ValueError("conv2d_resample: padding must be an int, [x, y] or [x0, x1, y0, y1] of ints, "
                     f"got {padding!r}")


def _filter_size(f: Optional[Tensor]) -> Tuple[int, int]:
    """(fw, fh) of a 2-D filter [fh, fw], a separable 1-D filter [k] (k x k), a 0-D filter or None
    (1 x 1)."""
    if f is None:
        return 1, 1
    if not isinstance(f, Tensor):
        raise TypeError(f"conv2d_resample: f must be a torch.Tensor or None, got {type(f).__name__}")
    if f.dim() > 2 or f.numel() == 0:
        raise ValueError("conv2d_resample: f must be a non-empty 1-D (separable) or 2-D filter, "
                         f"got shape {tuple(f.shape)}")
    if f.dim() == 0:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def _conv(x: Tensor, w: Tensor, stride: int = 1, padding=0, groups: int = 1,
          transpose: bool = False, flip_weight: bool = True) -> Tensor:
    """fastgan's conv2d / conv_transpose2d (torch semantics; gradients of any order, and
    no_weight_gradients() reaches discriminators built from conv2d_resample);
    flip_weight=False flips w (conv2d correlates)."""
    from .conv2d import conv2d, conv_transpose2d

    kh, kw = w.shape[2], w.shape[3]
    if not flip_weight and (kh > 1 or kw > 1):
        w = w.flip([2, 3])
    if transpose:
        return conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _check_inputs(x, w, up, down, groups):
    if not isinstance(x, Tensor):
        raise TypeError(f"conv2d_resample: x must be a torch.Tensor, got {type(x).__name__}")
    if not isinstance(w, Tensor):
        raise TypeError(f"conv2d_resample: w must be a torch.Tensor, got {type(w).__name__}")
    if x.dim() != 4:
        raise ValueError("conv2d_resample: x must be 4-D [N, C_in, H, W], "
                         f"got shape {tuple(x.shape)}")
    if w.dim() != 4:
        raise ValueError("conv2d_resample: w must be 4-D [C_out, C_in / groups, kh, kw], "
                         f"got shape {tuple(w.shape)}")
    for name, v in (("up", up), ("down", down), ("groups", groups)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"conv2d_resample: {name} must be an int >= 1, got {v!r}")
    c_out, c_in_g = w.shape[0], w.shape[1]
    if c_out % groups != 0:
        raise ValueError(f"conv2d_resample: w.shape[0] = {c_out} (C_out) must be divisible by "
                         f"groups = {groups}")
    if x.shape[1] != c_in_g * groups:
        raise ValueError(f"conv2d_resample: x has {x.shape[1]} channels but w expects "
                         f"w.shape[1] * groups = {c_in_g} * {groups} = {c_in_g * groups}")


def conv2d_resample(x: Tensor, w: Tensor, f: Optional[Tensor] = None, up: int = 1, down: int = 1,
                    padding: Padding = 0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False, impl: Optional[str] = None) -> Tensor:
    """2-D convolution with optional FIR upsampling before it and downsampling after it.

    Args:
        x: input ``[N, C_in, H, W]``.
        w: weight ``[C_out, C_in / groups, kh, kw]`` (x's dtype).
        f: resampling filter as prepared by :func:`fastgan.ops.upfirdn2d.setup_filter`: 2-D
            ``[fh, fw]``, 1-D ``[k]`` (separable) or None (box of size 1, i.e. no filtering).
        up: integer upsampling factor (>= 1).
        down: integer downsampling factor (>= 1).
        padding: int, ``[x, y]`` or ``[x0, x1, y0, y1]``, relative to the *upsampled* image and
            applied once at the beginning; negative values crop.
        groups: convolution groups; ``C_in`` and ``C_out`` must be divisible by it.
        flip_weight: True (default) correlates with w like ``torch.nn.functional.conv2d``; False
            is a true convolution (w flipped).
        flip_filter: False (default) is a true convolution with f; True correlates.
        impl: backend of the FIR steps (see :func:`fastgan.ops.upfirdn2d.upfirdn2d`).

    Returns:
        ``[N, C_out, OH, OW]``, per axis (H shown; p0, p1 the user's padding; the filter's
        centring padding and its taps cancel out) ``OH = (H * up + p0 + p1 - kh + 1) // down``.
        The layout follows PyTorch's convolutions (channels_last in, channels_last out).
    """
    _check_inputs(x, w, up, down, groups)
    c_out, c_in_g, kh, kw = (int(s) for s in w.shape)
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)

    # Padding that centres the resampling filter.
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    # 1x1 kernel, downsampling only: downsample first, then convolve.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter,
                      impl=impl)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    # 1x1 kernel, upsampling only: convolve first, then upsample.
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2,
                         flip_filter=flip_filter, impl=impl)

    # Downsampling only: FIR, then a strided convolution.
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling (maybe also downsampling): transposed strided convolution, then FIR(s).
    if up > 1:
        # conv_transpose2d wants [C_in, C_out / groups, kh, kw].
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, c_out // groups, c_in_g, kh, kw).transpose(1, 2)
            w = w.reshape(groups * c_in_g, c_out // groups, kh, kw)
        # conv_transpose2d(stride=up) = zero insertion *between* pixels, full padding (k - 1) and
        # a true convolution; what is left of the requested padding goes to the FIR step.
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)  # crop both sides inside the transposed convolution
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2,
                      flip_filter=flip_filter, impl=impl)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
        return x

    # No resampling, padding conv2d supports: plain conv2d.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # General order; every resampling case returned above, so only the padding / cropping is left.
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


# NVlabs code calls `conv2d_resample.conv2d_resample(...)` on the imported module; with
# `from fastgan.ops import conv2d_resample` that spelling keeps working unchanged.
conv2d_resample.conv2d_resample = conv2d_resample
