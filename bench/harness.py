"""Generic benchmark harness shared by every fastgan op family (bias_act, upfirdn2d, ...).

An op family is a module in ``bench/`` that defines (see ``bench/bias_act.py``):

    OP: str                                   # family name, e.g. "bias_act"
    WRT: tuple[str, ...]                      # input names that get gradients; WRT[0] is the one
                                              # the dbwd (gradient-penalty) first grad is taken of
    cases(device: str, quick: bool) -> list[Case]
    make_inputs(case, device) -> dict[str, Tensor]   # one input set; WRT tensors are leaves with
                                                     # requires_grad=True; RNG is seeded by the harness
    eager(case) -> fn(**inputs) -> Tensor     # the PyTorch composite a user writes by hand
    fastgan(case, impl) -> fn(**inputs) -> Tensor    # fastgan op with impl in ref|triton|cuda
    bytes_moved(case) -> int                  # minimal DRAM traffic of the case (roofline floor)
    flops(case) -> int | None                 # optional: multiply-add work x 2 (compute-bound ops)

The harness turns each (case, provider) into a timed step for the case's mode, checks the
provider's results against ``eager`` before timing it, and writes JSON / Markdown / PNG.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import re
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
MODES = ("fwd", "bwd", "fwd+bwd", "dbwd")
PROVIDERS = ("eager", "compile", "ref", "triton", "cuda")
CPU_PROVIDERS = ("eager", "compile", "ref")
# max |got - want| <= atol * max|want| + rtol * |want|. The composite rounds after every op while a
# fused kernel rounds once, so half types get a few ulps; the scale keeps reductions (db) honest.
TOLERANCE = {"fp32": (1e-4, 1e-4), "fp16": (1e-2, 1e-2), "bf16": (4e-2, 4e-2)}


@dataclass(frozen=True)
class Case:
    op: str
    variant: str          # op-specific flavour, e.g. the activation ("lrelu", "clamp256")
    shape_label: str      # human label, e.g. "512x16^2"
    shape: tuple
    dtype: str            # key of DTYPES
    memory_format: str    # key of FORMATS
    mode: str             # one of MODES

    @property
    def id(self) -> str:
        return f"{self.op}-{self.variant}-{self.mode}-{self.dtype}-{self.memory_format}-{self.shape_label}"

    @property
    def group(self) -> tuple:  # cases that differ only by mode share a compiled graph
        return (self.op, self.variant, self.shape, self.dtype, self.memory_format)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


@dataclass
class Timing:
    warmup_ms: float
    rep_ms: float
    min_reps: int
    max_reps: int


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside, SIGTERM (``timeout`` ending a command on the lent GPU) raises KeyboardInterrupt as
    Ctrl-C does, so a benchmark loop can stop between rows and still write what it measured."""
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_interruptible(body, rows: list):
    """``body()``, which appends its results to ``rows`` as it goes, with SIGTERM taken as Ctrl-C:
    returns body's value, or "interrupted" when Ctrl-C or SIGTERM stopped it (the rows measured
    until then stay in ``rows`` for the caller to write)."""
    try:
        with sigterm_as_interrupt():
            return body()
    except KeyboardInterrupt:
        print(f"interrupted: writing the {len(rows)} rows measured so far", file=sys.stderr)
        return "interrupted"


def resolve_device(ap, requested) -> str:
    """A benchmark CLI's device: ``requested`` (--device), else cuda when present, else cpu; an
    argparse error when cuda is asked for and absent."""
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    return device


def timing_for(device: str, quick: bool) -> Timing:
    if device == "cuda":
        return Timing(10, 30, 10, 2000) if quick else Timing(20, 60, 20, 5000)
    # CPU: a smoke test; several reps so one scheduler stall on a busy box does not set the median
    return Timing(0, 60 if quick else 120, 7, 50)


class Skip(Exception):
    """A provider that cannot run this case; the message is recorded as the reason."""


