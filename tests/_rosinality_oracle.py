"""An independent, plain-PyTorch oracle for rosinality/stylegan2-pytorch's StyleGAN2 Generator and
Discriminator (model.py, MIT licence), written from the behaviour of that code, not copied from it.

The forward passes here work directly on a state dict in rosinality's key layout, so a checkpoint's
``g_ema`` / ``d`` dict (or one built by ``make_generator_state_dict`` /
``make_discriminator_state_dict``) can be evaluated without rosinality's code and without fastgan.
Everything is computed in the dtype and on the device of the input (``styles`` / ``img``): the state
dict's tensors are cast on use, so a float32 checkpoint can be evaluated in float64.

Semantics (rosinality's model.py and op/):

* ``upfirdn2d(x, k, up, down, pad=(p0, p1))``: insert ``up-1`` zeros after every pixel, pad both
  axes by ``p0`` before and ``p1`` after (negative crops), TRUE convolution with ``k`` (the
  kernel is flipped before a correlation), keep every ``down``-th pixel.
* ``fused_leaky_relu(x, b) = leaky_relu(x + b, 0.2) * sqrt(2)``.
* ``make_kernel(k)``: outer product of a 1-D kernel with itself, normalised to sum 1.
* EqualLinear: ``W * (lr_mul / sqrt(in))``, bias ``b * lr_mul``; with activation the bias goes
  into fused_leaky_relu. EqualConv2d: ``W / sqrt(in * k * k)``.
* ModulatedConv2d: ``s = modulation(w)`` (EqualLinear, lr_mul 1), ``W' = W / sqrt(in*k*k) * s[in]``,
  demodulated by ``rsqrt(sum_{in,kh,kw} W'^2 + 1e-8)``; upsampling layers run a stride-2
  transposed convolution (padding 0) and then Blur(kernel * 4, pad=(1, 1)); others conv2d with
  padding k // 2.
* StyledConv: ModulatedConv2d, ``+ noise.weight * noise``, fused_leaky_relu(activate.bias).
* ToRGB: ModulatedConv2d (1x1, no demodulation) ``+ bias`` ``+ Upsample(skip)`` where Upsample is
  upfirdn2d(up=2, kernel make_kernel * 4, pad=(2, 1)).
* Discriminator: ConvLayer = [Blur] + EqualConv2d + [FusedLeakyReLU]; ResBlock
  ``(conv2(conv1(x)) + skip(x)) / sqrt(2)``; minibatch stddev with group ``min(N, 4)`` where the
  groups are strided (sample n is grouped with n + M, n + 2M, ... for M = N // group).
"""
from __future__ import annotations

import math
import random
import re

import torch
import torch.nn.functional as F

__all__ = [
    "rosinality_channels", "make_kernel", "upfirdn2d", "fused_leaky_relu", "pixel_norm",
    "equal_linear", "modulated_conv2d", "minibatch_stddev", "generator_structure",
    "make_generator_state_dict", "make_discriminator_state_dict", "mapping_forward",
    "styled_conv_forward", "to_rgb_forward", "generator_forward", "discriminator_forward",
]

_SQRT2 = math.sqrt(2.0)
_TABLE = {4: 512, 8: 512, 16: 512, 32: 512}
_TABLE_CM = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def _log2(size: int) -> int:
    log = int(size).bit_length() - 1
    if size < 4 or 2 ** log != size:
        raise ValueError(f"size must be a power of two >= 4, got {size}")
    return log


def rosinality_channels(size: int, channel_multiplier: int = 2) -> dict[int, int]:
    """rosinality's channel table restricted to resolutions 4..size."""
    log = _log2(size)
    if size > 1024:
        raise ValueError(f"rosinality's channel table stops at 1024, got {size}")
    out = {}
    for i in range(2, log + 1):
        r = 2 ** i
        out[r] = _TABLE[r] if r in _TABLE else _TABLE_CM[r] * channel_multiplier
    return out


# --------------------------------------------------------------------------------------------------
# primitives
# --------------------------------------------------------------------------------------------------

