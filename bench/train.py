"""Training-throughput benchmark: ``python -m bench.train [--device cpu] [--out DIR] [--quick]``.

Times the real training loop -- :meth:`fastgan.train.trainer.Trainer.train_step` -- of StyleGAN2
config F (the trainer's per-resolution defaults from :meth:`TrainConfig.resolved`: ``channel_base``
16384 below 512^2 and 32768 from 512^2, ``channel_max=512``, z/w 512, 8 mapping layers, R1 every 16
steps, path length every 4, ADA augmentation) at 256^2 and 1024^2, batch 32, once per *variant*:

* ``fastgan``       ``impl=None`` (the best available backend of every op), bf16 autocast,
  channels_last;
* ``ref-fp32``      ``impl='ref'`` (pure PyTorch), float32, NCHW -- the baseline;
* ``fastgan-fp32``  and ``ref-bf16`` separate the kernels' gain from the precision's;
* ``fastgan-fp16``  NVlabs' mixed-precision recipe (``num_fp16_res=4``, ``conv_clamp=256``; CUDA only).

What is timed: ``--steps`` whole ``train_step()`` calls after ``--warmup`` untimed ones, between two
device synchronisations: the batch's transfer from host memory (a synthetic in-memory dataset of
random uint8 images, so decoding never limits throughput; ``workers=0``), G_main, the lazy
regularisers (path length, R1; amortised over the timed steps, which span whole R1 cycles by
default), D_main, G_ema, and the ADA bookkeeping (``augment='ada'``; its p starts at 0 and stays
near it in so few steps, so the augmentation itself costs next to nothing -- its final p is in the
row).  ``fp32`` means the trainer's setting: on CUDA it enables TF32 convolutions and matmuls, as
NVlabs does (the flags are recorded per row).  Not timed: model construction, checkpoints, sample
grids, metrics, logging.

Each row: seconds, ``sec_per_kimg`` = seconds / (steps * batch / 1000), ``img_per_s`` = steps *
batch / seconds, ``peak_gib`` (CUDA ``max_memory_allocated`` over the timed steps after
``reset_peak_memory_stats``; CPU: null), ``phase_ms`` (the trainer's per-phase timer over the timed
steps, ms per step: a phase that runs every k-th step counts 1/k of its cost), and ``x_ref_fp32``
(img/s over the img/s of ``ref-fp32`` at the same resolution, batch and model).  An out-of-memory
variant is a row with status ``oom`` and any other failure an ``error`` row with its reason; the
other variants still run.

Target (the issue): on an H100, ``fastgan`` >= 2x the img/s of ``ref-fp32`` at 1024^2, batch 32.

CPU (no CUDA or ``--device cpu``): a smoke set that runs in seconds -- 16^2, batch 4, a tiny model
(``channel_base=256, channel_max=32``, z/w 32, 2 mapping layers), R1 and path length every 2 steps
so every phase runs, 2 + 4 steps, variants ``fastgan-fp32`` and ``ref-fp32``.  ``--quick`` (CUDA):
8 warm-up and 16 timed steps.

Writes ``<device-slug>-<date>-train[-quick].{json,md,png}`` into ``--out`` (default bench/results);
rows of the same device and day are merged by (res, batch, variant, model), so a long GPU run can
be split over several commands (e.g. one ``--variants`` at a time).
"""
from __future__ import annotations

import argparse
import dataclasses
import operator
import os
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from . import harness as H
from . import stylegan2 as S
from .stylegan2 import _csv, _fmt, _free, _is_oom, _positive_int_list, precision_flags
from fastgan.ops import available_impls
from fastgan.train.config import TrainConfig
from fastgan.train.trainer import PHASES, Trainer

