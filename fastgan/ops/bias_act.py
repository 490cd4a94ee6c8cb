"""Fused bias + activation + gain + clamp: ``bias_act`` (NVlabs signature) and ``fused_leaky_relu``
(rosinality signature).

    y = clamp(act(x + b, alpha) * gain, -clamp, clamp)       b broadcast along ``dim``

Autograd story (the NVlabs pattern, as three registered ops):

* ``fastgan::bias_act``        forward.  Saves the least state: the output y for acts whose
  derivative can be written in terms of their output (relu, lrelu, tanh, sigmoid, elu, selu,
  softplus), x (and b) only for swish (and lrelu with a negative slope); nothing for linear.
* ``fastgan::bias_act_grad``   dL/ds = dy * gain * f'(s) * [|y| < clamp]; dL/db is its sum over
  every dim but ``dim``.  Itself differentiable: w.r.t. dy it is linear (the same op again), and
  w.r.t. the saved tensor it is ``bias_act_grad2``, so R1 / WGAN-GP / path-length penalties work.
* ``fastgan::bias_act_grad2``  the second-order coefficient; third order is not supported.

When y is the saved tensor, the second-order term flows to y (g'(yy) below) and autograd carries it
back to x and b through the forward's own backward, so x never has to be kept alive.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from ._custom_op import custom_op, input_grad_used
from ._backend import resolve_impl

__all__ = ["bias_act", "fused_leaky_relu", "ACTIVATIONS"]

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


@dataclass(frozen=True)
class ActSpec:
    id: int            # shared with kernels/bias_act.py and csrc/
    def_alpha: float
    def_gain: float
    ref: str           # 'y': derivative from the output, 'x': from the input, '': constant
    has_2nd_grad: bool


ACTIVATIONS = {
    "linear": ActSpec(0, 0.0, 1.0, "", False),
    "relu": ActSpec(1, 0.0, math.sqrt(2), "y", False),
    "lrelu": ActSpec(2, 0.2, math.sqrt(2), "y", False),
    "tanh": ActSpec(3, 0.0, 1.0, "y", True),
    "sigmoid": ActSpec(4, 0.0, 1.0, "y", True),
    "elu": ActSpec(5, 0.0, 1.0, "y", True),
    "selu": ActSpec(6, 0.0, 1.0, "y", True),
    "softplus": ActSpec(7, 0.0, 1.0, "y", True),
    "swish": ActSpec(8, 0.0, math.sqrt(2), "x", True),
}

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _ref_x(act: str, alpha: float, gain: float) -> bool:
    """Whether the derivative is evaluated from x (True) or from the saved output y (False)."""
    spec = ACTIVATIONS[act]
    if spec.ref == "x":
        return True
    # lrelu with a negative slope (or any y-ref act with gain 0) cannot be inverted from y.
    return spec.ref == "y" and (gain == 0 or (act == "lrelu" and alpha < 0))


# --------------------------------------------------------------------------------------------
# layout helpers: every kernel sees tensors of one dense layout as flat arrays
# --------------------------------------------------------------------------------------------

def _is_dense(t: Tensor) -> bool:
    """Non-overlapping and dense: the elements fill numel() consecutive slots of storage."""
    if t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)):
        return True
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(t.shape, t.stride()) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _as_layout(t: Optional[Tensor], like: Tensor) -> Optional[Tensor]:
    """``t`` with exactly ``like``'s strides (``like`` is dense), copying only when needed."""
    if t is None or t.stride() == like.stride():
        return t
    return torch.empty_like(like).copy_(t)


def _dense(t: Tensor) -> Tensor:
    # empty_like keeps a dense tensor's strides (channels_last, permutations) and otherwise picks
    # the layout torch would for a new tensor: the same rule the fake implementations use.
    return t if _is_dense(t) else torch.empty_like(t).copy_(t)


