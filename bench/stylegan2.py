"""StyleGAN2 model benchmark: ``python -m bench.stylegan2 [--device cpu] [--out DIR] [--quick]``.

Times whole :mod:`fastgan.models.stylegan2` passes (config F: ``channel_base=32768``,
``channel_max=512``, z/w 512, 8 mapping layers, no conditioning) with every op backend
(``impl='ref' | 'triton' | 'cuda'``), the same weights for every backend, against ``impl='ref'``.

Parts (one timed step each; gradients are taken with ``torch.autograd.grad``, so ``.grad``
accumulation and optimizer steps are not timed):

* ``g_fwd``    ``G(z, c)`` under ``torch.no_grad()``: mapping + synthesis, ``noise_mode='random'``
  (the per-layer noise draw is timed too).
* ``d_fwd``    ``D(img, c)`` under ``torch.no_grad()``.
* ``r1_step``  a regularised D step as the trainer runs it:
  ``penalty, logits = r1_penalty(D, reals, c, return_logits=True)``,
  ``loss = softplus(-logits).mean() + gamma / 2 * penalty`` (gamma = 10), then the gradients of
  ``loss`` w.r.t. every D parameter.
* ``g_step``   a G step: ``G(z, c)`` (random noise), ``D`` on the fakes, non-saturating loss
  ``softplus(-logits).mean()``, gradients w.r.t. every G parameter (not D's).

Modes: ``fp32`` (plain float32; cuDNN / cuBLAS TF32 use is whatever torch's defaults are -- the
flags are recorded in the JSON), ``bf16`` (``torch.autocast(device, torch.bfloat16)`` around the
pass, models built ``channels_last=True``), ``fp16`` (NVlabs' recipe: models built with
``num_fp16_res=4, conv_clamp=256``; those blocks run float16 channels_last; no autocast).

Correctness before timing: every backend's outputs (G image with ``noise_mode='const'``, D logits,
R1 penalty + logits + D gradients, G loss + G gradients) are compared with ``impl='ref'`` in the
same mode on the same inputs and weights; the error of a tensor is ``max|got - ref| / max|ref|``
(gradients: over ``max(max|ref|, 1e-4 * largest gradient)``, so a near-zero gradient sum is judged
against the scale of the others), the row records the worst one as ``max_rel_err_vs_ref`` and is
flagged ✗ (status ``mismatch``, still timed) above the mode's tolerance (``TOLERANCE``).

Each row: median ms (``bench.harness.time_ms``: CUDA events, median), img/s, peak GiB (CUDA:
``max_memory_allocated`` over one step after ``reset_peak_memory_stats``, weights and inputs
included; CPU: null), ``x_ref`` (ref ms / this ms, same part, resolution, batch and mode).  An
out-of-memory step is a row with status ``oom`` (not retried with a smaller batch); a backend that
cannot run on the device is a ``skip`` row with the reason.

Full set (CUDA): resolutions 256 and 1024, batch 32, every part, mode and backend.  ``--quick``:
256^2 every part, 1024^2 ``g_fwd`` / ``d_fwd`` only, fewer repetitions.  CPU: a smoke set that
runs in seconds -- 16^2 and 32^2, batch 4, ``channel_base=256, channel_max=32``, 2 mapping layers,
fp32, ``ref`` timed and the GPU backends recorded as skips.

Writes ``<device-slug>-<date>-stylegan2[-quick].{json,md,png}`` into ``--out`` (default
bench/results); rows of the same device and day are merged by key, so a long GPU run can be split
over several commands (e.g. one ``--modes`` at a time).
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import sys
import time
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import harness as H
from fastgan.models.stylegan2 import Discriminator, Generator
from fastgan.ops import available_impls, r1_penalty

PARTS = ("g_fwd", "d_fwd", "r1_step", "g_step")
MODES = ("fp32", "bf16", "fp16")
IMPLS = ("ref", "triton", "cuda")
# max |got - ref| <= tol * max |ref|, per tensor.  fp32 allows for TF32 convolutions / matmuls,
# whose rounding differs with the kernel cuDNN picks for each backend's layout.
TOLERANCE = {"fp32": 1e-3, "bf16": 5e-2, "fp16": 5e-2}
R1_GAMMA = 10.0
# which of the two networks each part needs
NEEDS = {"g_fwd": "G", "d_fwd": "D", "r1_step": "D", "g_step": "GD"}
ROW_KEY = ("part", "res", "batch", "mode", "impl", "channel_base", "channel_max")
MBSTD_GROUP = 4  # the discriminator's minibatch-stddev group size (config F)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of one benchmark configuration (the mode adds its own build arguments)."""
    res: int
    batch: int
    channel_base: int = 32768
    channel_max: int = 512
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8


