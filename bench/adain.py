"""adain op family: y = gamma * instance_norm(x) + beta, gamma / beta [N, C] (StyleGAN1 AdaIN).

Shapes are the StyleGAN1 synthesis layers at batch 32 (512 channels at 4^2..64^2, then 256, 128, 64,
32 at 128^2..1024^2). The eager composite is what users write by hand: ``F.instance_norm`` followed
by the affine. Interface: see ``bench/harness.py``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .harness import FORMATS, MODES, Case

OP = "adain"
WRT = ("x", "gamma", "beta")
EPS = 1e-5

VARIANTS = {"stylegan1": MODES}

SHAPES = [(f"{c}x{r}^2", (32, c, r, r)) for c, r in
          [(512, 4), (512, 8), (512, 16), (512, 32), (512, 64), (256, 128), (128, 256),
           (64, 512), (32, 1024)]]


def cases(device: str, quick: bool) -> list[Case]:
    if device == "cpu":  # reduced set: small shapes, fp32 both formats + bf16 NCHW
        shapes, combos = SHAPES[:3], [("fp32", "nchw"), ("fp32", "channels_last"), ("bf16", "nchw")]
    elif quick:
        shapes = [SHAPES[i] for i in (0, 3, 4, 5, 8)]
        combos = [("fp16", f) for f in FORMATS] + [("bf16", "nchw")]
    else:
        shapes, combos = SHAPES, [(d, f) for d in ("fp16", "bf16", "fp32") for f in FORMATS]
    out = []
    for var, modes in VARIANTS.items():
        for dt, fmt in combos:
            for label, shape in shapes:
                out += [Case(OP, var, label, shape, dt, fmt, m) for m in modes]
    return out


def make_inputs(case: Case, device: str) -> dict:
    dt, fmt = case.torch_dtype, FORMATS[case.memory_format]
    n, c = case.shape[:2]
    x = torch.randn(case.shape, device=device).to(dt).contiguous(memory_format=fmt)
    # a style around gamma = 1 (StyleGAN1: 1 + scale), as a trained mapping produces
    gamma = 1 + 0.2 * torch.randn(n, c, device=device)
    beta = 0.2 * torch.randn(n, c, device=device)
    return dict(x=x.requires_grad_(), gamma=gamma.to(dt).requires_grad_(),
                beta=beta.to(dt).requires_grad_())


def eager(case: Case):
    return lambda x, gamma, beta: (F.instance_norm(x, eps=EPS) * gamma[:, :, None, None]
                                   + beta[:, :, None, None])


def fastgan(case: Case, impl: str):
    from fastgan.ops import adain  # raises if the op isn't there -> recorded as a skip
    return lambda x, gamma, beta: adain(x, gamma, beta, eps=EPS, impl=impl)


def bytes_moved(case: Case) -> int:
    """Compulsory traffic: every autograd pass streams each full-size operand once.

    fwd: read x, write y (2N). bwd: read dy and x, write dx (3N; dgamma / dbeta are reductions of
    what was read). dbwd: fwd (2N) + first grad with create_graph (3N) + its backward, read dg, dy
    and x, write the grad (4N). Per pass the [N, C] parameters and statistics are counted too
    (negligible).

    Not counted: the second read of planes that do not fit one register tile. The Triton kernels
    hold a whole plane in one tile up to ``MAX_ONE_TILE`` (kernels/adain.py) = 16384 elements for
    fp16 / bf16 / fp32 (8192 for fp64, and for planes whose tile rows are not 16-element aligned),
    so every NCHW shape here up to 256x128^2 (128^2 = 16384 pixels) is read once, and in
    channels_last (tiles of 16 fp16 / bf16 or 8 fp32 channels: one 32-byte row per pixel) those up
    to 512x32^2. The larger planes -- NCHW 128x256^2 .. 32x1024^2, channels_last 512x64^2 ..
    32x1024^2 -- take the two-pass path the AdaIN issue prescribes (one pass for the
    statistics, one for the apply): x is read twice in the forward, dy and x twice in the
    backward, so by this measure they top out near 2/3 (fwd) and 3/5 (bwd) of copy bandwidth,
    or better where the second read hits L2 (the kernels re-read the most recently streamed data
    first). (The CUDA backend, csrc/adain.cu, holds no plane in registers: it makes the second
    read for every shape, from L1 / L2 where the plane is small.)
    """
    n = math.prod(case.shape)
    planes = case.shape[0] * case.shape[1]
    size = torch.empty((), dtype=case.torch_dtype).element_size()
    full, passes = {"fwd": (2, 1), "bwd": (3, 1), "fwd+bwd": (5, 2), "dbwd": (9, 3)}[case.mode]
    return full * n * size + passes * planes * (2 * size + 2 * 4)
