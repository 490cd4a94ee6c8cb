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

from tests.test_csrc_compile import ROOT
from tests.test_csrc_emulation import run_emulation

pytestmark = pytest.mark.cuda_build

HARNESS = os.path.join(ROOT, "tests", "csrc", "modconv_emu.cu")
# csrc/modconv.cu's epilogue kernels: 4 dtypes x 9 activations x 2 layouts x 2 index widths.
N_KERNELS = 4 * 9 * 2 * 2


def test_modconv_kernels_emulated_on_cpu(tmp_path):
    out = run_emulation(HARNESS, tmp_path, default_configs="300")

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
