"""upfirdn2d op family: StyleGAN2's FIR resampling with the [1, 3, 3, 1] filter at batch 32.

Variants: ``up2`` (upsample2d, up=2, as the synthesis layers use it), ``down2`` (downsample2d,
down=2, the discriminator), ``blur`` (filter2d, the blur of the resampling convolutions). The shape
label is the input's channels x resolution; channels follow StyleGAN2 config F at that resolution.
Interface: see ``bench/harness.py``.

upfirdn2d is linear in x, so its double backward is taken w.r.t. the incoming gradient dy (the
pass a gradient penalty runs through it): ``DBWD_WRT_DY``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .harness import FORMATS, MODES, Case

OP = "upfirdn2d"
WRT = ("x",)
DBWD_WRT_DY = True
TAPS = (1.0, 3.0, 3.0, 1.0)

# variant -> (up, down, padding (x0, x1, y0, y1) for a 4-tap filter, gain) with NVlabs' centring
VARIANTS = {
    "up2": (2, 1, (2, 1, 2, 1), 4.0),
    "down2": (1, 2, (1, 1, 1, 1), 1.0),
    "blur": (1, 1, (2, 1, 2, 1), 1.0),
}
CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}


def _shapes(variant):
    # up2 runs on the layer below each resolution 8..1024 (input 4..512); the others at 8..1024
    res = [r // 2 for r in (8, 16, 32, 64, 128, 256, 512, 1024)] if variant == "up2" else \
        [8, 16, 32, 64, 128, 256, 512, 1024]
    return [(f"{CHANNELS[2 * r if variant == 'up2' else r]}x{r}^2",
             (32, CHANNELS[2 * r if variant == "up2" else r], r, r)) for r in res]


def cases(device: str, quick: bool) -> list[Case]:
    out = []
    for var in VARIANTS:
        shapes = _shapes(var)
        if device == "cpu":  # reduced set: small shapes, fp32 both formats + bf16 NCHW
            shapes = shapes[:2]
            combos = [("fp32", "nchw"), ("fp32", "channels_last"), ("bf16", "nchw")]
        elif quick:
            shapes = [shapes[i] for i in (1, 3, 5, 7)]
            combos = [(d, f) for d in ("fp16", "bf16", "fp32") for f in FORMATS]
        else:
            combos = [(d, f) for d in ("fp16", "bf16", "fp32") for f in FORMATS]
        for dt, fmt in combos:
            for label, shape in shapes:
                out += [Case(OP, var, label, shape, dt, fmt, m) for m in MODES]
    return out


def _filter(device):
    f = torch.tensor(TAPS, device=device)
    f = torch.outer(f, f)
    return f / f.sum()


def make_inputs(case: Case, device: str) -> dict:
    x = torch.randn(case.shape, device=device).to(case.torch_dtype)
    return dict(x=x.contiguous(memory_format=FORMATS[case.memory_format]).requires_grad_())


def eager(case: Case):
    """What users write by hand (rosinality's native path): zero insertion by reshape + pad, pad,
    depthwise conv2d with the flipped filter, stride = down."""
    up, down, (px0, px1, py0, py1), gain = VARIANTS[case.variant]
    cache = {}

    def fn(x):
        n, c, h, w = x.shape
        key = (c, x.dtype, x.device)
        if key not in cache:
            k = (_filter(x.device) * gain).flip([0, 1]).to(x.dtype)
            cache[key] = k[None, None].repeat(c, 1, 1, 1)
        if up > 1:
            x = x.reshape(n, c, h, 1, w, 1)
            x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
        x = F.pad(x, [px0, px1, py0, py1])
        return F.conv2d(x, cache[key], groups=c, stride=down)
    return fn


def fastgan(case: Case, impl: str):
    from fastgan import ops  # raises if the op isn't there -> recorded as a skip
    f = torch.tensor(TAPS)
    fns = {"up2": lambda x: ops.upsample2d(x, fs[x.device], up=2, impl=impl),
           "down2": lambda x: ops.downsample2d(x, fs[x.device], down=2, impl=impl),
           "blur": lambda x: ops.filter2d(x, fs[x.device], impl=impl)}

    class _PerDevice(dict):
        def __missing__(self, dev):
            self[dev] = ops.setup_filter(f, device=dev)
            return self[dev]
    fs = _PerDevice()
    return fns[case.variant]


def _out_numel(case: Case) -> int:
    up, down, (px0, px1, py0, py1), _ = VARIANTS[case.variant]
    n, c, h, w = case.shape
    oh = (h * up + py0 + py1 - 4) // down + 1
    ow = (w * up + px0 + px1 - 4) // down + 1
    return n * c * oh * ow


def bytes_moved(case: Case) -> int:
    """Minimal traffic: each pass reads its input once and writes its output once. fwd: x -> y;
    bwd: dy -> dx; dbwd: forward, first gradient (create_graph) and its gradient w.r.t. dy
    (dg -> a y-sized result)."""
    size = torch.empty((), dtype=case.torch_dtype).element_size()
    one = (math.prod(case.shape) + _out_numel(case)) * size
    return one * {"fwd": 1, "bwd": 1, "fwd+bwd": 2, "dbwd": 3}[case.mode]