# ----------------------------------------------------------------------------------- timing
def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(steps: list[Callable], device: str, t: Timing) -> tuple[float, int]:
    """Median wall time of one step in ms, rotating over ``steps`` (one per input set)."""
    n = len(steps)
    if device == "cuda":
        steps[0]()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for i in range(5):
            steps[i % n]()
        e.record()
        torch.cuda.synchronize()
        est = max(s.elapsed_time(e) / 5, 1e-4)
        for i in range(min(max(1, int(t.warmup_ms / est)), t.max_reps)):
            steps[i % n]()
        reps = min(max(t.min_reps, int(t.rep_ms / est)), t.max_reps)
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(reps)]
        # Per-iteration events: the median ignores clock hiccups; launch gaps of CPU-bound
        # composites stay in (the user pays them too).
        for i, (a, b) in enumerate(ev):
            a.record()
            steps[i % n]()
            b.record()
        torch.cuda.synchronize()
        return statistics.median(a.elapsed_time(b) for a, b in ev), reps
    steps[0]()  # warm-up (also first-call allocations / lazy init)
    times, t_end = [], time.perf_counter() + t.rep_ms / 1e3
    while len(times) < t.min_reps or (time.perf_counter() < t_end and len(times) < t.max_reps):
        t0 = time.perf_counter()
        steps[len(times) % n]()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), len(times)


def l2_bytes(device: str) -> int:
    if device != "cuda":
        return 0
    return getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20)


def n_input_sets(working_set: int, device: str) -> int:
    """Enough input sets that rotating through them streams > 2x L2 (so we time DRAM, not L2)."""
    l2 = l2_bytes(device)
    if not l2 or working_set >= 2 * l2:
        return 1
    return min(256, math.ceil(2 * l2 / max(working_set, 1)))


def copy_bandwidth(device: str, t: Timing) -> float:
    """GB/s of a large device-to-device copy (bytes read + written): the 100% mark."""
    n = (1 << 30) if device == "cuda" else (256 << 20)
    src = torch.ones(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms, _ = time_ms([lambda: dst.copy_(src)], device, t)
    del src, dst
    return 2 * n / (ms * 1e-3) / 1e9


# -------------------------------------------------------------------------------- providers
_fastgan_state: dict | None = None


def fastgan_impls() -> dict:
    """{impl: (available, reason)}; a failing ``import fastgan.ops`` makes every impl a skip."""
    global _fastgan_state
    if _fastgan_state is None:
        try:
            import fastgan.ops as ops
            _fastgan_state = {k: (bool(v.available), str(v.reason))
                              for k, v in ops.available_impls().items()}
        except Exception as e:  # noqa: BLE001 - any failure is a recorded reason, not a crash
            _fastgan_state = {"error": f"import fastgan.ops failed: {type(e).__name__}: {e}"}
    return _fastgan_state


_compiled: dict = {"group": None, "fn": None}


def _configure_compile():
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):  # renamed across torch versions
        if hasattr(cfg, name):
            setattr(cfg, name, max(getattr(cfg, name), 64))
    import torch._functorch.config as fcfg
    # Donated buffers forbid retain_graph=True, which the 'bwd' mode needs; it only saves memory.
    if hasattr(fcfg, "donated_buffer"):
        fcfg.donated_buffer = False


def build_provider(fam, case: Case, name: str, device: str) -> Callable:
    if name == "eager":
        return fam.eager(case)
    if name == "compile":
        # One compiled fn per group (shared by all modes: the grad-mode graph serves bwd, fwd+bwd
        # and dbwd); reset dynamo between groups so guard lists don't grow and distort small shapes.
        if _compiled["group"] != case.group:
            _configure_compile()
            torch._dynamo.reset()
            _compiled.update(group=case.group, fn=torch.compile(fam.eager(case), dynamic=False))
        return _compiled["fn"]
    if name in ("triton", "cuda") and device != "cuda":
        raise Skip("needs a CUDA device")
    impls = fastgan_impls()
    if "error" in impls:
        raise Skip(impls["error"])
    ok, reason = impls.get(name, (False, f"fastgan.ops.available_impls() has no '{name}'"))
    if not ok:
        raise Skip(reason or "unavailable")
    try:
        return fam.fastgan(case, name)
    except (ImportError, AttributeError) as e:
        raise Skip(f"fastgan.ops has no {case.op}: {e}") from e


