"""The ``fastgan`` command line: ``train``, ``generate``, ``prepare``, ``bench``.

``fastgan <command> --help`` explains each; ``python -m fastgan`` is the same program (and the
form ``torchrun`` needs: ``torchrun --nproc_per_node=8 -m fastgan train ...``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from typing import Optional, Sequence

__all__ = ["main", "build_parser"]

EPILOG_TRAIN = """\
examples:
  fastgan train --data shapes --resolution 32 --batch 16 --kimg 10 --out runs/shapes
  fastgan train --data ~/ffhq.zip --kimg 25000 --batch 32 --gpus 8 --out runs/ffhq
  fastgan train --config runs/ffhq/config.json --resume auto       # continue a run
  fastgan train --config runs/ffhq/config.json --batch 64 --out runs/ffhq64   # reuse the options
  torchrun --nnodes 2 --node_rank 0 --master_addr HOST --master_port 29500 \\
           --nproc_per_node 8 -m fastgan train --data ffhq.zip --batch 64 ...   # multi-node

Options left unset get NVlabs' per-resolution defaults (channels, lr, gamma, EMA, mapping depth).
--batch is the total over all processes.  A run directory holds checkpoints (ckpt-*.pt,
latest.json, best.json), stats.jsonl, log.txt, grids/*.png, config.json (the options as given:
unset ones are derived again when it is reused) and config_resolved.json (every value the run
used).  A fresh run refuses an --out that already holds checkpoints.  Ctrl-C or SIGTERM saves a
checkpoint and exits; --resume auto continues exactly where it stopped.
"""

# help text per TrainConfig field (the field list itself is the source of the options)
TRAIN_HELP = {
    "data": "training data (required, here or in --config): an image folder (recursive), a "
            ".zip (see `fastgan prepare`), or a built-in dataset: shapes, digits",
    "resolution": "image resolution (power of two); default: the dataset's (built-ins: 32)",
    "cond": "class-conditional training (labels: sub-folder names / dataset.json / built-in)",
    "mirror": "add x-flipped copies of the images",
    "max_size": "use a random subset of N images (chosen by --seed, as NVlabs does)",
    "workers": "data-loading worker processes per GPU",
    "out": "run directory",
    "kimg": "training length in thousands of real images shown to D",
    "batch": "total batch size over all GPUs",
    "seed": "random seed (weights, data order, latents)",
    "resume": "'auto' (latest checkpoint in --out, else a fresh start) or a checkpoint path; "
              "without it --out must hold no checkpoints",
    "device": "cuda, cuda:1, cpu (default: cuda when available)",
    "model": "model family (stylegan2)",
    "z_dim": "latent size", "w_dim": "intermediate latent size",
    "channel_base": "channels = min(channel_base / res, channel_max); default per resolution",
    "channel_max": "maximum channels per layer (default 512)",
    "mapping_layers": "mapping network depth (default 8 at >= 128^2, else 2)",
    "mbstd_group": "minibatch-stddev group size: D uses the largest divisor of the per-GPU "
                   "batch that is <= N (default 4)",
    "impl": "op backend: ref, triton or cuda (default: the fastest available)",
    "lr": "Adam learning rate of G and D (default 0.0025, 0.002 at >= 1024^2)",
    "betas": "Adam betas (two numbers)",
    "gamma": "R1 weight (default 0.0002 * res^2 / batch)",
    "r1_interval": "lazy R1 interval (0: no R1)",
    "pl_weight": "path-length regularisation weight (0: off)",
    "pl_interval": "lazy path-length interval",
    "pl_batch_shrink": "path-length batch = batch / this",
    "pl_decay": "decay of the path-length running mean",
    "style_mixing": "style-mixing probability",
    "ema_kimg": "half-life of G_ema in kimg (default batch * 10 / 32)",
    "ema_rampup": "EMA half-life ramp-up as a fraction of kimg seen",
    "augment": "differentiable augmentation: none, diffaug (DiffAugment) or ada (adaptive p)",
    "diffaug_policy": "DiffAugment ops (comma list of color, translation, cutout)",
    "ada_target": "ADA target of E[sign(D(real))]",
    "ada_kimg": "ADA speed: kimg for p to move from 0 to 1",
    "ada_interval": "ADA adjustment interval in steps",
    "precision": "auto (bf16 on GPUs that support it, else fp32), fp32, bf16, fp16 (NVlabs recipe)",
    "num_fp16_res": "with --precision fp16: number of top resolutions in float16",
    "channels_last": "channels_last memory format (default: on for CUDA)",
    "compile": "torch.compile the G/D passes that have no double backward",
    "cudnn_benchmark": "cudnn.benchmark autotuning",
    "tick_kimg": "progress / stats interval in kimg",
    "snap_kimg": "checkpoint interval in kimg",
    "image_kimg": "sample-grid interval in kimg",
    "metric_kimg": "SWD metric interval in kimg (default: snap_kimg)",
    "metric_images": "images per SWD evaluation (0: no metric; picks the best checkpoint)",
    "keep": "checkpoints kept besides the best",
    "grid_size": "images per sample grid",
    "tensorboard": "also log to TensorBoard (when installed)",
    "progress": "tqdm progress bar",
}


def _str2bool(v: str) -> bool:
    s = str(v).lower()
    if s in ("1", "true", "yes", "on", "y"):
        return True
    if s in ("0", "false", "no", "off", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (yes/no), got {v!r}")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from .train.config import AUGMENTS, PRECISIONS, TrainConfig
    g = p.add_argument_group("training options (also accepted in --config files)")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "extra":
            continue
        flag = "--" + f.name.replace("_", "-")
        kw: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": TRAIN_HELP.get(f.name)}
        default = f.default if f.default is not dataclasses.MISSING else None
        if kw["help"] is not None and default is not None and f.name != "data":
            kw["help"] += f" [{default}]"
        if f.name == "betas":
            g.add_argument(flag, nargs=2, type=float, metavar=("B1", "B2"), **kw)
        elif f.type in ("bool", "Optional[bool]"):
            g.add_argument(flag, nargs="?", const=True, type=_str2bool, metavar="yes|no", **kw)
        elif f.name == "precision":
            g.add_argument(flag, choices=PRECISIONS, **kw)
        elif f.name == "augment":
            g.add_argument(flag, choices=AUGMENTS, **kw)
        elif f.name == "impl":
            g.add_argument(flag, choices=("ref", "triton", "cuda"), **kw)
        elif f.type in ("int", "Optional[int]"):
            g.add_argument(flag, type=int, metavar="N", **kw)
        elif f.type in ("float", "Optional[float]"):
            g.add_argument(flag, type=float, metavar="X", **kw)
        else:
            g.add_argument(flag, type=str, **kw)
    p.add_argument("--config", metavar="FILE", help="YAML or JSON file of training options "
                   "(command-line options override it); a run's config.json works too")
    p.add_argument("--gpus", type=int, default=None, metavar="K",
                   help="launch K processes on this node (torchrun; NCCL on GPUs, gloo on CPU). "
                        "Under torchrun already, leave it out")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="stop after N iterations (for smoke tests)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastgan", description="fastgan: fast StyleGAN2 training with fused GPU kernels.",
        epilog="Run `fastgan <command> --help` for a command's options.")
    sub = p.add_subparsers(dest="command", metavar="command")

    t = sub.add_parser("train", help="train StyleGAN2", epilog=EPILOG_TRAIN,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a StyleGAN2 generator and discriminator.")
    _add_train_options(t)
    t.set_defaults(_subparser=t)  # main() reports errors with the sub-command's usage

    gen = sub.add_parser("generate", help="sample images from a checkpoint",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Images from a fastgan checkpoint's EMA generator.",
                         epilog="examples:\n"
                                "  fastgan generate --ckpt runs/x/ckpt-00001000.pt --n 64 "
                                "--out grid.png\n"
                                "  fastgan generate --ckpt C --seeds 0-15 --truncation 0.7 "
                                "--out grid.png\n"
                                "  fastgan generate --ckpt C --mode mixing --seeds 0-4 "
                                "--col-seeds 10-14 --out mix.png\n"
                                "  fastgan generate --ckpt C --mode interpolate --seeds 0,1,2 "
                                "--frames 24 --out frames/")
    gen.add_argument("--ckpt", required=True, help="checkpoint file, or a run directory (its "
                     "latest checkpoint)")
    gen.add_argument("--out", required=True, help="output PNG (grid / mixing) or folder "
                     "(interpolate, images)")
    gen.add_argument("--mode", choices=("grid", "images", "mixing", "interpolate"),
                     default="grid", help="grid: one PNG grid; images: one PNG per seed; "
                     "mixing: style-mixing figure; interpolate: latent-walk frames [grid]")
    gen.add_argument("--n", type=int, default=None, help="number of images: seeds 0..n-1, or "
                     "the first n of --seeds [64]")
    gen.add_argument("--seeds", default=None, help="seeds, e.g. 0-63 or 1,5,9")
    gen.add_argument("--col-seeds", default=None, help="mixing: column seeds [100-104]")
    gen.add_argument("--crossover", type=int, default=None,
                     help="mixing: number of coarse ws taken from the row seed [num_ws / 2]")
    gen.add_argument("--truncation", type=float, default=1.0, help="truncation psi [1.0]")
    gen.add_argument("--class", dest="class_idx", type=int, default=None,
                     help="class index for conditional generators")
    gen.add_argument("--frames", type=int, default=16, help="interpolate: frames per seed pair")
    gen.add_argument("--space", choices=("w", "z"), default="w", help="interpolate in W or Z")
    gen.add_argument("--noise", choices=("const", "random", "none"), default="const",
                     help="noise mode [const]")
    gen.add_argument("--nrow", type=int, default=None, help="grid: images per row")
    gen.add_argument("--raw", action="store_true", help="use G instead of G_ema")
    gen.add_argument("--device", default=None, help="cuda / cpu (default: cuda if available)")
    gen.add_argument("--impl", choices=("ref", "triton", "cuda"), default=None,
                     help="op backend (default: the fastest available)")
    gen.set_defaults(_subparser=gen)

    pre = sub.add_parser("prepare", help="write a dataset zip at a fixed resolution",
                         description="Decode, resize and centre-crop a dataset once into a zip of "
                         "PNGs (+ dataset.json labels), so training never decodes large JPEGs.")
    pre.add_argument("source", help="image folder, zip, or a built-in (shapes, digits)")
    pre.add_argument("dest", help="output .zip")
    pre.add_argument("--resolution", type=int, required=True, help="output resolution")
    pre.add_argument("--cond", action="store_true", help="store class labels (sub-folder names)")
    pre.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 (grey) or 3 (RGB)")
    pre.add_argument("--max-images", type=int, default=None, help="stop after N images")
    pre.set_defaults(_subparser=pre)

    b = sub.add_parser("bench", help="run the benchmark suite",
                       description="Benchmarks (results in bench/results/ as JSON, Markdown, PNG). "
                       "suite: ops (per-op families: bench.run), overhead (host time per op call), "
                       "penalties, stylegan2 (model passes), train (training throughput), all "
                       "(ops + overhead + penalties + stylegan2). "
                       "Remaining arguments go to the suite (e.g. --quick, --device cpu).")
    b.add_argument("suite", nargs="?", default="all",
                   choices=("all", *BENCH_SUITES))
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the suite")
    b.set_defaults(_subparser=b)
    return p


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------

def _train_config(ns: argparse.Namespace):
    from .train.config import TrainConfig, load_config_file
    opts: dict = {}
    if ns.config:
        opts.update(load_config_file(ns.config))
    for f in dataclasses.fields(TrainConfig):
        if hasattr(ns, f.name):
            opts[f.name] = getattr(ns, f.name)
    cfg = TrainConfig.from_dict(opts)
    if "data" not in opts:  # no silent 25000-kimg run on the built-in `shapes`
        ns._subparser.error("the following arguments are required: --data (or data: in "
                            "the --config file)")
    return cfg.validate()


def _relaunch_torchrun(k: int, argv: Sequence[str]) -> int:
    """``--gpus K`` outside torchrun: start K local processes running the same command."""
    from torch.distributed.run import main as torchrun_main
    rest, skip = [], False
    for a in argv:  # drop --gpus K / --gpus=K
        if skip:
            skip = False
            continue
        if a == "--gpus":
            skip = True
            continue
        if a.startswith("--gpus="):
            continue
        rest.append(a)
    torchrun_main(["--standalone", f"--nproc_per_node={k}", "-m", "fastgan", *rest])
    return 0


def cmd_train(ns: argparse.Namespace, argv: Sequence[str]) -> int:
    cfg = _train_config(ns)
    if ns.gpus is not None:
        if ns.gpus < 1:
            raise ValueError(f"--gpus must be >= 1, got {ns.gpus}")
        if ns.gpus > 1 and "WORLD_SIZE" not in os.environ:
            return _relaunch_torchrun(ns.gpus, argv)
    from .train.trainer import TrainingDiverged, train
    try:
        result = train(cfg, max_steps=ns.max_steps)
    except TrainingDiverged as e:
        print(f"fastgan train: {e}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result))
    return 0


def _resolve_ckpt(path: str) -> str:
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        from .train.checkpoint import CheckpointManager
        found = CheckpointManager(path).latest()  # latest.json's, as --resume auto takes
        if found is None:
            raise FileNotFoundError(f"--ckpt: no checkpoints (ckpt-*.pt) in run directory {path!r}")
        return found
    if not os.path.exists(path):
        raise FileNotFoundError(f"--ckpt: {path!r} does not exist")
    return path


FRAME_PREFIX = "frame"  # save_frames' names: frame_00000.png, ...
_FRAME_RE = re.compile(rf"{FRAME_PREFIX}_(\d{{5,}})\.png")


def _check_generate_out(mode: str, out: str) -> None:
    """Before any work: grid / mixing write one PNG; images / interpolate fill a folder (a
    `frames.png` folder is surely a typo for a file, so it is an error, not a surprise)."""
    if mode in ("grid", "mixing"):
        if not out.lower().endswith(".png"):
            raise ValueError(f"--out {out!r}: --mode {mode} writes one PNG file, so the path must "
                             "end with .png (--mode images writes one PNG per seed into a folder)")
        if os.path.isdir(out):
            raise ValueError(f"--out {out!r} is a folder; --mode {mode} writes one PNG file")
        return
    what = "seed" if mode == "images" else "frame"
    if out.lower().endswith(".png"):
        raise ValueError(f"--out {out!r}: --mode {mode} writes one PNG per {what} into a folder; "
                         f"pass a folder, e.g. {out[:-4] + os.sep!r}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} exists and is not a folder; --mode {mode} writes one "
                         f"PNG per {what} into a folder")


def _remove_stale_frames(out_dir: str, keep: int) -> int:
    """Delete the frames an earlier, longer walk left in ``out_dir`` (frame_<i:05d>.png with
    i >= keep) so the folder holds one sequence for `ffmpeg -i frame_%05d.png`.  Only names
    save_frames writes are touched; returns how many were removed."""
    removed = 0
    for name in os.listdir(out_dir):
        m = _FRAME_RE.fullmatch(name)
        if m is None or name != f"{FRAME_PREFIX}_{int(m.group(1)):05d}.png" \
                or int(m.group(1)) < keep:
            continue
        path = os.path.join(out_dir, name)
        if os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)
            removed += 1
    return removed


def cmd_generate(ns: argparse.Namespace) -> int:
    from . import generate as gen
    from .utils.images import save_frames, save_image_grid
    # every argument is checked before the model is loaded or a file written
    out_path = os.path.expanduser(ns.out)
    _check_generate_out(ns.mode, out_path)
    if ns.n is not None and ns.n < 1:
        raise ValueError(f"--n must be >= 1, got {ns.n}")
    if ns.frames < 1:
        raise ValueError(f"--frames must be >= 1, got {ns.frames}")
    if ns.seeds:  # --n with --seeds: the first n of them
        seeds = gen.parse_seeds(ns.seeds)
        if ns.n is not None:
            if ns.n > len(seeds):
                raise ValueError(f"--n {ns.n} but --seeds gives only {len(seeds)} seeds")
            seeds = seeds[:ns.n]
    else:
        seeds = list(range(ns.n if ns.n else 64))
    cols = gen.parse_seeds(ns.col_seeds) if ns.col_seeds else list(range(100, 105))
    ckpt = _resolve_ckpt(ns.ckpt)
    G = gen.load_generator(ckpt, device=ns.device, ema=not ns.raw, impl=ns.impl)
    if ns.mode == "grid":
        imgs = gen.generate_images(G, seeds, ns.truncation, ns.class_idx, ns.noise,
                                   progress=len(seeds) > 64)
        out = save_image_grid(imgs, out_path, nrow=ns.nrow)
    elif ns.mode == "images":
        imgs = gen.generate_images(G, seeds, ns.truncation, ns.class_idx, ns.noise,
                                   progress=len(seeds) > 64)
        out = out_path
        for s, img in zip(seeds, imgs):
            save_image_grid(img[None], os.path.join(out_path, f"seed{s:06d}.png"))
    elif ns.mode == "mixing":
        rows = seeds if ns.seeds else seeds[:5]
        grid = gen.style_mixing_grid(G, rows, cols, ns.crossover, ns.truncation, ns.class_idx,
                                     ns.noise)
        out = save_image_grid(grid, out_path)
    else:
        frames = gen.interpolation_frames(G, seeds if ns.seeds else seeds[:4], ns.frames,
                                          ns.truncation, ns.space, ns.class_idx,
                                          noise_mode=ns.noise)
        paths = save_frames(frames, out_path, prefix=FRAME_PREFIX)
        removed = _remove_stale_frames(out_path, len(paths))
        out = f"{len(paths)} frames in {out_path}" + (
            f" (removed {removed} stale frame(s) of an earlier, longer walk)" if removed else "")
    print(f"fastgan generate: {out} (from {ckpt})")
    return 0


def cmd_prepare(ns: argparse.Namespace) -> int:
    from .data import prepare_dataset
    source, dest = os.path.expanduser(ns.source), os.path.expanduser(ns.dest)
    if os.path.isdir(dest):
        raise ValueError(f"dest {ns.dest!r} is a folder; expected the path of the .zip to write")
    summary = prepare_dataset(source, dest, ns.resolution, use_labels=ns.cond,
                              num_channels=ns.channels, max_images=ns.max_images)
    print(json.dumps(summary))
    return 0


BENCH_SUITES = {"ops": "run", "overhead": "overhead", "penalties": "penalties",
                "stylegan2": "stylegan2", "train": "train"}


def cmd_bench(ns: argparse.Namespace) -> int:
    import importlib
    args = [a for a in ns.args if a != "--"]
    suites = ["ops", "overhead", "penalties", "stylegan2"] if ns.suite == "all" else [ns.suite]
    rc = 0
    for s in suites:
        mod = None
        for pkg in ("fastgan.bench", "bench"):
            try:
                mod = importlib.import_module(f"{pkg}.{BENCH_SUITES[s]}")
                break
            except ModuleNotFoundError as e:
                if e.name not in (pkg, f"{pkg}.{BENCH_SUITES[s]}", pkg.split(".")[0]):
                    raise
        if mod is None:
            raise RuntimeError(f"fastgan bench: the benchmark suite '{s}' is not installed; "
                               "reinstall fastgan (`pip install -e .` from a checkout) or run "
                               "`make bench` in the source tree")
        rc = max(rc, int(mod.main(args) or 0))
    return rc


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    ns, unknown = parser.parse_known_args(argv)
    if unknown:  # a mistyped option: the sub-command's usage, not the top-level one
        getattr(ns, "_subparser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if ns.command is None:
        parser.print_help()
        return 2
    from .ops import BackendUnavailableError
    from .train.checkpoint import CheckpointError
    try:
        if ns.command == "train":
            return cmd_train(ns, argv)
        if ns.command == "generate":
            return cmd_generate(ns)
        if ns.command == "prepare":
            return cmd_prepare(ns)
        return cmd_bench(ns)
    except (ValueError, TypeError, ImportError, OSError, CheckpointError,
            BackendUnavailableError) as e:
        # bad input or environment (a missing / unreadable / corrupt file, a device or backend
        # not here): one clear line instead of a traceback (FASTGAN_DEBUG=1 shows it)
        if os.environ.get("FASTGAN_DEBUG"):
            raise
        print(f"fastgan {ns.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
