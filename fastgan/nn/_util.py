"""Helpers shared by the fastgan.nn layers: the compute dtype rule and the autocast guard.

Every layer follows one mixed-precision rule.  Its parameters are stored in float32; in forward
the activations are cast to the *compute dtype* (:func:`compute_dtype`) and the fastgan ops run
inside :func:`no_autocast`, so a registered custom op never sees a mix of dtypes chosen by
autocast.  The layer's output is in the compute dtype.
"""
from __future__ import annotations

import operator
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..ops.bias_act import ACTIVATIONS

__all__ = ["compute_dtype", "no_autocast", "scaled_param", "resolve_activation",
           "check_int", "check_float", "memory_format", "filter_buffer"]

# rosinality's names for the activations, and None, map onto fastgan.ops.bias_act's
_ACT_ALIASES = {None: "linear", "fused_lrelu": "lrelu", "fused_leaky_relu": "lrelu",
                "leaky_relu": "lrelu"}


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype a layer computes in for the input ``x``: the autocast dtype of x's device type
    when autocast is enabled there and x is float32, x's own dtype otherwise."""
    if x.dtype == torch.float32 and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def no_autocast(x: Tensor):
    """A context manager that disables autocast on x's device type."""
    return torch.autocast(x.device.type, enabled=False)


def scaled_param(p: Tensor, gain: float, dtype: torch.dtype) -> Tensor:
    """``p * gain`` in ``dtype``, the product taken in the wider of p's dtype and ``dtype`` (a
    float32 parameter is scaled in float32 before it is rounded to a half type; a float64 compute
    dtype keeps every bit).  ``gain == 1`` skips the multiplication."""
    wide = torch.promote_types(p.dtype, dtype)
    q = p.to(wide)
    if gain != 1:
        q = q * gain
    return q.to(dtype)


def resolve_activation(activation: Optional[str], cls: str) -> str:
    """The fastgan.ops.bias_act name of ``activation`` (also rosinality's 'fused_lrelu', and
    None for 'linear')."""
    act = _ACT_ALIASES.get(activation, activation) if activation is None or \
        isinstance(activation, str) else activation
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"{cls}: unknown activation {activation!r}; expected None, 'fused_lrelu' "
                         f"or one of {sorted(ACTIVATIONS)}")
    return act


def check_int(v, name: str, cls: str, minimum: int = 1) -> int:
    """v as a Python int when it is an integer >= minimum, else a ValueError.  Integer scalars of
    numpy and torch count (``operator.index``: sizes often come from arrays or configs); bools and
    floats do not."""
    i = None
    if not isinstance(v, bool) and not (isinstance(v, Tensor) and v.dtype == torch.bool):
        try:
            i = operator.index(v)
        except TypeError:
            pass
    if i is None or i < minimum:
        raise ValueError(f"{cls}: {name} must be an int >= {minimum}, got {v!r}")
    return i


def check_float(t: Tensor, name: str, cls: str) -> None:
    """A TypeError unless t is a floating-point tensor: an integer input would otherwise run
    integer math (the scaled weights truncated to zero) and return garbage quietly."""
    if not t.is_floating_point():
        raise TypeError(f"{cls}: {name} must be a floating-point tensor, got dtype {t.dtype}")


def memory_format(x: Tensor) -> torch.memory_format:
    """channels_last when x is channels_last (and not also NCHW-contiguous), else contiguous."""
    cl = torch.channels_last
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=cl):
        return torch.channels_last
    return torch.contiguous_format


def filter_buffer(resample_filter: Sequence[float]) -> Tensor:
    """The float32 FIR filter (fastgan.ops.setup_filter) the resampling layers register."""
    from ..ops.upfirdn2d import setup_filter

    return setup_filter(resample_filter)
