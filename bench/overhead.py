"""Host overhead per op call: python -m bench.overhead [--device cuda|cpu] [--ops ...]

StyleGAN2's 4^2..64^2 layers run kernels of a few microseconds, so what an op costs the *host* per
call (Python, the torch.library dispatcher, the kernel launch) decides them.  For each op family of
``bench.run`` this takes the family's smallest shape and times back-to-back calls per mode (fwd,
fwd+bwd, dbwd), synchronising once per batch of calls: per call that is max(host time, device
time), host-bound at these sizes.  Providers:

* ``eager``: the PyTorch composite a user writes by hand (the family's ``eager``);
* ``<impl>``: ``fastgan.ops`` with that backend through the eager fast path (the default, see
  ``fastgan/ops/_custom_op.py``);
* ``<impl>-dispatcher``: the same calls through the torch.library dispatcher (what every call
  cost before the fast path, and what torch.compile'd graphs call).

Writes ``bench/results/<device>-<date>-overhead.{json,md,png}``.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import statistics
import sys
import time
from typing import Optional, Sequence

import torch

from . import harness as H
from . import stylegan2 as S
from .run import OP_FAMILIES

MODES = ("fwd", "fwd+bwd", "dbwd")
ROW_KEY = ("op", "variant", "shape_label", "dtype", "memory_format", "mode", "provider")


def pick_cases(fam, device: str) -> list:
    """The family's smallest shape, first variant, NCHW, in fp32 on CPU (bf16 on CUDA), one case
    per mode of MODES the family has.  On CPU at batch 1: there the kernels themselves are slow
    enough to hide the overhead at StyleGAN2's batch 32."""
    cs = [c for c in fam.cases(device, quick=True) if c.memory_format == "nchw"]
    want = ("fp32",) if device == "cpu" else ("bf16", "fp16", "fp32")
    dt = next(d for d in want + tuple(H.DTYPES) if any(c.dtype == d for c in cs))
    cs = [c for c in cs if c.dtype == dt and c.variant == cs[0].variant]
    numel = lambda c: torch.Size(c.shape).numel()  # noqa: E731
    small = min(numel(c) for c in cs)
    out = [c for m in MODES for c in cs if c.mode == m and numel(c) == small][:len(MODES)]
    if device == "cpu":  # every family's shape starts with the batch size
        out = [dataclasses.replace(c, shape=(1, *c.shape[1:]), shape_label=c.shape_label + " b1")
               for c in out]
    return out


def per_call_us(step, device: str, target_ms: float, repeats: int) -> tuple[float, int]:
    """Median over ``repeats`` of (wall time of N back-to-back calls, one sync) / N, in us."""
    for _ in range(3):
        step()
    H._sync(device)
    t0 = time.perf_counter()
    step()
    H._sync(device)
    n = max(5, min(5000, int(target_ms / max((time.perf_counter() - t0) * 1e3, 1e-3))))
    times = []
    for _ in range(repeats):
        H._sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        H._sync(device)
        times.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(times), n


def providers(device: str) -> list[tuple[str, Optional[str], bool]]:
    """(name, impl, fast path) for every provider that can run here."""
    out = [("eager", None, True)]
    for impl, (ok, _) in H.fastgan_impls().items():
        if ok and (impl == "ref" or device == "cuda"):
            out += [(impl, impl, True), (f"{impl}-dispatcher", impl, False)]
    return out


def run_case(fam, case, device: str, target_ms: float, repeats: int) -> list[dict]:
    from fastgan.ops._custom_op import eager_fast_path

    base = dict(op=case.op, variant=case.variant, shape_label=case.shape_label, dtype=case.dtype,
                memory_format=case.memory_format, mode=case.mode, shape=list(case.shape))
    s = H.make_input_sets(fam, case, device, 1)[0]
    want = H.make_step(fam, case, fam.eager(case), s)()
    rows = []
    for name, impl, fast in providers(device):
        row = dict(base, provider=name, impl=impl, fast_path=fast, status="ok", reason="")
        try:
            fn = fam.eager(case) if impl is None else fam.fastgan(case, impl)
            with eager_fast_path(fast):
                step = H.make_step(fam, case, fn, s)
                if impl is not None:
                    ok, err = H.compare(case, step(), want, getattr(fam, "TOLERANCE", None))
                    row.update(max_rel_err=err)
                    if not ok:
                        row.update(status="mismatch", reason=f"differs from eager ({err:.2e})")
                us, n = per_call_us(step, device, target_ms, repeats)
            row.update(us=us, calls=n)
        except H.Skip as e:
            row.update(status="skip", reason=str(e))
        except Exception as e:  # noqa: BLE001
            row.update(status="error", reason=H._reason(e))
        rows.append(row)
    add_ratios(rows)
    return rows


def add_ratios(rows: list[dict]) -> list[dict]:
    """``x_dispatcher``: the dispatcher's time / the fast path's for the same impl (> 1: saved);
    ``x_eager``: eager's time / this provider's (> 1: faster than the composite)."""
    by = {(tuple(r[k] for k in ROW_KEY[:-1]), r["provider"]): r.get("us") for r in rows}
    for r in rows:
        key = tuple(r[k] for k in ROW_KEY[:-1])
        if not r.get("us"):
            continue
        eager = by.get((key, "eager"))
        r["x_eager"] = eager / r["us"] if eager else None
        if r.get("fast_path") and r.get("impl"):
            d = by.get((key, f"{r['impl']}-dispatcher"))
            r["x_dispatcher"] = d / r["us"] if d else None
    return rows


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    keys = {tuple(r.get(k) for k in ROW_KEY) for r in new}
    rows = [r for r in old if tuple(r.get(k) for k in ROW_KEY) not in keys] + list(new)
    order = {op: i for i, op in enumerate(OP_FAMILIES)}
    return add_ratios(sorted(rows, key=lambda r: (order.get(r["op"], 99), MODES.index(r["mode"])
                                                   if r["mode"] in MODES else 9)))