def mode_kwargs(mode: str) -> dict:
    """Generator / Discriminator build arguments of a precision mode."""
    if mode == "fp32":
        return {}
    if mode == "bf16":
        return dict(channels_last=True)
    if mode == "fp16":
        return dict(num_fp16_res=4, conv_clamp=256)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def mode_skip_reason(mode: str, device: str) -> Optional[str]:
    """Why ``mode`` cannot be benchmarked on ``device`` (None: it can)."""
    if mode == "fp16" and device != "cuda":
        return "the fp16 recipe needs a CUDA device (float16 convolutions on CPU are not representative)"
    if mode == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        return "this CUDA device does not support bfloat16"
    return None


def impl_skip_reason(impl: str, device: str) -> Optional[str]:
    """Why backend ``impl`` cannot be benchmarked on ``device`` (None: it can)."""
    if impl == "ref":
        return None
    if impl == "triton" and device != "cuda":
        # (under TRITON_INTERPRET=1 it runs on CPU tensors, but the interpreter is a test tool)
        return "triton needs a CUDA device (the CPU interpreter is for tests, not timing)"
    st = available_impls(device)[impl]
    return None if st else (st.reason or "unavailable")


# ---------------------------------------------------------------------------------- models
def _randomize_zero_init_(model: nn.Module, generator: torch.Generator) -> None:
    """Give the parameters that start at zero (biases, noise strengths) small random values, so
    every term of the forward pass counts in the correctness check (timing is unaffected)."""
    with torch.no_grad():
        for t in model.parameters():
            if t.numel() and t.abs().max() == 0:
                t.copy_(0.1 * torch.randn(t.shape, generator=generator))


def master_weights(cfg: ModelConfig, seed: int = 0) -> tuple[dict, dict]:
    """CPU state dicts of G and D for ``cfg``, built once with a fixed seed; every (mode, impl)
    variant loads them, so all backends and modes run the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(**_g_kwargs(cfg), impl="ref")
        D = Discriminator(**_d_kwargs(cfg), impl="ref")
    g = torch.Generator().manual_seed(seed + 1)
    _randomize_zero_init_(G, g)
    _randomize_zero_init_(D, g)
    return G.state_dict(), D.state_dict()


def _g_kwargs(cfg: ModelConfig) -> dict:
    return dict(z_dim=cfg.z_dim, w_dim=cfg.w_dim, img_resolution=cfg.res,
                channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                mapping_layers=cfg.mapping_layers)


def _d_kwargs(cfg: ModelConfig) -> dict:
    return dict(img_resolution=cfg.res, channel_base=cfg.channel_base,
                channel_max=cfg.channel_max, mbstd_group_size=MBSTD_GROUP)


def build_models(cfg: ModelConfig, mode: str, impl: str, weights: tuple[dict, dict],
                 device: str, which: str = "GD") -> tuple[Optional[Generator], Optional[Discriminator]]:
    """G and/or D (``which``: a string of 'G' / 'D') for one (mode, impl), loaded with ``weights``
    (:func:`master_weights`) and moved to ``device``."""
    kw = dict(mode_kwargs(mode), impl=impl)
    G = D = None
    if "G" in which:
        G = Generator(**_g_kwargs(cfg), **kw)
        G.load_state_dict(weights[0])
        G = G.to(device)
    if "D" in which:
        D = Discriminator(**_d_kwargs(cfg), **kw)
        D.load_state_dict(weights[1])
        D = D.to(device)
    return G, D


def make_inputs(cfg: ModelConfig, device: str, seed: int = 1) -> dict[str, Tensor]:
    """Latents ``z [B, z_dim]`` and 'real' images ``[B, 3, res, res]`` (fixed seed, float32)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(cfg.batch, cfg.z_dim, generator=g)
    reals = torch.randn(cfg.batch, 3, cfg.res, cfg.res, generator=g)
    return dict(z=z.to(device), reals=reals.to(device))


