"""StyleGAN2 (Karras et al. 2020, config F): skip-architecture generator, residual discriminator.

Built entirely from :mod:`fastgan.nn` layers, so every backend (``impl='ref' | 'triton' | 'cuda'``)
and both gradient orders (R1 through D, path length through G) flow through fastgan ops.

Architecture and parameterisation follow NVlabs' StyleGAN2 (stylegan2-ada-pytorch) — the names
``b4 .. b{R}``, ``mapping``, ``synthesis``, ``conv0 / conv1 / torgb``, ``fromrgb / skip``, the
``w`` index bookkeeping, the fp16 recipe (``num_fp16_res`` top resolutions in float16 with
``conv_clamp``) — and rosinality's StyleGAN2 checkpoints convert onto it exactly
(:mod:`fastgan.models.convert`).

Channels at resolution ``r``: ``min(channel_base // r, channel_max)``; with the defaults
(32768, 512): 512 up to 64^2, then 256, 128, 64, 32 at 1024^2.
"""
from __future__ import annotations

import math
import operator
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ..nn import ConstantInput, EqualConv2d, EqualLinear, MappingNetwork, MinibatchStdDev
from ..nn import ModulatedConv2d, ToRGB
from ..nn._util import check_int, no_autocast
from ..ops import upsample2d

__all__ = ["Generator", "SynthesisNetwork", "SynthesisBlock", "Discriminator",
           "DiscriminatorBlock", "DiscriminatorEpilogue", "mix_styles", "channels_per_resolution"]

NOISE_MODES = ("random", "const", "none")


def _check_resolution(img_resolution: int, name: str) -> tuple[int, int]:
    """(img_resolution as an int, its log2).  numpy / torch integer scalars count (sizes often
    come from arrays or configs); bools and floats do not."""
    res = None
    if not isinstance(img_resolution, bool):
        try:
            res = operator.index(img_resolution)
        except TypeError:
            pass
    if res is None or res < 4 or res & (res - 1):
        raise ValueError(f"{name}: img_resolution must be a power of two >= 4, got "
                         f"{img_resolution!r}")
    return res, res.bit_length() - 1


def channels_per_resolution(img_resolution: int, channel_base: int = 32768,
                            channel_max: int = 512) -> dict[int, int]:
    """``{r: min(channel_base // r, channel_max)}`` for r = 4, 8, ..., img_resolution."""
    img_resolution, log2 = _check_resolution(img_resolution, "channels_per_resolution")
    channel_base = check_int(channel_base, "channel_base", "channels_per_resolution")
    channel_max = check_int(channel_max, "channel_max", "channels_per_resolution")
    chans = {2 ** i: min(channel_base // 2 ** i, channel_max) for i in range(2, log2 + 1)}
    if min(chans.values()) < 1:
        raise ValueError(f"channel_base={channel_base} gives no channels at {img_resolution}^2 "
                         f"(channel_base // resolution must be >= 1)")
    return chans


def _fp16_resolution(log2: int, num_fp16_res: int) -> int:
    # NVlabs: the top num_fp16_res resolutions, never below 8^2
    return max(2 ** (log2 + 1 - num_fp16_res), 8)


def _float_dtype(module: nn.Module) -> torch.dtype:
    """float64 for a model converted with ``.double()`` (exact comparisons), else float32: the
    dtype of the image path and of the blocks that are not in float16."""
    p = next(module.parameters())
    return torch.float64 if p.dtype == torch.float64 else torch.float32


def _block_dtype(module: nn.Module, use_fp16: bool, force_fp32: bool) -> torch.dtype:
    return torch.float16 if use_fp16 and not force_fp32 else _float_dtype(module)


# ------------------------------------------------------------------------------------------------
# generator
# ------------------------------------------------------------------------------------------------

class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: [const] or conv0 (up 2), conv1, torgb.

    ``forward(x, img, ws, noise_mode)``: x ``[N, in, r/2, r/2]`` (None for the 4^2 block), img
    ``[N, img_channels, r/2, r/2]`` float32 or None, ws ``[N, num_conv + num_torgb, w_dim]``;
    returns ``(x [N, out, r, r], img [N, img_channels, r, r] float32)``.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, use_fp16: bool = False, conv_clamp: Optional[float] = None,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), fused_modconv: bool = True,
                 channels_last: bool = False, impl: Optional[str] = None):
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.use_fp16 = use_fp16
        self.channels_last = channels_last or use_fp16  # NVlabs: fp16 blocks run channels_last
        kw = dict(conv_clamp=conv_clamp, resample_filter=resample_filter,
                  fused_modconv=fused_modconv, impl=impl)
        if in_channels == 0:
            self.const = ConstantInput(out_channels, resolution)
        else:
            self.conv0 = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=2,
                                         resolution=resolution, **kw)
        self.conv1 = ModulatedConv2d(out_channels, out_channels, 3, w_dim, resolution=resolution,
                                     **kw)
        self.torgb = ToRGB(out_channels, img_channels, w_dim, **kw)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(self, x: Optional[Tensor], img: Optional[Tensor], ws: Tensor,
                noise_mode: str = "random", force_fp32: bool = False) -> tuple[Tensor, Tensor]:
        dtype = _block_dtype(self, self.use_fp16, force_fp32)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.in_channels == 0:
            x = self.const(ws.shape[0]).to(dtype=dtype, memory_format=fmt)
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode)
        else:
            x = x.to(dtype=dtype, memory_format=fmt)
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode)
        # the image skip path accumulates in float32 (NVlabs), whatever the block's dtype
        fdt = _float_dtype(self)
        y = self.torgb(x, ws[:, self.num_conv]).to(fdt)
        if img is not None:
            with no_autocast(img):  # the skip image stays float32 under autocast too
                img = upsample2d(img.to(fdt), self.torgb.resample_filter.to(fdt),
                                 impl=self.torgb.impl)
            y = y + img
        return x, y

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, use_fp16={self.use_fp16}"


