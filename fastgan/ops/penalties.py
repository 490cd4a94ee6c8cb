"""Gradient penalties for GAN training: R1, R2, WGAN-GP and StyleGAN2's path-length penalty.

    r1_penalty(D, x, *args, return_logits=False, **kwargs)
        mean_n || d D(x, *args).sum() / d x_n ||^2                       on real samples
    r2_penalty(D, x, *args, return_logits=False, **kwargs)
        the same, on fake samples
    wgan_gp_penalty(critic, real, fake, *args, generator=None, **kwargs)
        mean_n (|| d critic(x^).sum() / d x^_n ||_2 - 1)^2,  x^ = real + u (fake - real),
        u ~ U[0, 1] per sample
    path_length_penalty(img, ws, mean, decay=0.01, generator=None) -> (penalty, new_mean, pl_lengths)
    PathLengthPenalty(decay=0.01)
        the same, with the running mean as a buffer

No gamma / weight factor is applied: multiply by ``gamma / 2`` (R1, R2), ``lambda`` (WGAN-GP) or
``pl_weight`` yourself.  Norms are taken over every dim but the batch dim 0 and summed in float32
(float64 for float64 inputs), so a half-precision D gives a float32 penalty.

How they run: the inner gradient is taken with ``torch.autograd.grad(..., create_graph=True)``
w.r.t. the input only, so fastgan convolutions skip the weight gradients that pass does not need
(they ask autograd's engine, as PyTorch's own convolution does; no process-wide switch is set);
the penalty's own backward (``penalty.backward()``) then reaches D's (or G's) parameters with the
right second-order gradients.  D may be built from fastgan ops or plain PyTorch layers; anything
twice differentiable works.

They run eagerly.  ``torch.compile`` cannot differentiate a compiled graph twice, so:

* the penalty functions are excluded from compilation (``torch.compiler.disable``): called inside a
  compiled function they graph-break and run eagerly; under ``torch.compile(fullgraph=True)``
  dynamo reports the call as unsupported instead;
* D itself must be an eager module: a ``torch.compile``-d D raises torch's "does not currently
  support double backward" error at ``penalty.backward()``.

The caller's tensors are never modified: x, real and fake are detached and a fresh leaf that
requires grad is differentiated (D is handed a view of it).  ``path_length_penalty`` differentiates
w.r.t. the ws it is given, which must be part of img's graph.  Under ``torch.no_grad()`` the
penalties still compute (grad mode is switched on inside them); ``torch.inference_mode()``, which
autograd cannot run under, raises a RuntimeError.  Norms use ``torch.linalg.vector_norm``, whose
derivative at a zero gradient is 0, so a sample D ignores gives finite parameter gradients.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = ["r1_penalty", "r2_penalty", "wgan_gp_penalty", "path_length_penalty",
           "PathLengthPenalty"]


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_batch(fn: str, name: str, x: Any) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: {name} must be a floating-point tensor, got {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"{fn}: {name} must be batched, [N, ...] with at least 2 dims (e.g. "
                         f"[N, C, H, W]), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{fn}: {name} has an empty batch (shape {tuple(x.shape)})")


def _check_eager(fn: str) -> None:
    # Unreachable under plain torch.compile (the functions are compile-disabled), but other
    # tracers (torch.export, make_fx) land here.
    if torch.compiler.is_compiling():
        raise RuntimeError(f"{fn}: gradient penalties need a double backward, which compiled / "
                           "traced graphs do not support; call it eagerly, outside torch.compile")
    if torch.is_inference_mode_enabled():
        raise RuntimeError(f"{fn}: a gradient penalty needs autograd, which torch.inference_mode() "
                           "disables; call it outside inference mode (under torch.no_grad() it "
                           "works: grad mode is switched on inside)")


def _with_grad(f):
    """Run the penalty with grad mode on: it is a gradient by definition, so under
    ``torch.no_grad()`` (an evaluation loop that logs it) it is still computed, not refused."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        with torch.enable_grad():
            return f(*args, **kwargs)
    return wrapper


def _input_grad(fn: str, what: str, out: Any, x: Tensor) -> Tensor:
    """d out.sum() / d x with create_graph=True (fastgan convs skip the weight gradients that this
    pass does not use: the engine is asked, no switch needed)."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{fn}: {what} must return a torch.Tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise ValueError(f"{fn}: the output of {what} does not depend on its input (it does not "
                         "require grad); the gradient penalty is undefined")
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True, allow_unused=True)
    if g is None:
        raise ValueError(f"{fn}: the output of {what} does not depend on its input x (the gradient "
                         "w.r.t. x is None); the gradient penalty is undefined")
    return g


def _sq_norms(g: Tensor) -> Tensor:
    """||g_n||^2 per sample n, accumulated in float32 (float64 for float64)."""
    return g.to(_acc_dtype(g.dtype)).square().flatten(1).sum(1)


def _norms(g: Tensor) -> Tensor:
    """||g_n||_2 per sample n in float32 (float64 for float64).  ``vector_norm`` rather than
    ``sqrt(sum(g^2))``: its derivative at g_n = 0 (a dead-ReLU or masked sample) is the zero
    subgradient, where sqrt's infinite slope times 0 would put NaN in every parameter gradient."""
    return torch.linalg.vector_norm(g.to(_acc_dtype(g.dtype)).flatten(1), dim=1)


