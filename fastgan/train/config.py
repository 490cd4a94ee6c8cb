"""Training configuration: one dataclass, per-resolution defaults, YAML/JSON config files.

Every field can be given on the command line (``fastgan train --help``), in a config file
(``--config run.yaml``; command-line flags win), or in Python (``TrainConfig(data="shapes", ...)``).
Fields left at ``None`` are filled by :meth:`TrainConfig.resolved` from the resolution, the batch and
the device, following NVlabs' ``auto`` configuration (StyleGAN2-ADA, Karras et al. 2020):

=====================  =====================================================================
``channel_base``        32768 at >= 512^2, 16384 below (NVlabs ``fmaps`` 1 / 0.5)
``channel_max``         512
``lr``                  0.002 at >= 1024^2, 0.0025 below
``gamma``               0.0002 * R^2 / batch  (R1 weight)
``ema_kimg``            batch * 10 / 32
``mapping_layers``      8 at >= 128^2, 2 below (NVlabs' small-resolution configs)
``mbstd_group``         min(per-rank batch, 4)
``precision``           bf16 autocast on a GPU that supports it, fp32 otherwise
``channels_last``       on for CUDA, off on CPU
=====================  =====================================================================
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, Optional

import torch

__all__ = ["TrainConfig", "load_config_file", "PRECISIONS", "AUGMENTS"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUGMENTS = ("none", "diffaug", "ada")


@dataclass
class TrainConfig:
    # --- data
    data: str = "shapes"                 # path (folder / zip) or a built-in: shapes, digits
    resolution: Optional[int] = None     # None: the dataset's (built-ins: 32)
    cond: bool = False                   # class-conditional (labels from the dataset)
    mirror: bool = False                 # x-flip augmentation of the dataset (doubles it)
    max_size: Optional[int] = None       # use only the first N images
    workers: int = 2                     # DataLoader worker processes per rank
    # --- run
    out: str = "runs/fastgan"            # run directory: checkpoints, stats.jsonl, grids
    kimg: float = 25000.0                # training length in thousands of real images shown to D
    batch: int = 32                      # total batch over all ranks (each rank takes batch / world)
    seed: int = 0
    resume: Optional[str] = None         # None, "auto" (latest in --out) or a checkpoint path
    device: Optional[str] = None         # None: cuda when available, else cpu
    # --- model (StyleGAN2 config F; None = per-resolution default)
    model: str = "stylegan2"
    z_dim: int = 512
    w_dim: int = 512
    channel_base: Optional[int] = None
    channel_max: Optional[int] = None
    mapping_layers: Optional[int] = None
    mbstd_group: Optional[int] = None
    impl: Optional[str] = None           # op backend for every layer: None (best), ref, triton, cuda
    # --- optimisation
    lr: Optional[float] = None
    betas: tuple = (0.0, 0.99)
    gamma: Optional[float] = None        # R1 weight
    r1_interval: int = 16                # lazy regularisation (0 disables R1)
    pl_weight: float = 2.0               # path-length weight (0 disables it)
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    ema_kimg: Optional[float] = None     # EMA half-life of G_ema, in kimg
    ema_rampup: Optional[float] = 0.05   # EMA half-life <= rampup * kimg seen so far (None: off)
    # --- augmentation
    augment: str = "ada"                 # none | diffaug | ada
    diffaug_policy: str = "color,translation,cutout"
    ada_target: float = 0.6
    ada_kimg: float = 500.0              # ADA adjustment speed: p can go 0 -> 1 in this many kimg
    ada_interval: int = 4
    # --- speed
    precision: str = "auto"              # auto | fp32 | bf16 | fp16 (NVlabs recipe)
    num_fp16_res: int = 4                # with precision=fp16: top resolutions in float16
    channels_last: Optional[bool] = None
    compile: bool = False                # torch.compile the passes without double backward
    cudnn_benchmark: bool = True
    # --- observability and checkpoints
    tick_kimg: float = 4.0               # progress / stats interval
    snap_kimg: float = 50.0              # checkpoint interval
    image_kimg: float = 50.0             # sample-grid interval (EMA generator, fixed z)
    metric_kimg: Optional[float] = None  # SWD metric interval (None: with every checkpoint)
    metric_images: int = 1024            # images per SWD evaluation (0 disables the metric)
    keep: int = 3                        # checkpoints kept besides the best
    grid_size: int = 64                  # images in a sample grid
    tensorboard: bool = True             # also log to TensorBoard when it is installed
    progress: bool = True                # tqdm bar (rank 0)
    extra: dict = field(default_factory=dict)  # free-form, saved with the run

    # ------------------------------------------------------------------ validation
    def validate(self) -> "TrainConfig":
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"TrainConfig: {msg}")

        need(self.model == "stylegan2", f"model must be 'stylegan2', got {self.model!r}")
        need(self.resolution is None or (isinstance(self.resolution, int) and self.resolution >= 4
                                         and self.resolution & (self.resolution - 1) == 0),
             f"resolution must be a power of two >= 4, got {self.resolution!r}")
        need(isinstance(self.batch, int) and self.batch >= 1, f"batch must be >= 1, got {self.batch!r}")
        need(self.kimg > 0, f"kimg must be > 0, got {self.kimg!r}")
        need(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        need(self.augment in AUGMENTS, f"augment must be one of {AUGMENTS}, got {self.augment!r}")
        need(self.impl in (None, "ref", "triton", "cuda"),
             f"impl must be None, 'ref', 'triton' or 'cuda', got {self.impl!r}")
        need(self.r1_interval >= 0 and self.pl_interval >= 0,
             "r1_interval and pl_interval must be >= 0 (0 disables the regulariser)")
        need(self.pl_batch_shrink >= 1, f"pl_batch_shrink must be >= 1, got {self.pl_batch_shrink}")
        need(0 <= self.style_mixing <= 1, f"style_mixing must be in [0, 1], got {self.style_mixing}")
        need(self.keep >= 1, f"keep must be >= 1, got {self.keep}")
        need(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        need(self.tick_kimg > 0 and self.snap_kimg > 0 and self.image_kimg > 0,
             "tick_kimg, snap_kimg and image_kimg must be > 0")
        need(self.grid_size >= 1, f"grid_size must be >= 1, got {self.grid_size}")
        need(len(tuple(self.betas)) == 2, f"betas must be two numbers, got {self.betas!r}")
        return self

    # ------------------------------------------------------------------ defaults
    def resolved(self, resolution: int, world_size: int = 1) -> "TrainConfig":
        """A copy with every ``None`` default filled in for ``resolution`` and the device."""
        c = dataclasses.replace(self, betas=tuple(self.betas), extra=dict(self.extra))
        if c.batch % world_size:
            raise ValueError(f"TrainConfig: batch ({c.batch}) must be divisible by the number of "
                             f"processes ({world_size})")
        c.resolution = resolution
        if c.device is None:
            c.device = "cuda" if torch.cuda.is_available() else "cpu"
        cuda = str(c.device).startswith("cuda")
        if c.channel_base is None:
            c.channel_base = 32768 if resolution >= 512 else 16384
        if c.channel_max is None:
            c.channel_max = 512
        if c.lr is None:
            c.lr = 0.002 if resolution >= 1024 else 0.0025
        if c.gamma is None:
            c.gamma = 0.0002 * resolution ** 2 / c.batch
        if c.ema_kimg is None:
            c.ema_kimg = c.batch * 10 / 32
        if c.mapping_layers is None:
            c.mapping_layers = 8 if resolution >= 128 else 2
        if c.mbstd_group is None:
            c.mbstd_group = min(c.batch // world_size, 4)
        if c.precision == "auto":
            c.precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
        if c.precision == "fp16" and not cuda:
            raise ValueError("TrainConfig: precision='fp16' (NVlabs' recipe) needs a CUDA device")
        if c.channels_last is None:
            c.channels_last = cuda
        if c.metric_kimg is None:
            c.metric_kimg = c.snap_kimg
        return c

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"TrainConfig: unknown option(s) {unknown}; valid: {sorted(names)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


def load_config_file(path: str) -> dict:
    """Read a ``.yaml``/``.yml`` (needs PyYAML) or ``.json`` config file into a dict of options
    (``-`` in keys is accepted for ``_``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    with open(path) as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(f"reading {path!r} needs PyYAML: pip install pyyaml "
                              "(or write the config as JSON)") from e
        data: Any = yaml.safe_load(text) or {}
    elif path.endswith(".json"):
        data = json.loads(text)
    else:
        raise ValueError(f"config file {path!r}: expected a .yaml, .yml or .json file")
    if not isinstance(data, dict):
        raise ValueError(f"config file {path!r} must hold a mapping of options, got "
                         f"{type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}
