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

from tests.test_csrc_compile import ROOT, _find_nvcc, _run
from tests.test_csrc_emulation import HOST_FLAGS, SANITIZE_FLAGS, _exec

pytestmark = pytest.mark.cuda_build

HARNESS = os.path.join(ROOT, "tests", "csrc", "adain_emu.cu")
N_KERNELS = 4 * 2 * 2 * 3 * 2  # dtype x vector width x layout x mode (0, 1, 2) x direction


def _build(nvcc, exe, tmp_path, sanitize):
    cmd = [nvcc, *HOST_FLAGS, *(SANITIZE_FLAGS if sanitize else []), "-x", "cu", HARNESS, "-o", str(exe)]
    proc, out = _run(cmd, tmp_path)
    return proc.returncode == 0, cmd, out


def _build_harness(nvcc, tmp_path):
    mode = os.environ.get("FASTGAN_EMU_SANITIZE", "auto").strip().lower()
    if mode not in ("auto", "0", "1"):
        pytest.fail(f"FASTGAN_EMU_SANITIZE must be 0, 1 or auto, got {mode!r}")
    note = "plain build (FASTGAN_EMU_SANITIZE=0)"
    if mode != "0":
        exe = tmp_path / "adain_emu_san"
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
    exe = tmp_path / "adain_emu"
    ok, cmd, out = _build(nvcc, exe, tmp_path, sanitize=False)
    if not ok:
        pytest.fail(f"nvcc failed to build the emulation harness:\n$ {' '.join(cmd)}\n{out}")
    return exe, note


def test_adain_kernels_emulated_on_cpu(tmp_path):
    nvcc = _find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)")
    exe, note = _build_harness(nvcc, tmp_path)
    configs = os.environ.get("FASTGAN_EMU_CONFIGS", "150")
    seed = os.environ.get("FASTGAN_EMU_SEED", "1234")
    rc, out = _exec([str(exe), configs, seed], tmp_path)
    print(f"[{note}]\n{out}")
    assert rc == 0, f"emulated kernels disagree with the reference (exit {rc}, {note}):\n{out}"

    m = re.search(r"kernel variants: (\d+) exercised of (\d+)", out)
    assert m, f"no variant summary in the harness output:\n{out}"
    assert int(m.group(2)) == N_KERNELS and int(m.group(1)) == N_KERNELS, out

    m = re.search(r"configs: (\d+) run, (\d+) failing; split launches: (\d+); NaN inputs: (\d+)", out)
    assert m, f"no config summary in the harness output:\n{out}"
    run, failing, splits, nans = (int(g) for g in m.groups())
    assert failing == 0, out
    assert run >= 32 and splits > 0 and nans > 0, f"the run did not cover split planes / NaN inputs:\n{out}"
