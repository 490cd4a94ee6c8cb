"""Modulated convolution: StyleGAN2's style-modulated, demodulated convolution with the noise input
and the bias + activation fused into its epilogue (NVlabs ``modulated_conv2d`` semantics, plus
``bias``/``act``/``alpha``/``gain``/``clamp``).

    w_n[o, i, u, v] = weight[o, i, u, v] * styles[n, i]
    d[n, o]         = rsqrt(sum_{i,u,v} w_n[o, i, u, v]^2 + 1e-8)             (demodulate=True)
    c               = conv2d_resample(x, w_n, resample_filter, up, down, padding)  (per sample)
    y               = bias_act(c * d + noise, bias, act, alpha, gain, clamp)

Since the modulation scales input channels, ``conv(x, w_n) = conv(x * styles[n], weight)``; since
demodulation scales output channels, it is applied after the convolution.  ``d`` depends only on
``styles`` and ``weight.square().sum([2, 3])``, so it is computed by a small op of its own.

Autograd story (three registered ops, every backward written with differentiable ops, so
gradients of any order the pieces support work -- path-length regularisation differentiates the
generator w.r.t. the styles with create_graph=True):

* ``fastgan::modconv_dcoefs(s, wsq)`` -> d.  Backward: with q = s^2 @ wsq^T, dq = -d^3 / 2 * dd;
  ds = 2 s (dq @ wsq), dwsq = dq^T @ s^2 (torch ops on the saved s, wsq and the output d).
* ``fastgan::modconv_epilogue(c, d, noise, b, ...)`` -> y: the epilogue alone, used after
  cuDNN / ``conv2d_resample`` (the 'cuda' backend, up/down layers, ``fused_modconv=False``).
  Backward: du = ``fastgan::bias_act_grad`` (from y, or from u = c d + noise for the activations
  whose derivative needs the input), db from the same op, dc = du d, dd = sum_hw du c, dnoise =
  du summed onto noise's broadcast shape.
* ``fastgan::modulated_conv2d_fused(x, w, s, d, noise, b, ...)`` -> (y, c): the whole
  up = down = 1 layer in one implicit-GEMM Triton kernel (modulation in the prologue, everything
  else in the epilogue).  ``c`` is the raw convolution, written only when the backward needs it
  (demodulation or an input-referenced activation).  Backward: the epilogue's backward, then the
  convolution's: dxs = conv2d_input(dc, w), dx = dxs s, ds = sum_hw dxs x,
  dw = conv2d_weight(x s, dc) (torch's convolution gradients, differentiable again).  A
  first-order backward (no create_graph) takes dx and ds from ``fastgan::modconv_dgrad``
  instead: on 'triton' one launch of the fused kernel as the transposed convolution, with the
  style scale and the style-gradient reduction in its epilogue (dxs is never written); with
  FASTGAN_MODCONV_TRITON_WGRAD=1 it takes dw from ``fastgan::modconv_wgrad`` too (on 'triton' a
  split-K launch that scales each x tile by the style in its prologue: x s is never written).  dw is
  skipped exactly as :func:`fastgan.ops.conv2d` skips it: inside
  :func:`fastgan.ops.no_weight_gradients` for a leaf weight, and whenever the autograd engine
  will not use it for a computed one (R1 / path-length inner passes).

Backends (``impl``): 'ref' (PyTorch; on CPU and the oracle), 'triton' (the fused kernel for
up = down = 1 with symmetric non-negative padding, otherwise conv2d_resample + the Triton epilogue)
and 'cuda' (cuDNN convolution + the CUDA coefficient and epilogue kernels).  ``fused_modconv``
picks NVlabs' execution strategy: True runs the fused op where it applies; False runs the
scale-activations path (``x * styles`` -> convolution -> epilogue) on every backend.  Both compute
the same function.

float16: as NVlabs does, weight and styles are pre-normalised (by the max-norm, which
demodulation cancels) so per-sample weights cannot overflow.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

import importlib

from ._custom_op import custom_op, input_grad_used
from ._backend import cuda_ext_has_ops, fallback_if_ext_lacks_op, resolve_impl
from .conv2d_resample import conv2d_resample

_ba = importlib.import_module("fastgan.ops.bias_act")  # the module: the package exports the function

__all__ = ["modulated_conv2d"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
DEMOD_EPS = 1e-8
_AUTO_ORDER = ("triton", "cuda", "ref")


def _cuda_ext_has_ops() -> bool:
    """Whether the loaded fastgan._C registers the modulated-conv kernels (an older build may not)."""
    return cuda_ext_has_ops("modconv_epilogue", "modconv_dcoefs")


def _resolve(impl: Optional[str], device: torch.device) -> str:
    """:func:`resolve_impl`; an extension without the modulated-conv kernels counts as unavailable
    (skipped when chosen automatically, an error when asked for)."""
    return fallback_if_ext_lacks_op(
        resolve_impl(impl, device, prefer=_AUTO_ORDER), impl, device, _cuda_ext_has_ops(),
        "modulated-conv kernels (modconv_dcoefs / modconv_epilogue; or use impl='triton')")


def _cdt(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _memory_format(x: Tensor) -> torch.memory_format:
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _dense4(t: Tensor) -> Tensor:
    """t itself when it is NCHW- or channels_last-contiguous, else a contiguous copy."""
    return t if _memory_format(t) == torch.channels_last or t.is_contiguous() else t.contiguous()


def _bshape(t: Optional[Tensor], shape) -> Optional[Tensor]:
    """noise as a 4-D view expanded to ``shape`` (no copy)."""
    return None if t is None else t.expand(shape)


def _sum_to(g: Tensor, shape) -> Tensor:
    """g summed over the dims where ``shape`` broadcasts (size 1), keeping them."""
    dims = [i for i, (a, b) in enumerate(zip(shape, g.shape)) if a == 1 and b != 1]
    return g.sum(dims, keepdim=True) if dims else g


# --------------------------------------------------------------------------------------------
# demodulation coefficients
# --------------------------------------------------------------------------------------------

def _dcoefs_ref(s: Tensor, wsq: Tensor) -> Tensor:
    return (s.square() @ wsq.t() + DEMOD_EPS).rsqrt()


@custom_op("fastgan::modconv_dcoefs")
def _dcoefs_op(s: Tensor, wsq: Tensor, impl: str) -> Tensor:
    s, wsq = s.contiguous(), wsq.contiguous()
    if impl == "ref" or s.numel() == 0 or wsq.numel() == 0:
        return _dcoefs_ref(s, wsq)
    d = s.new_empty((s.shape[0], wsq.shape[0]))
    if impl == "cuda":
        torch.ops.fastgan_cuda.modconv_dcoefs(d, s, wsq, DEMOD_EPS)
        return d
    from fastgan.kernels.modconv_epilogue import modconv_dcoefs_triton

    with torch.cuda.device(d.device) if d.is_cuda else contextlib.nullcontext():
        modconv_dcoefs_triton(d, s, wsq, DEMOD_EPS)
    return d


@_dcoefs_op.register_fake
def _(s, wsq, impl):
    return s.new_empty((s.shape[0], wsq.shape[0]))


def _dcoefs_setup(ctx, inputs, output):
    s, wsq, impl = inputs
    ctx.save_for_backward(s, wsq, output)


def _dcoefs_backward(ctx, dd):
    s, wsq, d = ctx.saved_tensors
    dq = dd * d.pow(3) * -0.5
    ds = 2 * s * (dq @ wsq) if ctx.needs_input_grad[0] else None
    dwsq = dq.t() @ s.square() if ctx.needs_input_grad[1] else None
    return ds, dwsq, None


_dcoefs_op.register_autograd(_dcoefs_backward, setup_context=_dcoefs_setup)


# --------------------------------------------------------------------------------------------
# the epilogue: y = bias_act(c * d + noise, b)
# --------------------------------------------------------------------------------------------

def _pre_act(c: Tensor, d: Optional[Tensor], noise: Optional[Tensor]) -> Tensor:
    """u = c * d + noise in the compute type."""
    u = c.to(_cdt(c.dtype))
    if d is not None:
        u = u * d.to(u.dtype)[:, :, None, None]
    if noise is not None:
        u = u + noise.to(u.dtype)
    return u


def _epilogue_launch(impl, c, d, noise, b, act, alpha, gain, clamp) -> Tensor:
    """y (c's dtype and strides) from c (dense 4-D), d [N, O] in the compute type or None, noise
    broadcastable 4-D or None, b [O] or None."""
    y = torch.empty_like(c)
    if y.numel() == 0:
        return y
    if impl == "ref":
        u = _pre_act(c, d, noise)
        v = _ba._ref_elementwise(y, u, b, None, None, None, 0, act, False, 1, alpha, gain, clamp)
        return y.copy_(v)
    noise4 = _bshape(noise, c.shape)
    if impl == "cuda":
        torch.ops.fastgan_cuda.modconv_epilogue(y, c, d, noise4, b, _ba.ACTIVATIONS[act].id,
                                                float(alpha), float(gain), float(clamp))
        return y
    from fastgan.kernels.modconv_epilogue import modconv_epilogue_triton

    with torch.cuda.device(y.device) if y.is_cuda else contextlib.nullcontext():
        modconv_epilogue_triton(y, c, d, noise4, b, _ba.ACTIVATIONS[act].id, float(alpha),
                                float(gain), float(clamp))
    return y


def _needs_c(act: str, alpha: float, gain: float, demodulate: bool) -> bool:
    """Whether the backward needs the raw convolution c: for dd, or to rebuild u for the
    activations whose derivative is taken from the input."""
    return demodulate or _ba._ref_x(act, alpha, gain)


def _epilogue_backward(dy, c, d, noise, b, y, act, alpha, gain, clamp, impl, needs):
    """(dc, dd, dnoise, db) of y = bias_act(c * d + noise, b), each None unless ``needs`` says so
    (needs = (c, d, noise, b)).  Differentiable: bias_act_grad and torch ops."""
    ref_x = _ba._ref_x(act, alpha, gain)
    u = _pre_act(c, d, noise).to(dy.dtype) if ref_x else None
    ysave = y if (clamp >= 0 or (not ref_x and _ba.ACTIVATIONS[act].ref)) else None
    with_db = b is not None and needs[3]
    du, db = _ba._bias_act_grad_op(dy, u, b if ref_x else None, ysave, 1, act, alpha, gain,
                                   clamp, impl, with_db)
    dc = dd = dnoise = None
    if needs[0]:
        dc = du if d is None else (du.to(d.dtype) * d[:, :, None, None]).to(du.dtype)
    if needs[1] and d is not None:
        dd = (du.to(d.dtype) * c.to(d.dtype)).sum([2, 3])
    if needs[2] and noise is not None:
        dnoise = _sum_to(du.to(_cdt(du.dtype)), noise.shape).to(noise.dtype)
    return dc, dd, dnoise, (db.to(b.dtype) if with_db else None)


@custom_op("fastgan::modconv_epilogue")
def _epilogue_op(c: Tensor, d: Optional[Tensor], noise: Optional[Tensor], b: Optional[Tensor],
                 act: str, alpha: float, gain: float, clamp: float, impl: str) -> Tensor:
    c = _dense4(c)
    d = None if d is None else d.contiguous()
    b = None if b is None else b.contiguous()
    return _epilogue_launch(impl, c, d, noise, b, act, alpha, gain, clamp)


@_epilogue_op.register_fake
def _(c, d, noise, b, act, alpha, gain, clamp, impl):
    return torch.empty_like(c, memory_format=_memory_format(c))


def _epilogue_setup(ctx, inputs, output):
    c, d, noise, b, act, alpha, gain, clamp, impl = inputs
    ctx.args = (act, alpha, gain, clamp, impl)
    ctx.save_for_backward(c, d, noise, b, output)


def _epilogue_bwd(ctx, dy):
    c, d, noise, b, y = ctx.saved_tensors
    dy = dy.contiguous(memory_format=_memory_format(y)) if dy.stride() != y.stride() else dy
    dc, dd, dnoise, db = _epilogue_backward(dy, c, d, noise, b, y, *ctx.args,
                                            needs=tuple(input_grad_used(ctx, i) for i in range(4)))
    return dc, dd, dnoise, db, None, None, None, None, None


_epilogue_op.register_autograd(_epilogue_bwd, setup_context=_epilogue_setup)


# --------------------------------------------------------------------------------------------
# the fused layer (up = down = 1): (y, c)
# --------------------------------------------------------------------------------------------

def _fused_outputs(x, w, padx, pady, save_c):
    """The fused op's (y, c): empty, in x's memory format; c is a 0-element stand-in unless saved."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    shape = (n, o, h + 2 * pady - kh + 1, wd + 2 * padx - kw + 1)
    fmt = _memory_format(x)
    y = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)
    c = torch.empty(shape if save_c else (0,), dtype=x.dtype, device=x.device,
                    memory_format=fmt if save_c else torch.contiguous_format)
    return y, c