# ------------------------------------------------------------------------------------ modes
@dataclass
class InputSet:
    tensors: dict   # kwargs of the op
    dy: torch.Tensor  # grad of the output (bwd modes)
    dg: torch.Tensor  # grad of the first gradient (dbwd)


def make_input_sets(fam, case: Case, device: str, n: int, seed: int = 0) -> list[InputSet]:
    sets = []
    for k in range(n):
        torch.manual_seed(seed + k)  # identical inputs for every provider of a case
        t = fam.make_inputs(case, device)
        with torch.no_grad():
            y = fam.eager(case)(**t)
        x0 = t[fam.WRT[0]]
        sets.append(InputSet(t, torch.randn_like(y), torch.randn_like(x0)))
    return sets


def make_step(fam, case: Case, fn: Callable, s: InputSet) -> Callable[[], tuple]:
    """The timed unit of work for ``case.mode``; returns the tensors the check compares."""
    xs = [s.tensors[k] for k in fam.WRT]
    grad = torch.autograd.grad
    if case.mode == "fwd":  # inference-style: no autograd bookkeeping in the timing
        def step():
            with torch.no_grad():
                return (fn(**s.tensors),)
    elif case.mode == "bwd":  # backward only, of a graph prepared once (retain_graph to reuse it)
        y = fn(**s.tensors)

        def step():
            return grad(y, xs, s.dy, retain_graph=True)
    elif case.mode == "fwd+bwd":
        def step():
            return grad(fn(**s.tensors), xs, s.dy)
    elif case.mode == "dbwd":  # R1-style: g = dL/dx with create_graph, then backprop through g
        # grad() instead of .backward() so .grad accumulation (an extra read+write) isn't timed.
        # A family of ops linear in x (DBWD_WRT_DY) takes the second gradient w.r.t. dy instead:
        # g does not depend on x, and that is the pass a penalty's backward runs through the op.
        wrt_dy = getattr(fam, "DBWD_WRT_DY", False)
        dy = s.dy.detach().requires_grad_() if wrt_dy else s.dy
        if wrt_dy:
            xs = [dy]

        def step():
            (g,) = grad(fn(**s.tensors), s.tensors[fam.WRT[0]], dy, create_graph=True)
            if g.grad_fn is None:  # e.g. torch.compile'd graphs: their backward is not differentiable
                raise Skip(f"no double backward through this provider on torch {torch.__version__}")
            try:
                return grad(g, xs, s.dg, allow_unused=True)
            except RuntimeError as e:  # aot_autograd: "does not currently support double backward"
                if "double backward" not in str(e):
                    raise
                raise Skip(f"no double backward through this provider on torch {torch.__version__}") from e
    else:
        raise ValueError(case.mode)
    return step


def compare(case: Case, got: tuple, want: tuple, tolerance: dict | None = None) -> tuple[bool, float]:
    """(ok, worst error relative to the tensor's max magnitude); ``tolerance`` overrides
    TOLERANCE per dtype (a family's own ``TOLERANCE``)."""
    rtol, atol = (tolerance or {}).get(case.dtype, TOLERANCE[case.dtype])
    ok, worst = True, 0.0
    for g, w in zip(got, want, strict=True):
        if g is None and w is None:
            continue
        w = torch.zeros_like(g) if w is None else w
        g = torch.zeros_like(w) if g is None else g
        g, w = g.detach().float(), w.detach().float()
        if g.shape != w.shape:
            return False, math.inf
        scale = max(w.abs().max().item(), 1e-12)
        err = (g - w).abs()
        worst = max(worst, err.max().item() / scale)
        ok &= bool((err <= atol * scale + rtol * w.abs()).all())
    return ok, worst


