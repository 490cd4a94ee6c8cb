"""The StyleGAN2 training loop (StyleGAN2 / StyleGAN2-ADA semantics, fastgan ops underneath).

One iteration (``step``) shows ``batch`` real images to D and runs up to four phases, each with its
own optimiser step, as NVlabs' ``training_loop`` does:

* ``G_main``  non-saturating loss ``softplus(-D(aug(G(z))))``;
* ``G_reg``   every ``pl_interval`` steps: path-length penalty on ``batch / pl_batch_shrink``
              samples, weighted by ``pl_weight * pl_interval``;
* ``D_main``  ``softplus(D(aug(G(z)))) + softplus(-D(aug(x)))``;
* ``D_reg``   every ``r1_interval`` steps: ``gamma / 2 * r1_interval * R1`` through the augmentation.

ADA's ``r_t`` averages the signs of every real logit D produced since the last update (D_main's
and D_reg's, as NVlabs' statistics collector does).

Lazy regularisation corrects Adam's learning rate and betas by ``interval / (interval + 1)``.
G_ema follows G with a half-life of ``ema_kimg``, capped at ``ema_rampup`` times the images seen
before the step (so G_ema = G at the first step).  In the regularisation phases every parameter
gets a gradient (zero where the penalty does not reach it), so Adam steps all of them each phase,
as in NVlabs' loss, and one process steps the same parameters that K DDP processes do.  Gradients
are averaged over the ranks by ``DistributedDataParallel`` (see :mod:`fastgan.train.distributed`)
and made finite (``nan_to_num``) before every step.

Randomness: the global RNG is reseeded from ``(seed, step, rank)`` at the start of every step and
the data stream is a pure function of ``(seed, images seen)``, so a resumed run repeats the
uninterrupted run exactly (bit for bit on CPU).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import sys
import threading
import time
import warnings
from contextlib import nullcontext
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..models.stylegan2 import Discriminator, Generator
from ..ops.penalties import PathLengthPenalty, r1_penalty
from . import distributed as dist_
from .distributed import max_rank_difference
from .config import RESOLVED_CONFIG, USER_CONFIG, TrainConfig, check_impl

__all__ = ["Trainer", "train", "TrainingDiverged", "build_models", "model_kwargs"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the state was saved first (the message says where)."""


# ------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------

def _mbstd_group(batch: int, want: int) -> int:
    """The largest group size <= want that divides the per-rank batch."""
    for g in range(min(want, batch), 0, -1):
        if batch % g == 0:
            return g
    return 1


def model_kwargs(cfg: TrainConfig, img_channels: int, c_dim: int, batch_per_rank: int
                 ) -> tuple[dict, dict]:
    """Constructor arguments of G and D for a resolved config (saved in every checkpoint, so
    ``fastgan generate`` rebuilds the networks without the training config)."""
    fp16 = cfg.precision == "fp16"
    common = dict(img_resolution=cfg.resolution, img_channels=img_channels, c_dim=c_dim,
                  channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                  num_fp16_res=cfg.num_fp16_res if fp16 else 0,
                  conv_clamp=256 if fp16 else None, channels_last=bool(cfg.channels_last),
                  impl=cfg.impl)
    g = dict(common, z_dim=cfg.z_dim, w_dim=cfg.w_dim, mapping_layers=cfg.mapping_layers)
    d = dict(common, mbstd_group_size=_mbstd_group(batch_per_rank, cfg.mbstd_group))
    return g, d