def _inner_channels(t: Tensor, dim: int):
    # a size-1 dim's stride is arbitrary in a dense tensor (even 0); every element is channel 0
    return (t.stride(dim), t.shape[dim]) if t.dim() and t.shape[dim] != 1 else (1, 1)


# --------------------------------------------------------------------------------------------
# reference (pure PyTorch)
# --------------------------------------------------------------------------------------------

def _compute_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _ref_s(x, b, dim):
    s = x.to(_compute_dtype(x.dtype))
    if b is not None:
        shape = [1] * x.dim()
        shape[dim] = -1
        s = s + b.to(s.dtype).reshape(shape)
    return s


def _ref_act(s, act, alpha):
    if act == "linear":
        return s
    if act == "relu":
        return torch.relu(s)
    if act == "lrelu":
        return torch.nn.functional.leaky_relu(s, alpha)
    if act == "tanh":
        return torch.tanh(s)
    if act == "sigmoid":
        return torch.sigmoid(s)
    if act == "elu":
        return torch.nn.functional.elu(s)
    if act == "selu":
        return torch.selu(s)
    if act == "softplus":
        # stable and without torch's linear cut-off at s > 20 (so it matches the kernels exactly)
        return torch.where(s > 0, s, 0.0) + torch.log1p(torch.exp(-s.abs()))
    return s * torch.sigmoid(s)


def _ref_d1_s(s, act, alpha):
    if act == "linear":
        return torch.ones_like(s)
    if act == "relu":
        return (s > 0).to(s.dtype)
    if act == "lrelu":
        return torch.where(s > 0, 1.0, torch.full_like(s, alpha))
    if act == "tanh":
        return 1 - torch.tanh(s) ** 2
    if act == "sigmoid":
        g = torch.sigmoid(s)
        return g * (1 - g)
    if act == "elu":
        return torch.where(s > 0, 1.0, torch.exp(s))
    if act == "selu":
        return torch.where(s > 0, SELU_LAMBDA, SELU_LAMBDA * SELU_ALPHA * torch.exp(s))
    if act == "softplus":
        return torch.sigmoid(s)
    g = torch.sigmoid(s)
    return g * (1 + s * (1 - g))


def _ref_d2_s(s, act, alpha):
    if act in ("linear", "relu", "lrelu"):
        return torch.zeros_like(s)
    if act == "tanh":
        t = torch.tanh(s)
        return -2 * t * (1 - t * t)
    if act == "sigmoid":
        g = torch.sigmoid(s)
        return g * (1 - g) * (1 - 2 * g)
    if act == "elu":
        return torch.where(s > 0, 0.0, torch.exp(s))
    if act == "selu":
        return torch.where(s > 0, 0.0, SELU_LAMBDA * SELU_ALPHA * torch.exp(s))
    if act == "softplus":
        g = torch.sigmoid(s)
        return g * (1 - g)
    g = torch.sigmoid(s)
    return g * (1 - g) * (2 + s * (1 - 2 * g))


def _ref_d1_y(yy, act, alpha):
    if act == "relu":
        return (yy > 0).to(yy.dtype)
    if act == "lrelu":
        return torch.where(yy > 0, 1.0, torch.full_like(yy, alpha))
    if act == "tanh":
        return 1 - yy * yy
    if act == "sigmoid":
        return yy * (1 - yy)
    if act == "elu":
        return torch.where(yy > 0, 1.0, yy + 1)
    if act == "selu":
        return torch.where(yy > 0, SELU_LAMBDA, yy + SELU_LAMBDA * SELU_ALPHA)
    return -torch.expm1(-yy)  # softplus


def _ref_d2_y(yy, act, alpha):
    if act == "tanh":
        return -2 * yy
    if act == "sigmoid":
        return 1 - 2 * yy
    if act in ("elu", "selu"):
        return torch.where(yy > 0, 0.0, 1.0).to(yy.dtype)
    if act == "softplus":
        return torch.exp(-yy)
    return torch.zeros_like(yy)