# ----------------------------------------------------------------------------------- runner
def _reason(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0][:200] if msg else ''}"


def run_case(fam, case: Case, providers, device: str, t: Timing, copy_gbps: float) -> list[dict]:
    nbytes = fam.bytes_moved(case)
    base = dict(asdict(case), shape=list(case.shape), bytes=nbytes, copy_gbps=copy_gbps,
                floor_ms=nbytes / (copy_gbps * 1e9) * 1e3)
    rows = []
    try:
        sets = make_input_sets(fam, case, device, n_input_sets(nbytes, device))
        want = make_step(fam, case, fam.eager(case), sets[0])()
    except Exception as e:  # noqa: BLE001 - e.g. OOM on the biggest shapes
        return [dict(base, provider=p, status="error", reason=_reason(e)) for p in providers]
    for p in providers:
        row = dict(base, provider=p, status="ok", reason="", n_sets=len(sets))
        try:
            fn = build_provider(fam, case, p, device)
            if p != "eager":
                ok, err = compare(case, make_step(fam, case, fn, sets[0])(), want,
                                  getattr(fam, "TOLERANCE", None))
                row.update(max_rel_err=err)
                if not ok:  # still timed, but flagged so a wrong-but-fast kernel stands out
                    row.update(status="mismatch", reason=f"differs from eager (max rel err {err:.2e})")
            steps = [make_step(fam, case, fn, s) for s in sets]
            ms, reps = time_ms(steps, device, t)
            gbps = nbytes / (ms * 1e-3) / 1e9
            row.update(ms=ms, reps=reps, gbps=gbps, pct_copy=100 * gbps / copy_gbps)
            flops = fam.flops(case) if hasattr(fam, "flops") else None
            if flops:  # compute-bound families (convolutions) also report TFLOP/s
                row.update(tflops=flops / (ms * 1e-3) / 1e12)
        except Skip as e:
            row.update(status="skip", reason=str(e))
        except Exception as e:  # noqa: BLE001
            row.update(status="error", reason=_reason(e))
        rows.append(row)
    ref = {r["provider"]: r.get("ms") for r in rows if r["status"] == "ok"}
    for r in rows:
        for other in ("eager", "compile"):
            if r.get("ms") and ref.get(other) and r["provider"] != other:
                r[f"speedup_vs_{other}"] = ref[other] / r["ms"]
    del sets
    return rows


def order_cases(cases: list[Case]) -> list[Case]:
    """Group cases sharing a compiled graph together; keep the family's shape order otherwise."""
    first = {}
    for i, c in enumerate(cases):
        first.setdefault(c.group, i)
    return sorted(cases, key=lambda c: (first[c.group], MODES.index(c.mode)))


# ----------------------------------------------------------------------------------- output
def device_info(device: str) -> dict:
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        slug = name
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                name = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
        except (OSError, StopIteration):
            pass
        short = re.sub(r"\(r\)|\(tm\)|\bcpu\b|\bprocessor\b|@.*$|\d+-core", "", name.lower())
        slug = f"cpu-{short}"
    slug = re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")
    try:
        import triton
        triton_v = triton.__version__
    except Exception:  # noqa: BLE001
        triton_v = None
    return dict(device=name, device_kind=device, slug=slug, torch=torch.__version__,
                cuda=torch.version.cuda, triton=triton_v, cpu_threads=torch.get_num_threads(),
                date=datetime.date.today().isoformat())


ROW_KEY = ("op", "variant", "shape_label", "dtype", "memory_format", "mode", "provider")