def _fused_launch(impl, x, w, s, d, noise, b, padx, pady, act, alpha, gain, clamp, save_c):
    y, c = _fused_outputs(x, w, padx, pady, save_c)
    shape = tuple(y.shape)
    if y.numel() == 0:
        return y, c
    if impl == "ref":
        cdt = _cdt(x.dtype)
        cc = F.conv2d(x.to(cdt) * s.to(cdt)[:, :, None, None], w.to(cdt), padding=(pady, padx))
        u = _pre_act(cc, d, noise)
        y.copy_(_ba._ref_elementwise(y, u, b, None, None, None, 0, act, False, 1, alpha, gain,
                                     clamp))
        if save_c:
            c.copy_(cc)
        return y, c
    from fastgan.kernels.modulated_conv2d import modulated_conv2d_triton

    with torch.cuda.device(y.device) if y.is_cuda else contextlib.nullcontext():
        modulated_conv2d_triton(y, c if save_c else None, x, w, s, d, _bshape(noise, shape), b,
                                padx, pady, _ba.ACTIVATIONS[act].id, float(alpha), float(gain),
                                float(clamp))
    return y, c


@custom_op("fastgan::modulated_conv2d_fused")
def _fused_op(x: Tensor, w: Tensor, s: Tensor, d: Optional[Tensor], noise: Optional[Tensor],
              b: Optional[Tensor], padx: int, pady: int, act: str, alpha: float, gain: float,
              clamp: float, save_c: bool, impl: str) -> tuple[Tensor, Tensor]:
    x = _dense4(x)
    # the Triton kernel reads the weight with input channels innermost (channels_last)
    w = w.contiguous(memory_format=torch.channels_last if impl == "triton" else
                     torch.contiguous_format)
    s = s.contiguous()
    d = None if d is None else d.contiguous()
    b = None if b is None else b.contiguous()
    return _fused_launch(impl, x, w, s, d, noise, b, padx, pady, act, alpha, gain, clamp, save_c)