def _grad_penalty(fn: str, D: Callable, x: Tensor, args, kwargs, return_logits: bool):
    _check_eager(fn)
    _check_batch(fn, "x", x)
    if not callable(D):
        raise TypeError(f"{fn}: D must be callable (a module or function), got {type(D).__name__}")
    x = x.detach().requires_grad_(True)
    logits = D(x, *args, **kwargs)
    penalty = _sq_norms(_input_grad(fn, "D", logits, x)).mean()
    return (penalty, logits) if return_logits else penalty


@torch.compiler.disable
@_with_grad
def r1_penalty(D: Callable, x: Tensor, *args, return_logits: bool = False, **kwargs):
    """R1 penalty on real samples: ``mean_n || d D(x, *args, **kwargs).sum() / d x_n ||^2``.

    Args:
        D: the discriminator, any callable; ``D(x, *args, **kwargs)`` returns the logits (any
            shape; they are summed).
        x: real samples ``[N, ...]``.  Detached internally: the caller's tensor is not modified
            and no gradient flows back into it.
        return_logits: also return the logits of this forward pass, so the caller can build the
            discriminator loss from them and save a second forward (as NVlabs does)::

                penalty, logits = r1_penalty(D, reals, c, return_logits=True)
                loss = F.softplus(-logits).mean() + gamma / 2 * penalty
                loss.backward()

            The logits are attached to D's graph and were computed from the detached x.

    Returns the penalty, a scalar tensor (float32 for half-precision x), or (penalty, logits).
    Raises ValueError if D's output does not depend on x.
    """
    return _grad_penalty("r1_penalty", D, x, args, kwargs, return_logits)


@torch.compiler.disable
@_with_grad
def r2_penalty(D: Callable, x: Tensor, *args, return_logits: bool = False, **kwargs):
    """R2 penalty on fake samples: the same computation as :func:`r1_penalty`, at generated
    samples.  x (e.g. ``G(z)``) is detached internally: the penalty regularises D only and no
    gradient reaches the generator through it."""
    return _grad_penalty("r2_penalty", D, x, args, kwargs, return_logits)


@torch.compiler.disable
@_with_grad
def wgan_gp_penalty(critic: Callable, real: Tensor, fake: Tensor, *args,
                    generator: Optional[torch.Generator] = None, **kwargs) -> Tensor:
    """WGAN-GP: ``mean_n (|| d critic(x^).sum() / d x^_n ||_2 - 1)^2`` at the interpolates
    ``x^ = real + u * (fake - real)``, ``u ~ U[0, 1]`` drawn once per sample.

    Args:
        critic: ``critic(x^, *args, **kwargs)`` returns the scores (any shape; they are summed).
        real, fake: ``[N, ...]`` of the same shape, dtype and device; both are detached first
            (the penalty regularises the critic only).
        generator: optional ``torch.Generator`` (on real's device) for u, for reproducibility.

    Returns the penalty, a scalar tensor (float32 for half-precision inputs).
    """
    fn = "wgan_gp_penalty"
    _check_eager(fn)
    _check_batch(fn, "real", real)
    _check_batch(fn, "fake", fake)
    if real.shape != fake.shape:
        raise ValueError(f"{fn}: real and fake must have the same shape, got {tuple(real.shape)} "
                         f"and {tuple(fake.shape)}")
    if real.dtype != fake.dtype:
        raise TypeError(f"{fn}: real and fake must have the same dtype, got {real.dtype} and "
                        f"{fake.dtype}")
    if real.device != fake.device:
        raise ValueError(f"{fn}: real and fake must be on the same device, got {real.device} and "
                         f"{fake.device}")
    if not callable(critic):
        raise TypeError(f"{fn}: critic must be callable, got {type(critic).__name__}")
    real, fake = real.detach(), fake.detach()
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    u = torch.rand(shape, generator=generator, device=real.device,
                   dtype=_acc_dtype(real.dtype)).to(real.dtype)
    x = (real + u * (fake - real)).requires_grad_(True)
    g = _input_grad(fn, "critic", critic(x, *args, **kwargs), x)
    return (_norms(g) - 1).square().mean()


