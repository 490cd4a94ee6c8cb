"""CLI: python -m bench.run [--ops bias_act] [--quick] [--device cuda|cpu] [--out bench/results]

Without CUDA (or with --device cpu) a reduced set runs: eager/compile/ref providers, small
shapes, fp32 (+ bf16), few reps. Filters (--dtypes, --modes, ...) select a subset; results of the
same device and day are merged, so a long GPU run can be split over several commands.

Runs under a wall-clock limit (the lent GPU's 10-minute commands): --budget S starts no case after
S seconds; SIGTERM or Ctrl-C stops at once; either way the rows measured so far are written (and
they are saved every minute besides, so even a killed run leaves them). --resume skips the cases
whose rows today's results already hold, so the next command goes on where the last one stopped.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import time

import torch
from tqdm import tqdm

from . import harness as H

_clock = time.monotonic  # the budget's clock (a name of its own, so a test can drive it)

OP_FAMILIES = ("bias_act", "upfirdn2d", "modulated_conv2d", "adain")  # a new op family: add its module name (bench/<name>.py) here


def _csv(s):
    return [v for v in s.split(",") if v] if s else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--ops", default=",".join(OP_FAMILIES), help="comma list of op families")
    ap.add_argument("--quick", action="store_true", help="reduced set on GPU too")
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None,
                    help="default: cuda if available, else cpu (reduced set)")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--providers", help=f"subset of {','.join(H.PROVIDERS)}")
    ap.add_argument("--modes", help=f"subset of {','.join(H.MODES)}")
    ap.add_argument("--dtypes", help=f"subset of {','.join(H.DTYPES)}")
    ap.add_argument("--formats", help=f"subset of {','.join(H.FORMATS)}")
    ap.add_argument("--variants", help="e.g. lrelu,clamp256")
    ap.add_argument("--shapes", help="shape labels, e.g. 512x4^2,32x1024^2")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU intra-op threads for --device cpu (0 = torch default). Default 1: "
                         "CPU numbers are a smoke test, and on a shared box a multi-threaded op "
                         "stalls for a whole scheduler slice whenever one of its threads is preempted")
    ap.add_argument("--budget", type=float, default=None, metavar="S",
                    help="start no case after S seconds; what was measured is written")
    ap.add_argument("--resume", action="store_true",
                    help="skip cases whose rows (every provider) today's results already hold")
    ap.add_argument("--list", action="store_true", help="print the cases and exit")
    a = ap.parse_args(argv)

    device = H.resolve_device(ap, a.device)
    providers = _csv(a.providers) or list(H.PROVIDERS if device == "cuda" else H.CPU_PROVIDERS)
    if device == "cpu":  # record why the GPU backends are absent instead of dropping them silently
        providers += [p for p in ("triton", "cuda") if p not in providers and not a.providers]
    filters = dict(mode=_csv(a.modes), dtype=_csv(a.dtypes), memory_format=_csv(a.formats),
                   variant=_csv(a.variants), shape_label=_csv(a.shapes))
    work = []
    for name in _csv(a.ops):
        fam = importlib.import_module(f"{__package__}.{name}")
        cs = [c for c in fam.cases(device, a.quick)
              if all(v is None or getattr(c, k) in v for k, v in filters.items())]
        work += [(fam, c) for c in H.order_cases(cs)]
    suffix = "-quick" if a.quick else ""
    info = H.device_info(device)
    if a.resume:
        done = {H.row_key(r) for r in H.load_rows(H.results_stem(info, a.out, suffix))
                if r["status"] != "error"}
        left = [(fam, c) for fam, c in work
                if any(_key(c, p) not in done for p in providers)]
        print(f"--resume: {len(work) - len(left)} of {len(work)} cases already measured today",
              file=sys.stderr)
        work = left
        if not work:
            return 0
    if a.list or not work:
        for _, c in work:
            print(c.id)
        print(f"{len(work)} cases x {len(providers)} providers on {device}", file=sys.stderr)
        return 0 if work else 1

    if device == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    t0, start = time.perf_counter(), _clock()
    timing = H.timing_for(device, a.quick)
    copy_gbps = H.copy_bandwidth(device, timing)
    print(f"{info['device']}: copy bandwidth {copy_gbps:.1f} GB/s", file=sys.stderr)
    rows, measured = [], []

    def body():
        saved = _clock()
        bar = tqdm(work, unit="case", dynamic_ncols=True)
        for fam, c in bar:
            if a.budget is not None and _clock() - start > a.budget:
                return f"time budget of {a.budget:g} s spent"
            bar.set_postfix_str(c.id, refresh=False)
            rows.extend(H.run_case(fam, c, providers, device, timing, copy_gbps))
            measured.append(c)
            if _clock() - saved > 60:  # so even a killed run leaves its rows
                H.write_results(rows, info, copy_gbps, a.out, suffix, final=False)
                saved = _clock()

    stopped = H.run_interruptible(body, rows)
    if not rows:
        print(f"stopped ({stopped}) before any case was measured", file=sys.stderr)
        return 1
    paths = H.write_results(rows, info, copy_gbps, a.out, suffix)
    if stopped:
        print(f"stopped after {len(measured)} of {len(work)} cases ({stopped}); run again with "
              "--resume to measure the rest", file=sys.stderr)
    bad = [r for r in rows if r["status"] in ("error", "mismatch")]
    for r in bad:
        print(f"{r['status']}: {r['provider']} {r['op']}-{r['variant']}-{r['mode']}-{r['dtype']}-"
              f"{r['memory_format']}-{r['shape_label']}: {r['reason']}", file=sys.stderr)
    print(f"{len(rows)} results ({len(bad)} error/mismatch) in {time.perf_counter() - t0:.0f} s:",
          *paths, sep="\n  ")
    return 1 if stopped == "interrupted" else 0


def _key(c, provider) -> tuple:
    return H.row_key(dict(dataclasses.asdict(c), provider=provider))


if __name__ == "__main__":
    sys.exit(main())
