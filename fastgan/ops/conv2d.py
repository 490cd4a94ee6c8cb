"""2-D convolution whose gradients are differentiable to any order, and ``no_weight_gradients``.

    conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1)
    conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1)

Same semantics and argument order as ``torch.nn.functional.conv2d`` / ``conv_transpose2d``.

There is no Triton or CUDA C++ kernel here: every op calls ATen's ``convolution`` /
``convolution_backward`` (cuDNN on GPU), so there is no ``impl=`` argument.  What this module adds
is the autograd structure (the NVlabs ``conv2d_gradfix`` pattern, written from the math):

* ``fastgan::conv2d``            y = conv(x, w) + b
* ``fastgan::conv_transpose2d``  y = conv_transpose(x, w) + b
* ``fastgan::conv2d_weight``     dL/dw of either, given dy and x (``transposed`` says which)

and every backward is made of these three ops again, so gradients of any order exist::

    conv2d:            dx = conv_transpose2d(dy, w, output_padding chosen to give x's size)
                       dw = conv2d_weight(dy, x)                     db = sum(dy)
    conv_transpose2d:  dx = conv2d(dy, w) (cropped to x's size)
                       dw = conv2d_weight(dy, x, transposed=True)    db = sum(dy)
    conv2d_weight:     both (dy, x) -> dw maps are bilinear: with G = dL/d(dw),
                       d dy = conv(x, G) (transposed: conv_transpose(x, G))
                       d x  = conv_transpose(dy, G) (transposed: conv(dy, G) cropped)

Weight-gradient work (the ``conv2d_weight`` op) and the bias sum are skipped when autograd would
throw them away, as PyTorch's own convolution does:

* w (b) does not require grad;
* the running backward pass will not execute w's gradient edge: its ``grad_fn`` for a computed
  weight (``weight * gain`` of an equalized-learning-rate layer, a flipped or modulated weight),
  its AccumulateGrad node for a leaf (a parameter passed directly).  That is the case of
  ``torch.autograd.grad(D(x).sum(), x, create_graph=True)``, the inner pass of R1 / R2 /
  WGAN-GP, and of ``loss.backward(inputs=[x])``.  The engine is asked
  (``torch._C._will_engine_execute_node``), so a weight that the differentiated input does reach
  (a modulated weight in a path-length pass), or that ``torch.autograd.grad`` is asked for, keeps
  its gradient.  ``ctx.needs_input_grad`` alone cannot tell: it is fixed at forward time and
  stays True for every weight that requires grad (tests/ops/test_custom_op.py checks both);
* w is a leaf and the pass runs inside :func:`no_weight_gradients` (NVlabs' switch).  With the
  engine pruning above, the switch adds nothing to a penalty's inner ``torch.autograd.grad``; it
  still drops leaf-weight gradients that a pass inside would otherwise compute (a
  ``.backward()``, or ``torch.autograd.grad`` w.r.t. the weights).

A penalty does not need the inner pass's weight gradients: it is a function of dL/dx, whose graph
(conv_transpose2d(dy, w)) still reaches w, so ``penalty.backward()`` run outside the switch gets
the right weight gradients (tests compare with plain PyTorch in float64).

Precision: on CUDA the half types run natively on cuDNN (float32 accumulation); on CPU float16 and
bfloat16 are computed in float32 and rounded once.  The output layout follows PyTorch's
convolution (channels_last in, channels_last out).
"""
from __future__ import annotations

import contextlib
import threading
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ._custom_op import custom_op, input_grad_used

