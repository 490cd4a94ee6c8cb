"""StyleGAN2's mapping network z (+ c) -> w (NVlabs ``MappingNetwork`` semantics)."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from ._util import check_int, no_autocast
from .equalized import EqualLinear

__all__ = ["MappingNetwork", "normalize_2nd_moment"]


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x * rsqrt(mean(x^2, dim) + eps)`` (rosinality's ``PixelNorm``)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def _is_finite_number(v) -> bool:
    try:
        return math.isfinite(v)
    except TypeError:
        return False


def _shape(t) -> object:
    return tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__


class MappingNetwork(nn.Module):
    """The StyleGAN2 mapping network (NVlabs ``MappingNetwork``; rosinality's ``style`` MLP).

        x = normalize_2nd_moment(z)                              (z_dim > 0 and normalize_z)
        x = cat([x, normalize_2nd_moment(embed(c))], 1)          (c_dim > 0)
        x = layers[num_layers - 1](... layers[0](x))             (EqualLinear, 'lrelu')
        w_avg <- lerp(mean(x, 0), w_avg, w_avg_beta)             (update_emas, no grad)
        x = x[:, None].repeat(1, num_ws, 1)                      (num_ws given)
        x[:, :truncation_cutoff] = w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
                                                                 (psi != 1; all ws if cutoff None)

    Always computes in float32 (float64 when z is float64), also under autocast; the output is
    float32 (float64).

    Args:
        z_dim, c_dim, w_dim: latent, conditioning-label and intermediate latent sizes (z_dim or
            c_dim may be 0, not both).
        num_ws: broadcast the output to ``[N, num_ws, w_dim]`` (None: ``[N, w_dim]``).
        num_layers: depth of the MLP.
        lr_multiplier: learning-rate multiplier of the MLP layers (not of ``embed``).
        w_avg_beta: decay of the running average of w (None: no tracking; update_emas is ignored).
        layer_features: hidden width (default w_dim).
        embed_features: width of the label embedding (default w_dim if c_dim else 0).
        normalize_z: normalise z's second moment first (NVlabs and rosinality do).
        impl: backend of :func:`fastgan.ops.bias_act` in every layer.

    Shapes: z ``[N, z_dim]`` (ignored, may be None, when z_dim == 0), c ``[N, c_dim]`` (required
    iff c_dim > 0; None or ``[N, 0]`` otherwise) -> ``[N, w_dim]`` or ``[N, num_ws, w_dim]``.

    State dict: ``embed.weight`` ``[embed_features, c_dim]``, ``embed.bias`` (when c_dim > 0);
    ``layers.{i}.weight`` ``[out_i, in_i]`` (randn / lr_multiplier), ``layers.{i}.bias``
    (zeros); ``w_avg`` ``[w_dim]`` zeros (persistent buffer).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: Optional[int] = None,
                 num_layers: int = 8, lr_multiplier: float = 0.01,
                 w_avg_beta: Optional[float] = 0.995, layer_features: Optional[int] = None,
                 embed_features: Optional[int] = None, normalize_z: bool = True,
                 impl: Optional[str] = None):
        super().__init__()
        cls = type(self).__name__
        self.z_dim = check_int(z_dim, "z_dim", cls, minimum=0)
        self.c_dim = check_int(c_dim, "c_dim", cls, minimum=0)
        self.w_dim = check_int(w_dim, "w_dim", cls)
        self.num_ws = None if num_ws is None else check_int(num_ws, "num_ws", cls)
        self.num_layers = check_int(num_layers, "num_layers", cls)
        self.w_avg_beta = None if w_avg_beta is None else float(w_avg_beta)
        self.normalize_z = bool(normalize_z)
        self.impl = impl
        z_dim, c_dim, w_dim, num_layers = self.z_dim, self.c_dim, self.w_dim, self.num_layers
        if embed_features is None:
            embed_features = w_dim if c_dim else 0
        if layer_features is None:
            layer_features = w_dim
        self.embed_features = check_int(embed_features, "embed_features", cls,
                                        minimum=1 if c_dim else 0)
        self.layer_features = check_int(layer_features, "layer_features", cls)
        embed_features, layer_features = self.embed_features, self.layer_features
        if z_dim + (embed_features if c_dim else 0) == 0:
            raise ValueError(f"{cls}: z_dim and c_dim are both 0: the network has no input")

        self.embed = EqualLinear(c_dim, embed_features, impl=impl) if c_dim > 0 else None
        features = ([z_dim + (embed_features if c_dim else 0)]
                    + [layer_features] * (num_layers - 1) + [w_dim])
        self.layers = nn.ModuleList(
            EqualLinear(features[i], features[i + 1], activation="lrelu",
                        lr_multiplier=lr_multiplier, impl=impl)
            for i in range(num_layers))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def _check_inputs(self, z, c) -> None:
        cls = type(self).__name__
        if self.z_dim > 0:
            if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"{cls}: z must be [N, z_dim={self.z_dim}], got {_shape(z)}")
            n = z.shape[0]
        elif z is not None and (not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != 0):
            raise ValueError(f"{cls}: z_dim is 0: z must be None or [N, 0], got {_shape(z)}")
        else:
            n = None if z is None else z.shape[0]
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"{cls}: c_dim is {self.c_dim}: c [N, {self.c_dim}] is required")
            if not isinstance(c, Tensor) or c.dim() != 2 or c.shape[1] != self.c_dim or \
                    (n is not None and c.shape[0] != n):
                nn_ = "N" if n is None else f"N={n}"
                want = f"[{nn_}, c_dim={self.c_dim}]"
                raise ValueError(f"{cls}: c must be {want}, got {_shape(c)}")
        elif c is not None and (not isinstance(c, Tensor) or c.dim() != 2 or c.shape[1] != 0):
            raise ValueError(f"{cls}: c_dim is 0: c must be None or [N, 0], got {_shape(c)}")

    def forward(self, z: Optional[Tensor], c: Optional[Tensor] = None,
                truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None,
                update_emas: bool = False) -> Tensor:
        self._check_inputs(z, c)
        if not isinstance(truncation_psi, Tensor) and not _is_finite_number(truncation_psi):
            # nan / inf would turn every w (and so every image) into nan
            raise ValueError(f"{type(self).__name__}: truncation_psi must be a finite number, "
                             f"got {truncation_psi!r}")
        if truncation_cutoff is not None:
            truncation_cutoff = check_int(truncation_cutoff, "truncation_cutoff",
                                          type(self).__name__, minimum=0)
        ref = z if self.z_dim > 0 else c
        dt = torch.float64 if ref.dtype == torch.float64 else torch.float32
        with no_autocast(ref):
            x = None
            if self.z_dim > 0:
                x = z.to(dt)
                if self.normalize_z:
                    x = normalize_2nd_moment(x)
            if self.c_dim > 0:
                y = normalize_2nd_moment(self.embed(c.to(dt)))
                x = y if x is None else torch.cat([x, y], dim=1)
            for layer in self.layers:
                x = layer(x)

            # an empty batch has no mean (nan), which would stay in w_avg for good
            if update_emas and self.w_avg_beta is not None and x.shape[0] > 0:
                with torch.no_grad():
                    self.w_avg.copy_(x.detach().mean(0).to(self.w_avg.dtype)
                                     .lerp(self.w_avg, self.w_avg_beta))

            if self.num_ws is not None:
                x = x.unsqueeze(1).repeat(1, self.num_ws, 1)

            if truncation_psi != 1:
                w_avg = self.w_avg.to(x.dtype)
                if self.num_ws is None or truncation_cutoff is None:
                    x = w_avg.lerp(x, truncation_psi)
                else:
                    k = truncation_cutoff
                    x = torch.cat([w_avg.lerp(x[:, :k], truncation_psi), x[:, k:]], dim=1)
            return x

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, "
                f"num_ws={self.num_ws}, num_layers={self.num_layers}, "
                f"w_avg_beta={self.w_avg_beta}")
