"""Gradient-penalty benchmark: ``python -m bench.penalties [--device cpu] [--out DIR] [--quick]``.

Two parts, each timed for a StyleGAN2 config-F-style residual discriminator (a BENCHMARK MODEL,
defined below; fastgan has no StyleGAN2 discriminator yet) built either from fastgan ops
(``conv2d`` + ``conv2d_resample`` with the [1, 3, 3, 1] FIR filter + ``bias_act``) or from plain
PyTorch layers (``F.conv2d``, ``F.leaky_relu(x + b) * sqrt(2)``, a depthwise ``F.conv2d`` blur):

* ``inner``   the R1 inner pass ``torch.autograd.grad(D(x).sum(), x, create_graph=True)`` (forward
  included).  Variants:
    - ``plain``                 PyTorch layers (their C++ backward skips unneeded weight grads);
    - ``fastgan``               fastgan ops, weights passed as leaves, no switch: fastgan asks
                                the engine and skips the weight gradients it will not use, as
                                PyTorch's convolution does;
    - ``fastgan+nwg``           the same inside ``fastgan.ops.no_weight_gradients()`` (NVlabs'
                                switch; now expected to match ``fastgan``);
    - ``fastgan-gain``          fastgan ops with NVlabs' runtime equalized-LR weights
                                (``w * gain``, non-leaf), no switch: skipped the same way;
    - ``fastgan-unpruned``      ``fastgan`` with the engine query turned off (a private switch):
                                every weight gradient is computed and thrown away, as a
                                registered op whose backward only reads ``ctx.needs_input_grad``
                                does (NVlabs' custom op, fastgan before 2026-11-24).
* ``r1_step`` a whole R1 step: forward, inner gradient, penalty ``mean ||g||^2`` and its gradient
  w.r.t. every parameter (``torch.autograd.grad``, so ``.grad`` accumulation is not timed).
  Variants ``plain`` and ``fastgan`` (by hand) and ``fastgan-r1`` (``fastgan.ops.r1_penalty``).

``torch.compile`` is not a provider: compiled graphs cannot be differentiated twice.

Full set (CUDA): resolutions 256 and 1024, batch 4 (config F's per-GPU batch), channels
``min(32768 / res, 512)``, fp32 (cuDNN's TF32 default) and fp16, NCHW and channels_last.  CPU: a
reduced set at 16^2 / 32^2 with few channels (a smoke test; seconds).  Before timing, the fastgan
discriminator is checked against the plain one with the same weights (logits, penalty and its
parameter gradients); the worst relative error is recorded.

Writes ``<device-slug>-<date>-penalties[-quick].{json,md,png}`` into ``--out`` (default
bench/results), timing with ``bench.harness.time_ms`` (CUDA events, median).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

from . import harness as H
from fastgan.ops import bias_act, conv2d, conv2d_resample, no_weight_gradients, r1_penalty, setup_filter
from fastgan.ops._custom_op import engine_pruning

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
PARTS = {"inner": ("plain", "fastgan", "fastgan+nwg", "fastgan-gain", "fastgan-unpruned"),
         "r1_step": ("plain", "fastgan", "fastgan-r1")}
SQRT2 = math.sqrt(2)


# ------------------------------------------------------------------ the benchmark discriminator
def channels(res: int, cbase: int, cmax: int) -> int:
    return min(cbase // res, cmax)


def make_params(res: int, cbase: int, cmax: int, device, dtype, seed: int = 0) -> dict:
    """Raw parameters of the benchmark discriminator (NVlabs init: weights N(0, 1), used with the
    equalized-learning-rate gain 1/sqrt(fan_in); biases 0 -- here small random values so they
    matter to the checks)."""
    g = torch.Generator().manual_seed(seed)
    p = {}

    def add(name, *shape):
        p[name] = torch.randn(shape, generator=g, dtype=torch.float64)

    top = channels(res, cbase, cmax)
    add("rgb.w", top, 3, 1, 1)
    add("rgb.b", top)
    r = res
    while r > 4:
        c0, c1 = channels(r, cbase, cmax), channels(r // 2, cbase, cmax)
        add(f"b{r}.conv0.w", c0, c0, 3, 3)
        add(f"b{r}.conv0.b", c0)
        add(f"b{r}.conv1.w", c1, c0, 3, 3)
        add(f"b{r}.conv1.b", c1)
        add(f"b{r}.skip.w", c1, c0, 1, 1)
        r //= 2
    c = channels(4, cbase, cmax)
    add("ep.conv.w", c, c + 1, 3, 3)
    add("ep.conv.b", c)
    add("ep.fc.w", c, c * 16)
    add("ep.fc.b", c)
    add("ep.out.w", 1, c)
    add("ep.out.b", 1)
    for k in p:
        if k.endswith(".b"):
            p[k] *= 0.1
    return {k: v.to(device=device, dtype=dtype) for k, v in p.items()}


def _gain(w: torch.Tensor) -> float:
    return 1.0 / math.sqrt(w[0].numel())


class BenchDiscriminator:
    """Config-F-style residual discriminator, clearly a benchmark model (no mapping / conditioning,
    no conv clamp): fromRGB 1x1; per resolution down to 8: conv 3x3, conv 3x3 down 2 (FIR + strided
    conv), 1x1 skip down 2, (skip + conv) * sqrt(1/2); epilogue at 4x4: minibatch stddev (group 4,
    1 channel), conv 3x3, fc, fc -> 1 logit per sample.

    ``ops``: 'fastgan' or 'plain'.  ``weights``: 'leaf' (pre-scaled weights passed directly) or
    'gain' (raw weights scaled at run time, ``w * gain``, as NVlabs' layers do).  ``params``: the
    dict of :func:`make_params`; the trainable leaves are in ``self.params`` (same order for every
    variant)."""

    def __init__(self, params: dict, res: int, ops: str = "fastgan", weights: str = "leaf"):
        assert ops in ("fastgan", "plain") and weights in ("leaf", "gain")
        self.res, self.ops, self.weights = res, ops, weights
        self.p = {}
        for k, v in params.items():
            v = v.detach().clone()
            if weights == "leaf" and k.endswith(".w"):
                v = v * _gain(v)
            self.p[k] = v.requires_grad_()
        self.params = list(self.p.values())
        dev, dt = params["rgb.w"].device, params["rgb.w"].dtype
        self.f = setup_filter([1, 3, 3, 1], device=dev)
        if dt == torch.float64:
            self.f = self.f.double()
        self.blur = self.f.to(dt)  # plain: the same normalised 4x4 filter (symmetric: no flip)

    def w(self, name):
        w = self.p[name]
        return w * _gain(w) if self.weights == "gain" else w

    # --- layers, in both flavours
    def _act(self, x, b, gain=1.0):
        if self.ops == "fastgan":
            return bias_act(x, b, act="lrelu", gain=SQRT2 * gain)
        return F.leaky_relu(x + b.view(1, -1, *([1] * (x.dim() - 2))), 0.2) * (SQRT2 * gain)

    def _conv(self, x, w, padding=0):
        return (conv2d if self.ops == "fastgan" else F.conv2d)(x, w, padding=padding)

    def _blur(self, x, pad, stride=1):
        c = x.shape[1]
        k = self.blur.expand(c, 1, 4, 4)
        return F.conv2d(F.pad(x, [pad] * 4), k, stride=stride, groups=c)

    def _conv_down(self, x, w, padding):
        if self.ops == "fastgan":
            return conv2d_resample(x, w, self.f, down=2, padding=padding)
        if w.shape[2] == 1:  # 1x1: FIR + decimate, then the cheap conv (conv2d_resample's order)
            return F.conv2d(self._blur(x, 1, stride=2), w)
        return F.conv2d(self._blur(x, 2), w, stride=2)

    def __call__(self, x):
        p = self.p
        x = self._act(self._conv(x, self.w("rgb.w")), p["rgb.b"])
        r = self.res
        while r > 4:
            y = self._conv_down(x, self.w(f"b{r}.skip.w"), 0) * math.sqrt(0.5)
            x = self._act(self._conv(x, self.w(f"b{r}.conv0.w"), 1), p[f"b{r}.conv0.b"])
            x = self._act(self._conv_down(x, self.w(f"b{r}.conv1.w"), 1), p[f"b{r}.conv1.b"],
                          math.sqrt(0.5))
            x = x + y
            r //= 2
        # minibatch stddev (NVlabs MinibatchStdLayer, group size 4, 1 channel)
        n, c, h, w = x.shape
        g = min(4, n)
        y = x.reshape(g, -1, 1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean((2, 3, 4))
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        x = torch.cat([x, y], 1)
        x = self._act(self._conv(x, self.w("ep.conv.w"), 1), p["ep.conv.b"])
        x = self._act(x.flatten(1) @ self.w("ep.fc.w").t(), p["ep.fc.b"])
        return x @ self.w("ep.out.w").t() + p["ep.out.b"]


# ------------------------------------------------------------------------------ steps
def inner_step(D, x, switch: bool, prune: bool = True):
    def step():
        xi = x.detach().requires_grad_()
        with no_weight_gradients(switch), engine_pruning(prune):
            (g,) = torch.autograd.grad(D(xi).sum(), xi, create_graph=True)
        return (g,)
    return step


def r1_step(D, x, use_helper: bool):
    def step():
        if use_helper:
            pen = r1_penalty(D, x)
        else:  # what one writes by hand (no switch)
            xi = x.detach().requires_grad_()
            (g,) = torch.autograd.grad(D(xi).sum(), xi, create_graph=True)
            acc = torch.float64 if g.dtype == torch.float64 else torch.float32
            pen = g.to(acc).square().sum((1, 2, 3)).mean()
        # (the output bias does not reach dD/dx: its gradient is None)
        return (pen, *torch.autograd.grad(pen, D.params, allow_unused=True))
    return step


def build(part: str, variant: str, params: dict, res: int, x):
    ops = "plain" if variant == "plain" else "fastgan"
    weights = "gain" if variant == "fastgan-gain" else "leaf"
    D = BenchDiscriminator(params, res, ops, weights)
    if part == "inner":
        return D, inner_step(D, x, variant == "fastgan+nwg", variant != "fastgan-unpruned")
    return D, r1_step(D, x, variant == "fastgan-r1")


def _rel_err(got, want) -> float:
    """Worst relative L2 error over (logits, penalty, all parameter gradients as one vector): the
    gradients are judged together because some are ~0 (biases under lrelu only move sign masks)."""
    def flat(ts):
        ts = [t.detach().double().flatten() for t in ts if t is not None]
        return torch.cat(ts) if ts else torch.zeros(0, dtype=torch.float64)
    if [t is None for t in got] != [t is None for t in want]:
        return math.inf
    pairs = list(zip(got[:2], want[:2])) + [(flat(got[2:]), flat(want[2:]))]
    worst = 0.0
    for a, b in pairs:
        if a is None or a.numel() == 0:
            continue
        a, b = a.detach().double(), b.detach().double()
        worst = max(worst, ((a - b).norm() / b.norm().clamp_min(1e-30)).item())
    return worst


def check_agreement(params: dict, res: int, x) -> float:
    """Worst relative error (L2) of the fastgan discriminator against the plain one with the same
    weights: logits, R1 penalty and its gradients w.r.t. every parameter."""
    Dp = BenchDiscriminator(params, res, "plain")
    Df = BenchDiscriminator(params, res, "fastgan")          # same (leaf) parametrisation
    Dg = BenchDiscriminator(params, res, "fastgan", "gain")  # w * gain: values only
    want = (Dp(x), *r1_step(Dp, x, False)())
    got = (Df(x), *r1_step(Df, x, True)())
    gain_pen = r1_step(Dg, x, False)()[0]
    return max(_rel_err(got, want), _rel_err((Dg(x), gain_pen), want[:2]))


# ------------------------------------------------------------------------------ runner
def configs(device: str, quick: bool, args) -> list[dict]:
    if device == "cpu":
        res, batch, cbase, cmax = [16, 32], 2, 256, 32
        dtypes, formats = ["fp32"], ["nchw"]
    else:
        res, batch, cbase, cmax = [256, 1024], 4, 32768, 512
        dtypes = ["fp32", "fp16"]
        formats = ["nchw"] if quick else ["nchw", "channels_last"]
    res = [int(r) for r in args.res.split(",")] if args.res else res
    batch = args.batch or batch
    cbase, cmax = args.cbase or cbase, args.cmax or cmax
    dtypes = args.dtypes.split(",") if args.dtypes else dtypes
    formats = args.formats.split(",") if args.formats else formats
    parts = args.parts.split(",") if args.parts else list(PARTS)
    return [dict(part=p, res=r, batch=batch, cbase=cbase, cmax=cmax, dtype=d, format=f)
            for d in dtypes for f in formats for r in res for p in parts]


def run_config(cfg: dict, device: str, timing: H.Timing) -> list[dict]:
    dtype = DTYPES[cfg["dtype"]]
    params = make_params(cfg["res"], cfg["cbase"], cfg["cmax"], device, dtype)
    g = torch.Generator().manual_seed(1)
    x = torch.randn((cfg["batch"], 3, cfg["res"], cfg["res"]), generator=g).to(device, dtype)
    x = x.contiguous(memory_format=FORMATS[cfg["format"]])
    base = dict(cfg, channels_top=channels(cfg["res"], cfg["cbase"], cfg["cmax"]))
    rows = []
    try:
        err = check_agreement(params, cfg["res"], x)
    except Exception as e:  # noqa: BLE001 - e.g. out of memory: recorded, the run goes on
        return [dict(base, variant=v, status="error", reason=H._reason(e)) for v in PARTS[cfg["part"]]]
    tol = {"fp64": 1e-9, "fp32": 1e-2, "fp16": 5e-2, "bf16": 2e-1}[cfg["dtype"]]
    for variant in PARTS[cfg["part"]]:
        row = dict(base, variant=variant, status="ok", reason="", max_rel_err_vs_plain=err)
        if err > tol:
            row.update(status="mismatch", reason=f"fastgan D differs from plain D (rel err {err:.2e})")
        try:
            D, step = build(cfg["part"], variant, params, cfg["res"], x)
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
                step()
                torch.cuda.synchronize()
                row["peak_mb"] = (torch.cuda.max_memory_allocated() - before) / 2 ** 20
            ms, reps = H.time_ms([step], device, timing)
            row.update(ms=ms, reps=reps)
            del D, step
        except Exception as e:  # noqa: BLE001
            row.update(status="error", reason=H._reason(e))
        if device == "cuda":
            torch.cuda.empty_cache()
        rows.append(row)
    by = {r["variant"]: r.get("ms") for r in rows}
    for r in rows:
        if r.get("ms"):
            if by.get("plain"):
                r["speedup_vs_plain"] = by["plain"] / r["ms"]
            if by.get("fastgan"):
                r["speedup_vs_fastgan"] = by["fastgan"] / r["ms"]
    return rows


DESCRIPTIONS = {
    ("inner", "plain"): "PyTorch layers",
    ("inner", "fastgan"): "fastgan ops, leaf weights, no switch (engine-pruned)",
    ("inner", "fastgan+nwg"): "fastgan ops, leaf weights, inside no_weight_gradients()",
    ("inner", "fastgan-gain"): "fastgan ops, runtime w * gain weights, no switch (engine-pruned)",
    ("inner", "fastgan-unpruned"): "fastgan ops, leaf weights, engine query off: every weight "
                                   "gradient computed (NVlabs' custom op; fastgan before 2026-11-24)",
    ("r1_step", "plain"): "PyTorch layers, by hand",
    ("r1_step", "fastgan"): "fastgan ops, leaf weights, by hand (no switch)",
    ("r1_step", "fastgan-r1"): "fastgan ops, leaf weights, fastgan.ops.r1_penalty",
}


def render_markdown(doc: dict) -> str:
    lines = [f"# fastgan gradient-penalty benchmark — {doc['device']} ({doc['device_kind']})", "",
             f"- date {doc['date']}, torch {doc['torch']}, CUDA {doc['cuda']}, CPU threads "
             f"{doc['cpu_threads']}; BenchDiscriminator (config-F-style residual D, a benchmark "
             "model in bench/penalties.py)",
             "- `inner`: forward + `torch.autograd.grad(D(x).sum(), x, create_graph=True)`; "
             "`r1_step`: that plus the penalty's gradient w.r.t. every parameter.",
             "- cell: median ms (speed-up vs plain · vs fastgan)"
             + (" · peak MB above the inputs" if doc["device_kind"] == "cuda" else "")
             + "; ✗ = the fastgan D disagrees with the plain D (timed anyway)", "",
             "Variants:", ""]
    lines += [f"- `{p}` / `{v}`: {d}" for (p, v), d in DESCRIPTIONS.items()]
    lines.append("")
    groups = {}
    for r in doc["rows"]:
        groups.setdefault((r["part"], r["dtype"], r["format"]), []).append(r)
    for (part, dt, fmt), rows in groups.items():
        variants = [v for v in PARTS[part] if any(r["variant"] == v for r in rows)]
        lines += [f"## {part} · {dt} · {fmt}", "",
                  "| res | batch | top channels | max rel err | " + " | ".join(variants) + " |",
                  "|---:|---:|---:|---:|" + "---:|" * len(variants)]
        notes = []
        for res in sorted({r["res"] for r in rows}):
            by = {r["variant"]: r for r in rows if r["res"] == res}
            r0 = next(iter(by.values()))
            cells = []
            for v in variants:
                r = by.get(v)
                if r is None or r.get("ms") is None:
                    cells.append("–")
                    if r is not None:
                        notes.append(f"- {res}^2 {v}: {r['status']}: {r['reason']}")
                    continue
                s = (f"{r['ms']:.4g} ({r.get('speedup_vs_plain', 0):.2f}× · "
                     f"{r.get('speedup_vs_fastgan', 0):.2f}×)")
                if "peak_mb" in r:
                    s += f" · {r['peak_mb']:.0f} MB"
                cells.append(s + (" ✗" if r["status"] == "mismatch" else ""))
            err = r0.get("max_rel_err_vs_plain")
            lines.append(f"| {res}^2 | {r0['batch']} | {r0['channels_top']} | "
                         f"{'–' if err is None else f'{err:.1e}'} | " + " | ".join(cells) + " |")
        lines += [""] + notes + ([""] if notes else [])
    return "\n".join(lines)


def plot(doc: dict, path: str) -> list[str]:
    plt = H.pyplot()
    if plt is None:
        return []
    keys = list(dict.fromkeys((r["part"], r["dtype"], r["format"]) for r in doc["rows"]))
    fig, axes = plt.subplots(1, len(keys), squeeze=False, figsize=(4.5 * len(keys), 3.4))
    for ax, (part, dt, fmt) in zip(axes[0], keys):
        rows = [r for r in doc["rows"] if (r["part"], r["dtype"], r["format"]) == (part, dt, fmt)]
        res = sorted({r["res"] for r in rows})
        variants = [v for v in PARTS[part] if any(r["variant"] == v for r in rows)]
        width = 0.8 / max(len(variants), 1)
        for i, v in enumerate(variants):
            ys = []
            for rr in res:
                r = next((r for r in rows if r["res"] == rr and r["variant"] == v), None)
                ys.append(r.get("speedup_vs_plain", 0) if r else 0)
            ax.bar([j + i * width for j in range(len(res))], ys, width, label=v)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xticks([j + width * (len(variants) - 1) / 2 for j in range(len(res))],
                      [f"{r}^2" for r in res])
        ax.set_title(f"{part} · {dt} · {fmt}", fontsize=9)
        ax.set_ylabel("speed-up vs plain PyTorch")
        ax.legend(fontsize=7)
    return H.save_figure(fig, path, f"{doc['device']} — {doc['date']}")


def write_results(rows: list[dict], info: dict, out_dir: str, suffix: str = "") -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, f"{info['slug']}-{info['date']}-penalties{suffix}")
    doc = dict(info, rows=rows)
    with open(stem + ".json", "w") as f:
        json.dump(doc, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(render_markdown(doc))
    return [stem + ".json", stem + ".md"] + plot(doc, stem + ".png")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.penalties", description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None)
    ap.add_argument("--out", default=H.RESULTS_DIR)
    ap.add_argument("--quick", action="store_true", help="GPU: NCHW only, shorter timing")
    ap.add_argument("--res", help="comma list of resolutions (default 256,1024; CPU 16,32)")
    ap.add_argument("--batch", type=int, help="default 4 (CPU 2)")
    ap.add_argument("--cbase", type=int, help="channels min(cbase / res, cmax); default 32768 "
                    "(CPU 256)")
    ap.add_argument("--cmax", type=int, help="default 512 (CPU 32)")
    ap.add_argument("--dtypes", help=f"subset of {','.join(DTYPES)}")
    ap.add_argument("--formats", help=f"subset of {','.join(FORMATS)}")
    ap.add_argument("--parts", help=f"subset of {','.join(PARTS)}")
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (0 = default)")
    a = ap.parse_args(argv)
    device = H.resolve_device(ap, a.device)
    if device == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    timing = H.timing_for(device, a.quick)
    info = H.device_info(device)
    rows = []

    def body():
        for cfg in configs(device, a.quick, a):
            rows.extend(run_config(cfg, device, timing))
            print(f"{cfg['part']} {cfg['res']}^2 {cfg['dtype']} {cfg['format']}: "
                  + ", ".join(f"{r['variant']} {r['ms']:.3g} ms" if r.get("ms") else
                              f"{r['variant']} {r['status']}" for r in rows[-len(PARTS[cfg['part']]):]),
                  file=sys.stderr)

    interrupted = H.run_interruptible(body, rows) == "interrupted"
    paths = write_results(rows, info, a.out, "-quick" if a.quick else "")
    bad = [r for r in rows if r["status"] != "ok"]
    print(f"{len(rows)} results ({len(bad)} error/mismatch) in {time.perf_counter() - t0:.0f} s:",
          *paths, sep="\n  ")
    return 1 if bad or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