__all__ = ["conv2d", "conv_transpose2d", "no_weight_gradients", "weight_gradients_disabled"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
IntOrPair = Union[int, Sequence[int]]


# --------------------------------------------------------------------------------------------
# no_weight_gradients
# --------------------------------------------------------------------------------------------

# A process-wide depth counter, not a thread-local: autograd runs the backward of CUDA ops on its
# own per-device worker threads, where a Python thread-local set by the caller is not visible.
_nwg_lock = threading.Lock()
_nwg_depth = 0


class no_weight_gradients(contextlib.ContextDecorator):
    """Skip the weight-gradient computation of fastgan convolutions in backward passes run inside.

    Use it around the inner gradient of a gradient penalty::

        logits = D(x)                                   # x.requires_grad_() beforehand
        with fastgan.ops.no_weight_gradients():
            (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        penalty = g.square().sum((1, 2, 3)).mean()
        penalty.backward()                              # outside: weight gradients are computed

    Inside, backward passes of :func:`conv2d` / :func:`conv_transpose2d` (also through
    :func:`fastgan.ops.conv2d_resample`) compute no gradient for weights that are leaf tensors
    (parameters passed directly): their ``.grad`` receives nothing from such a pass, and
    ``torch.autograd.grad`` w.r.t. such a weight yields None.  Computed weights (``weight * gain``,
    modulated weights) are not affected: a weight the differentiated input reaches keeps its
    gradient even inside.  Bias gradients are not affected either.  Nestable, and usable as a
    decorator; ``no_weight_gradients(False)`` is a no-op (handy for conditional code).

    A penalty's inner pass does not need the switch any more: outside it, every weight gradient
    that the running pass will not use is skipped anyway (the engine is asked, as PyTorch's own
    convolution does), so ``torch.autograd.grad(D(x).sum(), x, create_graph=True)`` computes no
    weight gradient either way.  The switch is kept for NVlabs drop-in code and for passes that do
    reach the weights but should not compute their gradients.

    The switch is read when a backward runs (not when the forward ran) and is process-wide:
    autograd executes CUDA backward nodes on its own device threads, which a thread-local flag
    would not reach, so do not run an unrelated backward pass in another thread meanwhile.
    Under ``torch.compile`` the switch is ignored (weight gradients are always computed): a
    compiled backward is traced once, and baking the switch into it would silently drop weight
    gradients in later passes.
    """

    def __init__(self, disable: bool = True):
        if not isinstance(disable, bool):
            raise TypeError("no_weight_gradients: disable must be a bool, got "
                            f"{type(disable).__name__}")
        self.disable = disable

    def __enter__(self):
        global _nwg_depth
        if self.disable:
            with _nwg_lock:
                _nwg_depth += 1
        return self

    def __exit__(self, *exc):
        global _nwg_depth
        if self.disable:
            with _nwg_lock:
                _nwg_depth -= 1
        return False


def weight_gradients_disabled() -> bool:
    """Whether a :func:`no_weight_gradients` block is active (in any thread)."""
    return _nwg_depth > 0


def _is_leaf_edge(ctx, i: int) -> bool:
    """Whether input ``i`` of this node is a leaf tensor (its edge ends in an AccumulateGrad)."""
    try:
        node = ctx.next_functions[i][0]
    except (AttributeError, IndexError, TypeError):
        return False
    return type(node).__name__ == "AccumulateGrad"


def _want_weight_grad(ctx, index: int = 1) -> bool:
    """Whether this backward must compute dL/dw for its input ``index`` (see the module
    docstring)."""
    if not ctx.needs_input_grad[index]:
        return False
    if _nwg_depth > 0 and not torch.compiler.is_compiling() and _is_leaf_edge(ctx, index):
        return False  # a leaf inside no_weight_gradients(): dropped even where it is asked for
    return input_grad_used(ctx, index)


# --------------------------------------------------------------------------------------------
# ATen calls
# --------------------------------------------------------------------------------------------

def single_channel_strides(t: Optional[Tensor]) -> Optional[Tensor]:
    """``t`` [N, 1, H, W] with NCHW strides when its (size-1, hence arbitrary) channel stride is not
    H * W, e.g. a one-channel channels_last tensor.  PyTorch's CPU convolution (oneDNN, float32)
    mis-reads such inputs for some shapes -- e.g. [3, 1, 5, 7] with strides (35, 1, 7, 1), a
    1 x 4 kernel at stride 4 returns garbage (torch 2.13; cf. pytorch/pytorch#82060)."""
    if t is None or t.dim() != 4 or t.shape[1] != 1 or t.stride(1) == t.shape[2] * t.shape[3]:
        return t
    if t.is_contiguous():  # only the channel stride is off: re-label it, no copy
        hw = t.shape[2] * t.shape[3]
        return t.as_strided(t.shape, (hw, hw, t.shape[3], 1), t.storage_offset())
    return t.contiguous()


def _upcast(t: Optional[Tensor]) -> Optional[Tensor]:
    """float32 copies of CPU half tensors (compute in float32, round once); else ``t``, with
    one-channel tensors given NCHW strides on the CPU (see ``single_channel_strides``)."""
    if t is not None and t.device.type == "cpu":
        t = single_channel_strides(t)
        if t.dtype in (torch.float16, torch.bfloat16):
            return t.float()
    return t


def _convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    dtype = x.dtype
    y = torch.ops.aten.convolution(_upcast(x), _upcast(w), _upcast(b), stride, padding, dilation,
                                   transposed, output_padding, groups)
    return y if y.dtype == dtype else y.to(dtype)  # .to keeps the layout (channels_last)


def _weight_grad(dy, x, weight_shape, stride, padding, output_padding, dilation, groups, transposed):
    dtype = x.dtype
    dy32, x32 = _upcast(dy), _upcast(x)
    # convolution_backward reads only the weight's shape (and layout) when just dw is requested
    shape_only = x32.new_empty(weight_shape)
    dw = torch.ops.aten.convolution_backward(dy32, x32, shape_only, None, stride, padding,
                                             dilation, transposed, output_padding, groups,
                                             [False, True, False])[1]
    return dw if dw.dtype == dtype else dw.to(dtype)


# --------------------------------------------------------------------------------------------
# registered ops
# --------------------------------------------------------------------------------------------

@custom_op("fastgan::conv2d")
def _conv2d_op(x: Tensor, w: Tensor, b: Optional[Tensor], stride: List[int], padding: List[int],
               dilation: List[int], groups: int) -> Tensor:
    return _convolution(x, w, b, stride, padding, dilation, False, [0, 0], groups)


@_conv2d_op.register_fake
def _(x, w, b, stride, padding, dilation, groups):
    # ATen's meta convolution: the same shape and layout rule as the real call
    return torch.ops.aten.convolution(x, w, b, stride, padding, dilation, False, [0, 0], groups)


@custom_op("fastgan::conv_transpose2d")
def _conv_transpose2d_op(x: Tensor, w: Tensor, b: Optional[Tensor], stride: List[int],
                         padding: List[int], output_padding: List[int], dilation: List[int],
                         groups: int) -> Tensor:
    return _convolution(x, w, b, stride, padding, dilation, True, output_padding, groups)


@_conv_transpose2d_op.register_fake
def _(x, w, b, stride, padding, output_padding, dilation, groups):
    return torch.ops.aten.convolution(x, w, b, stride, padding, dilation, True, output_padding,
                                      groups)


@custom_op("fastgan::conv2d_weight")
def _conv2d_weight_op(dy: Tensor, x: Tensor, weight_shape: List[int], stride: List[int],
                      padding: List[int], output_padding: List[int], dilation: List[int],
                      groups: int, transposed: bool) -> Tensor:
    """dL/dw of conv2d (transposed=False) or conv_transpose2d (True) with input x, given dy."""
    return _weight_grad(dy, x, weight_shape, stride, padding, output_padding, dilation, groups,
                        transposed)


@_conv2d_weight_op.register_fake
def _(dy, x, weight_shape, stride, padding, output_padding, dilation, groups, transposed):
    shape_only = x.new_empty(weight_shape)
    return torch.ops.aten.convolution_backward(dy, x, shape_only, None, stride, padding, dilation,
                                               transposed, output_padding, groups,
                                               [False, True, False])[1]


def _transpose_output_padding(in_hw, out_hw, w_hw, stride, padding, dilation):
    """output_padding that makes conv_transpose2d(dy) of a conv2d's output size ``out_hw`` come
    back at the conv2d's input size ``in_hw`` (always in [0, stride))."""
    return [in_hw[i] - ((out_hw[i] - 1) * stride[i] - 2 * padding[i]
                        + dilation[i] * (w_hw[i] - 1) + 1) for i in range(2)]


def _conv_dx(dy, w, x_hw, stride, padding, dilation, groups):
    """dL/dx of y = conv2d(x, w) (x of spatial size x_hw)."""
    op = _transpose_output_padding(x_hw, dy.shape[2:], w.shape[2:], stride, padding, dilation)
    return _conv_transpose2d_op(dy, w, None, stride, padding, op, dilation, groups)


def _conv_transpose_dx(dy, w, x_hw, stride, padding, dilation, groups):
    """dL/dx of y = conv_transpose2d(x, w): the convolution of dy, cropped to x's size (it can be
    larger only when output_padding >= stride, which torch allows when dilation > stride)."""
    dx = _conv2d_op(dy, w, None, stride, padding, dilation, groups)
    if dx.shape[2] != x_hw[0] or dx.shape[3] != x_hw[1]:
        dx = dx[:, :, :x_hw[0], :x_hw[1]]
    return dx


def _bias_grad(dy: Tensor, b_dtype: torch.dtype) -> Tensor:
    acc = torch.float64 if dy.dtype == torch.float64 else torch.float32
    return dy.sum((0, 2, 3), dtype=acc).to(b_dtype)


# conv2d -> (conv_transpose2d, conv2d_weight, sum)
def _setup_conv2d(ctx, inputs, output):
    x, w, b, stride, padding, dilation, groups = inputs
    ctx.args = (stride, padding, dilation, groups)
    ctx.x_hw = tuple(x.shape[2:])
    ctx.b_dtype = None if b is None else b.dtype
    ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, w)


