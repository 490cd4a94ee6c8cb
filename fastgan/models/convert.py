"""Bring pretrained rosinality/stylegan2-pytorch checkpoints to :mod:`fastgan.models.stylegan2`.

rosinality's ``train.py`` saves ``{"g": ..., "d": ..., "g_ema": ..., "args": ..., ...}`` (its
``convert_weight.py`` adds ``"latent_avg"``); :func:`load_rosinality` takes such a file or dict, or a
bare state dict, and returns our model with identical outputs (same z -> same image, up to float
rounding; same image -> same logit).  The architecture (resolution, channels, mapping depth,
image channels, FIR filter) is read from the tensor shapes.

Generator key mapping (``r = 8 * 2**j``; rosinality -> fastgan)::

    style.{k}.weight / .bias                  -> mapping.layers.{k-1}.weight / .bias   (k = 1..n_mlp)
    latent_avg (checkpoint, optional)         -> mapping.w_avg   (else the mean of 4096 mapped z)
    input.input                [1, C, 4, 4]   -> synthesis.b4.const.input
    conv1.conv.weight    [1, O, I, 3, 3]      -> synthesis.b4.conv1.weight [O, I, 3, 3]
    conv1.conv.modulation.weight / .bias      -> synthesis.b4.conv1.affine.weight / .bias
    conv1.noise.weight         [1]            -> synthesis.b4.conv1.noise_strength []
    conv1.activate.bias        [O]            -> synthesis.b4.conv1.bias
    to_rgb1.conv.weight  [1, 3, I, 1, 1]      -> synthesis.b4.torgb.weight [3, I, 1, 1]
    to_rgb1.conv.modulation.weight / .bias    -> synthesis.b4.torgb.affine.weight / .bias
    to_rgb1.bias         [1, 3, 1, 1]         -> synthesis.b4.torgb.bias [3]
    convs.{2j}.*   (the upsampling StyledConv) -> synthesis.b{r}.conv0.*   (as conv1 above)
    convs.{2j+1}.*                             -> synthesis.b{r}.conv1.*
    to_rgbs.{j}.*                              -> synthesis.b{r}.torgb.*
    noises.noise_0             [1, 1, 4, 4]   -> synthesis.b4.conv1.noise_const [4, 4]
    noises.noise_{2j+1}, noise_{2j+2}         -> synthesis.b{r}.conv0 / conv1.noise_const [r, r]
    convs.{2j}.conv.blur.kernel, to_rgbs.{j}.upsample.kernel: FIR filters, checked, not copied

Discriminator (``R`` the resolution; block k >= 1 works at ``R / 2**(k-1)``)::

    convs.0.0.weight / convs.0.1.bias          -> b{R}.fromrgb.weight / .bias
    convs.{k}.conv1.0.weight / conv1.1.bias    -> b{res}.conv0.weight / .bias
    convs.{k}.conv2.1.weight / conv2.2.bias    -> b{res}.conv1.weight / .bias
    convs.{k}.skip.1.weight                    -> b{res}.skip.weight
    final_conv.0.weight / final_conv.1.bias    -> b4.conv.weight / .bias
    final_linear.0.weight / .bias              -> b4.fc.weight / .bias
    final_linear.1.weight / .bias              -> b4.out.weight / .bias
    convs.{k}.conv2.0.kernel, skip.0.kernel: FIR filters, checked, not copied

Both use the same parameterisation (weights stored unscaled, equalized-LR gains applied at run
time; rosinality's ``EqualLinear(lr_mul)`` = our ``lr_multiplier``), so tensors are copied as they
are, only reshaped.  rosinality's mapping learning-rate multiplier (``lr_mlp``, 0.01 by default)
is not stored in its checkpoints: pass ``mapping_lr_multiplier`` if it was trained with another.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Union

import torch
from torch import Tensor

from .stylegan2 import Discriminator, Generator

__all__ = ["rosinality_generator_state_dict", "rosinality_discriminator_state_dict",
           "load_rosinality"]


def _need(sd: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in sd:
        raise KeyError(f"not a rosinality StyleGAN2 state dict: missing {key!r}")
    return sd[key]


def _channel_config(chans: dict[int, int]) -> tuple[int, int]:
    """(channel_base, channel_max) with min(channel_base // r, channel_max) == chans[r]."""
    cmax = max(chans.values())
    base = max(c * r for r, c in chans.items())
    if any(min(base // r, cmax) != c for r, c in chans.items()):
        raise ValueError(f"the checkpoint's channels per resolution {chans} are not of the form "
                         "min(channel_base // r, channel_max)")
    return base, cmax


def _fir_1d(kernel: Tensor, name: str) -> list[float]:
    """The separable 1-D filter behind a rosinality 2-D FIR kernel (outer(k, k), any scale)."""
    k2 = kernel.detach().double().cpu()
    k1 = k2.sum(dim=1)
    k1 = k1 / k1.sum()
    if not torch.allclose(torch.outer(k1, k1) * k2.sum(), k2, rtol=1e-5, atol=1e-7):
        raise ValueError(f"{name}: only separable FIR kernels (outer(k, k)) are supported")
    return k1.tolist()


def _check_filter(sd: Mapping[str, Tensor], keys: list[str], default: list[float]) -> list[float]:
    fir = default
    for i, key in enumerate(k for k in keys if k in sd):
        f = _fir_1d(sd[key], key)
        if i == 0:
            fir = f
        elif not torch.allclose(torch.tensor(f), torch.tensor(fir), rtol=1e-5, atol=1e-7):
            raise ValueError(f"{key}: the checkpoint's FIR kernels differ between layers")
    return fir


def rosinality_generator_state_dict(sd: Mapping[str, Tensor],
                                    latent_avg: Optional[Tensor] = None
                                    ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """rosinality ``Generator`` state dict -> (our ``Generator`` state dict, constructor kwargs).

    Without ``latent_avg`` the returned state dict has no ``mapping.w_avg`` (see
    :func:`load_rosinality`, which fills it in)."""
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    if n_mlp == 0:
        raise KeyError("not a rosinality StyleGAN2 generator state dict: no 'style.1.weight'")
    style_dim = _need(sd, "style.1.weight").shape[1]
    n_rgbs = 0
    while f"to_rgbs.{n_rgbs}.conv.weight" in sd:
        n_rgbs += 1
    size = 4 * 2 ** n_rgbs
    const = _need(sd, "input.input")
    chans = {4: const.shape[1]}
    for j in range(n_rgbs):
        chans[8 * 2 ** j] = _need(sd, f"convs.{2 * j}.conv.weight").shape[1]
    base, cmax = _channel_config(chans)
    img_channels = _need(sd, "to_rgb1.conv.weight").shape[1]
    fir = _check_filter(sd, [f"convs.{2 * j}.conv.blur.kernel" for j in range(n_rgbs)] +
                        [f"to_rgbs.{j}.upsample.kernel" for j in range(n_rgbs)], [1, 3, 3, 1])

    out: dict[str, Tensor] = {}
    for k in range(1, n_mlp + 1):
        out[f"mapping.layers.{k - 1}.weight"] = _need(sd, f"style.{k}.weight")
        out[f"mapping.layers.{k - 1}.bias"] = _need(sd, f"style.{k}.bias")
    if latent_avg is not None:
        out["mapping.w_avg"] = latent_avg.reshape(-1, style_dim)[0].clone()
    out["synthesis.b4.const.input"] = const

    def styled(src: str, dst: str, noise_key: str) -> None:
        out[f"{dst}.weight"] = _need(sd, f"{src}.conv.weight").squeeze(0)
        out[f"{dst}.affine.weight"] = _need(sd, f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = _need(sd, f"{src}.conv.modulation.bias")
        out[f"{dst}.noise_strength"] = _need(sd, f"{src}.noise.weight").reshape(())
        out[f"{dst}.bias"] = _need(sd, f"{src}.activate.bias")
        out[f"{dst}.noise_const"] = _need(sd, noise_key).reshape(
            _need(sd, noise_key).shape[-2:])

    def torgb(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = _need(sd, f"{src}.conv.weight").squeeze(0)
        out[f"{dst}.affine.weight"] = _need(sd, f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = _need(sd, f"{src}.conv.modulation.bias")
        out[f"{dst}.bias"] = _need(sd, f"{src}.bias").reshape(-1)

    styled("conv1", "synthesis.b4.conv1", "noises.noise_0")
    torgb("to_rgb1", "synthesis.b4.torgb")
    for j in range(n_rgbs):
        r = 8 * 2 ** j
        styled(f"convs.{2 * j}", f"synthesis.b{r}.conv0", f"noises.noise_{2 * j + 1}")
        styled(f"convs.{2 * j + 1}", f"synthesis.b{r}.conv1", f"noises.noise_{2 * j + 2}")
        torgb(f"to_rgbs.{j}", f"synthesis.b{r}.torgb")
    config = dict(z_dim=style_dim, w_dim=style_dim, c_dim=0, img_resolution=size,
                  img_channels=img_channels, channel_base=base, channel_max=cmax,
                  mapping_layers=n_mlp, resample_filter=tuple(fir))
    return out, config


def rosinality_discriminator_state_dict(sd: Mapping[str, Tensor]
                                        ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """rosinality ``Discriminator`` state dict -> (our ``Discriminator`` state dict, kwargs)."""
    n_blocks = 0
    while f"convs.{n_blocks + 1}.conv1.0.weight" in sd:
        n_blocks += 1
    if n_blocks == 0 or "convs.0.0.weight" not in sd:
        raise KeyError("not a rosinality StyleGAN2 discriminator state dict: no "
                       "'convs.0.0.weight' / 'convs.1.conv1.0.weight'")
    size = 4 * 2 ** n_blocks
    chans = {}
    out: dict[str, Tensor] = {}
    rgb = _need(sd, "convs.0.0.weight")
    img_channels = rgb.shape[1]
    out[f"b{size}.fromrgb.weight"] = rgb
    out[f"b{size}.fromrgb.bias"] = _need(sd, "convs.0.1.bias")
    for k in range(1, n_blocks + 1):
        res = size // 2 ** (k - 1)
        src, dst = f"convs.{k}", f"b{res}"
        out[f"{dst}.conv0.weight"] = _need(sd, f"{src}.conv1.0.weight")
        out[f"{dst}.conv0.bias"] = _need(sd, f"{src}.conv1.1.bias")
        out[f"{dst}.conv1.weight"] = _need(sd, f"{src}.conv2.1.weight")
        out[f"{dst}.conv1.bias"] = _need(sd, f"{src}.conv2.2.bias")
        out[f"{dst}.skip.weight"] = _need(sd, f"{src}.skip.1.weight")
        chans[res] = out[f"{dst}.conv0.weight"].shape[0]
        chans[res // 2] = out[f"{dst}.conv1.weight"].shape[0]
    out["b4.conv.weight"] = _need(sd, "final_conv.0.weight")
    out["b4.conv.bias"] = _need(sd, "final_conv.1.bias")
    for i, name in enumerate(("fc", "out")):
        out[f"b4.{name}.weight"] = _need(sd, f"final_linear.{i}.weight")
        out[f"b4.{name}.bias"] = _need(sd, f"final_linear.{i}.bias")
    mbstd_channels = out["b4.conv.weight"].shape[1] - chans[4]
    base, cmax = _channel_config(chans)
    fir = _check_filter(sd, [f"convs.{k}.{n}.0.kernel" for k in range(1, n_blocks + 1)
                             for n in ("conv2", "skip")], [1, 3, 3, 1])
    config = dict(c_dim=0, img_resolution=size, img_channels=img_channels, channel_base=base,
                  channel_max=cmax, mbstd_group_size=4, mbstd_num_channels=mbstd_channels,
                  resample_filter=tuple(fir))
    return out, config


def load_rosinality(ckpt: Union[str, os.PathLike, Mapping[str, Any]], which: str = "g_ema",
                    w_avg_samples: int = 4096, seed: int = 0, **model_kwargs
                    ) -> Union[Generator, Discriminator]:
    """Load a rosinality StyleGAN2 checkpoint as a fastgan model.

    Args:
        ckpt: a path to a ``.pt`` checkpoint, the loaded dict, or a bare generator /
            discriminator state dict.
        which: ``'g_ema'`` (default), ``'g'`` or ``'d'`` — the entry of a training checkpoint
            (ignored for a bare state dict, whose kind is recognised from its keys).
        w_avg_samples: without a ``latent_avg`` in the checkpoint, ``mapping.w_avg`` becomes the
            mean of this many mapped z (what rosinality's ``mean_latent`` computes for truncation).
        seed: seed of those z.
        model_kwargs: passed on to the model (e.g. ``impl``, ``num_fp16_res``, ``conv_clamp``,
            ``mapping_lr_multiplier``).

    Returns the model in eval mode, on the CPU, in float32.
    """
    if not isinstance(ckpt, Mapping):
        ckpt = torch.load(os.fspath(ckpt), map_location="cpu", weights_only=False)
    latent_avg = ckpt.get("latent_avg") if isinstance(ckpt.get("latent_avg"), Tensor) else None
    sd = ckpt
    if which in ckpt and isinstance(ckpt[which], Mapping):
        sd = ckpt[which]
    elif any(isinstance(v, Mapping) for v in ckpt.values()):
        raise KeyError(f"load_rosinality: the checkpoint has no {which!r} entry; it has "
                       f"{sorted(k for k, v in ckpt.items() if isinstance(v, Mapping))}")
    sd = {k: v for k, v in sd.items() if isinstance(v, Tensor)}
    if "style.1.weight" in sd:
        state, config = rosinality_generator_state_dict(sd, latent_avg)
        config.update(model_kwargs)
        model = Generator(**config)
        if "mapping.w_avg" not in state:
            state["mapping.w_avg"] = torch.zeros(config["w_dim"])
            model.load_state_dict({k: v.float() for k, v in state.items()})
            with torch.no_grad():
                g = torch.Generator().manual_seed(seed)
                z = torch.randn(w_avg_samples, config["z_dim"], generator=g)
                w = torch.cat([model.mapping(zc)[:, 0] for zc in z.split(1024)])
                model.mapping.w_avg.copy_(w.mean(0))
        else:
            model.load_state_dict({k: v.float() for k, v in state.items()})
    else:
        state, config = rosinality_discriminator_state_dict(sd)
        config.update(model_kwargs)
        model = Discriminator(**config)
        model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()