@_fused_op.register_fake
def _(x, w, s, d, noise, b, padx, pady, act, alpha, gain, clamp, save_c, impl):
    return _fused_outputs(x, w, padx, pady, save_c)


def _fused_setup(ctx, inputs, output):
    x, w, s, d, noise, b, padx, pady, act, alpha, gain, clamp, save_c, impl = inputs
    y, c = output
    ctx.args = (act, alpha, gain, clamp, impl)
    ctx.pad = (pady, padx)
    ctx.save_c = save_c
    ctx.set_materialize_grads(False)  # c's gradient is None unless second-order terms reach it
    ctx.save_for_backward(x, w, s, d, noise, b, y, c)


def _data_grads(x, w, s, dc, pad, need_x=True, need_s=True):
    """(dx, ds) of c = conv2d(x * s, w, padding=pad) (torch ops; differentiable)."""
    cdt = _cdt(x.dtype)
    dxs = torch.nn.grad.conv2d_input(x.shape, w, dc, padding=pad)
    dx = (dxs.to(cdt) * s[:, :, None, None]).to(x.dtype) if need_x else None
    ds = (dxs.to(cdt) * x.to(cdt)).sum([2, 3]) if need_s else None
    return dx, ds


def _wgrad_ref(dc, x, s, kh, kw, pad):
    """dw of c = conv2d(x * s, w, padding=pad): torch's (cuDNN's) weight gradient of the
    materialised x * s, rounded to x's dtype; differentiable."""
    xs = (x.to(_cdt(x.dtype)) * s[:, :, None, None]).to(x.dtype)
    return torch.nn.grad.conv2d_weight(xs, (dc.shape[1], x.shape[1], kh, kw), dc, padding=pad)


