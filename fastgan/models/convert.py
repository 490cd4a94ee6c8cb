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

The sizes come from the highest layer index of each kind of key, and the state dict must then
hold exactly that model's keys (the FIR kernels, which hold no learned state, may be absent):
a missing key, or one that belongs to no layer, raises :class:`RosinalityKeyError` naming it, so a
truncated or damaged file never loads as a smaller model.  A ``module.`` prefix on every key
((Distributed)DataParallel) is dropped.

Both use the same parameterisation (weights stored unscaled, equalized-LR gains applied at run
time; rosinality's ``EqualLinear(lr_mul)`` = our ``lr_multiplier``), so tensors are copied as they
are, only reshaped.  rosinality's mapping learning-rate multiplier (``lr_mlp``, 0.01 by default)
is not stored in its checkpoints: pass ``mapping_lr_multiplier`` if it was trained with another.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping, Optional, Union

import torch
from torch import Tensor

from ..nn._util import check_int
from .stylegan2 import Discriminator, Generator

__all__ = ["rosinality_generator_state_dict", "rosinality_discriminator_state_dict",
           "load_rosinality", "RosinalityKeyError"]


class RosinalityKeyError(KeyError, ValueError):
    """A state dict whose keys are not those of a rosinality StyleGAN2 model (missing, unexpected
    or of the wrong kind).  A KeyError (what a missing key has always raised here) and a
    ValueError (bad input, what command-line front ends report in one line)."""

    def __str__(self) -> str:  # KeyError's str() would quote the message
        return str(self.args[0]) if self.args else ""


# the top-level module names of each model; "convs." is shared (the block index then the layer
# names tell them apart)
_GEN_KEY = re.compile(r"(style|input|conv1|to_rgb1|to_rgbs|noises)\.|"
                      r"convs\.\d+\.(conv|noise|activate)\.")
_DISC_KEY = re.compile(r"(final_conv|final_linear)\.|convs\.\d+\.(conv1|conv2|skip|\d+)\.")
# ours, to point a fastgan state dict at the right loader
_FASTGAN_G_KEY = re.compile(r"(mapping|synthesis)\.")
_FASTGAN_D_KEY = re.compile(r"b\d+\.(fromrgb|conv0|conv1|skip|conv|fc|out|mbstd)\.")
# no rosinality model has more blocks than this (4 * 2**16 pixels a side); a larger index is a
# stray key, and would otherwise make us list millions of "missing" ones
_MAX_BLOCKS = 16
_MAX_MLP = 256


class _Tracked(dict):
    """A state dict that records which keys were read, so that what the conversion did not use
    can be reported."""

    def __init__(self, sd: Mapping[str, Tensor]):
        super().__init__(sd)
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> Tensor:
        self.used.add(key)
        return super().__getitem__(key)


def _need(sd: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in sd:
        raise RosinalityKeyError(f"not a rosinality StyleGAN2 state dict: missing {key!r}")
    return sd[key]


def _fmt_keys(keys, limit: int = 8) -> str:
    keys = list(keys)
    s = ", ".join(repr(k) for k in keys[:limit])
    return s + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _prepare(sd: Mapping[str, Any], what: str) -> _Tracked:
    """sd as a :class:`_Tracked` dict of tensors, without a DataParallel ``module.`` prefix."""
    if not isinstance(sd, Mapping):
        raise TypeError(f"rosinality_{what}_state_dict: sd must be a state dict (a mapping of "
                        f"names to tensors), got {type(sd).__name__}")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise TypeError(f"not a rosinality StyleGAN2 {what} state dict: entries that are not "
                        f"tensors under string keys: {_fmt_keys(bad)}")
    # (Distributed)DataParallel prefixes every key with "module."
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return _Tracked(sd)


def _indices(sd: Mapping[str, Tensor], pattern: str) -> dict[int, str]:
    """{layer index: one key with it} for the keys that match ``pattern`` (group 1: the index)."""
    rx = re.compile(pattern)
    out: dict[int, str] = {}
    for k in sd:
        m = rx.match(k)
        if m:
            out.setdefault(int(m.group(1)), k)
    return out


def _check_count(n: int, limit: int, key: str, what: str) -> None:
    if n > limit:
        raise RosinalityKeyError(f"not a rosinality StyleGAN2 {what} state dict: {key!r} has a "
                                 f"layer index beyond any rosinality model's")


def _check_complete(sd: Mapping[str, Tensor], required: list[str], what: str,
                    implied: str) -> None:
    missing = [k for k in required if k not in sd]
    if missing:
        raise RosinalityKeyError(
            f"incomplete rosinality StyleGAN2 {what} state dict: its keys imply {implied}, but "
            f"{len(missing)} of that model's keys are missing: {_fmt_keys(missing)}")


def _check_used(sd: _Tracked, what: str, implied: str) -> None:
    unused = [k for k in sd if k not in sd.used]
    if unused:
        raise RosinalityKeyError(
            f"rosinality StyleGAN2 {what} state dict ({implied}) has {len(unused)} key(s) that "
            f"belong to no layer of that model: {_fmt_keys(unused)}")


def _latent_avg(latent_avg: Any, style_dim: int) -> Tensor:
    """rosinality's mean w as ``[style_dim]`` (``[style_dim]``, ``[1, style_dim]`` or the same w
    repeated per layer)."""
    if not isinstance(latent_avg, Tensor) or not latent_avg.is_floating_point():
        got = f"a {latent_avg.dtype} tensor" if isinstance(latent_avg, Tensor) \
            else type(latent_avg).__name__
        raise TypeError(f"latent_avg must be a float tensor [style_dim={style_dim}], got {got}")
    if latent_avg.dim() == 0 or latent_avg.shape[-1] != style_dim:
        raise ValueError(f"latent_avg must be [style_dim={style_dim}] (or [1, {style_dim}]), got "
                         f"shape {tuple(latent_avg.shape)}")
    rows = latent_avg.detach().reshape(-1, style_dim)
    if rows.shape[0] == 0:
        raise ValueError(f"latent_avg must be [style_dim={style_dim}], got shape "
                         f"{tuple(latent_avg.shape)}")
    if not torch.isfinite(rows).all():
        raise ValueError("latent_avg has non-finite values (nan / inf): truncation would turn "
                         "every image into nan")
    if not torch.equal(rows, rows[:1].expand_as(rows)):
        # a per-layer average has no place in our single w_avg; taking one row would be silent
        raise ValueError(f"latent_avg must be one w [style_dim={style_dim}], got shape "
                         f"{tuple(latent_avg.shape)} with rows that differ")
    return rows[0].clone()


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
    if k2.dim() != 2 or k2.shape[0] != k2.shape[1]:
        raise ValueError(f"{name}: a FIR kernel must be square [k, k], got shape "
                         f"{tuple(kernel.shape)}")
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
        elif len(f) != len(fir) or \
                not torch.allclose(torch.tensor(f), torch.tensor(fir), rtol=1e-5, atol=1e-7):
            raise ValueError(f"{key}: the checkpoint's FIR kernels differ between layers")
    return fir


def _generator_keys(n_mlp: int, n_rgbs: int) -> list[str]:
    """Every key of a rosinality Generator with these sizes but its FIR kernels (buffers that
    hold no learned state: checked when present, not required)."""
    keys = [f"style.{k}.{p}" for k in range(1, n_mlp + 1) for p in ("weight", "bias")]
    keys.append("input.input")
    mod = ("conv.weight", "conv.modulation.weight", "conv.modulation.bias")
    styled = mod + ("noise.weight", "activate.bias")
    rgb = mod + ("bias",)
    keys += [f"conv1.{p}" for p in styled] + [f"to_rgb1.{p}" for p in rgb]
    for j in range(n_rgbs):
        keys += [f"convs.{i}.{p}" for i in (2 * j, 2 * j + 1) for p in styled]
        keys += [f"to_rgbs.{j}.{p}" for p in rgb]
    keys += [f"noises.noise_{i}" for i in range(2 * n_rgbs + 1)]
    return keys


def rosinality_generator_state_dict(sd: Mapping[str, Tensor],
                                    latent_avg: Optional[Tensor] = None
                                    ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """rosinality ``Generator`` state dict -> (our ``Generator`` state dict, constructor kwargs).

    The sizes come from the highest layer indices present (``style.{k}``, ``convs.{i}``,
    ``to_rgbs.{j}``, ``noises.noise_{i}``), and every key of that model must be there: a missing
    one, or one that belongs to no layer, raises :class:`RosinalityKeyError` naming them (a
    truncated file must not load as a smaller model).  A ``module.`` prefix on every key
    (DataParallel) is dropped.

    Without ``latent_avg`` the returned state dict has no ``mapping.w_avg`` (see
    :func:`load_rosinality`, which fills it in)."""
    sd = _prepare(sd, "generator")
    style = _indices(sd, r"style\.(\d+)\.")
    n_mlp = max(style, default=1)  # none at all: style.1.* is reported missing
    _check_count(n_mlp, _MAX_MLP, style.get(n_mlp, ""), "generator")
    highest = {}
    for pattern, count in ((r"to_rgbs\.(\d+)\.", lambda i: i + 1),
                           (r"convs\.(\d+)\.", lambda i: i // 2 + 1),
                           (r"noises\.noise_(\d+)$", lambda i: i // 2)):
        idx = _indices(sd, pattern)
        if idx:
            i = max(idx)
            highest[idx[i]] = count(i)
    n_rgbs = max(highest.values(), default=0)
    _check_count(n_rgbs, _MAX_BLOCKS, max(highest, key=highest.get, default=""), "generator")
    size = 4 * 2 ** n_rgbs
    implied = f"a {size}x{size} generator with {n_mlp} mapping layers"
    _check_complete(sd, _generator_keys(n_mlp, n_rgbs), "generator",
                    f"{implied} (highest indices: "
                    f"{_fmt_keys(sorted(highest) + [style.get(n_mlp, 'style.1.weight')])})")

    style_dim = sd["style.1.weight"].shape[1]
    const = sd["input.input"]
    chans = {4: const.shape[1]}
    for j in range(n_rgbs):
        chans[8 * 2 ** j] = sd[f"convs.{2 * j}.conv.weight"].shape[1]
    base, cmax = _channel_config(chans)
    img_channels = sd["to_rgb1.conv.weight"].shape[1]
    fir = _check_filter(sd, [f"convs.{2 * j}.conv.blur.kernel" for j in range(n_rgbs)] +
                        [f"to_rgbs.{j}.upsample.kernel" for j in range(n_rgbs)], [1, 3, 3, 1])

    out: dict[str, Tensor] = {}
    for k in range(1, n_mlp + 1):
        out[f"mapping.layers.{k - 1}.weight"] = _need(sd, f"style.{k}.weight")
        out[f"mapping.layers.{k - 1}.bias"] = _need(sd, f"style.{k}.bias")
    if latent_avg is not None:
        out["mapping.w_avg"] = _latent_avg(latent_avg, style_dim)
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
    _check_used(sd, "generator", implied)
    config = dict(z_dim=style_dim, w_dim=style_dim, c_dim=0, img_resolution=size,
                  img_channels=img_channels, channel_base=base, channel_max=cmax,
                  mapping_layers=n_mlp, resample_filter=tuple(fir))
    return out, config


def _discriminator_keys(n_blocks: int) -> list[str]:
    """Every key of a rosinality Discriminator with ``n_blocks`` ResBlocks but its FIR kernels."""
    keys = ["convs.0.0.weight", "convs.0.1.bias"]
    for k in range(1, n_blocks + 1):
        keys += [f"convs.{k}.{p}" for p in ("conv1.0.weight", "conv1.1.bias", "conv2.1.weight",
                                            "conv2.2.bias", "skip.1.weight")]
    return keys + ["final_conv.0.weight", "final_conv.1.bias", "final_linear.0.weight",
                   "final_linear.0.bias", "final_linear.1.weight", "final_linear.1.bias"]


def rosinality_discriminator_state_dict(sd: Mapping[str, Tensor]
                                        ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """rosinality ``Discriminator`` state dict -> (our ``Discriminator`` state dict, kwargs).

    The resolution comes from the highest block index ``convs.{k}`` present, and every key of
    that model must be there (nothing else): see :func:`rosinality_generator_state_dict`."""
    sd = _prepare(sd, "discriminator")
    blocks = _indices(sd, r"convs\.(\d+)\.")
    n_blocks = max(blocks, default=0)
    _check_count(n_blocks, _MAX_BLOCKS, blocks.get(n_blocks, ""), "discriminator")
    size = 4 * 2 ** n_blocks
    implied = f"a {size}x{size} discriminator"
    _check_complete(sd, _discriminator_keys(n_blocks), "discriminator",
                    f"{implied} (highest block: {blocks.get(n_blocks, 'convs.0.0.weight')!r})")

    chans = {}
    out: dict[str, Tensor] = {}
    rgb = _need(sd, "convs.0.0.weight")
    img_channels = rgb.shape[1]
    out[f"b{size}.fromrgb.weight"] = rgb
    out[f"b{size}.fromrgb.bias"] = _need(sd, "convs.0.1.bias")
    chans[size] = rgb.shape[0]
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
    _check_used(sd, "discriminator", implied)
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

    Raises :class:`RosinalityKeyError` (a KeyError and a ValueError) when the state dict is not
    that of a whole rosinality model (keys missing, keys that belong to no layer, generator and
    discriminator keys mixed, a fastgan checkpoint), TypeError for a file that holds no dict.
    """
    if not isinstance(ckpt, Mapping):
        if not isinstance(ckpt, (str, bytes, os.PathLike)):
            raise TypeError(f"load_rosinality: ckpt must be a path or a checkpoint dict, got "
                            f"{type(ckpt).__name__}")
        path = os.fspath(ckpt)
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(ckpt, Mapping):
            hint = " (a pickled model? save its state_dict())" \
                if isinstance(ckpt, torch.nn.Module) else ""
            raise TypeError(f"load_rosinality: {path!r} holds a {type(ckpt).__name__}, expected "
                            f"a dict (a rosinality checkpoint or state dict){hint}")
    w_avg_samples = check_int(w_avg_samples, "w_avg_samples", "load_rosinality")
    if "G_kwargs" in ckpt or "G_ema" in ckpt:
        raise RosinalityKeyError(
            "load_rosinality: this is a fastgan training checkpoint (it has 'G_ema' / 'G_kwargs'), "
            "not a rosinality one: load it with fastgan.generate.load_generator(path)")
    sd = ckpt
    latent_avg = ckpt.get("latent_avg")
    if which in ckpt and isinstance(ckpt[which], Mapping):
        sd = ckpt[which]
    elif any(isinstance(v, Mapping) for v in ckpt.values()):
        raise RosinalityKeyError(
            f"load_rosinality: the checkpoint has no {which!r} entry; it has "
            f"{sorted(str(k) for k, v in ckpt.items() if isinstance(v, Mapping))}")
    elif "latent_avg" in ckpt:  # a bare state dict saved together with its latent_avg
        sd = {k: v for k, v in ckpt.items() if k != "latent_avg"}
    kind = _kind(sd)
    if kind == "generator":
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


def _kind(sd: Mapping[str, Any]) -> str:
    """'generator' or 'discriminator', from the names of sd's keys (a ``module.`` prefix aside)."""
    keys = [k for k in sd if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        keys = [k[len("module."):] for k in keys]
    gen = next((k for k in keys if _GEN_KEY.match(k)), None)
    disc = next((k for k in keys if _DISC_KEY.match(k)), None)
    if gen is not None and disc is not None:
        raise RosinalityKeyError(
            f"load_rosinality: the state dict mixes generator keys (e.g. {gen!r}) and "
            f"discriminator keys (e.g. {disc!r}); pass one model's state dict, or a training "
            "checkpoint with which='g_ema' / 'g' / 'd'")
    if gen is not None:
        return "generator"
    if disc is not None:
        return "discriminator"
    if any(_FASTGAN_G_KEY.match(k) for k in keys):
        raise RosinalityKeyError(
            "load_rosinality: this is a fastgan Generator state dict, not a rosinality one: "
            "load it with fastgan.models.stylegan2.Generator(...).load_state_dict(sd) (or a "
            "fastgan checkpoint with fastgan.generate.load_generator)")
    if any(_FASTGAN_D_KEY.match(k) for k in keys):
        raise RosinalityKeyError(
            "load_rosinality: this is a fastgan Discriminator state dict, not a rosinality one: "
            "load it with fastgan.models.stylegan2.Discriminator(...).load_state_dict(sd)")
    raise RosinalityKeyError(
        f"not a rosinality StyleGAN2 state dict: none of its keys ({_fmt_keys(keys, 4)}) is a "
        "rosinality Generator's ('style.1.weight', 'input.input', ...) or Discriminator's "
        "('convs.0.0.weight', 'final_conv.0.weight', ...)")
