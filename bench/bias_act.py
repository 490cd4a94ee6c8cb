"""bias_act op family: y = clamp(act(x + b[None, :, None, None]) * gain, -clamp, clamp).

Shapes are the StyleGAN2 synthesis layers at batch 32. Interface: see ``bench/harness.py``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .harness import FORMATS, MODES, Case

OP = "bias_act"
WRT = ("x", "b")
GAIN = math.sqrt(2)

# variant -> (fastgan kwargs, modes). lrelu along dim 1 is the StyleGAN2 hot case (and its R1
# penalty is the dbwd case); linear + clamp 256 is what the fp16 layers of StyleGAN2-ADA use.
VARIANTS = {
    "lrelu": (dict(act="lrelu"), MODES),
    "clamp256": (dict(act="linear", clamp=256.0), ("fwd", "fwd+bwd")),
}

SHAPES = [(f"{c}x{r}^2", (32, c, r, r)) for c, r in
          [(512, 4), (512, 8), (512, 16), (512, 32), (512, 64), (256, 128), (128, 256),
           (64, 512), (32, 1024)]]


def cases(device: str, quick: bool) -> list[Case]:
    if device == "cpu":  # reduced set: small shapes, fp32 both formats + bf16 NCHW
        shapes, combos = SHAPES[:3], [("fp32", "nchw"), ("fp32", "channels_last"), ("bf16", "nchw")]
    elif quick:
        shapes = [SHAPES[i] for i in (0, 3, 5, 8)]
        combos = [("fp16", f) for f in FORMATS] + [("bf16", "nchw")]
    else:
        shapes, combos = SHAPES, [(d, f) for d in ("fp16", "bf16", "fp32") for f in FORMATS]
    out = []
    for var, (_, modes) in VARIANTS.items():
        for dt, fmt in combos:
            # the clamp recipe is an fp16 one; on GPU don't spend time on it for other dtypes
            if var == "clamp256" and device == "cuda" and dt != "fp16":
                continue
            for label, shape in shapes:
                out += [Case(OP, var, label, shape, dt, fmt, m) for m in modes]
    return out


def make_inputs(case: Case, device: str) -> dict:
    dt, fmt = case.torch_dtype, FORMATS[case.memory_format]
    x = torch.randn(case.shape, device=device)
    b = torch.randn(case.shape[1], device=device)
    if case.variant == "clamp256":
        # x = 2 (mod 4), b = 0 (mod 4): x + b is exact in fp16/bf16 near the clamp edge and never
        # hits +-256 itself, where torch.clamp passes the gradient (<=) and NVlabs' bias_act does
        # not (<); ~1% of elements (|x| > 2.56 sigma) actually clamp.
        x, b = (x * 25).round() * 4 + 2, (b * 2.5).round() * 4
    x = x.to(dt).contiguous(memory_format=fmt).requires_grad_()
    return dict(x=x, b=b.to(dt).requires_grad_())


def eager(case: Case):
    kw = VARIANTS[case.variant][0]
    if kw["act"] == "lrelu":
        return lambda x, b: F.leaky_relu(x + b.view(1, -1, 1, 1), 0.2) * GAIN
    c = kw["clamp"]
    return lambda x, b: (x + b.view(1, -1, 1, 1)).clamp(-c, c)


def fastgan(case: Case, impl: str):
    from fastgan.ops import bias_act  # raises if the op isn't there -> recorded as a skip
    kw = VARIANTS[case.variant][0]
    return lambda x, b: bias_act(x, b, dim=1, impl=impl, **kw)


def bytes_moved(case: Case) -> int:
    """Minimal traffic: every autograd pass streams each full-size operand once.

    fwd: read x, write y (2N). bwd: read dy, read the saved tensor, write dx (3N; db is a
    reduction over the dy already read). dbwd: fwd (2N) + first grad with create_graph (3N) +
    its backward, read dg, dy and the saved tensor, write the grad (4N). The bias is C elements
    per pass: negligible, but counted.
    """
    n, c = math.prod(case.shape), case.shape[1]
    size = torch.empty((), dtype=case.torch_dtype).element_size()
    full, passes = {"fwd": (2, 1), "bwd": (3, 1), "fwd+bwd": (5, 2), "dbwd": (9, 3)}[case.mode]
    return (full * n + passes * c) * size