def _ref_elementwise(out, x, b, y, dy, ddx, mode, act, ref_x, dim, alpha, gain, clamp):
    """Same contract as the kernels (see kernels/bias_act.py), written with torch ops; returns the
    result, which may be a fresh tensor rather than ``out``."""
    cdt = _compute_dtype(out.dtype)
    if mode == 0:
        v = _ref_act(_ref_s(x, b, dim), act, alpha) * gain
        if clamp >= 0:
            v = v.clamp(-clamp, clamp)
    else:
        g = dy.to(cdt)
        if mode == 2:
            g = g * ddx.to(cdt)
        if ref_x:
            s = _ref_s(x, b, dim)
            v = g * (gain * (_ref_d1_s if mode == 1 else _ref_d2_s)(s, act, alpha))
        elif act == "linear":
            v = g * gain
        elif mode == 1 and act in ("relu", "lrelu"):
            # the StyleGAN hot path: one fused aten op (same semantics: y > 0 ? g : g * slope)
            r = (y if gain > 0 else y * (1.0 / gain)).to(cdt)
            v = torch.ops.aten.leaky_relu_backward(g * gain, r, alpha if act == "lrelu" else 0.0, True)
        else:
            yy = y.to(cdt) * (1.0 / gain)
            v = g * (gain * _ref_d1_y(yy, act, alpha) if mode == 1 else _ref_d2_y(yy, act, alpha))
        if clamp >= 0:
            v = v.masked_fill_(y.abs() >= clamp, 0.0)  # v is always a fresh tensor here
    return v


# --------------------------------------------------------------------------------------------
# backend launch
# --------------------------------------------------------------------------------------------