@torch.compiler.disable
@_with_grad
def path_length_penalty(img: Tensor, ws: Tensor, mean: Union[Tensor, float], decay: float = 0.01,
                        generator: Optional[torch.Generator] = None
                        ) -> Tuple[Tensor, Tensor, Tensor]:
    """StyleGAN2's path-length penalty.

    Args:
        img: generated images ``[N, C, H, W]``, computed from ``ws`` (not detached).
        ws: the latents the images came from, ``[N, num_ws, w_dim]`` or ``[N, w_dim]``; they must
            require grad and be part of img's graph (unlike the other penalties, ws is not
            detached here: the gradient is taken w.r.t. this very tensor).
        mean: the running mean of the path lengths (scalar tensor or float).
        decay: the running mean's update rate.
        generator: optional ``torch.Generator`` (on img's device) for the noise.

    Computes, as NVlabs does::

        pl_noise   = randn_like(img) / sqrt(H * W)
        pl_grads   = grad((img * pl_noise).sum(), ws, create_graph=True)
        pl_lengths = pl_grads.square().sum(-1).mean(1).sqrt()     # 2-D ws: .sum(-1).sqrt()
        new_mean   = mean.lerp(pl_lengths.mean(), decay)
        penalty    = (pl_lengths - new_mean).square().mean()

    (``new_mean`` inside the penalty keeps its gradient through ``pl_lengths.mean()``, as in
    NVlabs' code.)  Returns ``(penalty, new_mean, pl_lengths)``: the scalar penalty (float32 for
    half-precision img), and the detached new running mean and per-sample path lengths (store the
    former as the next ``mean``; log the latter).
    """
    fn = "path_length_penalty"
    _check_eager(fn)
    if not isinstance(img, Tensor) or not isinstance(ws, Tensor):
        raise TypeError(f"{fn}: img and ws must be torch.Tensors, got {type(img).__name__} and "
                        f"{type(ws).__name__}")
    if img.dim() != 4:
        raise ValueError(f"{fn}: img must be 4-D [N, C, H, W], got shape {tuple(img.shape)}")
    if ws.dim() not in (2, 3):
        raise ValueError(f"{fn}: ws must be [N, num_ws, w_dim] or [N, w_dim], "
                         f"got shape {tuple(ws.shape)}")
    if not img.is_floating_point() or not ws.is_floating_point():
        raise TypeError(f"{fn}: img and ws must be floating-point, got {img.dtype} and {ws.dtype}")
    if ws.shape[0] != img.shape[0] or img.shape[0] == 0:
        raise ValueError(f"{fn}: img and ws must have the same non-empty batch, got shapes "
                         f"{tuple(img.shape)} and {tuple(ws.shape)}")
    if ws.device != img.device:
        raise ValueError(f"{fn}: img and ws must be on the same device, got {img.device} and "
                         f"{ws.device}")
    if not ws.requires_grad:
        raise ValueError(f"{fn}: ws does not require grad: pass the ws the images were generated "
                         "from, with requires_grad=True")
    if not isinstance(decay, (int, float)) or isinstance(decay, bool) or not 0 <= decay <= 1:
        raise ValueError(f"{fn}: decay must be a number in [0, 1], got {decay!r}")
    acc = _acc_dtype(img.dtype)
    h, w = img.shape[2], img.shape[3]
    noise = torch.randn(img.shape, generator=generator, device=img.device, dtype=acc)
    noise = (noise / math.sqrt(h * w)).to(img.dtype)
    g = _input_grad(fn, "the generator (img)", img * noise, ws)
    # sqrt(mean_i sum_j g^2) = ||g_n|| / sqrt(num_ws), by vector_norm (finite gradient at 0)
    lengths = _norms(g)
    if ws.dim() == 3:
        lengths = lengths / math.sqrt(ws.shape[1])
    mean = torch.as_tensor(mean, dtype=acc, device=img.device).detach()
    if mean.numel() != 1:
        raise ValueError(f"{fn}: mean must be a scalar, got shape {tuple(mean.shape)}")
    new_mean = mean.reshape(()).lerp(lengths.mean(), float(decay))
    penalty = (lengths - new_mean).square().mean()
    return penalty, new_mean.detach(), lengths.detach()


class PathLengthPenalty(torch.nn.Module):
    """:func:`path_length_penalty` with the running mean kept as a buffer (``pl_mean``, float32;
    saved in the state dict).  ``forward(img, ws, generator=None)`` returns the penalty and updates
    the buffer (detached, under no_grad); the latest per-sample lengths are in ``last_lengths``."""

    def __init__(self, decay: float = 0.01):
        super().__init__()
        if not isinstance(decay, (int, float)) or isinstance(decay, bool) or not 0 <= decay <= 1:
            raise ValueError(f"PathLengthPenalty: decay must be a number in [0, 1], got {decay!r}")
        self.decay = float(decay)
        self.register_buffer("pl_mean", torch.zeros(()))
        self.last_lengths: Optional[Tensor] = None

    def forward(self, img: Tensor, ws: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        penalty, new_mean, lengths = path_length_penalty(img, ws, self.pl_mean, self.decay,
                                                         generator=generator)
        with torch.no_grad():
            self.pl_mean.copy_(new_mean)
        self.last_lengths = lengths
        return penalty

    def extra_repr(self) -> str:
        return f"decay={self.decay}"