# name -> TrainConfig overrides, in table order (the baseline first)
VARIANTS: dict[str, dict[str, Any]] = {
    "ref-fp32": dict(impl="ref", precision="fp32", channels_last=False),
    "ref-bf16": dict(impl="ref", precision="bf16", channels_last=True),
    "fastgan-fp32": dict(impl=None, precision="fp32", channels_last=True),
    "fastgan": dict(impl=None, precision="bf16", channels_last=True),
    "fastgan-fp16": dict(impl=None, precision="fp16", channels_last=True),
}
BASELINE = "ref-fp32"
CPU_VARIANTS = ("ref-fp32", "fastgan-fp32")
# the issue's goal: TARGET_VARIANT reaches TARGET_X times the baseline's img/s at TARGET_RES^2
TARGET_VARIANT, TARGET_RES, TARGET_BATCH, TARGET_X = "fastgan", 1024, 32, 2.0
# CPU smoke set: a tiny model, both regularisers every 2nd step so each phase runs in a few steps
CPU_SMOKE = dict(channel_base=256, channel_max=32, z_dim=32, w_dim=32, mapping_layers=2,
                 r1_interval=2, pl_interval=2)
# configuration columns of a row that identify the model (with res, batch and variant: the key)
MODEL_FIELDS = ("channel_base", "channel_max", "z_dim", "w_dim", "mapping_layers")
ROW_KEY = ("res", "batch", "variant", *MODEL_FIELDS)


# ------------------------------------------------------------------------------------ data
class SyntheticDataset(Dataset):
    """``size`` random uint8 images ``[num_channels, resolution, resolution]`` held in memory, item
    ``i`` fixed by ``(seed, i)``, label 0: a dataset whose reads cost only a copy, so the benchmark
    times training, not decoding.  Has the fastgan dataset attributes (``resolution``,
    ``num_channels``, ``num_classes = 0``, ``name = 'synthetic'``)."""

    name = "synthetic"
    num_classes = 0

    def __init__(self, resolution: int, num_channels: int = 3, size: int = 64, seed: int = 0):
        for arg, value in (("resolution", resolution), ("num_channels", num_channels),
                           ("size", size), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"SyntheticDataset: {arg} must be an int, got "
                                f"{type(value).__name__} {value!r}")
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"SyntheticDataset: resolution must be a power of two >= 4, got "
                             f"{resolution}")
        if num_channels not in (1, 3):
            raise ValueError(f"SyntheticDataset: num_channels must be 1 or 3, got {num_channels}")
        if size < 1:
            raise ValueError(f"SyntheticDataset: size must be >= 1, got {size}")
        self.resolution, self.num_channels = resolution, num_channels
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (size, num_channels, resolution, resolution),
                                    generator=g, dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"SyntheticDataset: index must be an int, got "
                            f"{type(index).__name__}") from None
        if not -len(self) <= i < len(self):
            raise IndexError(f"SyntheticDataset: index {index} out of range for a dataset of "
                             f"{len(self)} items")
        return self.images[i], 0


# ----------------------------------------------------------------------------------- setup
@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One resolution / batch of the benchmark and how many steps to run per variant."""
    res: int
    batch: int
    warmup: int
    steps: int
    overrides: tuple[tuple[str, Any], ...] = ()  # extra TrainConfig fields (the CPU tiny model)


def variant_skip_reason(variant: str, device: str) -> Optional[str]:
    """Why ``variant`` cannot run on ``device`` (None: it can)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    precision = VARIANTS[variant]["precision"]
    if precision == "fp16" and device != "cuda":
        return "precision='fp16' (NVlabs' recipe) needs a CUDA device"
    if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        return "this CUDA device does not support bfloat16"
    return None