def _results_dir() -> str:
    """bench/results of a source checkout (also under an editable install); ``./bench-results``
    when fastgan is installed as a package (never write into site-packages)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.exists(os.path.join(os.path.dirname(here), "setup.py")):
        return os.path.join(here, "results")
    return os.path.join(os.getcwd(), "bench-results")


RESULTS_DIR = _results_dir()


def results_stem(info: dict, out_dir: str, suffix: str = "") -> str:
    return os.path.join(out_dir, f"{info['slug']}-{info['date']}{suffix}")


def load_rows(stem: str) -> list[dict]:
    """The rows already written to ``stem``.json (none when it does not exist)."""
    if not os.path.exists(stem + ".json"):
        return []
    with open(stem + ".json") as f:
        return json.load(f).get("rows", [])


def row_key(r: dict) -> tuple:
    return tuple(r[k] for k in ROW_KEY)


def write_results(rows: list[dict], info: dict, copy_gbps: float, out_dir: str,
                  suffix: str = "", final: bool = True) -> list[str]:
    """Write/merge ``<slug>-<date><suffix>.json``, ``.md`` and one PNG per op.

    Re-running part of the set (e.g. one dtype at a time) on the same day replaces matching rows
    and keeps the rest, so long GPU runs can be split across commands. ``final=False`` (the
    periodic saves of a run in progress) writes the JSON and Markdown only: no plots, no README.
    """
    os.makedirs(out_dir, exist_ok=True)
    stem = results_stem(info, out_dir, suffix)
    old = load_rows(stem)
    new_keys = {row_key(r) for r in rows}
    rows = [r for r in old if row_key(r) not in new_keys] + rows
    doc = dict(info, copy_gbps=copy_gbps, rows=rows)
    # written whole to a temporary file and renamed, so a run killed mid-save keeps the last good file
    for ext, text in ((".json", json.dumps(doc, indent=1)), (".md", render_markdown(doc))):
        with open(stem + ext + ".tmp", "w") as f:
            f.write(text)
        os.replace(stem + ext + ".tmp", stem + ext)
    if not final:
        return [stem + ".json", stem + ".md"]
    # A full (not --quick) GPU run into the repository's bench/results becomes the README's
    # "latest results"; CPU smoke runs and runs written elsewhere leave the README alone.
    if not suffix and info.get("device_kind") == "cuda" and \
            os.path.abspath(out_dir) == os.path.abspath(RESULTS_DIR):
        update_readme(doc, stem + ".md", os.path.join(os.path.dirname(RESULTS_DIR), "..", "README.md"))
    return [stem + ".json", stem + ".md"] + plot(doc, stem)


def _fmt_cell(r: dict) -> str:
    if r["status"] in ("skip", "error"):
        return "–"
    s = f"{r['ms']:.4g} · {r['gbps']:.0f} · {r['pct_copy']:.0f}%"
    if r.get("tflops"):
        s += f" · {r['tflops']:.0f} TF/s"
    if r["provider"] != "eager":  # speed-up vs eager / vs compile ("–" for compile itself)
        s += " · " + "/".join(f"{r[k]:.2f}×" if r.get(k) else "–"
                              for k in ("speedup_vs_eager", "speedup_vs_compile"))
    return s + (" ✗" if r["status"] == "mismatch" else "")


def _groups(rows, key):
    out = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def render_markdown(doc: dict) -> str:
    lines = [f"# fastgan benchmarks — {doc['device']} ({doc['device_kind']})", "",
             f"- date {doc['date']}, torch {doc['torch']}, triton {doc['triton']}, "
             f"CUDA {doc['cuda']}, CPU threads {doc['cpu_threads']}",
             f"- copy bandwidth (device-to-device, read+write): **{doc['copy_gbps']:.1f} GB/s** "
             "= the 100% mark (of the latest run; each JSON row keeps the one it was measured against)", "",
             "Cell: median ms · GB/s (minimal bytes) · % of copy bandwidth [· TFLOP/s for "
             "convolutions] · speed-up vs eager / vs compile. `floor` = minimal bytes / copy bandwidth. ✗ = result differs from eager "
             "(timed anyway); – = skipped or failed (reasons below each table).", ""]
    rows = doc["rows"]
    for (op, var, mode, dt), grp in _groups(rows, lambda r: (r["op"], r["variant"], r["mode"],
                                                                r["dtype"])).items():
        provs = [p for p in PROVIDERS if any(r["provider"] == p for r in grp)]
        lines += [f"## {op} · {var} · {mode} · {dt}", "",
                  "| shape | format | MB | floor ms | " + " | ".join(provs) + " |",
                  "|---|---|---:|---:|" + "---|" * len(provs)]
        notes = {}
        for (shape, fmt), rs in _groups(grp, lambda r: (r["shape_label"], r["memory_format"])).items():
            by = {r["provider"]: r for r in rs}
            r0 = rs[0]
            cells = []
            for p in provs:
                r = by.get(p)
                cells.append(_fmt_cell(r) if r else "")
                if r and r["status"] in ("skip", "error", "mismatch"):
                    notes.setdefault((p, r["status"], r["reason"]), 0)
                    notes[(p, r["status"], r["reason"])] += 1
            lines.append(f"| {shape} | {fmt} | {r0['bytes'] / 1e6:.1f} | {r0['floor_ms']:.4g} | "
                         + " | ".join(cells) + " |")
        lines.append("")
        for (p, st, why), n in notes.items():
            lines.append(f"- {p}: {st} ({n}×): {why}")
        lines.append("")
    return "\n".join(lines)


def readme_summary(doc: dict, md_name: str) -> str:
    """A compact table for README.md: per op/variant/mode/dtype/format, the largest shape only,
    each provider as ms and % of copy bandwidth."""
    rows = [r for r in doc["rows"] if r["status"] in ("ok", "mismatch")]
    provs = [p for p in PROVIDERS if any(r["provider"] == p for r in rows)]
    lines = [f"{doc['device']} ({doc['device_kind']}), {doc['date']}, torch {doc['torch']}, "
             f"copy bandwidth {doc['copy_gbps']:.1f} GB/s. Largest shape of each case; cell = "
             f"median ms (% of copy bandwidth). Full tables: `bench/results/{md_name}`.", "",
             "| case | dtype | format | shape | " + " | ".join(provs) + " |",
             "|---|---|---|---|" + "---:|" * len(provs)]
    key = lambda r: (r["op"], r["variant"], r["mode"], r["dtype"], r["memory_format"])  # noqa: E731
    for (op, var, mode, dt, fmt), grp in _groups(rows, key).items():
        big = max(grp, key=lambda r: r["bytes"])["shape_label"]
        by = {r["provider"]: r for r in grp if r["shape_label"] == big}
        cells = [f"{by[p]['ms']:.3g} ({by[p]['pct_copy']:.0f}%)" if p in by else "–" for p in provs]
        lines.append(f"| {op} {var} {mode} | {dt} | {fmt} | {big} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_readme(doc: dict, md_path: str, readme: str = "README.md") -> bool:
    """Replace the text between the results markers of README.md with ``readme_summary``."""
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if not os.path.exists(readme):
        return False
    text = open(readme).read()
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    body = readme_summary(doc, os.path.basename(md_path))
    with open(readme, "w") as f:
        f.write(f"{head}{begin}\n{body}\n{end}{tail}")
    return True


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is not installed (the model
    benchmarks then write JSON and Markdown only)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig, path: str, title: str) -> list[str]:
    """Title, lay out, write ``path`` (PNG, 110 dpi) and close ``fig``; returns ``[path]``."""
    import matplotlib.pyplot as plt
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def plot(doc: dict, stem: str) -> list[str]:
    """One PNG per op: rows = variant/mode, columns = dtype; % of copy bandwidth per shape."""
    plt = pyplot()
    if plt is None:
        return []

    paths = []
    colors = dict(zip(PROVIDERS, ("tab:gray", "tab:orange", "tab:blue", "tab:green", "tab:red")))
    for op, rows in _groups(doc["rows"], lambda r: r["op"]).items():
        rows_ok = [r for r in rows if r.get("pct_copy") is not None]
        panels = list(dict.fromkeys((r["variant"], r["mode"]) for r in rows))
        dtypes = [d for d in DTYPES if any(r["dtype"] == d for r in rows)]
        shapes = list(dict.fromkeys(r["shape_label"] for r in rows))
        fig, axes = plt.subplots(len(panels), len(dtypes), squeeze=False, sharey=True,
                                 figsize=(4.2 * len(dtypes), 2.8 * len(panels)))
        for i, (var, mode) in enumerate(panels):
            for j, dt in enumerate(dtypes):
                ax = axes[i][j]
                sel = [r for r in rows_ok if (r["variant"], r["mode"], r["dtype"]) == (var, mode, dt)]
                for (p, fmt), rs in _groups(sel, lambda r: (r["provider"], r["memory_format"])).items():
                    xs = [shapes.index(r["shape_label"]) for r in rs]
                    ax.plot(xs, [r["pct_copy"] for r in rs], marker="o", ms=3, color=colors.get(p),
                            ls="-" if fmt == "nchw" else "--", label=f"{p} {fmt}")
                ax.set_title(f"{op} {var} {mode} {dt}", fontsize=9)
                ax.set_xticks(range(len(shapes)), shapes, rotation=45, fontsize=7)
                ax.grid(alpha=0.3)
                if j == 0:
                    ax.set_ylabel("% of copy BW")
                if sel:
                    ax.legend(fontsize=6)
        fig.suptitle(f"{doc['device']} — copy {doc['copy_gbps']:.0f} GB/s = 100% "
                     "(solid NCHW, dashed channels_last)", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.98))  # leave room for the suptitle
        path = f"{stem}-{op}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------- pytest
def pytest_cases(fam, device: str) -> list[Case]:
    """A family's cases in ``bench/test_ops.py``: the full set on CUDA; on CPU (seconds) each
    variant's first (smallest) shape in fp32 NCHW, every mode."""
    cases = fam.cases(device, quick=False)
    if device == "cuda":
        return cases
    first = {}
    for c in cases:
        first.setdefault(c.variant, c.shape_label)
    return [c for c in cases if c.shape_label == first[c.variant] and c.dtype == "fp32"
            and c.memory_format == "nchw"]


