"""Adaptive instance normalisation: ``adain(x, gamma, beta, eps=1e-5)`` (StyleGAN1 style modulation).

Per sample n and channel c, over the M = H * W pixels of the plane x[n, c]::

    mean = sum(x) / M      var = sum((x - mean)^2) / M  (biased)      rstd = 1 / sqrt(var + eps)
    y    = gamma[n, c] * (x - mean) * rstd + beta[n, c]

Autograd story (two registered ops and a torch-op formula):

* ``fastgan::adain``  (x, gamma, beta) -> (y, mean, rstd).  The statistics ([N, C], float32;
  float64 for float64 x) are outputs so that autograd saves them: the backward needs x, gamma, mean
  and rstd -- never x_hat, which would be a second full-size tensor.  Its backward is
  ``adain_backward`` for y's gradient plus the chain rule of mean and rstd w.r.t. x for theirs
  (torch ops; nonzero only in higher-order passes, see below).
* ``fastgan::adain_backward``  (dy, x, gamma, mean, rstd) -> (dx, dgamma, dbeta), fused: one
  reduction pass for sum(dy) and sum(dy * (x - mean)) per plane, one elementwise pass for
  ``dx = gamma * rstd * (dy - mean(dy) - x_hat * mean(dy * x_hat))``; dgamma = sum(dy * x_hat),
  dbeta = sum(dy).  mean and rstd are independent inputs of this op (their dependence on x is the
  forward's business), so each of its partial derivatives is exact and it passes gradcheck alone.
* the backward of ``adain_backward``: its exact partial derivatives w.r.t. (dy, x, gamma, mean,
  rstd), written with differentiable torch ops (float32 compute for half types).  The mean / rstd
  parts flow into the forward's backward, which carries them to x.  So second-order gradients
  (R1, WGAN-GP, path-length penalties with create_graph=True) -- and any higher order -- work on
  every backend, the fused kernels serving the forward and the first backward.

Backends: ``'ref'`` (torch; two-pass mean and variance), ``'triton'``
(``fastgan.kernels.adain``) and ``'cuda'`` (``torch.ops.fastgan_cuda.adain_forward`` /
``adain_backward`` from csrc/adain.cu); see kernels/adain.py for the shared contract.  x of any
strides: NCHW- or channels_last-dense tensors are used as they are (the output keeps the layout),
anything else is made contiguous first.

Precision: every backend computes the statistics on values shifted by the plane's first pixel, so
the forward keeps the precision of the spread when |mean| >> std (a constant plane gives exactly
beta).  The backward takes the stored mean as given: its x - mean carries mean's rounding
(~|mean| * 2^-24 in float32), as torch's instance_norm does; use float64 for planes whose
|mean| / std approaches 1e5.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ._custom_op import custom_op
from ._backend import cuda_ext_has_ops, fallback_if_ext_lacks_op, resolve_impl

__all__ = ["adain"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _compute_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _dense4(x: Tensor) -> Tensor:
    """x itself when NCHW- or channels_last-dense (what the kernels take), else a contiguous copy."""
    if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
        return x
    return x.contiguous()


def _as_layout(t: Tensor, like: Tensor) -> Tensor:
    """``t`` with exactly ``like``'s strides (``like`` is dense), copying only when needed."""
    if t.stride() == like.stride():
        return t
    return torch.empty_like(like).copy_(t)


def _plane(t: Tensor) -> Tensor:
    """[N, C] -> [N, C, 1, 1] for broadcasting against a plane tensor."""
    return t[:, :, None, None]


# --------------------------------------------------------------------------------------------
# reference (pure PyTorch)
# --------------------------------------------------------------------------------------------

def _ref_forward(x, gamma, beta, eps):
    cdt = _compute_dtype(x.dtype)
    # Two passes (mean, then the mean square of the centred values, which y needs anyway), on
    # values shifted by each plane's first pixel k as the kernels do: the centred values then keep
    # the precision of the spread, not of the mean (|mean| >> std: a constant 1234.567 plane
    # gives exactly beta, where x - float32(mean) would not be 0).  On CPU 6-17x faster than
    # torch.var_mean over (2, 3).
    k = x[:, :, :1, :1].to(cdt)
    d = x.to(cdt) - k            # a fresh tensor (x is never written)
    m = d.mean((2, 3))
    d.sub_(_plane(m))
    rstd = torch.rsqrt((d * d).mean((2, 3)) + eps)
    y = d.mul_(_plane(rstd * gamma.to(cdt))).add_(_plane(beta.to(cdt)))
    return y, m + k[:, :, 0, 0], rstd