def make_config(variant: str, bc: BenchConfig, device: str, out_dir: str) -> TrainConfig:
    """The (unresolved) TrainConfig of ``variant`` at ``bc``: synthetic data, no outputs, no
    loader workers, ADA augmentation, the trainer's defaults for everything else."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    return TrainConfig(data="synthetic", resolution=bc.res, batch=bc.batch, kimg=1e9,
                       out=out_dir, device=device, workers=0, augment="ada",
                       tensorboard=False, progress=False, metric_images=0,
                       **VARIANTS[variant], **dict(bc.overrides))


def configs(device: str, quick: bool, res: Optional[list[int]], batch: Optional[int],
            warmup: Optional[int], steps: Optional[int]) -> list[BenchConfig]:
    """The device's default set, narrowed / changed by the CLI options."""
    if device == "cpu":
        d_res, d_batch, d_warm, d_steps, over = [16], 4, 2, 4, tuple(CPU_SMOKE.items())
    else:
        d_res, d_batch, over = [256, 1024], 32, ()
        d_warm, d_steps = (8, 16) if quick else (16, 32)
    return [BenchConfig(res=r, batch=batch or d_batch,
                        warmup=d_warm if warmup is None else warmup,
                        steps=d_steps if steps is None else steps, overrides=over)
            for r in res or d_res]


# ---------------------------------------------------------------------------------- runner
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(trainer: Trainer, warmup: int, steps: int) -> dict:
    """Run ``warmup`` untimed and ``steps`` timed ``train_step()`` calls; the row's measurements."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"measure: steps must be an int >= 1, got {steps!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"measure: warmup must be an int >= 0, got {warmup!r}")
    dev, cuda = trainer.device, trainer.device.type == "cuda"
    for _ in range(warmup):
        trainer.train_step()
    _sync(dev)
    trainer.timer.collect()  # drop the warm-up's phase times
    trainer.stats.collect()
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    _sync(dev)
    seconds = time.perf_counter() - t0
    phases = trainer.timer.collect()
    _, finite, bad = trainer.stats.collect()
    nimg = steps * trainer.cfg.batch
    out = dict(seconds=seconds, sec_per_kimg=seconds / (nimg / 1000), img_per_s=nimg / seconds,
               peak_gib=torch.cuda.max_memory_allocated(dev) / 2 ** 30 if cuda else None,
               phase_ms={p: phases.get(p, 0.0) / steps for p in PHASES}, finite=finite,
               ada_p=None if trainer.augment is None else float(trainer.augment.p),
               **precision_flags())
    if not finite:
        out["reason"] = f"non-finite during the timed steps: {', '.join(bad) or 'a loss'}"
    return out


def _row_base(variant: str, bc: BenchConfig, device: str, info: dict) -> dict:
    """The configuration columns of a row (from the resolved TrainConfig, so a failed or skipped
    variant still says what it would have run)."""
    spec = VARIANTS[variant]
    base = dict(device=info["device"], date=info["date"], res=bc.res, batch=bc.batch,
                variant=variant, impl=spec["impl"] or "auto", precision=spec["precision"],
                channels_last=spec["channels_last"], warmup=bc.warmup, steps=bc.steps,
                data="synthetic", augment="ada")
    cfg = make_config(variant, bc, device, out_dir="unused")
    if spec["precision"] == "fp16" and device != "cuda":  # resolved() refuses it; still describe it
        cfg = dataclasses.replace(cfg, precision="fp32")
    cfg = cfg.resolved(bc.res)
    base.update({k: getattr(cfg, k) for k in MODEL_FIELDS},
                lr=cfg.lr, gamma=cfg.gamma, r1_interval=cfg.r1_interval,
                pl_interval=cfg.pl_interval, pl_weight=cfg.pl_weight)
    return base


def run_variant(variant: str, bc: BenchConfig, dataset: SyntheticDataset, device: str,
                info: dict) -> dict:
    """One row: build a Trainer for ``variant``, time it, free it.  Failures become rows."""
    row = dict(_row_base(variant, bc, device, info), status="ok", reason="", seconds=None,
               sec_per_kimg=None, img_per_s=None, peak_gib=None, phase_ms=None,
               x_ref_fp32=None, ada_p=None)
    skip = variant_skip_reason(variant, device)
    if skip:
        row.update(status="skip", reason=skip)
        return row
    saved = precision_flags()  # the Trainer switches TF32 / cudnn.benchmark on globally on CUDA
    failed = trainer = None
    try:
        with tempfile.TemporaryDirectory(prefix="fastgan-bench-train-") as tmp:
            try:
                trainer = Trainer(make_config(variant, bc, device, tmp), dataset=dataset)
                row.update(measure(trainer, bc.warmup, bc.steps))
            except Exception as e:  # noqa: BLE001 - recorded, the other variants still run
                failed = ("oom", f"out of memory at batch {bc.batch}: {H._reason(e)}") \
                    if _is_oom(e) else ("error", H._reason(e))
    finally:
        trainer = None
        torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
        torch.backends.cudnn.allow_tf32 = saved["cudnn_allow_tf32"]
        torch.backends.cuda.matmul.allow_tf32 = saved["cuda_matmul_allow_tf32"]
        _free(device)
    if failed is not None:  # outside the except block: its traceback no longer pins tensors
        row.update(status=failed[0], reason=failed[1], seconds=None, sec_per_kimg=None,
                   img_per_s=None, peak_gib=None, phase_ms=None)
    return row


def add_speedups(rows: list[dict]) -> list[dict]:
    """Set every row's ``x_ref_fp32``: its img/s over the ``ref-fp32`` row's of the same
    resolution, batch and model (None when either has no img/s).  Modifies and returns ``rows``."""
    same = lambda r: tuple(r.get(k) for k in ROW_KEY if k != "variant")  # noqa: E731
    base = {same(r): r["img_per_s"] for r in rows
            if r["variant"] == BASELINE and r.get("status") == "ok" and r.get("img_per_s")}
    for r in rows:
        b = base.get(same(r))
        r["x_ref_fp32"] = r["img_per_s"] / b if b and r.get("img_per_s") else None
    return rows


def run_all(cfgs: Sequence[BenchConfig], variants: Sequence[str], device: str,
            info: dict, rows: Optional[list] = None) -> list[dict]:
    """Rows for every (config, variant), appended to ``rows`` as they come (so an interrupted run
    keeps them); progress on stderr."""
    rows = [] if rows is None else rows
    for bc in cfgs:
        dataset = SyntheticDataset(bc.res, size=max(2 * bc.batch, 8))
        for v in variants:
            t0 = time.perf_counter()
            r = run_variant(v, bc, dataset, device, info)
            rows.append(r)
            what = f"{r['img_per_s']:.4g} img/s, {r['sec_per_kimg']:.3g} s/kimg" \
                if r["img_per_s"] else f"{r['status']}: {r['reason']}"
            print(f"{bc.res}^2 b{bc.batch} {v}: {what} ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr)
        del dataset
    return add_speedups(rows)


# ---------------------------------------------------------------------------------- output
def _key(r: dict) -> tuple:
    return tuple(r.get(k) for k in ROW_KEY)


def _order(r: dict) -> tuple:
    v = list(VARIANTS).index(r["variant"]) if r["variant"] in VARIANTS else len(VARIANTS)
    return (r["res"], r["batch"], *(r.get(k) or 0 for k in MODEL_FIELDS), v)


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` rows not replaced by a ``new`` row of the same key (``ROW_KEY``), plus ``new``,
    sorted by resolution, batch, model and variant, with ``x_ref_fp32`` recomputed over them all
    (a baseline from an earlier same-day run counts)."""
    keys = {_key(r) for r in new}
    return add_speedups(sorted([r for r in old if _key(r) not in keys] + list(new), key=_order))