def _launch(impl, out, x, b, y, dy, ddx, mode, act, ref_x, dim, alpha, gain, clamp, part=None):
    """Fill ``out`` (dense; every other given tensor has its layout) with one elementwise pass.

    ``part`` (triton, mode 1): a buffer for the kernel's fused per-block partial sums of ``out``
    along ``dim`` (see ``_db_plan``)."""
    if out.numel() == 0:
        return out
    if mode != 0 and clamp >= 0:
        # Only the rounded output is saved, and a saturated element holds clamp rounded to the
        # element dtype (bf16(0.7) = 0.6992...): test saturation against that same rounded value.
        clamp = float(torch.tensor(clamp, dtype=out.dtype))
    if impl == "ref":
        v = _ref_elementwise(out, x, b, y, dy, ddx, mode, act, ref_x, dim, alpha, gain, clamp)
        fresh = all(t is None or t.data_ptr() != v.data_ptr() for t in (x, y, dy, ddx))
        if fresh and v.dtype == out.dtype and v.stride() == out.stride():
            return v  # skip a copy (an op must never return an alias of its input: checked above)
        return out.copy_(v)
    inner, channels = _inner_channels(out, dim)
    inv_gain = 1.0 / gain if gain != 0 else 0.0
    spec = ACTIVATIONS[act]
    if impl == "cuda":
        torch.ops.fastgan_cuda.bias_act_elementwise(
            out, x, b, y, dy, ddx, mode, spec.id, ref_x, inner, channels,
            float(alpha), float(gain), float(clamp))
        return out
    from fastgan.kernels.bias_act import bias_act_kernel, launch_config

    n = out.numel()
    block, num_warps = launch_config(n, out.element_size())
    dummy = out  # never read: the HAS_*/MODE flags switch those loads off at compile time
    params = dummy
    reduce, rc = (0, 1) if part is None else _db_plan(out, dim, block)
    if out.dtype == torch.float64:
        params = torch.tensor([alpha, gain, inv_gain, clamp], dtype=torch.float64, device=out.device)
    with torch.cuda.device(out.device) if out.is_cuda else contextlib.nullcontext():
        bias_act_kernel[((n + block - 1) // block,)](
            out, dummy if x is None else x, dummy if b is None else b,
            dummy if y is None else y, dummy if dy is None else dy, dummy if ddx is None else ddx,
            dummy if part is None else part, n, inner, channels, float(alpha), float(gain), inv_gain, float(clamp), params,
            MODE=mode, ACT=spec.id, REF_X=ref_x, HAS_B=b is not None, HAS_CLAMP=clamp >= 0,
            BIAS_PER_BLOCK=b is not None and inner % block == 0, INT64=n >= _INT64_THRESHOLD - block,
            BLOCK=block, num_warps=num_warps, REDUCE=reduce, RC=rc)
    return out


def _db_plan(t: Tensor, dim: int, block: int):
    """(REDUCE, RC) for the Triton kernel's fused bias-gradient partials of ``t`` along ``dim``
    (see kernels/bias_act.py), or (0, 1) where the layout needs a separate reduction."""
    inner, channels = _inner_channels(t, dim)
    if inner % block == 0:
        return 1, 1
    if inner == 1 and channels <= block and block % channels == 0:
        return 2, channels
    return 0, 1


def _grad_with_db(impl, out, x, b, y, dy, act, ref_x, dim, alpha, gain, clamp):
    """Mode 1 plus dL/db in the compute type: Triton sums per-block partials fused into the
    gradient pass (no second read of ds) where the layout allows; elsewhere a torch reduction."""
    if impl == "triton" and out.numel() > 0:
        from fastgan.kernels.bias_act import launch_config

        block = launch_config(out.numel(), out.element_size())[0]
        reduce, rc = _db_plan(out, dim, block)
        if reduce:
            nblocks = (out.numel() + block - 1) // block
            part = torch.empty(nblocks * rc, dtype=_compute_dtype(out.dtype), device=out.device)
            ds = _launch(impl, out, x, b, y, dy, None, 1, act, ref_x, dim, alpha, gain, clamp, part)
            inner, channels = _inner_channels(out, dim)
            # blocks are in storage order: [outer, channels, inner // block] or [rows, channels]
            db = part.view(-1, channels, inner // block).sum((0, 2)) if reduce == 1 \
                else part.view(-1, channels).sum(0)
            return ds, db
    ds = _launch(impl, out, x, b, y, dy, None, 1, act, ref_x, dim, alpha, gain, clamp)
    db = _reduce_to_bias(ds, _compute_dtype(ds.dtype), dim)
    return ds, (db.clone() if db.data_ptr() == ds.data_ptr() else db)  # outputs never alias


# From here on int32 offsets (start + arange(BLOCK)) could overflow: use the 64-bit kernel variant.
_INT64_THRESHOLD = 2 ** 31


# --------------------------------------------------------------------------------------------
# registered ops
# --------------------------------------------------------------------------------------------

AUTO = "auto"


def _pick(impl: str, t: Tensor, fused_db: bool = False) -> str:
    """The backend of one op call when the user left the choice to fastgan (impl=None).

    On CUDA, from the H100 numbers in bench/results/: both kernels stream at 95-100% of copy
    bandwidth once the launch is amortised, and the CUDA extension launches with less host
    overhead, which decides tensors up to a few hundred MB; from 512 MB the Triton kernel is the
    faster streamer (~100% vs ~95%).  The Triton kernel also fuses the bias-gradient reduction into
    the first-order backward (one pass instead of two: ~100% vs 57-71% for cuda + a separate
    reduction), so it runs that pass wherever its layout allows the fused partials."""
    if impl != AUTO:
        return impl
    big = t.numel() * t.element_size() >= _TRITON_FROM_BYTES
    prefer = ("triton", "cuda", "ref") if (fused_db or big) else None
    return resolve_impl(None, t.device, prefer)


_TRITON_FROM_BYTES = 512 * 2 ** 20


@custom_op("fastgan::bias_act")
def _bias_act_op(x: Tensor, b: Optional[Tensor], dim: int, act: str, alpha: float, gain: float,
                 clamp: float, impl: str) -> Tensor:
    x = _dense(x)
    b = None if b is None else b.contiguous()
    out = torch.empty_like(x)
    impl = _pick(impl, x)
    return _launch(impl, out, x, b, None, None, None, 0, act, False, dim, alpha, gain, clamp)


@_bias_act_op.register_fake
def _(x, b, dim, act, alpha, gain, clamp, impl):
    return torch.empty_like(x)


def _grad_primary(dy, x, y):
    return x if x is not None else (y if y is not None else dy)


@custom_op("fastgan::bias_act_grad")
def _bias_act_grad_op(dy: Tensor, x: Optional[Tensor], b: Optional[Tensor], y: Optional[Tensor],
                      dim: int, act: str, alpha: float, gain: float, clamp: float,
                      impl: str, with_db: bool) -> tuple[Tensor, Tensor]:
    """(ds, db): ds = dL/d(x + b); db = ds summed over every dim but ``dim`` in the compute type
    (float32 for half types) when ``with_db``, else an empty tensor."""
    out = torch.empty_like(_grad_primary(dy, x, y))
    x, y, dy = (_as_layout(t, out) for t in (x, y, dy))
    b = None if b is None else b.contiguous()
    if impl == AUTO:
        # 4096: the Triton BLOCK (kernels/bias_act.py launch_config; a test keeps them equal)
        fused = with_db and dy.dim() > 0 and _db_plan(out, dim, 4096)[0] > 0
        impl = _pick(impl, out, fused_db=fused)
    if with_db and dy.dim() > 0:
        return _grad_with_db(impl, out, x, b, y, dy, act, x is not None, dim, alpha, gain, clamp)
    ds = _launch(impl, out, x, b, y, dy, None, 1, act, x is not None, dim, alpha, gain, clamp)
    if with_db:  # 0-dim: db is ds itself, but an op output must not alias another
        return ds, ds.to(_compute_dtype(ds.dtype), copy=True)
    return ds, ds.new_empty(0, dtype=_compute_dtype(ds.dtype))


@_bias_act_grad_op.register_fake
def _(dy, x, b, y, dim, act, alpha, gain, clamp, impl, with_db):
    ds = torch.empty_like(_grad_primary(dy, x, y))
    cdt = _compute_dtype(ds.dtype)
    if not with_db:
        return ds, ds.new_empty(0, dtype=cdt)
    return ds, ds.new_empty(ds.shape[dim] if ds.dim() else (), dtype=cdt)


@custom_op("fastgan::bias_act_grad2")
def _bias_act_grad2_op(ddx: Tensor, dy: Tensor, x: Optional[Tensor], b: Optional[Tensor],
                       y: Optional[Tensor], dim: int, act: str, alpha: float, gain: float,
                       clamp: float, impl: str) -> Tensor:
    out = torch.empty_like(_grad_primary(dy, x, y))
    x, y, dy, ddx = (_as_layout(t, out) for t in (x, y, dy, ddx))
    b = None if b is None else b.contiguous()
    impl = _pick(impl, out)
    return _launch(impl, out, x, b, y, dy, ddx, 2, act, x is not None, dim, alpha, gain, clamp)


@_bias_act_grad2_op.register_fake
def _(ddx, dy, x, b, y, dim, act, alpha, gain, clamp, impl):
    return torch.empty_like(_grad_primary(dy, x, y))


def _reduce_to_bias(ds: Tensor, dtype: torch.dtype, dim: int) -> Tensor:
    """dL/db: dL/ds summed over every dim but ``dim`` (accumulated in float32 for half types)."""
    dims = [d for d in range(ds.dim()) if d != dim]
    return ds.sum(dims, dtype=_compute_dtype(ds.dtype)).to(dtype) if dims else ds.to(dtype)


# forward -> bias_act_grad
def _setup_fwd(ctx, inputs, output):
    x, b, dim, act, alpha, gain, clamp, impl = inputs
    ref_x = _ref_x(act, alpha, gain)
    ctx.args = (dim, act, alpha, gain, clamp, impl)
    ctx.b_dtype = None if b is None else b.dtype
    ctx.save_for_backward(x if ref_x else None, b if ref_x else None,
                          output if (clamp >= 0 or (not ref_x and ACTIVATIONS[act].ref)) else None)


def _backward_fwd(ctx, dy):
    x, b, y = ctx.saved_tensors
    with_db = input_grad_used(ctx, 1)  # not for a parameter the running pass leaves alone
    ds, db = _bias_act_grad_op(dy, x, b, y, *ctx.args, with_db)
    return ds, (db.to(ctx.b_dtype) if with_db else None), None, None, None, None, None, None


_bias_act_op.register_autograd(_backward_fwd, setup_context=_setup_fwd)


# bias_act_grad -> (bias_act_grad, bias_act_grad2)
def _setup_grad(ctx, inputs, output):
    dy, x, b, y, dim, act, alpha, gain, clamp, impl, with_db = inputs
    ctx.args = (dim, act, alpha, gain, clamp, impl)
    ctx.save_for_backward(dy, x, b, y)


def _backward_grad(ctx, gg, gdb):
    dy, x, b, y = ctx.saved_tensors
    dim, act = ctx.args[:2]
    if gg is None:
        gg = torch.zeros_like(dy)
    if gdb is not None and gdb.numel() > 0:  # db = sum(ds): its gradient broadcasts back onto ds
        shape = [1] * dy.dim()
        if dy.dim():
            shape[dim] = -1
        gg = gg + gdb.view(shape).to(gg.dtype)
    d_dy = d_x = d_b = d_y = None
    if ctx.needs_input_grad[0]:
        d_dy = _bias_act_grad_op(gg, x, b, y, *ctx.args, False)[0]
    if ACTIVATIONS[act].has_2nd_grad and any(ctx.needs_input_grad[1:4]):
        t = _bias_act_grad2_op(gg, dy, x, b, y, *ctx.args)
        if x is not None:   # derivative taken w.r.t. s = x + b
            d_x = t if ctx.needs_input_grad[1] else None
            if b is not None and input_grad_used(ctx, 2):
                d_b = _reduce_to_bias(t, b.dtype, dim)
        else:               # w.r.t. the saved output; autograd carries it back to x and b
            d_y = t if ctx.needs_input_grad[3] else None
    return d_dy, d_x, d_b, d_y, None, None, None, None, None, None, None


_bias_act_grad_op.register_autograd(_backward_grad, setup_context=_setup_grad)


def _setup_grad2(ctx, inputs, output):
    pass


def _backward_grad2(ctx, grad):
    raise NotImplementedError("fastgan.ops.bias_act supports first- and second-order gradients; "
                              "third-order gradients are not implemented")


_bias_act_grad2_op.register_autograd(_backward_grad2, setup_context=_setup_grad2)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def _check_inputs(x, b, dim, act):
    if not isinstance(x, Tensor):
        raise TypeError(f"bias_act: x must be a torch.Tensor, got {type(x).__name__}")
    if act not in ACTIVATIONS:
        raise ValueError(f"bias_act: unknown act {act!r}; expected one of {sorted(ACTIVATIONS)}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"bias_act: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"bias_act: x must have at least 1 dimension, got shape {tuple(x.shape)}")
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"bias_act: dim must be an int, got {type(dim).__name__}")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"bias_act: dim={dim} is out of range for x of shape {tuple(x.shape)}")
    dim %= x.dim()
    if b is not None:
        if not isinstance(b, Tensor):
            raise TypeError(f"bias_act: b must be a torch.Tensor or None, got {type(b).__name__}")
        if b.dim() != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias_act: b must be 1-D of length x.shape[{dim}] = {x.shape[dim]}, "
                             f"got shape {tuple(b.shape)}")
        if b.dtype != x.dtype:
            raise TypeError(f"bias_act: b must have x's dtype {x.dtype}, got {b.dtype}")
        if b.device != x.device:
            raise ValueError(f"bias_act: b must be on x's device {x.device}, got {b.device}")
    return dim


