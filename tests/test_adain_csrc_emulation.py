"""CPU emulation of the CUDA adain kernels in csrc/adain.cu (no GPU needed).

tests/csrc/adain_emu.cu includes csrc/adain.cu and runs the kernels' __host__ __device__ phases
block by block, phase by phase and thread by thread on the CPU, through the real host planner,
against a double-precision evaluation of the contract in csrc/adain.h (see that file's header for
the traps: NaN-filled shared memory, guarded buffers, reversed block / thread order).  nvcc builds
it for the host only.

Built with AddressSanitizer + UBSan at -O0 when the toolchain allows (about 20 s on 2 cores, build
included), else a plain build.  Environment, shared with tests/test_csrc_emulation.py:
FASTGAN_EMU_SANITIZE=0 (plain) / 1 (sanitizers required); FASTGAN_EMU_CONFIGS (random configs after
the targeted ones, default 150) and FASTGAN_EMU_SEED (default 1234).
"""
from __future__ import annotations

import os
import re

import pytest

from tests.test_csrc_compile import ROOT
from tests.test_csrc_emulation import run_emulation

pytestmark = pytest.mark.cuda_build

HARNESS = os.path.join(ROOT, "tests", "csrc", "adain_emu.cu")
N_KERNELS = 4 * 2 * 2 * 3 * 2  # dtype x vector width x layout x mode (0, 1, 2) x direction


def test_adain_kernels_emulated_on_cpu(tmp_path):
    out = run_emulation(HARNESS, tmp_path, default_configs="150")

    m = re.search(r"kernel variants: (\d+) exercised of (\d+)", out)
    assert m, f"no variant summary in the harness output:\n{out}"
    assert int(m.group(2)) == N_KERNELS and int(m.group(1)) == N_KERNELS, out

    m = re.search(r"configs: (\d+) run, (\d+) failing; split launches: (\d+); NaN inputs: (\d+)", out)
    assert m, f"no config summary in the harness output:\n{out}"
    run, failing, splits, nans = (int(g) for g in m.groups())
    assert failing == 0, out
    assert run >= 32 and splits > 0 and nans > 0, f"the run did not cover split planes / NaN inputs:\n{out}"