class SynthesisNetwork(nn.Module):
    """ws ``[N, num_ws, w_dim]`` -> images ``[N, img_channels, R, R]`` (float32).

    Blocks ``b4, b8, ..., b{R}``; ``num_ws = 2 * log2(R) - 2`` (18 at 1024^2); block r uses ws
    ``[w_idx, w_idx + num_conv + 1)`` and advances ``w_idx`` by its ``num_conv``, so a block's torgb
    shares its w with the next block's conv0 (NVlabs = rosinality indexing).
    """

    def __init__(self, w_dim: int = 512, img_resolution: int = 1024, img_channels: int = 3,
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: Optional[float] = None, resample_filter: Sequence[float] = (1, 3, 3, 1),
                 fused_modconv: bool = True, channels_last: bool = False,
                 impl: Optional[str] = None):
        super().__init__()
        cls = "SynthesisNetwork"
        img_resolution, log2 = _check_resolution(img_resolution, cls)
        img_channels = check_int(img_channels, "img_channels", cls)
        w_dim = check_int(w_dim, "w_dim", cls)
        channel_base = check_int(channel_base, "channel_base", cls)
        channel_max = check_int(channel_max, "channel_max", cls)
        num_fp16_res = check_int(num_fp16_res, "num_fp16_res", cls, minimum=0)
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.resolutions = [2 ** i for i in range(2, log2 + 1)]
        self.channels = channels_per_resolution(img_resolution, channel_base, channel_max)
        fp16_res = _fp16_resolution(log2, num_fp16_res)
        self.num_ws = 0
        for res in self.resolutions:
            block = SynthesisBlock(
                0 if res == 4 else self.channels[res // 2], self.channels[res], w_dim, res,
                img_channels, use_fp16=num_fp16_res > 0 and res >= fp16_res,
                conv_clamp=conv_clamp, resample_filter=resample_filter,
                fused_modconv=fused_modconv, channels_last=channels_last, impl=impl)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last block's torgb

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.resolutions]

    def forward(self, ws: Tensor, noise_mode: str = "random", force_fp32: bool = False) -> Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.dim() != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, num_ws={self.num_ws}, w_dim={self.w_dim}], got "
                             f"shape {tuple(ws.shape)}")
        x = img = None
        w_idx = 0
        for block in self.blocks():
            x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb),
                           noise_mode=noise_mode, force_fp32=force_fp32)
            w_idx += block.num_conv
        return img


def mix_styles(ws: Tensor, ws2: Tensor, crossover: int | Tensor) -> Tensor:
    """Style mixing: ``ws[:, :crossover]`` then ``ws2[:, crossover:]`` (crossover an int, or a
    per-sample ``[N]`` integer tensor)."""
    if ws.shape != ws2.shape or ws.dim() != 3:
        raise ValueError(f"mix_styles: ws and ws2 must both be [N, num_ws, w_dim], got "
                         f"{tuple(ws.shape)} and {tuple(ws2.shape)}")
    idx = torch.arange(ws.shape[1], device=ws.device)
    cut = torch.as_tensor(crossover, device=ws.device).reshape(-1, 1)
    return torch.where((idx[None, :] < cut)[:, :, None], ws, ws2)


