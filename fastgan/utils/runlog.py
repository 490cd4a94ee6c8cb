"""Run logging for the trainer: a tqdm bar, ``stats.jsonl``, ``log.txt`` and TensorBoard (when
installed).  Everything is a no-op on ranks other than 0."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

__all__ = ["RunLogger"]


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class RunLogger:
    """``advance(kimg)`` moves the bar; ``log(record)`` appends a JSON line, updates the bar's
    postfix and TensorBoard; ``message(text)`` prints (above the bar) and appends to log.txt."""

    POSTFIX = (("sec_per_kimg", "s/kimg", "{:.1f}"), ("img_per_s", "img/s", "{:.1f}"),
               ("loss/G", "G", "{:.3f}"), ("loss/D_real", "Dr", "{:.3f}"),
               ("loss/D_fake", "Df", "{:.3f}"), ("augment/p", "p", "{:.3f}"))

    def __init__(self, run_dir: str, cfg: Any, enabled: bool = True, total_kimg: float = 0.0,
                 start_kimg: float = 0.0):
        self.enabled = enabled
        self.run_dir = run_dir
        self.bar = None
        self.tb = None
        self.total_kimg = total_kimg
        self.kimg = start_kimg
        self._t0, self._k0 = time.perf_counter(), start_kimg
        if not enabled:
            return
        os.makedirs(run_dir, exist_ok=True)
        self.jsonl = open(os.path.join(run_dir, "stats.jsonl"), "a")
        self.txt = open(os.path.join(run_dir, "log.txt"), "a")
        if getattr(cfg, "progress", True):
            from tqdm.auto import tqdm
            self.bar = tqdm(total=round(total_kimg, 3), initial=round(start_kimg, 3), unit="kimg",
                            dynamic_ncols=True, file=sys.stderr,
                            bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg "
                                       "[{elapsed}<{remaining}{postfix}]")
        if getattr(cfg, "tensorboard", False):
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(os.path.join(run_dir, "tensorboard"))
            except Exception:  # tensorboard not installed: JSONL only
                self.tb = None

    def advance(self, kimg: float) -> None:
        self.kimg += kimg
        if self.bar is not None:
            self.bar.update(kimg)

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        rec = dict(record, time=time.time())
        self.jsonl.write(json.dumps(rec) + "\n")
        self.jsonl.flush()
        if self.bar is not None and "sec_per_kimg" in rec:
            post = {short: fmt.format(rec[k]) for k, short, fmt in self.POSTFIX if k in rec}
            self.bar.set_postfix(post, refresh=False)
        elif self.bar is None and "sec_per_kimg" in rec:
            rate = (self.kimg - self._k0) / max(time.perf_counter() - self._t0, 1e-9)
            eta = (self.total_kimg - self.kimg) / rate if rate > 0 else float("inf")
            parts = [f"kimg {rec['kimg']:.2f}"] + [
                f"{short} {fmt.format(rec[k])}" for k, short, fmt in self.POSTFIX if k in rec]
            self.message("  ".join(parts) + f"  eta {_fmt_eta(eta)}", to_file=False)
        if self.tb is not None:
            step = int(round(rec.get("kimg", 0) * 1000))
            for k, v in rec.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in (
                        "kimg", "step", "time"):
                    self.tb.add_scalar(k, v, step)

    def message(self, text: str, to_file: bool = True) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)
        if to_file:
            self.txt.write(text + "\n")
            self.txt.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        for f in (self.jsonl, self.txt):
            if not f.closed:
                f.close()