def _backward_conv2d(ctx, dy):
    x, w = ctx.saved_tensors
    stride, padding, dilation, groups = ctx.args
    dx = dw = db = None
    if ctx.needs_input_grad[0]:
        dx = _conv_dx(dy, w, ctx.x_hw, stride, padding, dilation, groups)
    if _want_weight_grad(ctx):
        dw = _conv2d_weight_op(dy, x, list(w.shape), stride, padding, [0, 0], dilation, groups,
                               False)
    if input_grad_used(ctx, 2):
        db = _bias_grad(dy, ctx.b_dtype)
    return dx, dw, db, None, None, None, None


_conv2d_op.register_autograd(_backward_conv2d, setup_context=_setup_conv2d)


# conv_transpose2d -> (conv2d, conv2d_weight, sum)
def _setup_conv_transpose2d(ctx, inputs, output):
    x, w, b, stride, padding, output_padding, dilation, groups = inputs
    ctx.args = (stride, padding, output_padding, dilation, groups)
    ctx.x_hw = tuple(x.shape[2:])
    ctx.b_dtype = None if b is None else b.dtype
    ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, w)


def _backward_conv_transpose2d(ctx, dy):
    x, w = ctx.saved_tensors
    stride, padding, output_padding, dilation, groups = ctx.args
    dx = dw = db = None
    if ctx.needs_input_grad[0]:
        dx = _conv_transpose_dx(dy, w, ctx.x_hw, stride, padding, dilation, groups)
    if _want_weight_grad(ctx):
        dw = _conv2d_weight_op(dy, x, list(w.shape), stride, padding, output_padding, dilation,
                               groups, True)
    if input_grad_used(ctx, 2):
        db = _bias_grad(dy, ctx.b_dtype)
    return dx, dw, db, None, None, None, None, None


