"""CPU emulation of the modulated-conv CUDA kernels in csrc/modconv.cu (no GPU needed).

tests/csrc/modconv_emu.cu includes csrc/modconv.cu and runs the epilogue kernels' per-thread
function block by block and thread by thread on the CPU, through the real host planner, and the
coefficient kernel warp by warp (its lane partials and shuffle-reduction order), against a
double-precision evaluation of the contracts in csrc/modconv.h (see that file's header).  nvcc
builds it for the host only.  Same build / sanitizer policy and environment knobs as
tests/test_csrc_emulation.py (FASTGAN_EMU_SANITIZE, FASTGAN_EMU_CONFIGS, FASTGAN_EMU_SEED).
"""
from __future__ import annotations

import os
import re

import pytest

from tests.test_csrc_compile import ROOT, _find_nvcc, _run
from tests.test_csrc_emulation import HOST_FLAGS, SANITIZE_FLAGS, _exec

pytestmark = pytest.mark.cuda_build

HARNESS = os.path.join(ROOT, "tests", "csrc", "modconv_emu.cu")
# csrc/modconv.cu's epilogue kernels: 4 dtypes x 9 activations x 2 layouts x 2 index widths.
N_KERNELS = 4 * 9 * 2 * 2


def _build(nvcc, exe, tmp_path, sanitize):
    cmd = [nvcc, *HOST_FLAGS, *(SANITIZE_FLAGS if sanitize else []), "-x", "cu", HARNESS, "-o", str(exe)]
    proc, out = _run(cmd, tmp_path)
    return proc.returncode == 0, cmd, out


def _build_harness(nvcc, tmp_path):
    """(executable, note): sanitized when possible (per FASTGAN_EMU_SANITIZE), else plain."""
    mode = os.environ.get("FASTGAN_EMU_SANITIZE", "auto").strip().lower()
    if mode not in ("auto", "0", "1"):
        pytest.fail(f"FASTGAN_EMU_SANITIZE must be 0, 1 or auto, got {mode!r}")
    note = "plain build (FASTGAN_EMU_SANITIZE=0)"
    if mode != "0":
        exe = tmp_path / "modconv_emu_san"
        ok, cmd, out = _build(nvcc, exe, tmp_path, sanitize=True)
        if ok:
            rc, pout = _exec([str(exe), "--probe"], tmp_path, timeout=60)
            if rc == 0 and "probe ok" in pout:
                return exe, "ASan + UBSan build"
            why = f"the sanitized binary does not start here (exit {rc}):\n{pout[-2000:]}"
        else:
            why = f"the sanitized build failed:\n$ {' '.join(cmd)}\n{out[-2000:]}"
        if mode == "1":
            pytest.fail(f"FASTGAN_EMU_SANITIZE=1 but {why}")
        note = f"plain build: {why}"
    exe = tmp_path / "modconv_emu"
    ok, cmd, out = _build(nvcc, exe, tmp_path, sanitize=False)
    if not ok:
        pytest.fail(f"nvcc failed to build the emulation harness:\n$ {' '.join(cmd)}\n{out}")
    return exe, note


def test_modconv_kernels_emulated_on_cpu(tmp_path):
    nvcc = _find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)")
    exe, note = _build_harness(nvcc, tmp_path)
    configs = os.environ.get("FASTGAN_EMU_CONFIGS", "300")
    seed = os.environ.get("FASTGAN_EMU_SEED", "1234")
    rc, out = _exec([str(exe), configs, seed], tmp_path)
    print(f"[{note}]\n{out}")
    assert rc == 0, f"emulated kernels disagree with the reference (exit {rc}, {note}):\n{out}"

    m = re.search(r"kernel variants: (\d+) exercised of (\d+) instantiated", out)
    assert m, f"no variant summary in the harness output:\n{out}"
    exercised, instantiated = int(m.group(1)), int(m.group(2))
    assert instantiated == N_KERNELS, (
        f"the planner can name {instantiated} kernels, this test expects {N_KERNELS}; update N_KERNELS "
        f"with the kernel set:\n{out}")
    assert exercised == N_KERNELS, f"only {exercised} of {N_KERNELS} kernel variants ran:\n{out}"

    m = re.search(r"configs: (\d+) run, (\d+) failing; vector configs: (\d+); straddling: (\d+); "
                  r"cl vector d/b: (\d+); looped launches: (\d+); NaN inputs: (\d+)", out)
    assert m, f"no config summary in the harness output:\n{out}"
    run, failing, vec, straddle, clvec, looped, nans = (int(g) for g in m.groups())
    assert failing == 0, out
    # the run covered each path: 16-byte vectors, row-straddling vectors, channels_last vector d / b,
    # grid-stride loops, NaN inputs (and, since not every config is aligned, the scalar path)
    assert run >= N_KERNELS and vec > 0 and vec < run and straddle > 0 and clvec > 0 and looped > 0 \
        and nans > 0, f"the run did not cover every path:\n{out}"

    m = re.search(r"dcoefs: (\d+) run, (\d+) failing", out)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) == 0, out