def make_kernel(k, dtype=torch.float64) -> torch.Tensor:
    k = torch.as_tensor(k, dtype=dtype)
    if k.ndim == 1:
        k = torch.outer(k, k)
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0)):
    """x [N, C, H, W]; kernel [kh, kw]; pad (p0, p1) for both axes or (x0, x1, y0, y1)."""
    if len(pad) == 2:
        px0, px1, py0, py1 = pad[0], pad[1], pad[0], pad[1]
    else:
        px0, px1, py0, py1 = pad
    n, c, h, w = x.shape
    kernel = kernel.to(dtype=x.dtype, device=x.device)
    # 1. zero insertion (up - 1 zeros after every pixel)
    z = x.new_zeros(n, c, h * up, w * up)
    z[:, :, ::up, ::up] = x
    # 2. pad, then crop for negative pads
    z = F.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0):z.shape[2] - max(-py1, 0), max(-px0, 0):z.shape[3] - max(-px1, 0)]
    # 3. true convolution = correlation with the flipped kernel, per channel
    kh, kw = kernel.shape
    wgt = kernel.flip([0, 1]).reshape(1, 1, kh, kw)
    out = F.conv2d(z.reshape(n * c, 1, z.shape[2], z.shape[3]), wgt)
    out = out.reshape(n, c, out.shape[2], out.shape[3])
    # 4. decimation
    return out[:, :, ::down, ::down]


def fused_leaky_relu(x, bias=None, negative_slope=0.2, scale=_SQRT2):
    if bias is not None:
        x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale


def pixel_norm(x):
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def equal_linear(x, weight, bias=None, *, lr_mul=1.0, activate=False):
    """rosinality's EqualLinear on raw (stored) parameters."""
    w = weight * (lr_mul / math.sqrt(weight.shape[1]))
    b = None if bias is None else bias * lr_mul
    if activate:
        return fused_leaky_relu(F.linear(x, w), b)
    return F.linear(x, w, b)


def equal_conv2d(x, weight, bias=None, *, stride=1, padding=0):
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    return F.conv2d(x, weight / math.sqrt(fan_in), bias, stride=stride, padding=padding)


def _blur_pads_up(kernel_len: int, ksize: int, factor: int = 2):
    p = (kernel_len - factor) - (ksize - 1)
    return (p + 1) // 2 + factor - 1, p // 2 + 1


def _blur_pads_down(kernel_len: int, ksize: int, factor: int = 2):
    p = (kernel_len - factor) + (ksize - 1)
    return (p + 1) // 2, p // 2


def _upsample_pads(kernel_len: int, factor: int = 2):
    p = kernel_len - factor
    return (p + 1) // 2 + factor - 1, p // 2