class Generator(nn.Module):
    """StyleGAN2 generator (config F, skip architecture).

    ``forward(z, c=None, truncation_psi=1, truncation_cutoff=None, noise_mode='random')`` ->
    ``[N, img_channels, R, R]`` float32 images.  ``mapping(z, c, ...)`` -> ws
    ``[N, num_ws, w_dim]`` and ``synthesis(ws, noise_mode)`` run the halves separately;
    :meth:`mapping_with_mixing` draws ws with style mixing as in training.

    Mixed precision: under ``torch.autocast`` (e.g. bf16) every layer runs in the autocast dtype
    and the image skip path stays float32; ``num_fp16_res > 0`` is NVlabs' fp16 recipe (the top
    resolutions in float16, channels_last; pair it with ``conv_clamp=256``).
    ``channels_last=True`` runs every block channels_last.
    """

    def __init__(self, z_dim: int = 512, w_dim: int = 512, c_dim: int = 0,
                 img_resolution: int = 1024, img_channels: int = 3, channel_base: int = 32768,
                 channel_max: int = 512, mapping_layers: int = 8, conv_clamp: Optional[float] = None,
                 num_fp16_res: int = 0, mapping_lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995, resample_filter: Sequence[float] = (1, 3, 3, 1),
                 fused_modconv: bool = True, channels_last: bool = False,
                 impl: Optional[str] = None):
        super().__init__()
        # checked here too, so that a bad value is named as Generator's argument
        cls = "Generator"
        z_dim = check_int(z_dim, "z_dim", cls, minimum=0)
        w_dim = check_int(w_dim, "w_dim", cls)
        c_dim = check_int(c_dim, "c_dim", cls, minimum=0)
        img_resolution, _ = _check_resolution(img_resolution, cls)
        img_channels = check_int(img_channels, "img_channels", cls)
        channel_base = check_int(channel_base, "channel_base", cls)
        channel_max = check_int(channel_max, "channel_max", cls)
        mapping_layers = check_int(mapping_layers, "mapping_layers", cls)
        num_fp16_res = check_int(num_fp16_res, "num_fp16_res", cls, minimum=0)
        self.z_dim, self.w_dim, self.c_dim = z_dim, w_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res,
            conv_clamp=conv_clamp, resample_filter=resample_filter, fused_modconv=fused_modconv,
            channels_last=channels_last, impl=impl)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      num_layers=mapping_layers,
                                      lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta,
                                      impl=impl)

    def forward(self, z: Tensor, c: Optional[Tensor] = None, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, noise_mode: str = "random",
                update_emas: bool = False) -> Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode)

    def mapping_with_mixing(self, z: Tensor, c: Optional[Tensor] = None, mixing_prob: float = 0.9,
                            generator: Optional[torch.Generator] = None,
                            update_emas: bool = False) -> Tensor:
        """ws for training with style mixing (NVlabs): with probability ``mixing_prob`` (one draw
        per batch) ws from a second z take over from a random crossover layer."""
        ws = self.mapping(z, c, update_emas=update_emas)
        if mixing_prob <= 0:
            return ws
        dev = z.device
        cutoff = torch.randint(1, self.num_ws, (), device=dev, generator=generator)
        keep = torch.rand((), device=dev, generator=generator) < mixing_prob
        cutoff = torch.where(keep, cutoff, torch.full_like(cutoff, self.num_ws))
        z2 = torch.randn(z.shape, device=dev, dtype=z.dtype, generator=generator)
        ws2 = self.mapping(z2, c, update_emas=False)
        return mix_styles(ws, ws2, cutoff)

    @torch.no_grad()
    def style_mix(self, z_rows: Tensor, z_cols: Tensor, crossover: int,
                  c: Optional[Tensor] = None, truncation_psi: float = 1.0,
                  noise_mode: str = "const") -> Tensor:
        """The style-mixing figure: images whose first ``crossover`` ws come from ``z_rows[i]`` and
        the rest from ``z_cols[j]``: ``[len(z_rows), len(z_cols), C, R, R]``."""
        a = self.mapping(z_rows, c if c is None else c[:1].expand(len(z_rows), -1),
                         truncation_psi=truncation_psi)
        b = self.mapping(z_cols, c if c is None else c[:1].expand(len(z_cols), -1),
                         truncation_psi=truncation_psi)
        r, k = a.shape[0], b.shape[0]
        ws = mix_styles(a[:, None].expand(r, k, -1, -1).reshape(r * k, self.num_ws, -1),
                        b[None].expand(r, k, -1, -1).reshape(r * k, self.num_ws, -1), crossover)
        img = self.synthesis(ws, noise_mode=noise_mode)
        return img.reshape(r, k, *img.shape[1:])

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, w_dim={self.w_dim}, c_dim={self.c_dim}, "
                f"img_resolution={self.img_resolution}, num_ws={self.num_ws}")