def _us(r) -> str:
    return f"{r['us']:.1f}" if r.get("us") else r.get("status", "–")


def render_markdown(doc: dict) -> str:
    rows = doc["rows"]
    provs = list(dict.fromkeys(r["provider"] for r in rows))
    lines = [f"# fastgan host overhead per call — {doc['device']} ({doc['device_kind']})", "",
             f"- date {doc['date']}, torch {doc['torch']}, triton {doc['triton']}, CUDA {doc['cuda']}, "
             f"CPU threads {doc['cpu_threads']}",
             "- µs per call, N calls back to back and one sync (= max(host, device) per call); "
             "each family's smallest shape. `<impl>`: fastgan's eager fast path; "
             "`<impl>-dispatcher`: the same calls through the torch.library dispatcher; "
             "(×N.NN): the dispatcher's time over the fast path's.", ""]
    for mode in MODES:
        sel = [r for r in rows if r["mode"] == mode]
        if not sel:
            continue
        lines += [f"## {mode}", "", "| op | shape | dtype | " + " | ".join(provs) + " |",
                  "|---|---|---|" + "---|" * len(provs)]
        for (op, var, shape, dt), grp in H._groups(
                sel, lambda r: (r["op"], r["variant"], r["shape_label"], r["dtype"])).items():
            cells = []
            for p in provs:
                r = next((r for r in grp if r["provider"] == p), None)
                c = "–" if r is None else _us(r)
                if r is not None and r.get("x_dispatcher"):
                    c += f" (×{r['x_dispatcher']:.2f})"
                if r is not None and r["status"] == "mismatch":
                    c += " ✗"
                cells.append(c)
            lines.append(f"| {op} {var} | {shape} | {dt} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(doc: dict, path: str) -> list[str]:
    """µs per call per op, one panel per mode, one bar per provider.  ``[]`` without matplotlib."""
    plt = H.pyplot()
    if plt is None:
        return []
    rows = [r for r in doc["rows"] if r.get("us")]
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    provs = list(dict.fromkeys(r["provider"] for r in rows))
    fig, axes = plt.subplots(1, max(len(modes), 1), squeeze=False, figsize=(4.6 * max(len(modes), 1), 3.6))
    for ax, mode in zip(axes[0], modes):
        sel = [r for r in rows if r["mode"] == mode]
        ops_ = list(dict.fromkeys(r["op"] for r in sel))
        width = 0.8 / max(len(provs), 1)
        for j, p in enumerate(provs):
            xs, ys = [], []
            for i, op in enumerate(ops_):
                r = next((r for r in sel if r["op"] == op and r["provider"] == p), None)
                if r:
                    xs.append(i + (j - (len(provs) - 1) / 2) * width)
                    ys.append(r["us"])
            ax.bar(xs, ys, width, label=p, hatch="//" if p.endswith("dispatcher") else None)
        ax.set_xticks(range(len(ops_)), ops_, rotation=20, ha="right", fontsize=7)
        ax.set_yscale("log")  # one slow composite (e.g. a conv double backward on CPU) would flatten the rest
        ax.set_ylabel("µs per call (log)")
        ax.set_title(mode, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=6)
    return H.save_figure(fig, path, f"host overhead per call — {doc['device']} — {doc['date']}")


def write_results(rows: list[dict], info: dict, out_dir: str, suffix: str = "") -> list[str]:
    return S.write_merged_results(rows, info, out_dir, "overhead", suffix, merge_rows,
                                  render_markdown, plot)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None)
    ap.add_argument("--ops", default=",".join(OP_FAMILIES), help="comma list of op families")
    ap.add_argument("--out", default=H.RESULTS_DIR)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--target-ms", type=float, default=30.0, help="wall time of one batch of calls")
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (0 = torch default)")
    a = ap.parse_args(argv)
    device = H.resolve_device(ap, a.device)
    names = [n for n in a.ops.split(",") if n]
    unknown = [n for n in names if n not in OP_FAMILIES]
    if unknown:
        ap.error(f"--ops: unknown {unknown}; expected a subset of {','.join(OP_FAMILIES)}")
    if a.repeats < 1 or a.target_ms <= 0:
        ap.error("--repeats and --target-ms must be positive")
    threads = torch.get_num_threads()
    if device == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    rows = []

    def body():
        for name in names:
            fam = importlib.import_module(f"{__package__}.{name}")
            for case in pick_cases(fam, device):
                new = run_case(fam, case, device, a.target_ms, a.repeats)
                rows.extend(new)
                print(f"{case.op} {case.shape_label} {case.dtype} {case.mode}: " + ", ".join(
                    f"{r['provider']} {_us(r)}" for r in new), file=sys.stderr)

    try:
        interrupted = H.run_interruptible(body, rows) == "interrupted"
        paths = write_results(rows, H.device_info(device), a.out)
    finally:
        torch.set_num_threads(threads)
    bad = [r for r in rows if r["status"] in ("error", "mismatch")]
    print(render_markdown(dict(H.device_info(device), rows=merge_rows([], rows))))
    print(f"{len(rows)} results ({len(bad)} error/mismatch):", *paths, sep="\n  ")
    return 1 if bad or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