_conv_transpose2d_op.register_autograd(_backward_conv_transpose2d,
                                       setup_context=_setup_conv_transpose2d)


# conv2d_weight -> (conv2d, conv_transpose2d): dw is bilinear in (dy, x)
def _setup_weight(ctx, inputs, output):
    dy, x, weight_shape, stride, padding, output_padding, dilation, groups, transposed = inputs
    ctx.args = (stride, padding, output_padding, dilation, groups, transposed)
    ctx.save_for_backward(dy if ctx.needs_input_grad[1] else None,
                          x if ctx.needs_input_grad[0] else None)
    ctx.x_hw = tuple(x.shape[2:])


def _backward_weight(ctx, g):
    dy, x = ctx.saved_tensors
    stride, padding, output_padding, dilation, groups, transposed = ctx.args
    d_dy = d_x = None
    if not transposed:   # dw[o, i, k] = sum dy[n, o, p] x[n, i, p * s - pad + k * d]
        if ctx.needs_input_grad[0]:
            d_dy = _conv2d_op(x, g, None, stride, padding, dilation, groups)
        if ctx.needs_input_grad[1]:
            d_x = _conv_dx(dy, g, ctx.x_hw, stride, padding, dilation, groups)
    else:                # dw[i, o, k] = sum x[n, i, p] dy[n, o, p * s - pad + k * d]
        if ctx.needs_input_grad[0]:
            d_dy = _conv_transpose2d_op(x, g, None, stride, padding, output_padding, dilation,
                                        groups)
        if ctx.needs_input_grad[1]:
            d_x = _conv_transpose_dx(dy, g, ctx.x_hw, stride, padding, dilation, groups)
    return d_dy, d_x, None, None, None, None, None, None, None