def target_status(rows: list[dict]) -> str:
    """One line: is ``TARGET_VARIANT`` >= ``TARGET_X`` x ``ref-fp32`` at TARGET_RES^2, batch
    TARGET_BATCH, in ``rows``?"""
    goal = (f"`{TARGET_VARIANT}` >= {TARGET_X:g}x the img/s of `{BASELINE}` at {TARGET_RES}^2, "
            f"batch {TARGET_BATCH} (on an H100)")
    hits = [r for r in rows if (r["variant"], r["res"], r["batch"]) ==
            (TARGET_VARIANT, TARGET_RES, TARGET_BATCH) and r.get("x_ref_fp32")]
    if not hits:
        return (f"**Target**: {goal} — not measured here (needs ok `{TARGET_VARIANT}` and "
                f"`{BASELINE}` rows at {TARGET_RES}^2, batch {TARGET_BATCH})")
    x = max(r["x_ref_fp32"] for r in hits)
    return f"**Target**: {goal} — **{'met' if x >= TARGET_X else 'not met'}** ({x:.2f}x)"


def render_markdown(doc: dict) -> str:
    """A header (device, target line, what is timed) and one table per resolution / batch /
    model, one row per variant."""
    lines = [f"# fastgan training throughput — {doc['device']} ({doc['device_kind']})", "",
             f"- date {doc['date']}, torch {doc['torch']}, triton {doc['triton']}, CUDA {doc['cuda']}, "
             f"CPU threads {doc['cpu_threads']}",
             "- " + target_status(doc["rows"]),
             f"- impl `auto` = `impl=None`, the best available backend per op (available here: "
             f"{doc.get('impls_available', '?')}; FASTGAN_IMPL={doc.get('fastgan_impl_env') or 'unset'})",
             "- timed: `steps` whole `Trainer.train_step()` calls after `warmup` untimed ones "
             "(synthetic in-memory uint8 data, host-to-device copy included; R1 / path length "
             "amortised over the timed steps); not timed: checkpoints, grids, metrics",
             "- peak: max allocated GiB over the timed steps; × ref-fp32: img/s over `ref-fp32`'s "
             "(same res, batch, model); phase columns: ms per step from the trainer's timer (a "
             "phase run every k-th step counts 1/k); `fp32` = the trainer's TF32 setting "
             "(on CUDA: TF32 on); – = not run (reasons below each table)", ""]
    groups = H._groups(doc["rows"], lambda r: (r["res"], r["batch"],
                                                *(r.get(k) for k in MODEL_FIELDS)))
    for (res, batch, *_), grp in groups.items():
        r0 = grp[0]
        lines += [f"## {res}^2 · batch {batch}", "",
                  f"channel_base {r0['channel_base']}, channel_max {r0['channel_max']}, "
                  f"z/w {r0['z_dim']}/{r0['w_dim']}, mapping layers {r0['mapping_layers']}, "
                  f"R1 every {r0['r1_interval']} (gamma {r0['gamma']:.4g}), path length every "
                  f"{r0['pl_interval']}, augment {r0['augment']}, {r0['warmup']} + {r0['steps']} "
                  "steps", "",
                  "| variant | impl | precision | channels_last | status | sec/kimg | img/s | "
                  "peak GiB | × ref-fp32 | " + " | ".join(f"{p} ms" for p in PHASES) + " | ADA p |",
                  "|---|---|---|---|---|---:|---:|---:|---:|" + "---:|" * len(PHASES) + "---:|"]
        notes = []
        for r in grp:
            ph = r.get("phase_ms") or {}
            lines.append(f"| {r['variant']} | {r['impl']} | {r['precision']} | "
                         f"{'yes' if r['channels_last'] else 'no'} | {r['status']} | "
                         f"{_fmt(r.get('sec_per_kimg'), '.4g')} | {_fmt(r.get('img_per_s'), '.4g')} | "
                         f"{_fmt(r.get('peak_gib'), '.2f')} | {_fmt(r.get('x_ref_fp32'), '.2f', '×')} | "
                         + " | ".join(_fmt(ph.get(p), '.3g') for p in PHASES)
                         + f" | {_fmt(r.get('ada_p'), '.2g')} |")
            if r.get("reason"):
                notes.append(f"- {r['variant']}: {r['status']}: {r['reason']}")
        lines += [""] + notes + ([""] if notes else [])
    return "\n".join(lines)