@custom_op("fastgan::modconv_dgrad")
def _dgrad_op(dc: Tensor, w: Tensor, s: Tensor, x: Tensor, padx: int, pady: int,
              impl: str) -> tuple[Tensor, Tensor]:
    """First-order data and style gradients of the fused layer's convolution (no autograd of its
    own: the backward uses it only when no graph is being built)."""
    x = _dense4(x)
    if impl == "ref":
        dx, ds = _data_grads(x, w, s, dc, (pady, padx))
        return dx.contiguous(memory_format=_memory_format(x)), ds
    from fastgan.kernels.modulated_conv2d import modconv_dgrad_triton

    dc = dc.contiguous(memory_format=_memory_format(x))
    dx = torch.empty_like(x)
    ds = modconv_dgrad_triton(dx, dc, w, s.contiguous(), x, padx, pady)  # w: any layout
    return dx, ds


@_dgrad_op.register_fake
def _(dc, w, s, x, padx, pady, impl):
    return (torch.empty_like(x, memory_format=_memory_format(x)),
            x.new_empty((x.shape[0], x.shape[1]), dtype=_cdt(x.dtype)))


@custom_op("fastgan::modconv_wgrad")
def _wgrad_op(dc: Tensor, x: Tensor, s: Tensor, kh: int, kw: int, padx: int, pady: int,
              impl: str) -> Tensor:
    """First-order weight gradient of the fused layer's convolution, [O, I, kh, kw] in x's dtype
    (no autograd of its own: the backward uses it only when no graph is being built).  'triton':
    one split-K implicit-GEMM launch with the style applied to each x tile in the prologue, so
    x * s is never written."""
    x = _dense4(x)
    if impl == "ref":
        return _wgrad_ref(dc, x, s, kh, kw, (pady, padx)).contiguous()
    from fastgan.kernels.modulated_conv2d import modconv_wgrad_triton

    dc = _dense4(dc)
    return modconv_wgrad_triton(dc, x, s.contiguous(), kh, kw, padx, pady)