_conv2d_weight_op.register_autograd(_backward_weight, setup_context=_setup_weight)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pair(v, name: str, fn: str, minimum: int) -> List[int]:
    if _is_int(v):
        v = (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(e) for e in v) \
            and all(e >= minimum for e in v):
        return [int(v[0]), int(v[1])]
    raise ValueError(f"{fn}: {name} must be an int >= {minimum} or a pair of them, got {v!r}")


def _check_tensors(fn, x, w, b, groups, transposed):
    for name, t in (("x", x), ("w", w)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{fn}: x must be 4-D [N, C_in, H, W], got shape {tuple(x.shape)}")
    wshape = "[C_in, C_out / groups, kh, kw]" if transposed else "[C_out, C_in / groups, kh, kw]"
    if w.dim() != 4:
        raise ValueError(f"{fn}: w must be 4-D {wshape}, got shape {tuple(w.shape)}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{fn}: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if w.dtype != x.dtype:
        raise TypeError(f"{fn}: w must have x's dtype {x.dtype}, got {w.dtype}")
    if w.device != x.device:
        raise ValueError(f"{fn}: w must be on x's device {x.device}, got {w.device}")
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{fn}: groups must be an int >= 1, got {groups!r}")
    if transposed:
        c_in, c_out = w.shape[0], w.shape[1] * groups
        if c_in % groups != 0:
            raise ValueError(f"{fn}: w.shape[0] = {c_in} (C_in) must be divisible by groups = {groups}")
        if x.shape[1] != c_in:
            raise ValueError(f"{fn}: x has {x.shape[1]} channels but w expects w.shape[0] = {c_in}")
    else:
        c_out = w.shape[0]
        if c_out % groups != 0:
            raise ValueError(f"{fn}: w.shape[0] = {c_out} (C_out) must be divisible by "
                             f"groups = {groups}")
        if x.shape[1] != w.shape[1] * groups:
            raise ValueError(f"{fn}: x has {x.shape[1]} channels but w expects w.shape[1] * groups "
                             f"= {w.shape[1]} * {groups} = {w.shape[1] * groups}")
    if b is not None:
        if not isinstance(b, Tensor):
            raise TypeError(f"{fn}: b must be a torch.Tensor or None, got {type(b).__name__}")
        if b.dim() != 1 or b.shape[0] != c_out:
            raise ValueError(f"{fn}: b must be 1-D of length C_out = {c_out}, "
                             f"got shape {tuple(b.shape)}")
        if b.dtype != x.dtype:
            raise TypeError(f"{fn}: b must have x's dtype {x.dtype}, got {b.dtype}")
        if b.device != x.device:
            raise ValueError(f"{fn}: b must be on x's device {x.device}, got {b.device}")


def _check_out_size(fn, out_hw, x, w):
    if any(s <= 0 for s in out_hw):
        raise ValueError(f"{fn}: the output would be empty (spatial size {tuple(out_hw)}) for x of "
                         f"shape {tuple(x.shape)} and w of shape {tuple(w.shape)}; the (dilated) "
                         "kernel is larger than the padded input")


def conv2d(x: Tensor, w: Tensor, b: Optional[Tensor] = None, stride: IntOrPair = 1,
           padding: Union[IntOrPair, str] = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """``torch.nn.functional.conv2d`` with gradients of any order and :func:`no_weight_gradients`.

    Args:
        x: ``[N, C_in, H, W]``, float16 / bfloat16 / float32 / float64, any layout.
        w: ``[C_out, C_in / groups, kh, kw]``, x's dtype and device.
        b: optional ``[C_out]`` bias (its gradient is the sum of dy over N, H, W).
        stride, dilation: int or (sy, sx), >= 1.
        padding: int or (py, px) >= 0 (zero padding on both sides), or 'valid' / 'same' as in
            torch ('same' needs stride 1; an odd total padding puts the extra row/column at the
            bottom/right, as torch does).
        groups: ``C_in`` and ``C_out`` must be divisible by it.

    Returns ``[N, C_out, OH, OW]``, ``OH = (H + 2 py - dy (kh - 1) - 1) // sy + 1``, in the layout
    PyTorch's convolution picks (channels_last in, channels_last out).
    """
    fn = "conv2d"
    _check_tensors(fn, x, w, b, groups, transposed=False)
    stride = _pair(stride, "stride", fn, 1)
    dilation = _pair(dilation, "dilation", fn, 1)
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0, 0]
        elif padding == "same":
            if stride != [1, 1]:
                raise ValueError(f"{fn}: padding='same' needs stride 1, got stride {tuple(stride)}")
            total = [dilation[i] * (w.shape[2 + i] - 1) for i in range(2)]
            padding = [t // 2 for t in total]
            extra = [t - 2 * p for t, p in zip(total, padding)]
            if any(extra):  # odd total: one more row / column at the end (torch's choice)
                x = F.pad(x, [0, extra[1], 0, extra[0]])
        else:
            raise ValueError(f"{fn}: padding must be an int, a pair of ints, 'valid' or 'same', "
                             f"got {padding!r}")
    else:
        padding = _pair(padding, "padding", fn, 0)
    out_hw = [(x.shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1)
              // stride[i] + 1 for i in range(2)]
    _check_out_size(fn, out_hw, x, w)
    return _conv2d_op(x, w, b, stride, padding, dilation, groups)


def conv_transpose2d(x: Tensor, w: Tensor, b: Optional[Tensor] = None, stride: IntOrPair = 1,
                     padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1,
                     dilation: IntOrPair = 1) -> Tensor:
    """``torch.nn.functional.conv_transpose2d`` with gradients of any order and
    :func:`no_weight_gradients`.

    Args:
        x: ``[N, C_in, H, W]``, float16 / bfloat16 / float32 / float64, any layout.
        w: ``[C_in, C_out / groups, kh, kw]``, x's dtype and device.
        b: optional ``[C_out]`` bias.
        stride, dilation: int or (sy, sx), >= 1.
        padding: int or (py, px) >= 0: rows/columns removed from each side of the full output.
        output_padding: int or (py, px) >= 0, smaller than stride or dilation (per axis): extra
            rows/columns at the bottom/right.
        groups: ``C_in`` and ``C_out`` must be divisible by it.

    Returns ``[N, C_out, OH, OW]``,
    ``OH = (H - 1) sy - 2 py + dy (kh - 1) + output_padding_y + 1``.
    """
    fn = "conv_transpose2d"
    _check_tensors(fn, x, w, b, groups, transposed=True)
    stride = _pair(stride, "stride", fn, 1)
    padding = _pair(padding, "padding", fn, 0)
    dilation = _pair(dilation, "dilation", fn, 1)
    output_padding = _pair(output_padding, "output_padding", fn, 0)
    for i in range(2):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(f"{fn}: output_padding must be smaller than stride or dilation per "
                             f"axis, got output_padding {tuple(output_padding)}, stride "
                             f"{tuple(stride)}, dilation {tuple(dilation)}")
    out_hw = [(x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (w.shape[2 + i] - 1)
              + output_padding[i] + 1 for i in range(2)]
    _check_out_size(fn, out_hw, x, w)
    return _conv_transpose2d_op(x, w, b, stride, padding, output_padding, dilation, groups)