# ------------------------------------------------------------------------------------------------
# discriminator
# ------------------------------------------------------------------------------------------------

class DiscriminatorBlock(nn.Module):
    """One resolution of the residual discriminator: [fromrgb], conv0, conv1 (down 2), skip
    (1x1 down 2, no bias); ``x = skip(x) * sqrt(1/2) + conv1(conv0(x)) * sqrt(1/2)``.

    ``forward(x, img)``: x ``[N, in, r, r]`` (None for the first block, which reads img
    ``[N, img_channels, r, r]`` through fromrgb) -> ``[N, out, r/2, r/2]``.
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int,
                 img_channels: int, use_fp16: bool = False, conv_clamp: Optional[float] = None,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), channels_last: bool = False,
                 impl: Optional[str] = None):
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.use_fp16 = use_fp16
        self.channels_last = channels_last or use_fp16
        kw = dict(conv_clamp=conv_clamp, impl=impl)
        if in_channels == 0:
            self.fromrgb = EqualConv2d(img_channels, tmp_channels, 1, activation="lrelu", **kw)
        self.conv0 = EqualConv2d(tmp_channels, tmp_channels, 3, activation="lrelu", **kw)
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=2,
                                 resample_filter=resample_filter, **kw)
        self.skip = EqualConv2d(tmp_channels, out_channels, 1, bias=False, down=2,
                                resample_filter=resample_filter, impl=impl)

    def forward(self, x: Optional[Tensor], img: Optional[Tensor],
                force_fp32: bool = False) -> Tensor:
        dtype = _block_dtype(self, self.use_fp16, force_fp32)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.in_channels == 0:
            x = self.fromrgb(img.to(dtype=dtype, memory_format=fmt))
        else:
            x = x.to(dtype=dtype, memory_format=fmt)
        g = math.sqrt(0.5)
        y = self.skip(x, gain=g)
        x = self.conv1(self.conv0(x), gain=g)
        return y + x

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, use_fp16={self.use_fp16}"


class DiscriminatorEpilogue(nn.Module):
    """The 4^2 head: minibatch stddev, 3x3 conv, fc, out (1 logit, or ``cmap_dim`` features
    projected onto the class embedding when conditional).  With ``img_channels`` (a 4^2
    discriminator, which has no blocks) it reads the image through its own 1x1 ``fromrgb``."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int = 4,
                 mbstd_group_size: Optional[int] = 4, mbstd_num_channels: int = 1,
                 conv_clamp: Optional[float] = None, img_channels: Optional[int] = None,
                 impl: Optional[str] = None):
        super().__init__()
        self.cmap_dim = cmap_dim
        if img_channels is not None:
            self.fromrgb = EqualConv2d(img_channels, in_channels, 1, activation="lrelu",
                                       conv_clamp=conv_clamp, impl=impl)
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_channels) \
            if mbstd_num_channels > 0 else None
        self.conv = EqualConv2d(in_channels + mbstd_num_channels, in_channels, 3,
                                activation="lrelu", conv_clamp=conv_clamp, impl=impl)
        self.fc = EqualLinear(in_channels * resolution ** 2, in_channels, activation="lrelu",
                              impl=impl)
        self.out = EqualLinear(in_channels, 1 if cmap_dim == 0 else cmap_dim, impl=impl)

    def forward(self, x: Tensor, cmap: Optional[Tensor] = None) -> Tensor:
        x = x.to(_float_dtype(self))  # NVlabs: the epilogue runs in float32 (autocast: its dtype)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap.to(x.dtype)).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """StyleGAN2 discriminator (residual architecture).

    ``forward(img, c=None)``: img ``[N, img_channels, R, R]`` (any float dtype / layout) ->
    ``[N, 1]`` float32 logits.  With ``c_dim > 0`` a mapping network embeds c into ``cmap_dim``
    features (default: the 4^2 channel count) and the output is their projection onto the fc
    features (Miyato & Koyama), as NVlabs does.  ``mbstd_group_size`` must divide the batch (or
    exceed it: the group is then the whole batch).
    """

    def __init__(self, c_dim: int = 0, img_resolution: int = 1024, img_channels: int = 3,
                 channel_base: int = 32768, channel_max: int = 512, mbstd_group_size: int = 4,
                 mbstd_num_channels: int = 1, num_fp16_res: int = 0,
                 conv_clamp: Optional[float] = None, cmap_dim: Optional[int] = None,
                 mapping_layers: int = 8, resample_filter: Sequence[float] = (1, 3, 3, 1),
                 channels_last: bool = False, impl: Optional[str] = None):
        super().__init__()
        cls = "Discriminator"
        img_resolution, log2 = _check_resolution(img_resolution, cls)
        c_dim = check_int(c_dim, "c_dim", cls, minimum=0)
        img_channels = check_int(img_channels, "img_channels", cls)
        channel_base = check_int(channel_base, "channel_base", cls)
        channel_max = check_int(channel_max, "channel_max", cls)
        if mbstd_group_size is not None:
            mbstd_group_size = check_int(mbstd_group_size, "mbstd_group_size", cls)
        mbstd_num_channels = check_int(mbstd_num_channels, "mbstd_num_channels", cls, minimum=0)
        num_fp16_res = check_int(num_fp16_res, "num_fp16_res", cls, minimum=0)
        if cmap_dim is not None:
            cmap_dim = check_int(cmap_dim, "cmap_dim", cls)
        mapping_layers = check_int(mapping_layers, "mapping_layers", cls)
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.channels = channels_per_resolution(img_resolution, channel_base, channel_max)
        self.resolutions = [2 ** i for i in range(log2, 2, -1)]
        fp16_res = _fp16_resolution(log2, num_fp16_res)
        if cmap_dim is None:
            cmap_dim = self.channels[4]
        if c_dim == 0:
            cmap_dim = 0
        for res in self.resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(
                0 if res == img_resolution else self.channels[res], self.channels[res],
                self.channels[res // 2], res, img_channels,
                use_fp16=num_fp16_res > 0 and res >= fp16_res, conv_clamp=conv_clamp,
                resample_filter=resample_filter, channels_last=channels_last, impl=impl))
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None,
                                          num_layers=mapping_layers, w_avg_beta=None, impl=impl)
        self.b4 = DiscriminatorEpilogue(self.channels[4], cmap_dim, resolution=4,
                                        mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels,
                                        conv_clamp=conv_clamp,
                                        img_channels=img_channels if img_resolution == 4 else None,
                                        impl=impl)

    def blocks(self) -> list[DiscriminatorBlock]:
        return [getattr(self, f"b{res}") for res in self.resolutions]

    def forward(self, img: Tensor, c: Optional[Tensor] = None, force_fp32: bool = False) -> Tensor:
        r = self.img_resolution
        if img.dim() != 4 or tuple(img.shape[1:]) != (self.img_channels, r, r):
            raise ValueError(f"img must be [N, img_channels={self.img_channels}, {r}, {r}], got "
                             f"shape {tuple(img.shape)}")
        if self.c_dim > 0:
            if not isinstance(c, Tensor) or c.dim() != 2 or c.shape != (img.shape[0], self.c_dim):
                got = tuple(c.shape) if isinstance(c, Tensor) else c if c is None \
                    else type(c).__name__
                raise ValueError(f"Discriminator: c must be [N={img.shape[0]}, "
                                 f"c_dim={self.c_dim}], got {got}")
        elif c is not None and not (isinstance(c, Tensor) and c.dim() == 2 and c.shape[1] == 0):
            # as the Generator: a label given to an unconditional model is a mistake, not a no-op
            got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(f"Discriminator: c_dim is 0: c must be None or [N, 0], got {got}")
        x = self.b4.fromrgb(img.to(_float_dtype(self))) if r == 4 else None
        for block in self.blocks():
            x = block(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, cmap).to(_float_dtype(self))  # float32 logits under autocast too

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}"
