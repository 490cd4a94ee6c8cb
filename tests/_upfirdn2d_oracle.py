"""The definition of upfirdn2d, written out step by step in float64 (the oracle every backend is
tested against; deliberately naive and independent of fastgan's code).

    1. insert up-1 zeros after every pixel (per axis),
    2. pad by (x0, x1, y0, y1) -- negative values crop,
    3. convolve with f (true convolution; flip_filter=True means correlation), times gain,
    4. keep every down-th pixel starting at 0.

A 1-D filter is applied separably on both axes, with the gain applied once overall.
"""
from __future__ import annotations

import random

import torch


def _pair(v):
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pad4(p):
    if isinstance(p, int):
        return (p, p, p, p)
    if len(p) == 2:
        return (int(p[0]), int(p[0]), int(p[1]), int(p[1]))
    return tuple(int(v) for v in p)


def upfirdn2d_definition(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1.0):
    """x [N, C, H, W]; f [fh, fw], [k] (separable) or None. Returns float64 [N, C, OH, OW]."""
    x = x.detach().to(torch.float64).cpu()
    ux, uy = _pair(up)
    dx, dy = _pair(down)
    px0, px1, py0, py1 = _pad4(padding)
    if f is None:
        f2 = torch.ones(1, 1, dtype=torch.float64)
    else:
        f = f.detach().to(torch.float64).cpu()
        f2 = torch.outer(f, f) if f.ndim == 1 else f
    f2 = f2 * gain
    n, c, h, w = x.shape
    # 1. zero insertion
    z = torch.zeros(n, c, h * uy, w * ux, dtype=torch.float64)
    z[:, :, ::uy, ::ux] = x
    # 2. pad (positive) then crop (negative), separately per side
    z = torch.nn.functional.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0):z.shape[2] - max(-py1, 0), max(-px0, 0):z.shape[3] - max(-px1, 0)]
    # 3. true convolution: out[i, j] = sum_{a, b} f[a, b] * z[i + fh-1 - a, j + fw-1 - b]
    fh, fw = f2.shape
    k = f2 if flip_filter else f2.flip([0, 1])  # correlation kernel
    oh, ow = z.shape[2] - fh + 1, z.shape[3] - fw + 1
    out = torch.zeros(n, c, max(oh, 0), max(ow, 0), dtype=torch.float64)
    for a in range(fh):
        for b in range(fw):
            out += k[a, b] * z[:, :, a:a + oh, b:b + ow]
    # 4. decimation
    return out[:, :, ::dy, ::dx]


def random_config(rng: random.Random, max_up=4, max_down=4, max_taps=7, allow_1d=True):
    """A random valid (up, down, padding, filter shape, flip, gain) with a positive output size
    for an input of at least 5x5 pixels; padding may be negative (cropping)."""
    while True:
        up = (rng.randint(1, max_up), rng.randint(1, max_up))
        down = (rng.randint(1, max_down), rng.randint(1, max_down))
        sep = allow_1d and rng.random() < 0.4
        if sep:
            fshape = (rng.randint(1, max_taps),)
            fh = fw = fshape[0]
        else:
            fh, fw = rng.randint(1, max_taps), rng.randint(1, max_taps)
            fshape = (fh, fw)
        pad = [rng.randint(-3, 4) for _ in range(4)]
        h, w = rng.randint(5, 11), rng.randint(5, 11)
        oh = (h * up[1] + pad[2] + pad[3] - fh) // down[1] + 1
        ow = (w * up[0] + pad[0] + pad[1] - fw) // down[0] + 1
        if oh >= 1 and ow >= 1:
            return dict(up=list(up), down=list(down), padding=pad, fshape=fshape, hw=(h, w),
                        flip_filter=rng.random() < 0.5, gain=rng.choice([1.0, 0.5, 4.0]))