def plot(doc: dict, path: str) -> list[str]:
    """Bar chart of img/s, one panel per (resolution, batch), one bar per variant labelled with
    its × ref-fp32.  Returns ``[path]``, or ``[]`` without matplotlib."""
    plt = H.pyplot()
    if plt is None:
        return []
    groups = H._groups(doc["rows"], lambda r: (r["res"], r["batch"]))
    colors = dict(zip(VARIANTS, ("tab:gray", "tab:olive", "tab:cyan", "tab:blue", "tab:purple")))
    fig, axes = plt.subplots(1, max(len(groups), 1), squeeze=False,
                             figsize=(3.8 * max(len(groups), 1) + 0.6, 3.4))
    for ax, ((res, batch), grp) in zip(axes[0], groups.items()):
        names = [r["variant"] for r in grp]
        vals = [r.get("img_per_s") or 0.0 for r in grp]
        bars = ax.bar(range(len(grp)), vals, color=[colors.get(n, "tab:red") for n in names])
        for b, r in zip(bars, grp):
            label = f"{r['x_ref_fp32']:.2f}×" if r.get("x_ref_fp32") else \
                ("" if r.get("img_per_s") else r["status"])
            ax.annotate(label, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                        va="bottom", fontsize=7)
        ax.set_xticks(range(len(grp)), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{res}^2 · batch {batch}", fontsize=9)
        ax.set_ylabel("img/s")
        ax.grid(axis="y", alpha=0.3)
    return H.save_figure(fig, path, f"StyleGAN2 training — {doc['device']} — {doc['date']}")


def write_results(rows: list[dict], info: dict, out_dir: str, suffix: str = "") -> list[str]:
    """``<slug>-<date>-train<suffix>.{json,md,png}``, merged with a same-day file's rows
    (:func:`merge_rows`)."""
    return S.write_merged_results(rows, info, out_dir, "train", suffix, merge_rows,
                                  render_markdown, plot)


# ------------------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; 0 unless a variant failed (skips and out-of-memory rows are recorded
    outcomes, not failures)."""
    ap = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None,
                    help="default: cuda if available, else cpu (smoke set)")
    ap.add_argument("--out", default=H.RESULTS_DIR)
    ap.add_argument("--quick", action="store_true", help="CUDA: 8 warm-up + 16 timed steps")
    ap.add_argument("--res", help="comma list of resolutions (default 256,1024; CPU 16)")
    ap.add_argument("--batch", type=int, help="default 32 (CPU 4)")
    ap.add_argument("--variants", help=f"subset of {','.join(VARIANTS)} (default all; CPU "
                                       f"{','.join(CPU_VARIANTS)})")
    ap.add_argument("--steps", type=int, help="timed steps per variant (default 32, --quick 16, CPU 4)")
    ap.add_argument("--warmup", type=int, help="untimed steps first (default 16, --quick 8, CPU 2)")
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (0 = torch default)")
    a = ap.parse_args(argv)
    device = H.resolve_device(ap, a.device)
    res = _positive_int_list(ap, a.res, "--res")
    variants = _csv(ap, a.variants, "--variants", tuple(VARIANTS)) or \
        list(VARIANTS if device == "cuda" else CPU_VARIANTS)
    for name, v, low in (("--batch", a.batch, 1), ("--steps", a.steps, 1), ("--warmup", a.warmup, 0)):
        if v is not None and v < low:
            ap.error(f"{name}: expected an integer >= {low}, got {v}")

    threads = torch.get_num_threads()
    if device == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        t0 = time.perf_counter()
        info = dict(H.device_info(device), **precision_flags(),
                    impls_available=", ".join(k for k, s in available_impls(device).items() if s),
                    fastgan_impl_env=os.environ.get("FASTGAN_IMPL", ""))
        rows = []
        interrupted = H.run_interruptible(lambda: run_all(
            configs(device, a.quick, res, a.batch, a.warmup, a.steps), variants, device, info,
            rows), rows) == "interrupted"  # write_results recomputes the speed-ups
        paths = write_results(rows, info, a.out, "-quick" if a.quick else "")
    finally:
        torch.set_num_threads(threads)
    bad = [r for r in rows if r["status"] == "error"]
    print(f"{len(rows)} results ({len(bad)} errors) in {time.perf_counter() - t0:.0f} s:",
          *paths, sep="\n  ")
    return 1 if bad or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