def build_models(g_kwargs: dict, d_kwargs: dict, device, seed: int = 0
                 ) -> tuple[Generator, Discriminator, Generator]:
    """G, D and G_ema (a frozen copy of G), initialised from ``seed`` (identical on every rank)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(**g_kwargs)
        D = Discriminator(**d_kwargs)
    G, D = G.to(device).train(), D.to(device).train()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    return G, D, G_ema


# ------------------------------------------------------------------------------------------------
# bookkeeping
# ------------------------------------------------------------------------------------------------

PHASES = ("data", "G_main", "G_reg", "D_main", "D_reg", "ema")


class _PhaseTimer:
    """Per-phase wall time without a host sync per phase: CUDA events on GPUs (read at the tick,
    after one synchronize), perf_counter on CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.pending: list[tuple[str, Any, Any]] = []
        self.totals = {p: 0.0 for p in PHASES}

    def start(self):
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def stop(self, name: str, t0) -> None:
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            self.pending.append((name, t0, e))
        else:
            self.totals[name] += (time.perf_counter() - t0) * 1e3

    def collect(self) -> dict:
        """ms per phase since the last call (synchronises the device once)."""
        if self.cuda and self.pending:
            self.pending[-1][2].synchronize()
            for name, a, b in self.pending:
                self.totals[name] += a.elapsed_time(b)
            self.pending.clear()
        out, self.totals = self.totals, {p: 0.0 for p in PHASES}
        return out


class _Stats:
    """Running sums of scalar tensors kept on the device (no sync until :meth:`collect`)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.finite = torch.ones((), dtype=torch.bool, device=device)
        self.bad: dict[str, torch.Tensor] = {}

    def add(self, name: str, value: torch.Tensor, check: bool = True) -> None:
        v = value.detach().float().reshape(())
        if check:
            ok = torch.isfinite(v)
            self.finite &= ok
            self.bad[name] = self.bad.get(name, torch.zeros((), dtype=torch.bool,
                                                            device=self.device)) | ~ok
        self.sums[name] = self.sums[name] + v if name in self.sums else v.clone()
        self.counts[name] = self.counts.get(name, 0) + 1

    def collect(self) -> tuple[dict, bool, list[str]]:
        names = list(self.sums)
        if names:
            vec = torch.stack([self.sums[n] for n in names]).cpu()
            means = {n: float(vec[i]) / self.counts[n] for i, n in enumerate(names)}
        else:
            means = {}
        finite = bool(self.finite)
        bad = [n for n, t in self.bad.items() if bool(t)]
        self.__init__(self.device)
        return means, finite, bad


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


class _StopRequest:
    """SIGINT / SIGTERM set a flag; the loop saves a checkpoint at the end of the step and
    returns.  A second SIGINT raises KeyboardInterrupt as usual."""

    def __init__(self):
        self.signal: Optional[str] = None
        self._old: dict = {}

    def _handler(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = name
        print(f"\nfastgan: {name} received: saving a checkpoint after this step "
              "(Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


# ------------------------------------------------------------------------------------------------
# the trainer
# ------------------------------------------------------------------------------------------------

class _GeneratorPass(torch.nn.Module):
    """``(z, c) -> (img, ws)``: G's mapping (with style mixing) and synthesis, the forward that
    DDP wraps for G's two phases.  ``fast`` picks ``synthesis_fast`` (compiled when asked), else
    the eager synthesis the path-length penalty differentiates twice."""

    def __init__(self, G: Generator, synthesis_fast):
        super().__init__()
        self.G = G
        object.__setattr__(self, "synthesis_fast", synthesis_fast)  # G's own modules: not again

    def forward(self, z, c, mixing: float, fast: bool = True):
        ws = self.G.mapping_with_mixing(z, c, mixing)
        return (self.synthesis_fast if fast else self.G.synthesis)(ws), ws


def _check_run_dir(run_dir: str, resume: Optional[str]) -> None:
    """Refuse to mix two runs in one directory: a fresh start (or a resume from another run's
    checkpoint) into a folder that already holds checkpoints would interleave its ckpt-*.pt with
    the old ones, and `--resume auto` / `generate --ckpt DIR` could then pick the old run's."""
    from .checkpoint import CheckpointManager
    if resume == "auto":
        return
    found = CheckpointManager(run_dir).list()
    if not found:
        return
    if resume and os.path.dirname(os.path.realpath(resume)) == os.path.realpath(run_dir):
        return  # branching this run from one of its own checkpoints
    names = ", ".join(os.path.basename(p) for p in found[:3]) + (", ..." if len(found) > 3 else "")
    what = f"a resume from {resume!r}" if resume else "a fresh run"
    raise FileExistsError(f"run directory {run_dir!r} already holds checkpoints ({names}); not "
                          f"starting {what} there: pass --resume auto to continue that run, or "
                          "choose another --out")