# ----------------------------------------------------------------------------------- steps
def make_step(part: str, mode: str, G: Optional[Generator], D: Optional[Discriminator],
              inputs: dict[str, Tensor], device: str,
              noise_mode: str = "random") -> Callable[[], tuple[list[Tensor], list[Optional[Tensor]]]]:
    """One timed pass of ``part``; the step returns ``(outputs, gradients)`` (lists of tensors;
    a gradient may be None for a parameter the loss does not reach)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    for name in NEEDS[part]:
        if {"G": G, "D": D}[name] is None:
            raise ValueError(f"part {part!r} needs the {'generator' if name == 'G' else 'discriminator'} "
                             f"({name}), got None")
    z, reals, c = inputs["z"], inputs["reals"], None

    def autocast():
        return torch.autocast(device, dtype=torch.bfloat16, enabled=(mode == "bf16"))

    def g_fwd():
        with torch.no_grad(), autocast():
            return [G(z, c, noise_mode=noise_mode)], []

    def d_fwd():
        with torch.no_grad(), autocast():
            return [D(reals, c)], []

    def r1_step():
        params = list(D.parameters())
        with autocast():
            penalty, logits = r1_penalty(D, reals, c, return_logits=True)
            loss = F.softplus(-logits).mean() + R1_GAMMA / 2 * penalty
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return [penalty, logits], list(grads)

    def g_step():
        params = list(G.parameters())
        with autocast():
            logits = D(G(z, c, noise_mode=noise_mode), c)
            loss = F.softplus(-logits).mean()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return [loss, logits], list(grads)

    return {"g_fwd": g_fwd, "d_fwd": d_fwd, "r1_step": r1_step, "g_step": g_step}[part]


def _rel_errs(got: Sequence[Optional[Tensor]], want: Sequence[Optional[Tensor]],
              floor_frac: float) -> float:
    """Worst ``max|got - want| / max(max|want|, floor_frac * largest max|want|)`` over the pairs
    (float32 arithmetic on got's device; a None on one side only, or a shape change: inf)."""
    if len(got) != len(want):
        return float("inf")
    scales = [0.0 if w is None else w.detach().abs().max().item() if w.numel() else 0.0
              for w in want]
    floor = max(max(scales, default=0.0) * floor_frac, 1e-30)
    worst = 0.0
    for g, w, s in zip(got, want, scales):
        if g is None and w is None:
            continue
        if g is None or w is None or g.shape != w.shape:
            return float("inf")
        if not g.numel():
            continue
        err = (g.detach().float() - w.detach().to(g.device, torch.float32)).abs().max().item()
        worst = max(worst, err / max(s, floor))
    return worst


def max_rel_err(got: tuple[list, list], want: tuple[list, list]) -> float:
    """Worst relative error of a step's ``(outputs, gradients)`` against the reference's: each
    output against its own max |ref|; each gradient against the larger of its own max |ref| and
    1e-4 of the largest gradient (a gradient that sums to ~0 is judged on the others' scale)."""
    if not (isinstance(got, tuple) and isinstance(want, tuple) and len(got) == len(want) == 2):
        raise TypeError("max_rel_err: got and want must be (outputs, gradients) pairs as returned "
                        "by a make_step step")
    return max(_rel_errs(got[0], want[0], 0.0), _rel_errs(got[1], want[1], 1e-4))


def reference_outputs(step: Callable) -> tuple[list, list]:
    """Run a correctness-check step and keep its results on the CPU (so they do not count in
    the next backend's peak memory)."""
    outs, grads = step()
    cpu = lambda ts: [None if t is None else t.detach().cpu() for t in ts]  # noqa: E731
    return cpu(outs), cpu(grads)


def compare_models(part: str, mode: str, ref: tuple, other: tuple, inputs: dict[str, Tensor],
                   device: str) -> float:
    """``max_rel_err`` of ``part`` run with the models ``other = (G, D)`` against ``ref = (G, D)``
    on the same inputs, G's noise fixed (``noise_mode='const'``)."""
    want = make_step(part, mode, *ref, inputs, device, noise_mode="const")()
    got = make_step(part, mode, *other, inputs, device, noise_mode="const")()
    return max_rel_err(got, want)


# ---------------------------------------------------------------------------------- runner
def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def _peak_gib(step: Callable, device: str) -> Optional[float]:
    """Peak allocated GiB during one step (weights and inputs included); None on CPU."""
    if device != "cuda":
        step()
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2 ** 30


def run_config(cfg: ModelConfig, mode: str, parts: Sequence[str], impls: Sequence[str],
               device: str, timing: H.Timing, info: dict) -> list[dict]:
    """Rows for every (part, impl) of one (resolution, batch, mode)."""
    base = dict(device=info["device"], date=info["date"], res=cfg.res, batch=cfg.batch, mode=mode,
                channel_base=cfg.channel_base, channel_max=cfg.channel_max, z_dim=cfg.z_dim,
                w_dim=cfg.w_dim, mapping_layers=cfg.mapping_layers, tol=TOLERANCE[mode])
    rows: dict[tuple[str, str], dict] = {}  # (part, impl) -> row; ref's even when not reported
    for part in parts:
        for impl in dict.fromkeys(["ref", *impls]):
            rows[part, impl] = dict(base, part=part, impl=impl, status="ok", reason="", ms=None,
                                    img_s=None, peak_gib=None, x_ref=None, max_rel_err_vs_ref=None)
    report = lambda: [r for (_, i), r in rows.items() if i in impls]  # noqa: E731
    skip = mode_skip_reason(mode, device)
    if skip:
        for r in rows.values():
            r.update(status="skip", reason=skip)
        return report()

    weights = master_weights(cfg)
    inputs = make_inputs(cfg, device)
    which = "".join(sorted(set("".join(NEEDS[p] for p in parts))))
    want: dict[str, object] = {}  # part -> ref results on CPU, or why there are none
    skips = {i: impl_skip_reason(i, device) for i in dict.fromkeys(["ref", *impls])}
    # ref first: its results are what the other backends are checked against (run even when it
    # is not timed itself, unless no other backend can run)
    for impl in skips:
        timed = impl in impls
        if not timed and all(skips[i] for i in impls):
            continue
        reason = skips[impl]
        if reason:
            for part in parts:
                rows[part, impl].update(status="skip", reason=reason)
            continue
        models = failed = None
        try:
            models = build_models(cfg, mode, impl, weights, device, which)
        except Exception as e:  # noqa: BLE001 - recorded, the run goes on
            failed = ("oom", f"out of memory building the models: {H._reason(e)}") \
                if _is_oom(e) else ("error", f"building the models: {H._reason(e)}")
        if failed is not None:
            for part in parts:
                rows[part, impl].update(status=failed[0], reason=failed[1])
                if impl == "ref":
                    want[part] = f"ref failed ({failed[0]})"
            _free(device)
            continue
        for part in parts:
            row = rows[part, impl]
            status = None
            try:
                check = make_step(part, mode, *models, inputs, device, noise_mode="const")
                if impl == "ref":
                    want[part] = reference_outputs(check)
                elif isinstance(want.get(part), tuple):
                    err = max_rel_err(check(), want[part])
                    row["max_rel_err_vs_ref"] = err
                    if not err <= TOLERANCE[mode]:
                        row.update(status="mismatch", reason=f"differs from impl='ref' (max rel "
                                                             f"err {err:.2e} > {TOLERANCE[mode]:g})")
                else:
                    row["reason"] = f"not checked: {want.get(part, 'no ref results')}"
                del check
                if timed:
                    step = make_step(part, mode, *models, inputs, device)
                    row["peak_gib"] = _peak_gib(step, device)
                    ms, reps = H.time_ms([step], device, timing)
                    row.update(ms=ms, reps=reps, img_s=cfg.batch / (ms * 1e-3))
                    del step
            except Exception as e:  # noqa: BLE001 - e.g. out of memory: recorded, the run goes on
                status = ("oom", f"out of memory at batch {cfg.batch}: {H._reason(e)}") \
                    if _is_oom(e) else ("error", H._reason(e))
                if impl == "ref":
                    want.setdefault(part, f"ref failed ({status[0]})")
            if status is not None:  # outside the except block: its traceback no longer pins tensors
                row.update(status=status[0], reason=status[1], ms=None, img_s=None)
                _free(device)
        del models
        _free(device)
    for part in parts:
        ref_ms = rows[part, "ref"]["ms"] if "ref" in impls else None
        for impl in impls:
            r = rows[part, impl]
            if ref_ms and r["ms"]:
                r["x_ref"] = ref_ms / r["ms"]
    return report()


def configs(device: str, quick: bool, res: Optional[list[int]], batch: Optional[int],
            channel_base: Optional[int], channel_max: Optional[int],
            parts: Sequence[str]) -> list[tuple[ModelConfig, list[str]]]:
    """(config, parts) pairs to run: the device's default set, narrowed by the CLI options."""
    if device == "cpu":
        d_res, d_batch, cbase, cmax, mapping = [16, 32], 4, 256, 32, 2
    else:
        d_res, d_batch, cbase, cmax, mapping = [256, 1024], 32, 32768, 512, 8
    out = []
    for r in res or d_res:
        cfg = ModelConfig(res=r, batch=batch or d_batch, channel_base=channel_base or cbase,
                          channel_max=channel_max or cmax, mapping_layers=mapping)
        ps = list(parts)
        if quick and device == "cuda" and r >= 1024:  # --quick: forward passes only at 1024^2
            ps = [p for p in ps if p in ("g_fwd", "d_fwd")]
        if ps:
            out.append((cfg, ps))
    return out


# ---------------------------------------------------------------------------------- output
def _key(r: dict) -> tuple:
    return tuple(r.get(k) for k in ROW_KEY)


def _order(r: dict) -> tuple:
    return (PARTS.index(r["part"]) if r["part"] in PARTS else len(PARTS), r["res"],
            MODES.index(r["mode"]) if r["mode"] in MODES else len(MODES), r["batch"],
            r["channel_base"], r["channel_max"],
            IMPLS.index(r["impl"]) if r["impl"] in IMPLS else len(IMPLS))


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` rows not replaced by a ``new`` row of the same key (``ROW_KEY``), plus ``new``,
    sorted by part, resolution, mode, batch and impl."""
    keys = {_key(r) for r in new}
    return sorted([r for r in old if _key(r) not in keys] + list(new), key=_order)


def precision_flags() -> dict:
    """torch's TF32 / cuDNN settings in effect (they decide what 'fp32' means on a GPU)."""
    flags = dict(cuda_matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
                 cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                 cudnn_benchmark=torch.backends.cudnn.benchmark)
    for name, mod in (("cuda_matmul", torch.backends.cuda.matmul), ("cudnn", torch.backends.cudnn)):
        if hasattr(mod, "fp32_precision"):  # newer torch: the TF32 switch is a precision string
            flags[f"{name}_fp32_precision"] = str(mod.fp32_precision)
    return flags


def write_merged_results(rows: list[dict], info: dict, out_dir: str, name: str, suffix: str,
                         merge, render, plot_fn) -> list[str]:
    """Write ``<slug>-<date>-<name><suffix>.{json,md,png}`` into ``out_dir``, merging ``rows``
    into a same-day file's rows with ``merge(old, new)`` (shared by the model-level benchmarks)."""
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, f"{info['slug']}-{info['date']}-{name}{suffix}")
    old = []
    if os.path.exists(stem + ".json"):
        try:
            with open(stem + ".json") as f:
                old = json.load(f).get("rows", [])
        except (OSError, ValueError, AttributeError) as e:
            raise ValueError(f"{stem}.json: cannot merge into this results file ({e}); move it "
                             "away or pass another --out") from e
    doc = dict(info, rows=merge(old, rows))
    with open(stem + ".json", "w") as f:
        json.dump(doc, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(render(doc))
    return [stem + ".json", stem + ".md"] + plot_fn(doc, stem + ".png")


def write_results(rows: list[dict], info: dict, out_dir: str, suffix: str = "") -> list[str]:
    """``<slug>-<date>-stylegan2<suffix>.{json,md,png}``, merged with a same-day file's rows."""
    return write_merged_results(rows, info, out_dir, "stylegan2", suffix, merge_rows,
                                render_markdown, plot)


def _fmt(v, spec: str, suffix: str = "") -> str:
    return "–" if v is None else f"{v:{spec}}{suffix}"


def render_markdown(doc: dict) -> str:
    """Tables grouped by part · resolution · mode, one row per (batch, impl)."""
    fl = {k: v for k, v in doc.items() if "tf32" in k or "fp32_precision" in k}
    lines = [f"# fastgan StyleGAN2 model benchmark — {doc['device']} ({doc['device_kind']})", "",
             f"- date {doc['date']}, torch {doc['torch']}, triton {doc['triton']}, CUDA {doc['cuda']}, "
             f"CPU threads {doc['cpu_threads']}",
             "- TF32 settings: " + ", ".join(f"{k}={v}" for k, v in fl.items()),
             "- parts: `g_fwd` G(z) no_grad · `d_fwd` D(img) no_grad · `r1_step` r1_penalty + "
             "softplus loss + grad w.r.t. D params · `g_step` G → D → non-saturating loss, grad "
             "w.r.t. G params",
             "- modes: `fp32` (torch's TF32 defaults) · `bf16` autocast, channels_last · `fp16` "
             "NVlabs recipe (num_fp16_res=4, conv_clamp=256)",
             "- ms: median; × ref: ref ms / this ms; peak: max allocated GiB over one step "
             "(weights included); max rel err: vs impl='ref', same mode and weights; ✗ = above "
             "the mode's tolerance (timed anyway); – = not run (reasons below each table)", ""]
    for (part, res, mode), grp in H._groups(doc["rows"], lambda r: (r["part"], r["res"],
                                                                     r["mode"])).items():
        r0 = grp[0]
        lines += [f"## {part} · {res}^2 · {mode}", "",
                  f"channel_base {r0['channel_base']}, channel_max {r0['channel_max']}, "
                  f"z/w {r0['z_dim']}/{r0['w_dim']}, mapping layers {r0['mapping_layers']}, "
                  f"tolerance {r0['tol']:g}", "",
                  "| impl | batch | status | ms | img/s | × ref | peak GiB | max rel err |",
                  "|---|---:|---|---:|---:|---:|---:|---:|"]
        notes = []
        for r in grp:
            mark = " ✗" if r["status"] == "mismatch" else ""
            lines.append(f"| {r['impl']} | {r['batch']} | {r['status']}{mark} | "
                         f"{_fmt(r.get('ms'), '.4g')} | {_fmt(r.get('img_s'), '.4g')} | "
                         f"{_fmt(r.get('x_ref'), '.2f', '×')} | {_fmt(r.get('peak_gib'), '.2f')} | "
                         f"{_fmt(r.get('max_rel_err_vs_ref'), '.1e')} |")
            if r.get("reason"):
                notes.append(f"- {r['impl']} (batch {r['batch']}): {r['status']}: {r['reason']}")
        lines += [""] + notes + ([""] if notes else [])
    return "\n".join(lines)


def plot(doc: dict, path: str) -> list[str]:
    """Bar chart of img/s: one panel per (part, resolution), modes on the x axis, one bar per
    impl (hatched: mismatch).  Returns ``[path]``, or ``[]`` without matplotlib."""
    plt = H.pyplot()
    if plt is None:
        return []
    rows = doc["rows"]
    parts = [p for p in PARTS if any(r["part"] == p for r in rows)]
    res = sorted({r["res"] for r in rows})
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    impls = [i for i in IMPLS if any(r["impl"] == i and r.get("img_s") for r in rows)]
    colors = dict(zip(IMPLS, ("tab:gray", "tab:blue", "tab:green")))
    fig, axes = plt.subplots(max(len(parts), 1), max(len(res), 1), squeeze=False,
                             figsize=(3.6 * len(res) + 0.6, 2.6 * len(parts) + 0.4))
    width = 0.8 / max(len(impls), 1)
    for i, part in enumerate(parts):
        for j, rr in enumerate(res):
            ax = axes[i][j]
            for k, impl in enumerate(impls):
                for m, mode in enumerate(modes):
                    # the largest batch measured for this cell (several only if runs differed)
                    sel = [r for r in rows if (r["part"], r["res"], r["mode"], r["impl"]) ==
                           (part, rr, mode, impl) and r.get("img_s")]
                    if not sel:
                        continue
                    r = max(sel, key=lambda r: r["batch"])
                    ax.bar(m - 0.4 + (k + 0.5) * width, r["img_s"], width, color=colors[impl],
                           hatch="//" if r["status"] == "mismatch" else None, label=impl)
            ax.set_xticks(range(len(modes)), modes)
            ax.set_xlim(-0.6, len(modes) - 0.4)
            ax.set_title(f"{part} · {rr}^2", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            if j == 0:
                ax.set_ylabel("img/s")
            handles, labels = ax.get_legend_handles_labels()
            if handles:
                uniq = dict(zip(labels, handles))
                ax.legend(uniq.values(), uniq.keys(), fontsize=7)
    return H.save_figure(fig, path, f"StyleGAN2 — {doc['device']} — {doc['date']}")


# ------------------------------------------------------------------------------------- CLI
def _csv(ap: argparse.ArgumentParser, value: Optional[str], name: str,
         choices: Sequence[str]) -> Optional[list[str]]:
    if value is None:
        return None
    items = [v for v in value.split(",") if v]
    bad = [v for v in items if v not in choices]
    if not items or bad:
        ap.error(f"{name}: expected a comma list of {','.join(choices)}, got {value!r}")
    return items


def _positive_int_list(ap: argparse.ArgumentParser, value: Optional[str], name: str) -> Optional[list[int]]:
    if value is None:
        return None
    try:
        items = [int(v) for v in value.split(",") if v]
    except ValueError:
        items = []
    if not items or any(v < 4 or v & (v - 1) for v in items):
        ap.error(f"{name}: expected a comma list of powers of two >= 4, got {value!r}")
    return items


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; 0 unless a step failed or disagreed with impl='ref' (skips and
    out-of-memory rows are recorded outcomes, not failures)."""
    ap = argparse.ArgumentParser(prog="python -m bench.stylegan2", description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None,
                    help="default: cuda if available, else cpu (smoke set)")
    ap.add_argument("--out", default=H.RESULTS_DIR)
    ap.add_argument("--quick", action="store_true",
                    help="GPU: 1024^2 forward parts only, fewer repetitions")
    ap.add_argument("--res", help="comma list of resolutions (default 256,1024; CPU 16,32)")
    ap.add_argument("--batch", type=int, help="default 32 (CPU 4)")
    ap.add_argument("--impls", help=f"subset of {','.join(IMPLS)} (default all)")
    ap.add_argument("--modes", help=f"subset of {','.join(MODES)} (default all; CPU fp32)")
    ap.add_argument("--parts", help=f"subset of {','.join(PARTS)} (default all)")
    ap.add_argument("--channel-base", type=int, help="default 32768 (CPU 256)")
    ap.add_argument("--channel-max", type=int, help="default 512 (CPU 32)")
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (0 = torch default)")
    a = ap.parse_args(argv)
    device = H.resolve_device(ap, a.device)
    res = _positive_int_list(ap, a.res, "--res")
    impls = _csv(ap, a.impls, "--impls", IMPLS) or list(IMPLS)
    modes = _csv(ap, a.modes, "--modes", MODES) or (list(MODES) if device == "cuda" else ["fp32"])
    parts = _csv(ap, a.parts, "--parts", PARTS) or list(PARTS)
    for name, v in (("--batch", a.batch), ("--channel-base", a.channel_base),
                    ("--channel-max", a.channel_max)):
        if v is not None and v < 1:
            ap.error(f"{name}: expected a positive integer, got {v}")
    if a.batch is not None and a.batch > MBSTD_GROUP and a.batch % MBSTD_GROUP:
        ap.error(f"--batch: expected a multiple of {MBSTD_GROUP} or at most {MBSTD_GROUP} (the "
                 f"discriminator's minibatch-stddev group size), got {a.batch}")

    threads = torch.get_num_threads()
    if device == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        t0 = time.perf_counter()
        timing = H.timing_for(device, a.quick)
        if device == "cuda":  # whole-model steps take 10s-1000s of ms and vary little
            timing = dataclasses.replace(timing, min_reps=min(timing.min_reps, 5 if a.quick else 10))
        info = dict(H.device_info(device), **precision_flags())
        rows = []

        def body():
            for cfg, ps in configs(device, a.quick, res, a.batch, a.channel_base, a.channel_max,
                                   parts):
                for mode in modes:
                    new = run_config(cfg, mode, ps, impls, device, timing, info)
                    rows.extend(new)
                    print(f"{cfg.res}^2 b{cfg.batch} {mode}: " + ", ".join(
                        f"{r['part']}/{r['impl']} " + (f"{r['ms']:.3g} ms" if r["ms"] else r["status"])
                        for r in new), file=sys.stderr)

        interrupted = H.run_interruptible(body, rows) == "interrupted"
        paths = write_results(rows, info, a.out, "-quick" if a.quick else "")
    finally:
        torch.set_num_threads(threads)
    bad = [r for r in rows if r["status"] in ("error", "mismatch")]
    print(f"{len(rows)} results ({len(bad)} error/mismatch) in {time.perf_counter() - t0:.0f} s:",
          *paths, sep="\n  ")
    return 1 if bad or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