def bench_pytest(benchmark, fam, case: Case, provider: str, device: str):
    """Body of a pytest-benchmark test: skip/check/benchmark one (case, provider)."""
    import pytest
    try:
        fn = build_provider(fam, case, provider, device)
    except Skip as e:
        pytest.skip(str(e))
    nbytes = fam.bytes_moved(case)
    sets = make_input_sets(fam, case, device, min(n_input_sets(nbytes, device), 16))
    if provider != "eager":
        try:
            got = make_step(fam, case, fn, sets[0])()
        except Skip as e:  # e.g. no double backward through torch.compile
            pytest.skip(str(e))
        ok, err = compare(case, got, make_step(fam, case, fam.eager(case), sets[0])(),
                          getattr(fam, "TOLERANCE", None))
        assert ok, f"{provider} differs from eager on {case.id}: max rel err {err:.3e}"
    steps = [make_step(fam, case, fn, s) for s in sets]
    i = [0]

    def target():  # synchronize so pytest-benchmark's wall clock sees the GPU work
        steps[i[0] % len(steps)]()
        i[0] += 1
        _sync(device)

    benchmark.pedantic(target, rounds=50 if device == "cuda" else 5, warmup_rounds=2, iterations=1)
    median = benchmark.stats.stats.median if benchmark.stats else None
    benchmark.extra_info.update(bytes=nbytes, case=case.id, provider=provider)
    if median:
        benchmark.extra_info["gbps"] = nbytes / median / 1e9
