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
    (negligible). A plane that does not fit one register tile is read twice (statistics, then the
    elementwise pass), so those shapes top out near 2/3 (fwd) and 3/5 (bwd) of copy bandwidth by
    this measure.
    """
    n = math.prod(case.shape)
    planes = case.shape[0] * case.shape[1]
    size = torch.empty((), dtype=case.torch_dtype).element_size()
    full, passes = {"fwd": (2, 1), "bwd": (3, 1), "fwd+bwd": (5, 2), "dbwd": (9, 3)}[case.mode]
    return full * n * size + passes * planes * (2 * size + 2 * 4)