class Trainer:
    """Build everything from a :class:`TrainConfig` and train with :meth:`run`.

    ``dataset``: optional ready dataset object (else ``open_dataset(cfg.data, ...)``).
    After construction: ``G``, ``D``, ``G_ema``, ``opt_G``, ``opt_D``, ``augment``, ``pl``,
    ``step``, ``cur_nimg``, ``cfg`` (resolved), ``run_dir``.
    """

    def __init__(self, cfg: TrainConfig, dataset=None):
        from ..data import make_loader, open_dataset
        from .augment import make_augment
        from .checkpoint import CheckpointManager, resolve_resume

        cfg.validate()
        # what the user set (None: derived per resolution / batch / device), kept for config.json
        self.user_cfg = dataclasses.replace(cfg, betas=tuple(cfg.betas), extra=dict(cfg.extra))
        _check_run_dir(cfg.out, cfg.resume)
        self.rank, self.world, self.device = dist_.init(cfg.device)
        self.is_main = self.rank == 0
        check_impl(cfg.impl, self.device)  # else it fails at the first forward, files written
        if dataset is None:
            dataset = open_dataset(cfg.data, resolution=cfg.resolution, use_labels=cfg.cond,
                                   xflip=cfg.mirror, max_size=cfg.max_size, seed=cfg.seed)
        self.dataset = dataset
        if cfg.cond and dataset.num_classes == 0:
            raise ValueError(f"--cond: dataset {cfg.data!r} has no class labels (for an image "
                             "folder, put each class in its own sub-folder)")
        if cfg.resolution is not None and dataset.resolution != cfg.resolution:
            raise ValueError(f"resolution {cfg.resolution} requested but the dataset gives "
                             f"{dataset.resolution}^2 images")
        self.cfg = cfg = cfg.resolved(dataset.resolution, self.world)
        self.cfg.device = str(self.device)
        self.run_dir = cfg.out
        self.batch_per_rank = cfg.batch // self.world
        self.c_dim = dataset.num_classes if cfg.cond else 0

        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        # --- resume (the checkpoint's model arguments win over the command line's)
        self.ckpt = CheckpointManager(self.run_dir, keep=cfg.keep)
        resumed = resolve_resume(cfg.resume, self.run_dir)
        state = resumed[0] if resumed else None
        self.resumed_from = resumed[1] if resumed else None
        if state is not None:
            self.g_kwargs, self.d_kwargs = dict(state["G_kwargs"]), dict(state["D_kwargs"])
            self._check_resume_compatible(state)
        else:
            self.g_kwargs, self.d_kwargs = model_kwargs(cfg, dataset.num_channels, self.c_dim,
                                                        self.batch_per_rank)
        self.G, self.D, self.G_ema = build_models(self.g_kwargs, self.d_kwargs, self.device,
                                                  seed=cfg.seed)
        self.pl = PathLengthPenalty(cfg.pl_decay).to(self.device)
        self.augment = make_augment(cfg.augment, **self._augment_kwargs())
        if self.augment is not None:
            self.augment = self.augment.to(self.device)

        # --- optimisers with the lazy-regularisation correction
        def adam(params, interval):
            r = interval / (interval + 1) if interval > 0 else 1.0
            b1, b2 = cfg.betas
            return torch.optim.Adam(params, lr=cfg.lr * r, betas=(b1 ** r, b2 ** r), eps=1e-8)

        reg_g = cfg.pl_interval if cfg.pl_weight > 0 else 0
        reg_d = cfg.r1_interval if cfg.gamma > 0 else 0
        self.opt_G = adam(self.G.parameters(), reg_g)
        self.opt_D = adam(self.D.parameters(), reg_d)

        self.step, self.cur_nimg = 0, 0
        if state is not None:
            self._load_state(state)
        else:
            dist_.broadcast_module(self.G)
            dist_.broadcast_module(self.D)
            self.G_ema.load_state_dict(self.G.state_dict())

        # --- the passes that train G or D run through DDP when several processes do; the ones
        # without double backward may be compiled (compile wraps DDP, as PyTorch advises)
        self.ddp = self.world > 1
        self.synthesis_fast = torch.compile(self.G.synthesis) if cfg.compile else self.G.synthesis
        self.G_pass = dist_.data_parallel(_GeneratorPass(self.G, self.synthesis_fast), self.device)
        self.D_train = dist_.data_parallel(self.D, self.device)
        self.D_fast = torch.compile(self.D_train) if cfg.compile else self.D_train

        self.loader = make_loader(dataset, self.batch_per_rank, rank=self.rank,
                                  world_size=self.world, seed=cfg.seed, start=self.cur_nimg,
                                  num_workers=cfg.workers,
                                  pin_memory=self.device.type == "cuda")
        self.stats = _Stats(self.device)
        self.timer = _PhaseTimer(self.device)
        self._metric = None
        self.history: list[dict] = []

    # ------------------------------------------------------------------ helpers
    def _augment_kwargs(self) -> dict:
        c = self.cfg
        if c.augment == "diffaug":
            return {"policy": c.diffaug_policy}
        if c.augment == "ada":
            return {"target": c.ada_target, "speed_kimg": c.ada_kimg, "interval": c.ada_interval}
        return {}

    def _check_resume_compatible(self, state: dict) -> None:
        g = state["G_kwargs"]
        if g["img_resolution"] != self.dataset.resolution:
            raise ValueError(f"cannot resume {self.resumed_from}: it was trained at "
                             f"{g['img_resolution']}^2 but the dataset gives "
                             f"{self.dataset.resolution}^2")
        if g["c_dim"] != self.c_dim:
            raise ValueError(f"cannot resume {self.resumed_from}: its c_dim is {g['c_dim']} but "
                             f"this run has c_dim {self.c_dim} (--cond mismatch?)")
        old = state.get("config", {})
        if old.get("batch") not in (None, self.cfg.batch) and self.is_main:
            warnings.warn(f"resuming with batch {self.cfg.batch} (checkpoint: {old['batch']}): the "
                          "run will not repeat the uninterrupted one exactly", stacklevel=3)

    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.augment is None else self.augment(x)

    def _sample_c(self, n: int) -> Optional[torch.Tensor]:
        if self.c_dim == 0:
            return None
        idx = torch.randint(self.c_dim, (n,), device=self.device)
        return F.one_hot(idx, self.c_dim).float()

    def _reals(self, images: torch.Tensor, labels: torch.Tensor):
        x = images.to(self.device, non_blocking=True).float().div_(127.5).sub_(1)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        c = None
        if self.c_dim:
            c = F.one_hot(labels.to(self.device, non_blocking=True).long(), self.c_dim).float()
        return x, c

    def _opt_step(self, opt: torch.optim.Optimizer, module: torch.nn.Module) -> None:
        params = [p for p in module.parameters() if p.requires_grad]
        for p in params:
            if p.grad is not None:
                torch.nan_to_num_(p.grad, nan=0.0, posinf=1e5, neginf=-1e5)
        opt.step()

    # ------------------------------------------------------------------ one iteration
    def train_step(self) -> None:
        cfg, dev, B = self.cfg, self.device, self.batch_per_rank
        step = self.step
        torch.manual_seed(_step_seed(cfg.seed, step, self.rank))
        t = self.timer.start()
        images, labels = next(self.loader)
        reals, c_real = self._reals(images, labels)
        self.timer.stop("data", t)
        G, D = self.G, self.D

        # G_main
        t = self.timer.start()
        G.requires_grad_(True)
        D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        z, c = torch.randn(B, cfg.z_dim, device=dev), self._sample_c(B)
        with self._autocast():
            fake, _ = self.G_pass(z, c, cfg.style_mixing)
            logits = self.D_fast(self._aug(fake), c)  # D frozen: DDP's hooks stay quiet
        loss = F.softplus(-logits).mean()
        loss.backward()
        self._opt_step(self.opt_G, G)
        self.stats.add("loss/G", loss)
        self.stats.add("scores/fake_G", logits.mean(), check=False)
        self.timer.stop("G_main", t)

        # G_reg: path length
        if cfg.pl_weight > 0 and cfg.pl_interval > 0 and step % cfg.pl_interval == 0:
            t = self.timer.start()
            self.opt_G.zero_grad(set_to_none=True)
            n = max(B // cfg.pl_batch_shrink, 1)
            z, c = torch.randn(n, cfg.z_dim, device=dev), self._sample_c(n)
            with self._autocast():
                img, ws = self.G_pass(z, c, cfg.style_mixing, fast=False)
                penalty = self.pl(img, ws)
            # `img * 0`: G's last layers, which the path-length gradient does not reach, get a
            # zero gradient rather than none, so Adam steps every parameter in every phase (as
            # NVlabs' loss does) and DDP reduces them all: 1 and K processes step the same set
            loss = penalty * (cfg.pl_weight * cfg.pl_interval) + img.sum() * 0
            loss.backward()
            self._opt_step(self.opt_G, G)
            self.stats.add("pl/penalty", penalty)
            self.stats.add("pl/mean", self.pl.pl_mean, check=False)
            self.timer.stop("G_reg", t)

        # D_main
        t = self.timer.start()
        G.requires_grad_(False)
        D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        z, c = torch.randn(B, cfg.z_dim, device=dev), self._sample_c(B)
        with self._autocast():
            with torch.no_grad():
                ws = G.mapping_with_mixing(z, c, cfg.style_mixing, update_emas=True)
                fake = self.synthesis_fast(ws)
            logits_fake = self.D_fast(self._aug(fake), c)
            logits_real = self.D_fast(self._aug(reals), c_real)
        loss_fake = F.softplus(logits_fake).mean()
        loss_real = F.softplus(-logits_real).mean()
        (loss_fake + loss_real).backward()
        self._opt_step(self.opt_D, D)
        if self.augment is not None:
            self.augment.accumulate(logits_real.detach())
        self.stats.add("loss/D_fake", loss_fake)
        self.stats.add("loss/D_real", loss_real)
        self.stats.add("scores/fake", logits_fake.mean(), check=False)
        self.stats.add("scores/real", logits_real.mean(), check=False)
        self.stats.add("scores/real_sign", logits_real.detach().sign().mean(), check=False)
        self.timer.stop("D_main", t)

        # D_reg: R1 through the augmentation
        if cfg.gamma > 0 and cfg.r1_interval > 0 and step % cfg.r1_interval == 0:
            t = self.timer.start()
            self.opt_D.zero_grad(set_to_none=True)
            with self._autocast():
                penalty, logits = r1_penalty(lambda x, cc: self.D_train(self._aug(x), cc), reals,
                                             c_real, return_logits=True)
            # `logits * 0`: D's last bias gets a zero gradient rather than none (NVlabs' loss; see
            # G_reg), and DDP reduces every gradient
            loss = penalty * (cfg.gamma / 2 * cfg.r1_interval) + logits.sum() * 0
            loss.backward()
            self._opt_step(self.opt_D, D)
            if self.augment is not None:  # NVlabs counts these reals' signs for ADA too
                self.augment.accumulate(logits.detach())
            self.stats.add("r1/penalty", penalty)
            self.timer.stop("D_reg", t)

        # G_ema, shared buffers, augmentation strength
        t = self.timer.start()
        dist_.average_buffers([G, self.pl], ("w_avg", "pl_mean"))  # before G_ema copies them
        self._update_ema()  # with the images seen before this step (NVlabs: G_ema = G at first)
        self.step += 1
        self.cur_nimg += cfg.batch
        if self.augment is not None and self.step % cfg.ada_interval == 0:
            rt = self.augment.update(cfg.batch)
            if rt is not None:
                self.last_rt = rt
        self.timer.stop("ema", t)

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.cfg
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.cur_nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        src = list(self.G.parameters())
        dst = list(self.G_ema.parameters())
        torch._foreach_lerp_(dst, [s.detach() for s in src], 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        from .checkpoint import get_rng_state
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "pl": self.pl.state_dict(),
            "augment": None if self.augment is None else self._augment_state(),
            "step": self.step, "kimg": self.cur_nimg / 1000, "cur_nimg": self.cur_nimg,
            "G_kwargs": self.g_kwargs, "D_kwargs": self.d_kwargs,
            "config": self.cfg.to_dict(), "world_size": self.world,
            "rng": get_rng_state(),
            "dataset": {"name": getattr(self.dataset, "name", str(self.cfg.data)),
                        "resolution": self.dataset.resolution,
                        "num_channels": self.dataset.num_channels,
                        "num_classes": self.dataset.num_classes,
                        "size": len(self.dataset)},
        }

    def _augment_state(self) -> dict:
        # all buffers, the non-persistent ADA sign accumulators included, so a resume between
        # two ADA updates adjusts p exactly as the uninterrupted run does
        return {"state_dict": self.augment.state_dict(),
                "buffers": {k: v.detach().clone() for k, v in self.augment.named_buffers()}}

    def _load_state(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.pl.load_state_dict(state["pl"])
        if self.augment is not None and state.get("augment"):
            self.augment.load_state_dict(state["augment"]["state_dict"])
            bufs = dict(self.augment.named_buffers())
            with torch.no_grad():
                for k, v in state["augment"].get("buffers", {}).items():
                    if k in bufs and k != "p":
                        bufs[k].copy_(v)
        self.step, self.cur_nimg = int(state["step"]), int(state["cur_nimg"])
        if state.get("rng") is not None:  # each step reseeds anyway; this covers user code
            from .checkpoint import set_rng_state
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # CUDA states saved on another machine
                set_rng_state(state["rng"])

    def save_checkpoint(self, metric: Optional[float] = None) -> Optional[str]:
        if not self.is_main:
            return None
        return self.ckpt.save(self.state_dict(), kimg=self.cur_nimg / 1000, step=self.step,
                              metric=metric)

    # ------------------------------------------------------------------ outputs
    def _grid_inputs(self):
        cfg = self.cfg
        g = torch.Generator().manual_seed(cfg.seed + 12345)
        z = torch.randn(cfg.grid_size, cfg.z_dim, generator=g).to(self.device)
        c = None
        if self.c_dim:
            idx = torch.arange(cfg.grid_size) % self.c_dim
            c = F.one_hot(idx, self.c_dim).float().to(self.device)
        return z, c

    @torch.no_grad()
    def sample(self, z: torch.Tensor, c: Optional[torch.Tensor], batch: int = 16) -> torch.Tensor:
        out = []
        for i in range(0, len(z), batch):
            with self._autocast():
                img = self.G_ema(z[i:i + batch], None if c is None else c[i:i + batch],
                                 noise_mode="const")
            out.append(img.float().cpu())
        return torch.cat(out)

    def save_grid(self) -> str:
        from ..utils.images import save_image_grid
        z, c = self._grid_inputs()
        path = os.path.join(self.run_dir, "grids", f"fakes-{self.step:08d}.png")
        save_image_grid(self.sample(z, c), path)
        return path

    def _save_reals(self) -> None:
        from ..utils.images import save_image_grid
        n = min(self.cfg.grid_size, len(self.dataset))
        imgs = torch.stack([self.dataset[i][0] for i in range(n)])
        save_image_grid(imgs, os.path.join(self.run_dir, "grids", "reals.png"))

    def evaluate(self) -> Optional[dict]:
        """SWD (Laplacian-pyramid sliced Wasserstein distance x 1e3, lower is better) of
        ``metric_images`` G_ema samples against as many reals; rank 0 only."""
        n = min(self.cfg.metric_images, len(self.dataset))
        if n < 2 or self.cfg.resolution < 16:
            return None
        from ..metrics import SWDMetric
        if self._metric is None:
            idx = torch.linspace(0, len(self.dataset) - 1, n).long().tolist()
            reals = torch.stack([self.dataset[i][0] for i in idx])
            self._metric = SWDMetric(reals)
            g = torch.Generator().manual_seed(self.cfg.seed + 54321)
            self._metric_z = torch.randn(n, self.cfg.z_dim, generator=g).to(self.device)
            self._metric_c = None
            if self.c_dim:
                lab = torch.tensor([self.dataset[i][1] for i in idx])
                self._metric_c = F.one_hot(lab, self.c_dim).float().to(self.device)
        fakes = self.sample(self._metric_z, self._metric_c, batch=32)
        return self._metric(fakes)

    # ------------------------------------------------------------------ the loop
    def run(self, max_steps: Optional[int] = None) -> dict:
        """Train until ``cfg.kimg`` (or ``max_steps`` more steps).  Returns a summary dict with
        ``status`` 'done' | 'interrupted' and the last checkpoint path.  Raises
        :class:`TrainingDiverged` after saving when a loss is NaN/Inf."""
        from ..utils.runlog import RunLogger
        cfg = self.cfg
        total_nimg = int(cfg.kimg * 1000)
        steps = lambda kimg: max(1, round(kimg * 1000 / cfg.batch))  # noqa: E731
        tick_every, snap_every = steps(cfg.tick_kimg), steps(cfg.snap_kimg)
        image_every, metric_every = steps(cfg.image_kimg), steps(cfg.metric_kimg)
        stop_at = None if max_steps is None else self.step + max_steps
        logger = RunLogger(self.run_dir, cfg, enabled=self.is_main, total_kimg=cfg.kimg,
                           start_kimg=self.cur_nimg / 1000)
        if self.is_main:
            os.makedirs(self.run_dir, exist_ok=True)
            # config.json: the options as given, so `--config run/config.json --batch 64`
            # re-derives gamma, lr, EMA, device... (a resolved copy would freeze the old ones);
            # config_resolved.json: what this run uses (also stored in every checkpoint)
            for name, d in ((USER_CONFIG, self.user_cfg.to_user_dict()),
                            (RESOLVED_CONFIG, self.cfg.to_dict())):
                with open(os.path.join(self.run_dir, name), "w") as f:
                    json.dump(d, f, indent=2)
            if self.step == 0:
                self._save_reals()
                self.save_grid()
            logger.message(self.describe())
        status, last_ckpt = "done", None
        tick_start, tick_nimg = time.perf_counter(), self.cur_nimg
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            with _StopRequest() as stop:
                while self.cur_nimg < total_nimg and (stop_at is None or self.step < stop_at):
                    self.train_step()
                    logger.advance(cfg.batch / 1000)
                    done = self.cur_nimg >= total_nimg or self.step == stop_at
                    want_stop = dist_.any_flag(stop.signal is not None, self.device) \
                        if self.world > 1 or stop.signal else False
                    tick = self.step % tick_every == 0 or done or want_stop
                    if tick:
                        rec = self._tick(tick_start, tick_nimg)
                        tick_start, tick_nimg = time.perf_counter(), self.cur_nimg
                        if not rec["finite"]:
                            self._diverged(rec, logger)
                        logger.log(rec)
                    metric = None
                    if self.is_main and cfg.metric_images > 0 and (
                            self.step % metric_every == 0 or done):
                        res = self.evaluate()
                        if res is not None:
                            metric = res["mean"]
                            logger.log({"kimg": self.cur_nimg / 1000, "step": self.step,
                                        "metric/swd": metric})
                    if self.is_main and (self.step % image_every == 0 or done):
                        self.save_grid()
                    if self.step % snap_every == 0 or done or want_stop:
                        last_ckpt = self.save_checkpoint(metric)
                        if last_ckpt:
                            logger.message(f"checkpoint {last_ckpt}")
                    if want_stop:
                        status = "interrupted"
                        logger.message(f"stopped by {stop.signal or 'another rank'} at kimg "
                                       f"{self.cur_nimg / 1000:.3f}; continue with --resume auto")
                        break
            if self.world > 1:  # every rank must hold the same model (NVlabs checks this too)
                diff, where = max_rank_difference({"G": self.G, "D": self.D,
                                                   "G_ema": self.G_ema, "pl": self.pl})
                if diff != 0.0:
                    raise RuntimeError(f"ranks out of sync: {where} differs by {diff:g} "
                                       "between rank 0 and another rank")
                logger.message(f"ranks in sync: {self.world} processes hold identical models")
        finally:
            logger.close()
        return {"status": status, "step": self.step, "kimg": self.cur_nimg / 1000,
                "checkpoint": last_ckpt, "run_dir": self.run_dir}

    def _tick(self, tick_start: float, tick_nimg: int) -> dict:
        means, finite, bad = self.stats.collect()
        phases = self.timer.collect()
        if self.world > 1:  # every rank must agree on stopping; stats are averaged
            finite = not dist_.any_flag(not finite, self.device)
            if means:
                vec = dist_.all_reduce_mean(torch.tensor(list(means.values()), device=self.device))
                means = dict(zip(means, vec.tolist()))
        dt = time.perf_counter() - tick_start
        nimg = self.cur_nimg - tick_nimg
        rec = {"kimg": self.cur_nimg / 1000, "step": self.step,
               "sec_per_kimg": dt / max(nimg / 1000, 1e-9), "img_per_s": nimg / max(dt, 1e-9),
               "finite": finite, "nonfinite": bad, **means,
               **{f"time_ms/{k}": v for k, v in phases.items()}}
        if self.augment is not None:
            rec["augment/p"] = float(self.augment.p)
            if getattr(self, "last_rt", None) is not None:
                rec["augment/rt"] = self.last_rt
        if self.device.type == "cuda":
            rec["peak_mem_gib"] = torch.cuda.max_memory_allocated(self.device) / 2 ** 30
        return rec

    def _diverged(self, rec: dict, logger) -> None:
        last_good = self.ckpt.latest() if self.is_main else None
        path = None
        if self.is_main:
            from .checkpoint import atomic_save
            path = os.path.join(self.run_dir, f"diverged-{self.step:08d}.pt")
            atomic_save(self.state_dict(), path)  # for post-mortems; --resume auto ignores it
        msg = (f"training diverged: {', '.join(rec['nonfinite']) or 'a loss'} became NaN/Inf in "
               f"the {self.cfg.tick_kimg:g} kimg before kimg {rec['kimg']:.3f} (step {self.step}). "
               f"State saved to {path}; last good checkpoint: {last_good}. Try a lower --lr or "
               "--gamma, --precision fp32, or resume from the last good checkpoint.")
        logger.message(msg)
        logger.close()
        raise TrainingDiverged(msg)

    def release_ddp(self) -> None:
        """Drop the DDP wrappers (the models stay): call before the process group is destroyed,
        since a DDP object that outlives its gloo group can hang the process at exit."""
        self.G_pass = self.D_train = self.D_fast = None

    def describe(self) -> str:
        cfg = self.cfg
        n_g = sum(p.numel() for p in self.G.parameters())
        n_d = sum(p.numel() for p in self.D.parameters())
        where = f"resumed from {self.resumed_from} at kimg {self.cur_nimg / 1000:.3f}" \
            if self.resumed_from else "fresh start"
        return (f"fastgan train: StyleGAN2 {cfg.resolution}^2, data {cfg.data} "
                f"({len(self.dataset)} images, {self.dataset.num_channels} ch, c_dim {self.c_dim}), "
                f"G {n_g / 1e6:.2f}M / D {n_d / 1e6:.2f}M params, batch {cfg.batch} "
                f"({self.world} x {self.batch_per_rank}), {cfg.precision}, impl "
                f"{cfg.impl or 'auto'}, augment {cfg.augment}, device {self.device}"
                f"{', DistributedDataParallel' if self.ddp else ''}; {where}; "
                f"out {self.run_dir}")


def train(cfg: TrainConfig, max_steps: Optional[int] = None) -> dict:
    """Build a :class:`Trainer` and run it (the ``fastgan train`` entry point)."""
    trainer = Trainer(cfg)
    try:
        return trainer.run(max_steps=max_steps)
    finally:
        trainer.release_ddp()
        del trainer
        dist_.shutdown()
