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
``mbstd_group``         4; D uses the largest divisor of the per-rank batch <= it
``precision``           bf16 autocast on a GPU that supports it, fp32 otherwise
``channels_last``       on for CUDA, off on CPU
=====================  =====================================================================
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass, field, fields
from typing import Any, Optional

import torch

__all__ = ["TrainConfig", "load_config_file", "check_device", "check_impl", "PRECISIONS",
           "AUGMENTS", "USER_CONFIG", "RESOLVED_CONFIG"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUGMENTS = ("none", "diffaug", "ada")
DEVICE_TYPES = ("cpu", "cuda", "mps")
#: Files a run directory holds: the options as given (reusable with --config: None fields are
#: re-derived from the new resolution / batch / device) and the resolved record of the run.
USER_CONFIG = "config.json"
RESOLVED_CONFIG = "config_resolved.json"
# Fields that are file paths: '~' is expanded (a shell leaves `--out=~/x` and YAML values alone).
_PATH_FIELDS = ("data", "out", "resume")
_TRUE = ("1", "true", "yes", "on", "y")
_FALSE = ("0", "false", "no", "off", "n")


def check_device(device: Any, option: str = "device") -> torch.device:
    """``device`` as a torch.device that exists on this machine; ValueError naming ``option``
    otherwise (a bad string, an unsupported type, CUDA absent, an index beyond the GPUs)."""
    if isinstance(device, torch.device):
        dev = device
    else:
        if not isinstance(device, str):
            raise ValueError(f"{option} must be a device such as 'cpu', 'cuda' or 'cuda:1', got "
                             f"{device!r} ({type(device).__name__})")
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            dev = None
        if dev is None or dev.type not in DEVICE_TYPES:
            raise ValueError(f"{option} must be cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else \
                "no CUDA GPU is visible"
            raise ValueError(f"{option} {str(device)!r}: CUDA is not available here ({why}); "
                             "use cpu")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"{option} {str(device)!r}: only {n} CUDA device(s) are visible "
                             f"(cuda:0 to cuda:{n - 1})")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{option} {str(device)!r}: MPS is not available here; use cpu")
    return dev


def check_impl(impl: Optional[str], device: torch.device, option: str = "impl") -> None:
    """ValueError naming ``option`` (or FASTGAN_IMPL, which forces a backend when ``impl`` is None)
    if the requested op backend cannot run on ``device`` -- checked before anything is built or
    written, since the ops themselves only find out at the first forward."""
    if impl is None:
        impl, option = os.environ.get("FASTGAN_IMPL", "").strip() or None, "FASTGAN_IMPL"
        if impl is None:
            return
    from ..ops import available_impls
    status = available_impls(device)
    if impl not in status:
        raise ValueError(f"{option} must be one of {tuple(status)}, got {impl!r}")
    if not status[impl]:
        raise ValueError(f"{option} {impl!r} cannot run on {device}: {status[impl].reason}")


def _coerce(name: str, typ: str, v: Any) -> Any:
    """A config value checked against its field type: numeric strings (PyYAML reads ``1e-3`` as a
    string) become numbers, integral floats become ints, yes/no strings become bools, '~' is
    expanded in paths; ValueError naming the option for anything else."""
    optional = typ.startswith("Optional[")
    base = typ[len("Optional["):-1] if optional else typ

    def bad(want: str):
        return ValueError(f"config option {name!r} must be {want}, got {v!r} ({type(v).__name__})")

    if v is None:
        if optional:
            return None
        want = {"int": "an integer", "float": "a number", "bool": "a boolean (yes/no)",
                "str": "a string", "tuple": "two numbers", "dict": "a mapping"}.get(base, base)
        raise ValueError(f"config option {name!r} must be {want}, got null (None): it has no "
                         "automatic default")
    if base == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().lower() in _TRUE + _FALSE:
            return v.strip().lower() in _TRUE
        raise bad("a boolean (yes/no)")
    if base in ("int", "float"):
        x = v
        if isinstance(x, str):
            try:
                x = float(x.strip()) if base == "float" else _parse_int(x)
            except ValueError:
                raise bad("a number" if base == "float" else "an integer") from None
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise bad("a number" if base == "float" else "an integer")
        if not math.isfinite(x):
            raise bad("a finite number")
        if base == "float":
            return float(x)
        if isinstance(x, numbers.Integral):
            return int(x)
        if float(x).is_integer():  # 4.0 from a JSON / YAML writer is the integer 4
            return int(x)
        raise bad("an integer")
    if base == "str":
        if not isinstance(v, str):
            raise bad("a string")
        if name in _PATH_FIELDS and v != "auto":
            return os.path.expanduser(v)
        return v
    if base == "tuple":  # betas
        if isinstance(v, (list, tuple)) and len(v) == 2:
            return tuple(_coerce(name, "float", x) for x in v)
        raise bad("two numbers, e.g. [0.0, 0.99]")
    if base == "dict":
        if not isinstance(v, dict):
            raise bad("a mapping")
        return dict(v)
    return v


def _parse_int(s: str):
    s = s.strip()
    try:
        return int(s)
    except ValueError:
        return float(s)  # '4.0' / '1e3': _coerce accepts it when integral


@dataclass
class TrainConfig:
    # --- data
    data: str = "shapes"                 # path (folder / zip) or a built-in: shapes, digits
    resolution: Optional[int] = None     # None: the dataset's (built-ins: 32)
    cond: bool = False                   # class-conditional (labels from the dataset)
    mirror: bool = False                 # x-flip augmentation of the dataset (doubles it)
    max_size: Optional[int] = None       # a random subset of N images (chosen by seed)
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

        # types first (a YAML `lr: 1e-3` is a string), so the checks below compare numbers
        for f in fields(self):
            setattr(self, f.name, _coerce(f.name, f.type, getattr(self, f.name)))
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
        need(all(0 <= b < 1 for b in self.betas), f"betas must be in [0, 1), got {self.betas}")
        # the options NVlabs derives (None: per-resolution default); a negative one used to be
        # taken silently (gamma < 0 switched R1 off, mbstd_group < 1 became 1)
        need(self.lr is None or self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.gamma is None or self.gamma >= 0,
             f"gamma must be >= 0 (0 disables R1), got {self.gamma}")
        need(self.ema_kimg is None or self.ema_kimg >= 0,
             f"ema_kimg must be >= 0 (0: G_ema = G), got {self.ema_kimg}")
        need(self.ema_rampup is None or self.ema_rampup >= 0,
             f"ema_rampup must be >= 0 (None: no ramp-up), got {self.ema_rampup}")
        need(self.mbstd_group is None or self.mbstd_group >= 1,
             f"mbstd_group must be >= 1 (None: 4), got {self.mbstd_group}")
        need(self.channel_base is None or self.channel_base >= 1,
             f"channel_base must be >= 1, got {self.channel_base}")
        need(self.channel_max is None or self.channel_max >= 1,
             f"channel_max must be >= 1, got {self.channel_max}")
        need(self.mapping_layers is None or self.mapping_layers >= 1,
             f"mapping_layers must be >= 1, got {self.mapping_layers}")
        need(self.z_dim >= 1 and self.w_dim >= 1,
             f"z_dim and w_dim must be >= 1, got {self.z_dim} and {self.w_dim}")
        need(self.max_size is None or self.max_size >= 1,
             f"max_size must be >= 1, got {self.max_size}")
        need(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        need(self.pl_weight >= 0, f"pl_weight must be >= 0 (0 disables it), got {self.pl_weight}")
        need(0 <= self.pl_decay <= 1, f"pl_decay must be in [0, 1], got {self.pl_decay}")
        need(self.ada_kimg > 0, f"ada_kimg must be > 0, got {self.ada_kimg}")
        need(self.ada_interval >= 1, f"ada_interval must be >= 1, got {self.ada_interval}")
        need(self.num_fp16_res >= 0, f"num_fp16_res must be >= 0, got {self.num_fp16_res}")
        need(self.metric_images >= 0,
             f"metric_images must be >= 0 (0 disables the metric), got {self.metric_images}")
        need(self.metric_kimg is None or self.metric_kimg > 0,
             f"metric_kimg must be > 0, got {self.metric_kimg}")
        if self.device is not None:
            check_device(self.device)  # before any file is written or process group joined
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
        types = {f.name: f.type for f in fields(cls)}
        return cls(**{k: _coerce(k, types[k], v) for k, v in d.items()})

    def to_user_dict(self) -> dict:
        """:meth:`to_dict` without ``resume``: what a run's config.json keeps for reuse (how to
        start is the command line's choice: `--resume auto` continues the run)."""
        d = self.to_dict()
        d.pop("resume")
        return d


def load_config_file(path: str) -> dict:
    """Read a ``.yaml``/``.yml`` (needs PyYAML) or ``.json`` config file into a dict of options
    (``-`` in keys is accepted for ``_``)."""
    path = os.path.expanduser(path)
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
        try:
            data: Any = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
            why = f"{problem} (line {mark.line + 1}, column {mark.column + 1})" \
                if mark is not None and problem else " ".join(str(e).split())
            raise ValueError(f"config file {path!r} is not valid YAML: {why}") from None
    elif path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ValueError(f"config file {path!r} is not valid JSON: {e}") from None
    else:
        raise ValueError(f"config file {path!r}: expected a .yaml, .yml or .json file")
    if not isinstance(data, dict):
        raise ValueError(f"config file {path!r} must hold a mapping of options, got "
                         f"{type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}
