"""Upsample, FIR-filter, downsample: ``upfirdn2d`` and its helpers ``setup_filter``,
``upsample2d``, ``downsample2d`` and ``filter2d`` (NVlabs signatures and semantics).

    1. insert up-1 zeros after every pixel (per axis),
    2. pad by (x0, x1, y0, y1), relative to the upsampled image; negative values crop,
    3. convolve with f (a true convolution; flip_filter=True means correlation), times gain,
    4. keep every down-th pixel, starting at 0.

    OH = (H * upy + pady0 + pady1 - fh) // downy + 1        (OW likewise)

A 1-D filter is applied separably on both axes with the gain applied once overall.

Autograd story: one registered op, ``fastgan::upfirdn2d``.  Its backward is the same op again, with
up and down swapped, the filter flipped and padding chosen so the result has exactly x's size::

    dx = upfirdn2d(dy, f, up=down, down=up, flip_filter=not flip_filter, gain=gain,
                   padding=[fw - padx0 - 1, W * upx - OW * downx + padx0 - upx + 1,
                            fh - pady0 - 1, H * upy - OH * downy + pady0 - upy + 1])

so gradients of every order work on every backend.  The filter is never differentiated.

Backends:

* ``'ref'``     vectorised PyTorch (zero insertion by reshape + pad, F.pad / slicing for the
  padding, depthwise ``F.conv2d`` with ``stride=down``; a 1-D filter runs as two 1-D convolutions).
  float64 computes in float64; float16 / bfloat16 / float32 compute in float32 and the result is
  rounded to x's dtype once.
* ``'triton'``  ``fastgan.kernels.upfirdn2d.upfirdn2d_triton(out, x, f, upx, upy, downx, downy,
  padx0, pady0)`` and
* ``'cuda'``    ``torch.ops.fastgan_cuda.upfirdn2d(...)`` (same arguments).  Both fill a
  preallocated ``out`` [N, C, OH, OW] (x's dtype; contiguous or channels_last, the memory format of
  x) from x of any strides, with f [fh, fw] contiguous float32 (float64 for float64 x) on x's
  device, already in correlation order with the gain multiplied in (this module does the flip, the
  gain and the outer product of a 1-D filter)::

      out[n, c, oy, ox] = sum_{i < fh, j < fw} f[i, j] * xp(oy * downy + i, ox * downx + j)
      xp(u, v) = x[n, c, (u - pady0) / upy, (v - padx0) / upx]    where both divide exactly and
                 land inside the image; 0 elsewhere.
"""
from __future__ import annotations

import contextlib
import operator
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ._custom_op import custom_op
from ._backend import cuda_ext_has_ops, fallback_if_ext_lacks_op, resolve_impl
from .conv2d import single_channel_strides

__all__ = ["upfirdn2d", "setup_filter", "upsample2d", "downsample2d", "filter2d"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

IntOrPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int]]


# --------------------------------------------------------------------------------------------
# argument parsing (NVlabs forms)
# --------------------------------------------------------------------------------------------

def _as_int(v, name: str, fn: str) -> int:
    if isinstance(v, bool):
        raise ValueError(f"{fn}: {name} must be made of ints, got {v!r}")
    try:
        return operator.index(v)
    except TypeError:
        raise ValueError(f"{fn}: {name} must be made of ints, got {v!r}") from None


def _parse_scaling(scaling: IntOrPair, name: str = "up", fn: str = "upfirdn2d") -> tuple[int, int]:
    """An int or [x, y] -> (sx, sy), each >= 1."""
    if isinstance(scaling, (list, tuple)):
        if len(scaling) != 2:
            raise ValueError(f"{fn}: {name} must be an int or a list of 2 ints [x, y], "
                             f"got {len(scaling)} values {list(scaling)}")
        sx, sy = (_as_int(v, name, fn) for v in scaling)
    elif isinstance(scaling, Tensor):
        raise ValueError(f"{fn}: {name} must be an int or a list of 2 ints [x, y], got a Tensor")
    else:
        sx = sy = _as_int(scaling, name, fn)
    if sx < 1 or sy < 1:
        raise ValueError(f"{fn}: {name} must be >= 1, got {[sx, sy] if sx != sy else sx}")
    return sx, sy


