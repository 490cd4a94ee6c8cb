"""Sampling from trained generators: images from seeds, style-mixing grids, interpolation frames.

Every function takes a :class:`fastgan.models.stylegan2.Generator`; :func:`load_generator` rebuilds
one from a fastgan training checkpoint (its ``G_kwargs`` are stored in the file).  Seeds make
results reproducible across machines: seed ``s`` always draws the same ``z`` (float64 numpy RNG,
as NVlabs' ``gen_images.py`` does).
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .models.stylegan2 import Generator, mix_styles

__all__ = ["load_generator", "seed_latents", "generate_images", "style_mixing_grid",
           "interpolation_frames", "parse_seeds"]


SEED_LIMIT = 2 ** 32  # numpy RandomState seeds: [0, 2^32)


def _check_seed(seed: int, where: str) -> int:
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{where}: seed {seed} is outside [0, 2^32)")
    return seed


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7,10-11"`` -> ``[0, 1, 2, 3, 7, 10, 11]``; every seed in [0, 2^32)."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(-?\d+)(?:\s*-\s*(-?\d+))?", part)
        if m is None:
            raise ValueError(f"seeds: cannot parse {part!r}; expected e.g. '0-7,42'")
        lo = _check_seed(int(m.group(1)), "seeds")
        if m.group(2) is None:
            out.append(lo)
            continue
        hi = _check_seed(int(m.group(2)), "seeds")
        if hi < lo:
            raise ValueError(f"seeds: the range {part!r} is reversed; write '{hi}-{lo}'")
        out.extend(range(lo, hi + 1))
    if not out:
        raise ValueError(f"seeds: no seeds in {text!r}")
    return out


def load_generator(ckpt: str, device=None, ema: bool = True, impl: Optional[str] = None
                   ) -> Generator:
    """The generator of a fastgan checkpoint (``G_ema`` by default), in eval mode.

    ``impl``: op backend for this machine (None: best available; the training run's choice is
    not reused because it may not exist here).  ValueError for a device or backend that does
    not exist here and for a file that is not a fastgan training checkpoint."""
    from .train.checkpoint import load_checkpoint
    from .train.config import check_device, check_impl
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(device, "device")
    check_impl(impl, device)
    # no required keys: what generate needs (G_kwargs) is checked below, naming foreign formats
    state = load_checkpoint(ckpt, map_location="cpu", required=())
    if "G_kwargs" not in state:
        if "g_ema" in state:
            raise ValueError(f"{ckpt!r} is a rosinality stylegan2-pytorch checkpoint (it holds "
                             "'g_ema'), not a fastgan training checkpoint: load it in Python with "
                             "fastgan.models.load_rosinality(path)")
        raise ValueError(f"{ckpt!r} is not a fastgan training checkpoint (no 'G_kwargs'; keys "
                         f"{sorted(map(str, state))[:6]}); for rosinality checkpoints use "
                         "fastgan.models.load_rosinality")
    kw = dict(state["G_kwargs"], impl=impl)
    if device.type != "cuda":
        kw.update(num_fp16_res=0, channels_last=False)  # the fp16 recipe is GPU-only
    G = Generator(**kw)
    G.load_state_dict(state["G_ema" if ema else "G"])
    return G.to(device).eval().requires_grad_(False)


def seed_latents(G: Generator, seeds: Sequence[int]) -> torch.Tensor:
    """``z`` for each seed: ``RandomState(seed).randn(z_dim)`` (float32, on G's device); seeds
    must be in [0, 2^32) (one outside is an error, not silently wrapped)."""
    dev = next(G.parameters()).device
    z = np.stack([np.random.RandomState(_check_seed(int(s), "seed_latents")).randn(G.z_dim)
                  for s in seeds])
    return torch.from_numpy(z).float().to(dev)


def _labels(G: Generator, n: int, class_idx: Optional[int]) -> Optional[torch.Tensor]:
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError("class_idx: this generator is unconditional (c_dim = 0)")
        return None
    if class_idx is None:
        raise ValueError(f"class_idx: this generator is conditional (c_dim = {G.c_dim}); pass "
                         f"--class in [0, {G.c_dim})")
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f"class_idx must be in [0, {G.c_dim}), got {class_idx}")
    dev = next(G.parameters()).device
    return F.one_hot(torch.full((n,), class_idx, device=dev), G.c_dim).float()


@torch.no_grad()
def generate_images(G: Generator, seeds: Sequence[int], truncation_psi: float = 1.0,
                    class_idx: Optional[int] = None, noise_mode: str = "const",
                    batch: int = 16, progress: bool = False) -> torch.Tensor:
    """Images ``[len(seeds), C, R, R]`` (float32 in about [-1, 1], on the CPU)."""
    z = seed_latents(G, seeds)
    c = _labels(G, len(seeds), class_idx)
    out = []
    rng = range(0, len(z), batch)
    if progress:
        from tqdm.auto import tqdm
        rng = tqdm(rng, desc="generate", unit="batch")
    for i in rng:
        img = G(z[i:i + batch], None if c is None else c[i:i + batch],
                truncation_psi=truncation_psi, noise_mode=noise_mode)
        out.append(img.float().cpu())
    return torch.cat(out)


@torch.no_grad()
def style_mixing_grid(G: Generator, row_seeds: Sequence[int], col_seeds: Sequence[int],
                      crossover: Optional[int] = None, truncation_psi: float = 1.0,
                      class_idx: Optional[int] = None, noise_mode: str = "const") -> torch.Tensor:
    """The StyleGAN style-mixing figure as ``[rows + 1, cols + 1, C, R, R]``: the first row holds
    the column sources, the first column the row sources (corner blank, -1 = black), and cell
    (i, j) takes its first ``crossover`` ws (the coarse styles; default ``num_ws // 2``) from
    row seed i and the rest from column seed j."""
    if crossover is None:
        crossover = max(1, G.num_ws // 2)
    if not 0 < crossover < G.num_ws:
        raise ValueError(f"crossover must be in [1, {G.num_ws - 1}], got {crossover}")
    zr, zc = seed_latents(G, row_seeds), seed_latents(G, col_seeds)
    cr, cc = _labels(G, len(zr), class_idx), _labels(G, len(zc), class_idx)
    wr = G.mapping(zr, cr, truncation_psi=truncation_psi)
    wc = G.mapping(zc, cc, truncation_psi=truncation_psi)
    r, k = len(zr), len(zc)
    mixed = mix_styles(wr[:, None].expand(r, k, -1, -1).reshape(r * k, G.num_ws, -1),
                       wc[None].expand(r, k, -1, -1).reshape(r * k, G.num_ws, -1), crossover)
    synth = lambda ws: G.synthesis(ws, noise_mode=noise_mode).float().cpu()  # noqa: E731
    img_r, img_c, img_m = synth(wr), synth(wc), synth(mixed)
    C, R = img_m.shape[1], img_m.shape[-1]
    grid = torch.full((r + 1, k + 1, C, R, R), -1.0)
    grid[0, 1:] = img_c
    grid[1:, 0] = img_r
    grid[1:, 1:] = img_m.reshape(r, k, C, R, R)
    return grid


def _slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.no_grad()
def interpolation_frames(G: Generator, seeds: Sequence[int], frames_per_pair: int = 16,
                         truncation_psi: float = 1.0, space: str = "w",
                         class_idx: Optional[int] = None, loop: bool = False,
                         noise_mode: str = "const") -> torch.Tensor:
    """Frames ``[F, C, R, R]`` walking through the latents of ``seeds`` in order: linear in W
    (``space='w'``, the usual choice) or spherical in Z (``space='z'``).  ``loop`` returns to the
    first seed."""
    if space not in ("w", "z"):
        raise ValueError(f"space must be 'w' or 'z', got {space!r}")
    if len(seeds) < 2:
        raise ValueError(f"seeds: need at least 2 seeds to interpolate, got {len(seeds)}")
    if frames_per_pair < 1:
        raise ValueError(f"frames_per_pair must be >= 1, got {frames_per_pair}")
    z = seed_latents(G, seeds)
    if loop:
        z = torch.cat([z, z[:1]])
    c1 = _labels(G, 1, class_idx)
    frames = []
    for i in range(len(z) - 1):
        for f in range(frames_per_pair):
            t = f / frames_per_pair
            if space == "z":
                ws = G.mapping(_slerp(z[i:i + 1], z[i + 1:i + 2], t), c1,
                               truncation_psi=truncation_psi)
            else:
                wa = G.mapping(z[i:i + 1], c1, truncation_psi=truncation_psi)
                wb = G.mapping(z[i + 1:i + 2], c1, truncation_psi=truncation_psi)
                ws = wa.lerp(wb, t)
            frames.append(G.synthesis(ws, noise_mode=noise_mode).float().cpu())
    if not loop:
        ws = G.mapping(z[-1:], c1, truncation_psi=truncation_psi)
        frames.append(G.synthesis(ws, noise_mode=noise_mode).float().cpu())
    return torch.cat(frames)