@_wgrad_op.register_fake
def _(dc, x, s, kh, kw, padx, pady, impl):
    return x.new_empty((dc.shape[1], x.shape[1], kh, kw))


def _env_switch(name: str, default: bool) -> bool:
    v = os.environ.get(name, "").strip().lower()
    return default if not v else v not in ("0", "false", "no", "off")


# Read at import, for A/B benchmarks.  FASTGAN_MODCONV_FUSED_DGRAD=0 keeps the unfused
# first-order data gradient (cuDNN's + elementwise style terms).  FASTGAN_MODCONV_TRITON_WGRAD=1
# takes the first-order weight gradient from the Triton split-K kernel instead of cuDNN's
# conv2d_weight of a materialised x * s: off by default until a GPU benchmark shows where it wins
# (bench/modulated_conv2d.py; it saves one write and one read of x * s per layer, but cuDNN's
# weight-gradient GEMMs are hard to beat on the compute-bound 512-channel layers).
_FUSED_DGRAD = _env_switch("FASTGAN_MODCONV_FUSED_DGRAD", True)
_TRITON_WGRAD = _env_switch("FASTGAN_MODCONV_TRITON_WGRAD", False)


def _fused_dgrad_applies(ctx, w) -> bool:
    """Whether the backward may take (dx, ds) from ``fastgan::modconv_dgrad``: a first-order pass
    (no graph: the op has no derivative of its own) with padding the transposed convolution can
    express."""
    pady, padx = ctx.pad
    return (_FUSED_DGRAD and not torch.is_grad_enabled() and ctx.args[4] in ("ref", "triton")
            and pady < w.shape[2] and padx < w.shape[3])


def _fused_wgrad_applies(ctx) -> bool:
    """Whether the backward takes dw from ``fastgan::modconv_wgrad`` (opt-in, first order)."""
    return _TRITON_WGRAD and not torch.is_grad_enabled() and ctx.args[4] in ("ref", "triton")