def _ref_backward(dy, x, gamma, mean, rstd):
    cdt = mean.dtype
    m = x.shape[2] * x.shape[3]
    xhat = (x.to(cdt) - _plane(mean)) * _plane(rstd)
    g = dy.to(cdt)
    sdy = g.sum((2, 3))
    sdyx = (g * xhat).sum((2, 3))
    dx = _plane(gamma.to(cdt) * rstd) * (g - _plane(sdy / m) - xhat * _plane(sdyx / m))
    return dx, sdyx, sdy


def _into(out: Tensor, v: Tensor) -> Tensor:
    """v in out's dtype and strides (v is a fresh tensor: returned as is when it already fits)."""
    if v.dtype == out.dtype and v.stride() == out.stride():
        return v
    return out.copy_(v)


# --------------------------------------------------------------------------------------------
# backend launch
# --------------------------------------------------------------------------------------------

def _launch_forward(impl, x, gamma, beta, eps):
    xk = _dense4(x)
    n, c = x.shape[:2]
    y = torch.empty_like(xk)
    cdt = _compute_dtype(x.dtype)
    mean = torch.empty((n, c), dtype=cdt, device=x.device)
    rstd = torch.empty((n, c), dtype=cdt, device=x.device)
    if y.numel() == 0:  # N * C == 0 (H * W >= 1 is checked)
        return y, mean, rstd
    if impl == "ref":
        v, mean, rstd = _ref_forward(xk, gamma, beta, eps)
        return _into(y, v), mean, rstd
    gamma, beta = gamma.contiguous(), beta.contiguous()
    if impl == "cuda":
        torch.ops.fastgan_cuda.adain_forward(y, mean, rstd, xk, gamma, beta, float(eps))
    else:
        from fastgan.kernels.adain import adain_forward_triton

        adain_forward_triton(y, mean, rstd, xk, gamma, beta, float(eps))
    return y, mean, rstd


def _launch_backward(impl, dy, x, gamma, mean, rstd, beta_dtype):
    xk = _dense4(x)
    dx = torch.empty_like(xk)
    if impl == "ref" or dx.numel() == 0:  # (N * C == 0: empty sums, no kernel launch)
        v, dgamma, dbeta = _ref_backward(dy, xk, gamma, mean, rstd)
        return _into(dx, v), dgamma.to(gamma.dtype), dbeta.to(beta_dtype)
    dy = _as_layout(dy, xk)
    n, c = x.shape[:2]
    dgamma = torch.empty((n, c), dtype=gamma.dtype, device=x.device)
    dbeta = torch.empty((n, c), dtype=beta_dtype, device=x.device)
    gamma, mean, rstd = gamma.contiguous(), mean.contiguous(), rstd.contiguous()
    if impl == "cuda":
        torch.ops.fastgan_cuda.adain_backward(dx, dgamma, dbeta, dy, xk, gamma, mean, rstd)
    else:
        from fastgan.kernels.adain import adain_backward_triton

        adain_backward_triton(dx, dgamma, dbeta, dy, xk, gamma, mean, rstd)
    return dx, dgamma, dbeta


def _cuda_ext_has_op() -> bool:
    """Whether the loaded fastgan._C registers the adain ops (an older build may not)."""
    return cuda_ext_has_ops("adain_forward", "adain_backward")


# impl=None on CUDA: Triton first.  Provisional: neither kernel has run on a GPU yet; the CUDA one is
# verified by host emulation (tests/test_adain_csrc_emulation.py) and compile checks, the Triton one
# by the interpreter, so the backend with fewer untested moving parts (no hand-written launch
# arithmetic) goes first until the GPU tier and benchmark decide.
_AUTO_ORDER = ("triton", "cuda", "ref")


def _resolve(impl: Optional[str], device: torch.device) -> str:
    """:func:`resolve_impl` (triton, cuda, ref on CUDA tensors); a stale CUDA extension without adain
    counts as unavailable (skipped when chosen automatically, an error when asked for)."""
    return fallback_if_ext_lacks_op(resolve_impl(impl, device, prefer=_AUTO_ORDER), impl, device,
                                    _cuda_ext_has_op(), "adain (it predates this op)")


# --------------------------------------------------------------------------------------------
# registered ops
# --------------------------------------------------------------------------------------------

@custom_op("fastgan::adain")
def _adain_op(x: Tensor, gamma: Tensor, beta: Tensor, eps: float,
              impl: str) -> tuple[Tensor, Tensor, Tensor]:
    return _launch_forward(impl, x, gamma, beta, eps)