def _parse_padding(padding: Padding, fn: str = "upfirdn2d") -> tuple[int, int, int, int]:
    """An int, [x, y] or [x0, x1, y0, y1] -> (x0, x1, y0, y1)."""
    if isinstance(padding, (list, tuple)):
        p = [_as_int(v, "padding", fn) for v in padding]
        if len(p) == 2:
            return p[0], p[0], p[1], p[1]
        if len(p) == 4:
            return p[0], p[1], p[2], p[3]
        raise ValueError(f"{fn}: padding must be an int, [x, y] or [x0, x1, y0, y1], "
                         f"got {len(p)} values {p}")
    if isinstance(padding, Tensor):
        raise ValueError(f"{fn}: padding must be an int, [x, y] or [x0, x1, y0, y1], got a Tensor")
    p = _as_int(padding, "padding", fn)
    return p, p, p, p


def _check_filter(f: Optional[Tensor], fn: str = "upfirdn2d") -> None:
    if f is None:
        return
    if not isinstance(f, Tensor):
        raise TypeError(f"{fn}: f must be a torch.Tensor or None, got {type(f).__name__}")
    if f.dim() > 2:
        raise ValueError(f"{fn}: f must be 0-, 1- or 2-D ([k] separable or [fh, fw]), "
                         f"got shape {tuple(f.shape)}")
    if f.numel() == 0:
        raise ValueError(f"{fn}: f must have at least one tap, got shape {tuple(f.shape)}")
    if f.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{fn}: f must be a floating-point tensor, got {f.dtype}")


def _get_filter_size(f: Optional[Tensor]) -> tuple[int, int]:
    """(fw, fh) of a filter: a 1-D filter of k taps is k x k, None is 1 x 1 (NVlabs order)."""
    if f is None or f.dim() == 0:
        return 1, 1
    _check_filter(f, "filter size")
    if f.dim() == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def _out_size(h, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1, fh, fw):
    oh = (h * upy + pady0 + pady1 - fh) // downy + 1
    ow = (w * upx + padx0 + padx1 - fw) // downx + 1
    return oh, ow


def _memory_format(x: Tensor) -> torch.memory_format:
    """The output keeps x's memory format: channels_last for a channels_last-contiguous x (that is
    not also plain contiguous), contiguous for everything else."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _filter_size_op(f: Tensor) -> tuple[int, int]:
    """(fh, fw) of the op's filter argument (1-D: k x k; 2-D: its shape)."""
    if f.dim() == 1:
        return f.shape[0], f.shape[0]
    return f.shape[0], f.shape[1]


# --------------------------------------------------------------------------------------------
# reference (pure PyTorch)
# --------------------------------------------------------------------------------------------