def _fused_bwd(ctx, dy, dc_out):
    x, w, s, d, noise, b, y, c = ctx.saved_tensors
    if dy is None:
        dy = torch.zeros_like(y)
    # x, w, s, d, noise, b: what the running pass uses (w's own test is _want_weight_grad's)
    need = tuple(input_grad_used(ctx, i) for i in range(6))
    act, alpha, gain = ctx.args[:3]
    if not ctx.save_c:
        c = None
        if _needs_c(act, alpha, gain, d is not None):
            # called directly with save_c=False although the backward needs c: recompute it
            cdt = _cdt(x.dtype)
            c = F.conv2d((x.to(cdt) * s[:, :, None, None]).to(x.dtype), w, padding=ctx.pad)
    if dy.stride() != y.stride():
        dy = dy.contiguous(memory_format=_memory_format(y))
    need_c = any(need[:3])
    dc, dd, dnoise, db = _epilogue_backward(dy, c, d, noise, b, y, *ctx.args,
                                            needs=(need_c, need[3], need[4], need[5]))
    if ctx.save_c and dc_out is not None and dc_out.numel() > 0 and need_c:
        dc = dc + dc_out  # c is an output too (second-order terms reach it)
    dx = dw = ds = None
    if need_c:
        from .conv2d import _want_weight_grad  # no_weight_gradients(), and engine pruning

        pady, padx = ctx.pad
        if _want_weight_grad(ctx):
            if _fused_wgrad_applies(ctx):
                dw = _wgrad_op(dc, x, s, w.shape[2], w.shape[3], padx, pady, ctx.args[4])
            else:
                dw = _wgrad_ref(dc, x, s, w.shape[2], w.shape[3], ctx.pad)
        if (need[0] or need[2]) and _fused_dgrad_applies(ctx, w):
            dx, ds = _dgrad_op(dc, w, s, x, padx, pady, ctx.args[4])
            dx, ds = (dx if need[0] else None), (ds if need[2] else None)
        elif need[0] or need[2]:
            dx, ds = _data_grads(x, w, s, dc, ctx.pad, need[0], need[2])
    return dx, dw, ds, dd, dnoise, db, None, None, None, None, None, None, None, None