@_adain_op.register_fake
def _(x, gamma, beta, eps, impl):
    n, c = x.shape[:2]
    cdt = _compute_dtype(x.dtype)
    return (torch.empty_like(_dense4(x)), x.new_empty((n, c), dtype=cdt),
            x.new_empty((n, c), dtype=cdt))


@custom_op("fastgan::adain_backward")
def _adain_backward_op(dy: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, rstd: Tensor,
                       beta_dtype: torch.dtype, impl: str) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dgamma, dbeta): dx in x's dtype and (dense) layout, dgamma in gamma's dtype, dbeta in
    ``beta_dtype``, both [N, C]."""
    return _launch_backward(impl, dy, x, gamma, mean, rstd, beta_dtype)


@_adain_backward_op.register_fake
def _(dy, x, gamma, mean, rstd, beta_dtype, impl):
    n, c = x.shape[:2]
    return (torch.empty_like(_dense4(x)), gamma.new_empty((n, c)),
            gamma.new_empty((n, c), dtype=beta_dtype))


def _stats_grad(x, mean, rstd, dmean, drstd):
    """d/dx of <dmean, mean(x)> + <drstd, rstd(x)> (compute type):
    dmean / M + drstd * (-rstd^2 * x_hat / M), since d rstd / dx = -rstd^3 (x - mean) / M."""
    cdt = mean.dtype
    m = x.shape[2] * x.shape[3]
    out = None
    if dmean is not None:
        out = _plane(dmean.to(cdt) / m).expand(x.shape)
    if drstd is not None:
        r = _plane(rstd)
        t = (x.to(cdt) - _plane(mean)) * (r * r * r * _plane(drstd.to(cdt)) * (-1.0 / m))
        out = t if out is None else out + t
    return out


# forward -> adain_backward (+ the statistics' chain rule)
def _setup_fwd(ctx, inputs, output):
    x, gamma, beta, eps, impl = inputs
    _, mean, rstd = output
    ctx.set_materialize_grads(False)  # mean / rstd gradients exist only in higher-order passes
    ctx.impl = impl
    ctx.beta_dtype = beta.dtype
    ctx.save_for_backward(x, gamma, mean, rstd)


def _backward_fwd(ctx, dy, dmean, drstd):
    x, gamma, mean, rstd = ctx.saved_tensors
    dx = dgamma = dbeta = None
    if dy is not None:
        dx, dgamma, dbeta = _adain_backward_op(dy, x, gamma, mean, rstd, ctx.beta_dtype, ctx.impl)
    if (dmean is not None or drstd is not None) and ctx.needs_input_grad[0]:
        t = _stats_grad(x, mean, rstd, dmean, drstd)
        dx = t.to(x.dtype) if dx is None else (dx.to(t.dtype) + t).to(x.dtype)
    return dx, dgamma, dbeta, None, None


_adain_op.register_autograd(_backward_fwd, setup_context=_setup_fwd)


# adain_backward -> torch ops (differentiable to any order)
def _setup_bwd(ctx, inputs, output):
    dy, x, gamma, mean, rstd, beta_dtype, impl = inputs
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(dy, x, gamma, mean, rstd)


def _backward_bwd(ctx, g_dx, g_dgamma, g_dbeta):
    """Partial derivatives of L2 = <G, dx> + <gg, dgamma> + <gb, dbeta> (G = g_dx, gg = g_dgamma,
    gb = g_dbeta) w.r.t. dy, x, gamma, mean, rstd, with x_hat = (x - mean) r, a = mean(dy),
    b = mean(dy x_hat), c = mean(G x_hat), P(v) = v - mean(v) - x_hat mean(v x_hat):

        dL2/ddy    = gamma r P(G) + gg x_hat + gb
        dL2/dgamma = r sum(G (dy - a - x_hat b))
        H := dL2/dx_hat (r held fixed) = -gamma r (b G + c dy) + gg dy
        dL2/dx     = r H               dL2/dmean = -r sum(H)
        dL2/drstd  = gamma sum(G (dy - a - x_hat b)) + sum(H (x - mean))
    """
    dy, x, gamma, mean, rstd = ctx.saved_tensors
    need_dy, need_x, need_gamma, need_mean, need_rstd = ctx.needs_input_grad[:5]
    cdt = mean.dtype
    r = _plane(rstd)
    gam = _plane(gamma.to(cdt))
    xm = x.to(cdt) - _plane(mean)
    xhat = xm * r
    g = dy.to(cdt)
    b = _plane((g * xhat).mean((2, 3)))
    d_dy = d_x = d_gamma = d_mean = d_rstd = None
    acc_dy = []
    h = None
    s_r = None  # sum(G (dy - a - x_hat b)) per plane
    if g_dx is not None:
        G = g_dx.to(cdt)
        c = _plane((G * xhat).mean((2, 3)))
        if need_dy:
            acc_dy.append(gam * r * (G - _plane(G.mean((2, 3))) - xhat * c))
        if need_gamma or need_rstd:
            a = _plane(g.mean((2, 3)))
            s_r = (G * (g - a - xhat * b)).sum((2, 3))
        if need_x or need_mean or need_rstd:
            h = -gam * r * (b * G + c * g)
    if g_dgamma is not None:
        gg = _plane(g_dgamma.to(cdt))
        if need_dy:
            acc_dy.append(gg * xhat)
        if need_x or need_mean or need_rstd:
            h = gg * g if h is None else h + gg * g
    if g_dbeta is not None and need_dy:
        acc_dy.append(_plane(g_dbeta.to(cdt)).expand(x.shape))
    if need_dy and acc_dy:
        t = acc_dy[0]
        for u in acc_dy[1:]:
            t = t + u
        d_dy = t.to(dy.dtype)
    if need_gamma and s_r is not None:
        d_gamma = (rstd * s_r).to(gamma.dtype)
    if h is not None:
        if need_x:
            d_x = (r * h).to(x.dtype)
        if need_mean:
            d_mean = (-rstd * h.sum((2, 3))).to(mean.dtype)
        if need_rstd:
            t = (h * xm).sum((2, 3))
            d_rstd = (t if s_r is None else t + gamma.to(cdt) * s_r).to(rstd.dtype)
    elif need_rstd and s_r is not None:
        d_rstd = (gamma.to(cdt) * s_r).to(rstd.dtype)
    return d_dy, d_x, d_gamma, d_mean, d_rstd, None, None


_adain_backward_op.register_autograd(_backward_bwd, setup_context=_setup_bwd)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def _check_inputs(x, gamma, beta, eps):
    if not isinstance(x, Tensor):
        raise TypeError(f"adain: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"adain: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if x.dim() != 4:
        raise ValueError(f"adain: x must be 4-D [N, C, H, W], got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if h * w < 1:
        raise ValueError(f"adain: x must have at least one pixel per plane (H * W >= 1), got "
                         f"shape {tuple(x.shape)}")
    for name, t in (("gamma", gamma), ("beta", beta)):
        if not isinstance(t, Tensor):
            raise TypeError(f"adain: {name} must be a torch.Tensor, got {type(t).__name__}")
        if tuple(t.shape) != (n, c):
            raise ValueError(f"adain: {name} must have shape [N, C] = [{n}, {c}] for x of shape "
                             f"{tuple(x.shape)}, got {tuple(t.shape)}")
        if t.dtype not in (x.dtype, torch.float32):
            allowed = "float32" if x.dtype == torch.float32 else f"x's dtype ({x.dtype}) or float32"
            raise TypeError(f"adain: {name} must be {allowed}, got {t.dtype}")
        if t.device != x.device:
            raise ValueError(f"adain: {name} must be on x's device {x.device}, got {t.device}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"adain: eps must be a float, got {type(eps).__name__}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"adain: eps must be a finite float > 0, got {eps}")


def adain(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5,
          impl: Optional[str] = None) -> Tensor:
    """Adaptive instance normalisation: ``gamma * (x - mean) / sqrt(var + eps) + beta``.

    Args:
        x: [N, C, H, W] float16 / bfloat16 / float32 / float64, any layout (NCHW or channels_last
            dense inputs keep their layout in the output; other strides are made contiguous).
            mean and the biased variance are taken per (n, c) over the H * W pixels; half types
            compute in float32.
        gamma, beta: [N, C] scale and shift, x's dtype or float32, on x's device (StyleGAN1:
            gamma = 1 + style scale).
        eps: added to the variance, > 0.
        impl: None (the preferred available backend: triton, cuda, ref on CUDA tensors; ref on
            CPU), 'ref', 'triton' or 'cuda'.

    Returns y with x's shape and dtype.  Differentiable w.r.t. x, gamma and beta to second (and
    higher) order on every backend.
    """
    _check_inputs(x, gamma, beta, eps)
    impl = _resolve(impl, x.device)
    return _adain_op(x, gamma, beta, float(eps), impl)[0]


# For tests and callers that want the statistics too.
def adain_with_stats(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5,
                     impl: Optional[str] = None) -> tuple[Tensor, Tensor, Tensor]:
    """(y, mean, rstd) -- mean and rstd [N, C] in the compute type (float32, float64 for float64
    x); differentiable like y."""
    _check_inputs(x, gamma, beta, eps)
    impl = _resolve(impl, x.device)
    return _adain_op(x, gamma, beta, float(eps), impl)