def _compute_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _ref(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    """Returns a fresh tensor [N, C, OH, OW] in the compute dtype (any layout)."""
    n, c, h, w = x.shape
    cdt = _compute_dtype(x.dtype)
    z = x.to(cdt)
    # 1. zero insertion: every pixel becomes an upy x upx block with the pixel in its corner
    if upx > 1 or upy > 1:
        z = z.reshape(n, c, h, 1, w, 1)
        z = F.pad(z, [0, upx - 1, 0, 0, 0, upy - 1])
        z = z.reshape(n, c, h * upy, w * upx)
    # 2. pad (positive sides), then crop (negative sides)
    if max(padx0, padx1, pady0, pady1) > 0:
        z = F.pad(z, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    if min(padx0, padx1, pady0, pady1) < 0:
        z = z[:, :, max(-pady0, 0):z.shape[2] - max(-pady1, 0),
              max(-padx0, 0):z.shape[3] - max(-padx1, 0)]
    # 3 + 4. depthwise correlation with the flipped filter, stride = down
    k = f.to(cdt)
    if not flip_filter:
        k = k.flip(list(range(k.dim())))
    if k.dim() == 1:
        t = k.shape[0]
        kx = (k * gain).reshape(1, 1, 1, t).repeat(c, 1, 1, 1)
        ky = k.reshape(1, 1, t, 1).repeat(c, 1, 1, 1)
        z = F.conv2d(single_channel_strides(z), kx, stride=(1, downx), groups=c)
        z = F.conv2d(single_channel_strides(z), ky, stride=(downy, 1), groups=c)
    else:
        fh, fw = k.shape
        k = (k * gain).reshape(1, 1, fh, fw).repeat(c, 1, 1, 1)
        z = F.conv2d(single_channel_strides(z), k, stride=(downy, downx), groups=c)
    return z


# --------------------------------------------------------------------------------------------
# backend launch
# --------------------------------------------------------------------------------------------

def _kernel_filter(f: Tensor, dtype: torch.dtype, flip_filter: bool, gain: float) -> Tensor:
    """The kernels' filter: [fh, fw] contiguous, correlation order, gain multiplied in."""
    k = f.to(torch.float64 if dtype == torch.float64 else torch.float32)
    if k.dim() == 1:
        k = torch.outer(k, k)
    if not flip_filter:
        k = k.flip([0, 1])
    return (k * gain).contiguous()


def _launch(impl, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    n, c, h, w = x.shape
    fh, fw = _filter_size_op(f)
    oh, ow = _out_size(h, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1, fh, fw)
    out = torch.empty((n, c, oh, ow), dtype=x.dtype, device=x.device,
                      memory_format=_memory_format(x))
    if out.numel() == 0:
        return out
    if impl == "ref":
        v = _ref(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain)
        if v.dtype == out.dtype and v.stride() == out.stride():
            return v  # a fresh tensor (conv2d output): never an alias of x
        return out.copy_(v)
    k = _kernel_filter(f, x.dtype, flip_filter, gain)
    if impl == "cuda":
        torch.ops.fastgan_cuda.upfirdn2d(out, x, k, upx, upy, downx, downy, padx0, pady0)
        return out
    from fastgan.kernels.upfirdn2d import upfirdn2d_triton

    with torch.cuda.device(out.device) if out.is_cuda else contextlib.nullcontext():
        upfirdn2d_triton(out, x, k, upx, upy, downx, downy, padx0, pady0)
    return out


def _cuda_ext_has_op() -> bool:
    """Whether the loaded fastgan._C registers fastgan_cuda::upfirdn2d (an older build may not)."""
    return cuda_ext_has_ops("upfirdn2d")


# impl=None on CUDA: the Triton kernel first.  Provisional: it is the backend that has passed the
# GPU tier on an H100 so far; the CUDA kernels are verified by CPU emulation
# (tests/test_csrc_emulation.py) and compile checks but have not yet been run or benchmarked on a GPU.
_AUTO_ORDER = ("triton", "cuda", "ref")


def _resolve(impl: Optional[str], device: torch.device) -> str:
    """:func:`resolve_impl`; a stale CUDA extension without upfirdn2d counts as unavailable (skipped
    when chosen automatically, an error when asked for)."""
    return fallback_if_ext_lacks_op(resolve_impl(impl, device, prefer=_AUTO_ORDER), impl, device,
                                    _cuda_ext_has_op(), "upfirdn2d (it predates this op)")


# --------------------------------------------------------------------------------------------
# registered op
# --------------------------------------------------------------------------------------------

@custom_op("fastgan::upfirdn2d")
def _upfirdn2d_op(x: Tensor, f: Tensor, upx: int, upy: int, downx: int, downy: int, padx0: int,
                  padx1: int, pady0: int, pady1: int, flip_filter: bool, gain: float,
                  impl: str) -> Tensor:
    return _launch(impl, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter,
                   gain)


@_upfirdn2d_op.register_fake
def _(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain, impl):
    n, c, h, w = x.shape
    fh, fw = _filter_size_op(f)
    oh, ow = _out_size(h, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1, fh, fw)
    return torch.empty((n, c, oh, ow), dtype=x.dtype, device=x.device,
                       memory_format=_memory_format(x))


def _setup_context(ctx, inputs, output):
    x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain, impl = inputs
    ctx.save_for_backward(f)
    ctx.args = (upx, upy, downx, downy, padx0, pady0, flip_filter, gain, impl)
    ctx.in_hw = x.shape[2:]
    ctx.out_hw = output.shape[2:]


def _backward(ctx, dy):
    (f,) = ctx.saved_tensors
    upx, upy, downx, downy, padx0, pady0, flip_filter, gain, impl = ctx.args
    h, w = ctx.in_hw
    oh, ow = ctx.out_hw
    dx = None
    if ctx.needs_input_grad[0]:
        fh, fw = _filter_size_op(f)
        dx = _upfirdn2d_op(dy, f, downx, downy, upx, upy,
                           fw - padx0 - 1, w * upx - ow * downx + padx0 - upx + 1,
                           fh - pady0 - 1, h * upy - oh * downy + pady0 - upy + 1,
                           not flip_filter, gain, impl)
    return (dx,) + (None,) * 12


_upfirdn2d_op.register_autograd(_backward, setup_context=_setup_context)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def upfirdn2d(x: Tensor, f: Optional[Tensor], up: IntOrPair = 1, down: IntOrPair = 1,
              padding: Padding = 0, flip_filter: bool = False, gain: float = 1,
              impl: Optional[str] = None) -> Tensor:
    """Upsample, pad, FIR-filter and downsample a batch of 2-D images (NVlabs ``upfirdn2d``).

    Args:
        x: float16 / bfloat16 / float32 / float64 tensor [N, C, H, W], any layout; the output is
            channels_last when x is channels_last, contiguous otherwise.
        f: [fh, fw] filter, [k] filter applied separably on both axes (gain applied once), a 0-D
            filter (1 x 1) or None (identity).  Any floating dtype, on x's device, and not
            requiring grad (the filter is never differentiated); see :func:`setup_filter`.
        up: integer upsampling factor, an int or [x, y] (>= 1).
        down: integer downsampling factor, an int or [x, y] (>= 1).
        padding: an int, [x, y] or [x0, x1, y0, y1], relative to the upsampled image; negative
            values crop.
        flip_filter: False = convolution (NVlabs default), True = correlation.
        gain: overall scale of the output.
        impl: None (fastest available), 'ref', 'triton' or 'cuda'.

    Returns [N, C, (H * upy + pady0 + pady1 - fh) // downy + 1, (W * upx + ...) // downx + 1] in
    x's dtype.  Differentiable w.r.t. x to any order on every backend.
    """
    upx, upy, downx, downy, padx0, padx1, pady0, pady1, f = _check_inputs(x, f, up, down, padding)
    impl = _resolve(impl, x.device)
    return _upfirdn2d_op(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1,
                         bool(flip_filter), float(gain), impl)


def _check_inputs(x, f, up, down, padding, fn="upfirdn2d"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{fn}: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if x.dim() != 4:
        raise ValueError(f"{fn}: x must be 4-D [N, C, H, W], got shape {tuple(x.shape)}")
    _check_filter(f, fn)
    if f is None:
        f = torch.ones((1, 1), dtype=_compute_dtype(x.dtype), device=x.device)
    else:
        if f.device != x.device:
            raise ValueError(f"{fn}: f must be on x's device {x.device}, got {f.device}")
        if f.requires_grad and torch.is_grad_enabled():
            raise ValueError(f"{fn}: filter gradients are not supported (f requires grad); pass "
                             "f.detach() or register the filter as a buffer")
        if f.dim() == 0:
            f = f.reshape(1, 1)
    upx, upy = _parse_scaling(up, "up", fn)
    downx, downy = _parse_scaling(down, "down", fn)
    padx0, padx1, pady0, pady1 = _parse_padding(padding, fn)
    h, w = x.shape[2], x.shape[3]
    fh, fw = _filter_size_op(f)
    oh, ow = _out_size(h, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1, fh, fw)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{fn}: the output would be empty ({oh} x {ow} pixels): x is {h} x {w}, up={[upx, upy]}, "
            f"down={[downx, downy]}, padding={[padx0, padx1, pady0, pady1]}, filter {fh} x {fw}; "
            "need H * upy + pady0 + pady1 >= fh and W * upx + padx0 + padx1 >= fw")
    return upx, upy, downx, downy, padx0, padx1, pady0, pady1, f


def setup_filter(f, device: Optional[Union[torch.device, str]] = None, normalize: bool = True,
                 flip_filter: bool = False, gain: float = 1,
                 separable: Optional[bool] = None) -> Tensor:
    """A float32 filter tensor for :func:`upfirdn2d` (NVlabs ``setup_filter``).

    Args:
        f: tensor or array-like of 0, 1 or 2 dims, or None (= [1]).
        device: where to put the result (None: leave it where it is, CPU for array-likes).
        normalize: divide by the sum of the (2-D) filter taps.
        flip_filter: flip the filter (all axes).
        gain: overall gain; a separable filter gets gain ** 0.5 per axis.
        separable: keep a 1-D filter 1-D (applied per axis); None = only for >= 8 taps.  A 1-D
            filter that is not separable becomes its outer product.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.dim() > 2:
        raise ValueError(f"setup_filter: f must be 0-, 1- or 2-D, got shape {tuple(f.shape)}")
    if f.numel() == 0:
        raise ValueError(f"setup_filter: f must have at least one tap, got shape {tuple(f.shape)}")
    if f.dim() == 0:
        f = f.reshape(1)
    if separable is None:
        separable = f.dim() == 1 and f.numel() >= 8
    if f.dim() == 1 and not separable:
        f = torch.outer(f, f)
    if f.dim() != (1 if separable else 2):
        raise ValueError(f"setup_filter: separable=True needs a 1-D filter, got shape {tuple(f.shape)}")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.dim())))
    f = f * (gain ** (f.dim() / 2))
    return f.to(device=device) if device is not None else f


def upsample2d(x: Tensor, f: Optional[Tensor], up: IntOrPair = 2, padding: Padding = 0,
               flip_filter: bool = False, gain: float = 1, impl: Optional[str] = None) -> Tensor:
    """Upsample by ``up`` with the FIR filter f (NVlabs ``upsample2d``): the output is
    [H * upy, W * upx] plus ``padding``; gain is multiplied by upx * upy so the mean is kept by a
    normalised filter."""
    upx, upy = _parse_scaling(up, "up", "upsample2d")
    padx0, padx1, pady0, pady1 = _parse_padding(padding, "upsample2d")
    _check_filter(f, "upsample2d")
    fw, fh = _get_filter_size(f)
    p = [padx0 + (fw + upx - 1) // 2, padx1 + (fw - upx) // 2,
         pady0 + (fh + upy - 1) // 2, pady1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=[upx, upy], padding=p, flip_filter=flip_filter,
                     gain=gain * upx * upy, impl=impl)


def downsample2d(x: Tensor, f: Optional[Tensor], down: IntOrPair = 2, padding: Padding = 0,
                 flip_filter: bool = False, gain: float = 1, impl: Optional[str] = None) -> Tensor:
    """Filter with f, then downsample by ``down`` (NVlabs ``downsample2d``): the output is
    [H / downy, W / downx] plus ``padding`` / down."""
    downx, downy = _parse_scaling(down, "down", "downsample2d")
    padx0, padx1, pady0, pady1 = _parse_padding(padding, "downsample2d")
    _check_filter(f, "downsample2d")
    fw, fh = _get_filter_size(f)
    p = [padx0 + (fw - downx + 1) // 2, padx1 + (fw - downx) // 2,
         pady0 + (fh - downy + 1) // 2, pady1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=[downx, downy], padding=p, flip_filter=flip_filter, gain=gain,
                     impl=impl)


def filter2d(x: Tensor, f: Optional[Tensor], padding: Padding = 0, flip_filter: bool = False,
             gain: float = 1, impl: Optional[str] = None) -> Tensor:
    """Filter with f keeping the image size (plus ``padding``) (NVlabs ``filter2d``)."""
    padx0, padx1, pady0, pady1 = _parse_padding(padding, "filter2d")
    _check_filter(f, "filter2d")
    fw, fh = _get_filter_size(f)
    p = [padx0 + fw // 2, padx1 + (fw - 1) // 2, pady0 + fh // 2, pady1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


# NVlabs code calls these on the imported module (`upfirdn2d.setup_filter(...)`,
# `upfirdn2d.upsample2d(...)`, `upfirdn2d._get_filter_size(f)` in conv2d_resample); with
# `from fastgan.ops import upfirdn2d` those spellings keep working unchanged.
upfirdn2d.upfirdn2d = upfirdn2d
upfirdn2d.setup_filter = setup_filter
upfirdn2d.upsample2d = upsample2d
upfirdn2d.downsample2d = downsample2d
upfirdn2d.filter2d = filter2d
upfirdn2d._get_filter_size = _get_filter_size
upfirdn2d._parse_scaling = _parse_scaling
upfirdn2d._parse_padding = _parse_padding
