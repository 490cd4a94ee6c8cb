"""modulated_conv2d op family: StyleGAN2 config-F synthesis layers at batch 32.

Variants:
* ``layer``: the 3x3 same-resolution layer (modulate, conv, demodulate, noise [N, 1, H, W], bias,
  lrelu * sqrt 2): fastgan runs it as one fused op (the Triton implicit-GEMM kernel); its
  first-order backward runs the data gradient through the same kernel with the style terms in the
  epilogue (``FASTGAN_MODCONV_FUSED_DGRAD=0`` in the environment times the unfused backward, for
  an A/B run with ``--out`` elsewhere); its weight gradient is cuDNN's of the materialised x * s
  unless ``FASTGAN_MODCONV_TRITON_WGRAD=1`` (the split-K Triton kernel, style in its prologue:
  time both to decide the default).
* ``up2``: the upsampling layer (3x3 transposed conv, stride 2, [1, 3, 3, 1] FIR), same epilogue.

``eager`` is the unfused PyTorch path a user writes (NVlabs ``fused_modconv=False``):
``x * s -> cuDNN conv -> * d + noise -> bias + leaky_relu * sqrt(2)``, with the up path as
conv_transpose2d + depthwise FIR.  Shape label: ``{I}->{O}@{H}^2`` with H the input resolution.

The layers are compute-bound: rows carry TFLOP/s (2 x multiply-adds of the convolutions: 1 GEMM
forward, 2 backward); ``bytes_moved`` is the minimal traffic (x, y, weights) for reference only.
dbwd: the path-length pattern, first gradient w.r.t. the styles ``s`` with create_graph.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .harness import FORMATS, Case

OP = "modulated_conv2d"
WRT = ("s", "x", "w", "b")
GAIN = math.sqrt(2)
TAPS = (1.0, 3.0, 3.0, 1.0)
MODES = ("fwd", "bwd", "fwd+bwd", "dbwd")
# Gradients through lrelu's kink: bf16 rounding of the weights moves a few pre-activations across
# 0, where the slope jumps from 1 to 0.2, differently in the composite and the fused op; the
# 3x3xI-tap sums of dx / dw then differ by up to ~10% of their max in bf16 (both are that far
# from float64). fp16 (8x finer) and fp32 keep the harness defaults.
TOLERANCE = {"bf16": (0.15, 0.15)}
CH = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}


def _shapes(variant):
    if variant == "layer":
        return [(f"{CH[r]}->{CH[r]}@{r}^2", (32, CH[r], CH[r], r)) for r in CH]
    return [(f"{CH[r // 2]}->{CH[r]}@{r // 2}^2", (32, CH[r // 2], CH[r], r // 2))
            for r in CH if r >= 8]


VARIANTS = ("layer", "up2")


def cases(device: str, quick: bool) -> list[Case]:
    out = []
    for var in VARIANTS:
        shapes = _shapes(var)
        if device == "cpu":  # smoke set: a tiny layer, fp32 both formats + bf16 NCHW
            shapes = [("16->16@8^2" if var == "layer" else "16->8@4^2",
                       (2, 16, 16, 8) if var == "layer" else (2, 16, 8, 4))]
            combos = [("fp32", "nchw"), ("fp32", "channels_last"), ("bf16", "nchw")]
        elif quick:
            shapes = [s for s in shapes if s[1][3] in (8, 32, 64, 256, 512)]
            combos = [("bf16", "nchw"), ("fp16", "channels_last")]
        else:
            combos = [(d, f) for d in ("fp16", "bf16", "fp32") for f in FORMATS]
        for dt, fmt in combos:
            for label, shape in shapes:
                out += [Case(OP, var, label, shape, dt, fmt, m) for m in MODES]
    return out


def _out_res(case):
    return case.shape[3] * (2 if case.variant == "up2" else 1)


def make_inputs(case: Case, device: str) -> dict:
    n, i, o, h = case.shape
    r = _out_res(case)
    x = torch.randn(n, i, h, h, device=device)
    x = x.to(case.torch_dtype).contiguous(memory_format=FORMATS[case.memory_format]).requires_grad_()
    w = torch.randn(o, i, 3, 3, device=device).requires_grad_()
    s = (1 + 0.2 * torch.randn(n, i, device=device)).requires_grad_()
    noise = 0.1 * torch.randn(n, 1, r, r, device=device)
    b = (0.1 * torch.randn(o, device=device)).requires_grad_()
    return dict(x=x, w=w, s=s, noise=noise, b=b)


def _filter(device):
    f = torch.tensor(TAPS, device=device)
    f = torch.outer(f, f)
    return f / f.sum()


def eager(case: Case):
    up = case.variant == "up2"

    def fn(x, w, s, noise, b):
        dt = x.dtype
        i = w.shape[1]
        if dt == torch.float16:  # NVlabs' fp16 pre-normalisation
            w = w * (1 / math.sqrt(i * 9) / w.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
            s = s / s.norm(float("inf"), dim=1, keepdim=True)
        d = ((w[None] * s[:, None, :, None, None]).square().sum([2, 3, 4]) + 1e-8).rsqrt()
        xs = x * s.to(dt)[:, :, None, None]
        if up:
            # correlation with w at the upsampled resolution = conv_transpose2d with w flipped
            c = F.conv_transpose2d(xs, w.to(dt).flip([2, 3]).transpose(0, 1), stride=2)
            f = (_filter(x.device) * 4).to(dt)[None, None].repeat(c.shape[1], 1, 1, 1)
            c = F.conv2d(F.pad(c, [1, 1, 1, 1]), f, groups=c.shape[1])
        else:
            c = F.conv2d(xs, w.to(dt), padding=1)
        u = c * d.to(dt)[:, :, None, None] + noise.to(dt)
        return F.leaky_relu(u + b.to(dt)[None, :, None, None], 0.2) * GAIN
    return fn


def fastgan(case: Case, impl: str):
    from fastgan.ops import modulated_conv2d  # raises if the op isn't there -> recorded as a skip
    up = 2 if case.variant == "up2" else 1

    def fn(x, w, s, noise, b):
        f = _filter(x.device) if up > 1 else None
        return modulated_conv2d(x, w, s, noise=noise, up=up, padding=1, resample_filter=f,
                                bias=b, act="lrelu", impl=impl)
    return fn


def bytes_moved(case: Case) -> int:
    """x and y (and in the backward dy, dx and the saved tensors) once each, plus the weights."""
    n, i, o, h = case.shape
    r = _out_res(case)
    size = torch.empty((), dtype=case.torch_dtype).element_size()
    xs, ys, ws = n * i * h * h, n * o * r * r, o * i * 9
    per_mode = {"fwd": xs + ys, "bwd": 2 * ys + 2 * xs, "fwd+bwd": 3 * ys + 3 * xs,
                "dbwd": 6 * ys + 5 * xs}
    return per_mode[case.mode] * size + 3 * ws * 4


def flops(case: Case):
    """2 x multiply-adds of the convolutions (1 GEMM forward, 2 backward); None for dbwd."""
    n, i, o, h = case.shape
    gemm = 2 * n * i * o * 9 * h * h  # the up path's transposed conv runs at the input resolution
    return {"fwd": gemm, "bwd": 2 * gemm, "fwd+bwd": 3 * gemm}.get(case.mode)