def modulated_conv2d(x, weight, style, *, demodulate=True, upsample=False, blur_kernel=None,
                     eps=1e-8):
    """x [N, in, H, W]; weight [1, out, in, k, k] or [out, in, k, k] (raw, unscaled); style [N, in]
    (the modulation EqualLinear's output). Upsampling: per-sample stride-2 transposed convolution,
    then upfirdn2d with ``blur_kernel`` (rosinality's stored ``conv.blur.kernel``:
    make_kernel * 4)."""
    if weight.ndim == 5:
        weight = weight[0]
    out_ch, in_ch, kh, kw = weight.shape
    n = x.shape[0]
    wgt = weight[None] / math.sqrt(in_ch * kh * kw) * style[:, None, :, None, None]
    if demodulate:
        wgt = wgt * torch.rsqrt(wgt.pow(2).sum(dim=[2, 3, 4]) + eps)[:, :, None, None, None]
    outs = []
    for i in range(n):
        xi = x[i:i + 1]
        if upsample:
            outs.append(F.conv_transpose2d(xi, wgt[i].transpose(0, 1), stride=2, padding=0))
        else:
            outs.append(F.conv2d(xi, wgt[i], padding=kh // 2))
    out = torch.cat(outs, 0)
    if upsample:
        if blur_kernel is None:
            blur_kernel = make_kernel([1, 3, 3, 1]) * 4
        out = upfirdn2d(out, blur_kernel, pad=_blur_pads_up(blur_kernel.shape[0], kh))
    return out


def minibatch_stddev(x, group_size=4, num_features=1):
    """rosinality's Discriminator minibatch-stddev feature appended to x (channel count + feat)."""
    n, c, h, w = x.shape
    g = min(n, group_size)
    if n % g:
        raise ValueError(f"batch {n} is not divisible by the stddev group {g}")
    y = x.reshape(g, -1, num_features, c // num_features, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)        # [M, F, C/F, H, W]
    y = y.mean(dim=[2, 3, 4], keepdim=True).squeeze(2)     # [M, F, 1, 1]
    y = y.repeat(g, 1, h, w)                               # sample n gets group n % M
    return torch.cat([x, y], 1)


# --------------------------------------------------------------------------------------------------
# state-dict structure and builders
# --------------------------------------------------------------------------------------------------

def _count(sd, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd for m in [rx.fullmatch(k)] if m})


def generator_structure(sd) -> dict:
    """size, log_size, n_mlp, num_layers, n_latent, style_dim, img_channels, channels, read from a
    generator state dict in rosinality's layout."""
    n_rgbs = _count(sd, r"to_rgbs\.(\d+)\.bias")
    log_size = n_rgbs + 2
    channels = {4: sd["conv1.conv.weight"].shape[1]}
    for r in range(n_rgbs):
        channels[2 ** (r + 3)] = sd[f"convs.{2 * r}.conv.weight"].shape[1]
    return dict(
        size=2 ** log_size, log_size=log_size, n_mlp=_count(sd, r"style\.(\d+)\.weight"),
        num_layers=(log_size - 2) * 2 + 1, n_latent=log_size * 2 - 2,
        style_dim=sd["conv1.conv.modulation.weight"].shape[1],
        img_channels=sd["to_rgb1.conv.weight"].shape[1], channels=channels,
    )


def _resolve_channels(size, channels, channel_multiplier):
    log = _log2(size)
    if channels is None:
        return rosinality_channels(size, channel_multiplier)
    missing = [2 ** i for i in range(2, log + 1) if 2 ** i not in channels]
    if missing:
        raise ValueError(f"channels is missing resolutions {missing}")
    return {2 ** i: int(channels[2 ** i]) for i in range(2, log + 1)}


class _Rand:
    def __init__(self, generator):
        self.g = generator

    def randn(self, *shape):
        return torch.randn(*shape, generator=self.g, dtype=torch.float64)

    def rand(self, *shape):
        return torch.rand(*shape, generator=self.g, dtype=torch.float64)

    def signed(self, *shape, lo=0.1, hi=0.5):
        """Values with magnitude in [lo, hi] and a random sign (never zero)."""
        mag = lo + (hi - lo) * self.rand(*shape)
        sign = torch.where(self.rand(*shape) < 0.5, -1.0, 1.0).to(torch.float64)
        return mag * sign


def make_generator_state_dict(size, style_dim, n_mlp, channels=None, channel_multiplier=2,
                              img_channels=3, generator=None, dtype=torch.float64,
                              lr_mlp=0.01, blur_kernel=(1, 3, 3, 1)) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of rosinality's Generator(size, style_dim, n_mlp,
    channel_multiplier, blur_kernel, lr_mlp), in its state_dict order, with random non-trivial
    parameters (random biases, noise strengths of magnitude 0.1..0.5, modulation biases around 1)
    and the blur kernels exactly as rosinality stores them (make_kernel(blur_kernel) * 4)."""
    ch = _resolve_channels(size, channels, channel_multiplier)
    log = _log2(size)
    r = _Rand(generator)
    sd: dict[str, torch.Tensor] = {}
    up_kernel = make_kernel(blur_kernel) * 4

    for i in range(1, n_mlp + 1):  # style.0 is PixelNorm (no parameters)
        sd[f"style.{i}.weight"] = r.randn(style_dim, style_dim) / lr_mlp
        sd[f"style.{i}.bias"] = 0.3 * r.randn(style_dim) / lr_mlp  # used as bias * lr_mlp

    sd["input.input"] = r.randn(1, ch[4], 4, 4)

    def modconv(prefix, cin, cout, k, up):
        sd[prefix + "weight"] = r.randn(1, cout, cin, k, k)
        if up:
            sd[prefix + "blur.kernel"] = up_kernel.clone()
        sd[prefix + "modulation.weight"] = r.randn(cin, style_dim)
        sd[prefix + "modulation.bias"] = 1.0 + 0.25 * r.randn(cin)

    def styled(prefix, cin, cout, up):
        modconv(prefix + "conv.", cin, cout, 3, up)
        sd[prefix + "noise.weight"] = r.signed(1)
        sd[prefix + "activate.bias"] = 0.2 * r.randn(cout)

    def to_rgb(prefix, cin, up):
        sd[prefix + "bias"] = 0.2 * r.randn(1, img_channels, 1, 1)
        if up:
            sd[prefix + "upsample.kernel"] = up_kernel.clone()
        modconv(prefix + "conv.", cin, img_channels, 1, False)

    styled("conv1.", ch[4], ch[4], False)
    to_rgb("to_rgb1.", ch[4], False)
    cin = ch[4]
    for i in range(3, log + 1):
        j = 2 * (i - 3)
        styled(f"convs.{j}.", cin, ch[2 ** i], True)
        styled(f"convs.{j + 1}.", ch[2 ** i], ch[2 ** i], False)
        cin = ch[2 ** i]
    for i in range(3, log + 1):
        to_rgb(f"to_rgbs.{i - 3}.", ch[2 ** i], True)
    num_layers = (log - 2) * 2 + 1
    for j in range(num_layers):
        res = (j + 5) // 2
        sd[f"noises.noise_{j}"] = r.randn(1, 1, 2 ** res, 2 ** res)
    return {k: v.to(dtype) for k, v in sd.items()}


def make_discriminator_state_dict(size, channels=None, channel_multiplier=2, img_channels=3,
                                  generator=None, dtype=torch.float64,
                                  blur_kernel=(1, 3, 3, 1)) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of rosinality's Discriminator(size, channel_multiplier,
    blur_kernel), in its state_dict order; random weights and biases, Blur kernels stored
    normalised (make_kernel(blur_kernel))."""
    ch = _resolve_channels(size, channels, channel_multiplier)
    log = _log2(size)
    r = _Rand(generator)
    kern = make_kernel(blur_kernel)
    sd: dict[str, torch.Tensor] = {}
    sd["convs.0.0.weight"] = r.randn(ch[size], img_channels, 1, 1)
    sd["convs.0.1.bias"] = 0.2 * r.randn(ch[size])
    cin = ch[size]
    for k, i in enumerate(range(log, 2, -1), start=1):
        cout = ch[2 ** (i - 1)]
        p = f"convs.{k}."
        sd[p + "conv1.0.weight"] = r.randn(cin, cin, 3, 3)
        sd[p + "conv1.1.bias"] = 0.2 * r.randn(cin)
        sd[p + "conv2.0.kernel"] = kern.clone()
        sd[p + "conv2.1.weight"] = r.randn(cout, cin, 3, 3)
        sd[p + "conv2.2.bias"] = 0.2 * r.randn(cout)
        sd[p + "skip.0.kernel"] = kern.clone()
        sd[p + "skip.1.weight"] = r.randn(cout, cin, 1, 1)
        cin = cout
    sd["final_conv.0.weight"] = r.randn(ch[4], cin + 1, 3, 3)
    sd["final_conv.1.bias"] = 0.2 * r.randn(ch[4])
    sd["final_linear.0.weight"] = r.randn(ch[4], ch[4] * 16)
    sd["final_linear.0.bias"] = 0.2 * r.randn(ch[4])
    sd["final_linear.1.weight"] = r.randn(1, ch[4])
    sd["final_linear.1.bias"] = 0.2 * r.randn(1)
    return {k: v.to(dtype) for k, v in sd.items()}


# --------------------------------------------------------------------------------------------------
# forward passes on a state dict
# --------------------------------------------------------------------------------------------------

def _get(sd, key, ref):
    return sd[key].to(dtype=ref.dtype, device=ref.device)


def _modconv_forward(sd, prefix, x, w, *, demodulate, upsample):
    style = equal_linear(w, _get(sd, prefix + "modulation.weight", x),
                         _get(sd, prefix + "modulation.bias", x))
    kernel = _get(sd, prefix + "blur.kernel", x) if upsample else None
    return modulated_conv2d(x, _get(sd, prefix + "weight", x), style, demodulate=demodulate,
                            upsample=upsample, blur_kernel=kernel)


def styled_conv_forward(sd, prefix, x, w, noise=None, *, upsample=None):
    """StyledConv ``prefix`` (e.g. "convs.0."): modulated conv, noise injection, activation.
    noise None draws fresh N(0, 1) noise [N, 1, H, W]; upsample defaults to whether the layer
    has a blur kernel."""
    if upsample is None:
        upsample = (prefix + "conv.blur.kernel") in sd
    out = _modconv_forward(sd, prefix + "conv.", x, w, demodulate=True, upsample=upsample)
    if noise is None:
        noise = torch.randn(out.shape[0], 1, out.shape[2], out.shape[3], dtype=out.dtype,
                            device=out.device)
    noise = noise.to(dtype=out.dtype, device=out.device)
    out = out + _get(sd, prefix + "noise.weight", out) * noise
    return fused_leaky_relu(out, _get(sd, prefix + "activate.bias", out))


def to_rgb_forward(sd, prefix, x, w, skip=None):
    out = _modconv_forward(sd, prefix + "conv.", x, w, demodulate=False, upsample=False)
    out = out + _get(sd, prefix + "bias", out)
    if skip is not None:
        k = _get(sd, prefix + "upsample.kernel", out)
        out = out + upfirdn2d(skip.to(out.dtype), k, up=2, pad=_upsample_pads(k.shape[0]))
    return out


def mapping_forward(sd, z, *, n_mlp=None, lr_mlp=0.01):
    """rosinality's ``Generator.style``: PixelNorm then n_mlp EqualLinear(lr_mul=lr_mlp, lrelu)."""
    if n_mlp is None:
        n_mlp = _count(sd, r"style\.(\d+)\.weight")
    x = pixel_norm(z)
    for i in range(1, n_mlp + 1):
        x = equal_linear(x, _get(sd, f"style.{i}.weight", x), _get(sd, f"style.{i}.bias", x),
                         lr_mul=lr_mlp, activate=True)
    return x


def generator_forward(sd, styles, *, n_mlp=None, lr_mlp=0.01, input_is_latent=False, noise=None,
                      randomize_noise=False, truncation=1.0, truncation_latent=None,
                      inject_index=None, return_latents=False):
    """rosinality's ``Generator.forward`` on a state dict.

    styles: a list of 1 or 2 tensors [N, style_dim] (z; w when input_is_latent) -- like rosinality,
    entries after the second are ignored -- or, with input_is_latent, a single [N, n_latent,
    style_dim] latent. noise: a list of num_layers tensors (None entries draw fresh noise) or None:
    the stored ``noises.noise_j`` buffers, or fresh noise everywhere when randomize_noise (note
    that rosinality's own default is randomize_noise=True). Truncation applies only when
    truncation < 1, to every style (after the mapping). With two styles and inject_index None,
    inject_index = random.randint(1, n_latent - 1) as in rosinality. Computes in styles[0]'s dtype.
    Returns the image, or (image, latent) with return_latents."""
    st = generator_structure(sd)
    num_layers, n_latent = st["num_layers"], st["n_latent"]
    if n_mlp is None:
        n_mlp = st["n_mlp"]
    if isinstance(styles, torch.Tensor):
        styles = [styles]
    styles = list(styles)
    if not input_is_latent:
        styles = [mapping_forward(sd, s, n_mlp=n_mlp, lr_mlp=lr_mlp) for s in styles]
    ref = styles[0]

    if noise is None:
        if randomize_noise:
            noise = [None] * num_layers
        else:
            noise = [sd[f"noises.noise_{j}"] for j in range(num_layers)]
    if len(noise) != num_layers:
        raise ValueError(f"expected {num_layers} noise tensors, got {len(noise)}")

    if truncation < 1:
        if truncation_latent is None:
            raise ValueError("truncation < 1 needs truncation_latent")
        tl = truncation_latent.to(dtype=ref.dtype, device=ref.device)
        styles = [tl + truncation * (s - tl) for s in styles]

    if len(styles) < 2:
        if styles[0].ndim < 3:
            latent = styles[0].unsqueeze(1).repeat(1, n_latent, 1)
        else:
            latent = styles[0]
            if latent.shape[1] != n_latent:
                raise ValueError(f"latent must have {n_latent} entries, got {latent.shape[1]}")
    else:
        if inject_index is None:
            inject_index = random.randint(1, n_latent - 1)
        latent = torch.cat([styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                            styles[1].unsqueeze(1).repeat(1, n_latent - inject_index, 1)], 1)

    n = latent.shape[0]
    out = _get(sd, "input.input", latent).repeat(n, 1, 1, 1)
    out = styled_conv_forward(sd, "conv1.", out, latent[:, 0], noise[0], upsample=False)
    skip = to_rgb_forward(sd, "to_rgb1.", out, latent[:, 1])
    i = 1
    for r in range(st["log_size"] - 2):
        out = styled_conv_forward(sd, f"convs.{2 * r}.", out, latent[:, i], noise[2 * r + 1],
                                  upsample=True)
        out = styled_conv_forward(sd, f"convs.{2 * r + 1}.", out, latent[:, i + 1],
                                  noise[2 * r + 2], upsample=False)
        skip = to_rgb_forward(sd, f"to_rgbs.{r}.", out, latent[:, i + 2], skip)
        i += 2
    return (skip, latent) if return_latents else skip


def _conv_layer(sd, prefix, x, *, downsample=False, activate=True):
    """rosinality's ConvLayer ``prefix`` ([Blur,] EqualConv2d[, FusedLeakyReLU])."""
    idx = 0
    if downsample:
        kern = _get(sd, prefix + "0.kernel", x)
        ksize = sd[prefix + "1.weight"].shape[-1]
        x = upfirdn2d(x, kern, pad=_blur_pads_down(kern.shape[0], ksize))
        idx = 1
    weight = _get(sd, prefix + f"{idx}.weight", x)
    conv_bias = sd.get(prefix + f"{idx}.bias") if not activate else None
    if conv_bias is not None:
        conv_bias = conv_bias.to(dtype=x.dtype, device=x.device)
    ksize = weight.shape[-1]
    x = equal_conv2d(x, weight, conv_bias, stride=2 if downsample else 1,
                     padding=0 if downsample else ksize // 2)
    if activate:
        key = prefix + f"{idx + 1}.bias"
        x = fused_leaky_relu(x, _get(sd, key, x) if key in sd else None)
    return x


def discriminator_forward(sd, img, *, stddev_group=4, stddev_feat=1):
    """rosinality's ``Discriminator.forward`` on a state dict: img [N, C, size, size] -> [N, 1]."""
    n_blocks = _count(sd, r"convs\.(\d+)\.conv1\.0\.weight")
    x = _conv_layer(sd, "convs.0.", img)
    for k in range(1, n_blocks + 1):
        p = f"convs.{k}."
        out = _conv_layer(sd, p + "conv1.", x)
        out = _conv_layer(sd, p + "conv2.", out, downsample=True)
        skip = _conv_layer(sd, p + "skip.", x, downsample=True, activate=False)
        x = (out + skip) / _SQRT2
    x = minibatch_stddev(x, stddev_group, stddev_feat)
    x = _conv_layer(sd, "final_conv.", x)
    x = x.reshape(x.shape[0], -1)
    x = equal_linear(x, _get(sd, "final_linear.0.weight", x), _get(sd, "final_linear.0.bias", x),
                     activate=True)
    return equal_linear(x, _get(sd, "final_linear.1.weight", x), _get(sd, "final_linear.1.bias", x))