_fused_op.register_autograd(_fused_bwd, setup_context=_fused_setup)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_inputs(x, weight, styles, noise, bias, up, down, resample_filter=None):
    fn = "modulated_conv2d"
    for name, t in (("x", x), ("weight", weight), ("styles", styles)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{fn}: {name} must be float16, bfloat16, float32 or float64, got {t.dtype}")
    if x.dim() != 4:
        raise ValueError(f"{fn}: x must be 4-D [N, I, H, W], got shape {tuple(x.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"{fn}: weight must be 4-D [O, I, kh, kw], got shape {tuple(weight.shape)}")
    n, i = x.shape[0], x.shape[1]
    if weight.shape[1] != i:
        raise ValueError(f"{fn}: weight must be [O, I={i}, kh, kw] to match x's {i} channels, "
                         f"got shape {tuple(weight.shape)}")
    if styles.dim() != 2 or tuple(styles.shape) != (n, i):
        raise ValueError(f"{fn}: styles must be [N, I] = [{n}, {i}], got shape {tuple(styles.shape)}")
    for name, t in (("weight", weight), ("styles", styles)):
        if t.device != x.device:
            raise ValueError(f"{fn}: {name} must be on x's device {x.device}, got {t.device}")
    o = weight.shape[0]
    if i == 0 or o == 0 or weight.shape[2] == 0 or weight.shape[3] == 0:
        raise ValueError(f"{fn}: x needs at least one channel and weight at least one output "
                         f"channel and one tap, got x {tuple(x.shape)}, weight {tuple(weight.shape)}")
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"{fn}: bias must be a torch.Tensor or None, got {type(bias).__name__}")
        if bias.dim() != 1 or bias.shape[0] != o:
            raise ValueError(f"{fn}: bias must be [O] = [{o}], got shape {tuple(bias.shape)}")
        if bias.device != x.device:
            raise ValueError(f"{fn}: bias must be on x's device {x.device}, got {bias.device}")
        if bias.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{fn}: bias must be a floating tensor, got {bias.dtype}")
    if noise is not None:
        if not isinstance(noise, Tensor):
            raise TypeError(f"{fn}: noise must be a torch.Tensor or None, got {type(noise).__name__}")
        if noise.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{fn}: noise must be a floating tensor, got {noise.dtype}")
        if noise.dim() > 4:
            raise ValueError(f"{fn}: noise must broadcast to [N, O, OH, OW], got shape "
                             f"{tuple(noise.shape)}")
        if noise.device != x.device:
            raise ValueError(f"{fn}: noise must be on x's device {x.device}, got {noise.device}")
    for name, v in (("up", up), ("down", down)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{fn}: {name} must be an int >= 1, got {v!r}")
    if resample_filter is not None and not isinstance(resample_filter, Tensor):
        raise TypeError(f"{fn}: resample_filter must be a tensor (see fastgan.ops.setup_filter) "
                        f"or None, got {type(resample_filter).__name__}")


class _LeafWeightGate(torch.autograd.Function):
    """Identity on a leaf weight whose gradient no_weight_gradients() drops as a whole: the
    weight reaches the layer's ops along several paths (the convolution, possibly transposed or
    flipped, and the demodulation coefficients), which would otherwise drop some of them only.
    Downstream the weight is a computed tensor, so the ops skip their weight-gradient work
    whenever the engine will not run this node (the R1 / path-length inner passes)."""

    @staticmethod
    def forward(ctx, w):
        return w.view_as(w)

    @staticmethod
    def backward(ctx, g):
        from .conv2d import weight_gradients_disabled

        return None if weight_gradients_disabled() else g


def _check_noise(noise: Tensor, shape) -> Tensor:
    noise = noise.reshape((1,) * (4 - noise.dim()) + tuple(noise.shape))
    # by hand: torch.broadcast_shapes costs ~40 us per call on the host (symbolic-shape guards)
    if not all(a == 1 or a == b for a, b in zip(noise.shape, shape)):
        raise ValueError(f"modulated_conv2d: noise of shape {tuple(noise.shape)} does not broadcast "
                         f"to the output shape [N, O, OH, OW] = {list(shape)}")
    return noise


def _symmetric_padding(padding) -> Optional[tuple[int, int]]:
    """(pady, padx) when ``padding`` is symmetric and non-negative, else None."""
    if _is_int(padding):
        p = (padding, padding, padding, padding)
    elif isinstance(padding, (list, tuple)) and all(_is_int(v) for v in padding) and \
            len(padding) in (2, 4):
        p = (padding[0], padding[0], padding[1], padding[1]) if len(padding) == 2 else tuple(padding)
    else:
        raise ValueError("modulated_conv2d: padding must be an int, [x, y] or [x0, x1, y0, y1] of "
                         f"ints, got {padding!r}")
    if p[0] == p[1] and p[2] == p[3] and p[0] >= 0 and p[2] >= 0:
        return p[2], p[0]
    return None


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, noise: Optional[Tensor] = None,
                     up: int = 1, down: int = 1, padding: Union[int, Sequence[int]] = 0,
                     resample_filter: Optional[Tensor] = None, demodulate: bool = True,
                     flip_weight: bool = True, fused_modconv: bool = True,
                     bias: Optional[Tensor] = None, act: str = "linear",
                     alpha: Optional[float] = None, gain: Optional[float] = None,
                     clamp: Optional[float] = None, impl: Optional[str] = None) -> Tensor:
    """StyleGAN2's modulated convolution with a fused noise + bias + activation epilogue.

    Args:
        x: [N, I, H, W] float16 / bfloat16 / float32 / float64, NCHW or channels_last (the output
            keeps the memory format).
        weight: [O, I, kh, kw] (any float dtype; used in x's dtype for the convolution).
        styles: [N, I] per-sample input-channel scales (float32 recommended).
        noise: None or a tensor broadcastable to the output [N, O, OH, OW] (e.g. [N, 1, OH, OW]),
            added after demodulation (differentiable).
        up, down: integer resampling factors (see :func:`fastgan.ops.conv2d_resample`).
        padding: int, [x, y] or [x0, x1, y0, y1], relative to the upsampled image.
        resample_filter: FIR filter for up/down (see :func:`fastgan.ops.setup_filter`).
        demodulate: divide each output channel by sqrt(sum(w_n^2) + 1e-8).
        flip_weight: True correlates like ``F.conv2d`` (NVlabs default), False convolves.
        fused_modconv: True: the one-op fused path where it applies; False: scale activations,
            convolve, epilogue (NVlabs' training path).  Same function either way.
        bias, act, alpha, gain, clamp: the epilogue, exactly :func:`fastgan.ops.bias_act` along
            dim 1 (bias [O]; default act 'linear' with gain 1 = NVlabs ``modulated_conv2d``).
        impl: None (fastest available), 'ref', 'triton' or 'cuda'.

    Returns [N, O, OH, OW] in x's dtype.  Differentiable w.r.t. x, weight, styles, noise and bias,
    twice (as deep as the epilogue's activation allows: see :func:`fastgan.ops.bias_act`).
    """
    _check_inputs(x, weight, styles, noise, bias, up, down, resample_filter)
    if act not in _ba.ACTIVATIONS:
        raise ValueError(f"modulated_conv2d: unknown act {act!r}; expected one of "
                         f"{sorted(_ba.ACTIVATIONS)}")
    alpha, gain, clamp = _ba.epilogue_args("modulated_conv2d", act, alpha, gain, clamp)
    sym = _symmetric_padding(padding)
    impl = _resolve(impl, x.device)

    n = x.shape[0]
    o, i, kh, kw = weight.shape
    cdt = _cdt(x.dtype)
    if weight.requires_grad and weight.grad_fn is None and torch.is_grad_enabled() and \
            not torch.compiler.is_compiling():  # (the switch is ignored under compile anyway)
        weight = _LeafWeightGate.apply(weight)
    if x.dtype == torch.float16 and demodulate:
        # NVlabs' fp16 pre-normalisation: bounds every per-sample weight by 1/sqrt(fan_in);
        # demodulation cancels both factors.  The norms are floored at the smallest normal
        # number: an all-zero styles row or weight row stays 0 (as in float32) instead of 0/0.
        weight = weight * (1 / math.sqrt(i * kh * kw) / weight.norm(
            float("inf"), dim=[1, 2, 3], keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True).clamp_min(
            torch.finfo(styles.dtype).tiny)
    s = styles.to(cdt)
    d = None
    if demodulate:
        wsq = weight.to(cdt).square().sum([2, 3])
        d = _dcoefs_op(s, wsq, impl)
    w = weight.to(x.dtype)
    if not flip_weight:
        w = w.flip([2, 3])
    b = None if bias is None else bias.to(x.dtype)

    if fused_modconv and up == 1 and down == 1 and sym is not None and impl in ("ref", "triton"):
        pady, padx = sym
        oh, ow = x.shape[2] + 2 * pady - kh + 1, x.shape[3] + 2 * padx - kw + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"modulated_conv2d: the output would be empty ({oh} x {ow}): x is "
                             f"{x.shape[2]} x {x.shape[3]}, kernel {kh} x {kw}, padding {padding}")
        nz = None if noise is None else _check_noise(noise, (n, o, oh, ow))
        grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, weight, styles, noise, bias))
        save_c = grad and _needs_c(act, alpha, gain, demodulate)
        y, _ = _fused_op(x, w, s, d, nz, b, padx, pady, act, alpha, gain, clamp, save_c, impl)
        return y

    xs = x * s.to(x.dtype)[:, :, None, None]
    c = conv2d_resample(xs, w, f=resample_filter, up=up, down=down, padding=padding,
                        flip_weight=True, impl=impl)
    nz = None if noise is None else _check_noise(noise, tuple(c.shape))
    return _epilogue_op(c, d, nz, b, act, alpha, gain, clamp, impl)


# NVlabs-style module-attribute spelling: `modulated_conv2d.modulated_conv2d(...)`
modulated_conv2d.modulated_conv2d = modulated_conv2d