def _number(fn: str, name: str, v) -> float:
    if isinstance(v, Tensor) and v.numel() == 1 and v.is_floating_point():
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {v!r} ({type(v).__name__})")
    v = float(v)
    if math.isnan(v):
        raise ValueError(f"{fn}: {name} must not be NaN")
    return v


def epilogue_args(fn: str, act: str, alpha, gain, clamp):
    """(alpha, gain, clamp) as floats with the activation's defaults filled in; clamp -1.0 means
    none (None or negative).  Bad values raise naming ``fn`` and the argument."""
    spec = ACTIVATIONS[act]
    alpha = _number(fn, "alpha", spec.def_alpha if alpha is None else alpha)
    gain = _number(fn, "gain", spec.def_gain if gain is None else gain)
    clamp = -1.0 if clamp is None else _number(fn, "clamp", clamp)
    return alpha, gain, (clamp if clamp >= 0 else -1.0)


def bias_act(x: Tensor, b: Optional[Tensor] = None, dim: int = 1, act: str = "linear",
             alpha: Optional[float] = None, gain: Optional[float] = None,
             clamp: Optional[float] = None, impl: Optional[str] = None) -> Tensor:
    """Fused ``clamp(act(x + b, alpha) * gain, -clamp, clamp)``, b broadcast along ``dim``.

    Args:
        x: float16 / bfloat16 / float32 / float64 tensor of any rank >= 1, any layout (the output
            keeps a dense input's strides, e.g. channels_last).  Half types compute in float32.
        b: optional 1-D bias of length ``x.shape[dim]``, same dtype and device as x.
        dim: the dim of x the bias runs along.
        act: 'linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus' or 'swish'.
        alpha: lrelu's negative slope (default 0.2); the other acts ignore it (NVlabs semantics:
            elu uses 1, selu its standard constants).
        gain: output scale; default sqrt(2) for relu, lrelu and swish, 1 otherwise.
        clamp: clamp the output to [-clamp, clamp]; None or negative for no clamp.  The gradient
            is zero where the output saturated.
        impl: None (fastest available), 'ref', 'triton' or 'cuda'.

    Differentiable twice w.r.t. x and b on every backend.
    """
    dim = _check_inputs(x, b, dim, act)
    alpha, gain, clamp = epilogue_args("bias_act", act, alpha, gain, clamp)
    if impl is None and not os.environ.get("FASTGAN_IMPL", "").strip():
        impl = AUTO  # resolved per op inside each op, see _pick
    else:
        impl = resolve_impl(impl, x.device)
    return _bias_act_op(x, b, dim, act, alpha, gain, clamp, impl)


def fused_leaky_relu(x: Tensor, bias: Optional[Tensor] = None, negative_slope: float = 0.2,
                     scale: float = 2 ** 0.5, impl: Optional[str] = None) -> Tensor:
    """rosinality's ``fused_leaky_relu``: ``leaky_relu(x + bias, negative_slope) * scale`` with the
    bias along dim 1.  Unlike the original (which hard-codes 0.2 on CPU), negative_slope is
    honoured on every device and backend."""
    return bias_act(x, bias, dim=1, act="lrelu", alpha=negative_slope, gain=scale, impl=impl)


# NVlabs code calls the op as `bias_act.bias_act(...)` on the imported module; with
# `from fastgan.ops import bias_act` that spelling keeps working unchanged.
bias_act.bias_act = bias_act
