"""CPU emulation of the CUDA upfirdn2d kernels in csrc/upfirdn2d.cu (no GPU needed).

tests/csrc/upfirdn2d_emu.cu includes csrc/upfirdn2d.cu and runs the kernels' __host__ __device__
phases block by block and thread by thread on the CPU, through the real host planner, against a
naive double-precision evaluation of the contract (see that file's header).  nvcc builds it for the
host only (the harness hides itself from the device pass, so no kernel is compiled for a GPU).

By default the harness is built with AddressSanitizer + UBSan at -O0 (about 25 s on 2 cores, build
included) and falls back to a plain build when the toolchain or the machine cannot run sanitizers.
Environment: FASTGAN_EMU_SANITIZE=0 (plain build) / 1 (sanitizers required); FASTGAN_EMU_CONFIGS
(random configs after the targeted ones, default 300) and FASTGAN_EMU_SEED (default 1234) for
longer soak runs.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.test_csrc_compile import NVCC_FLAGS, ROOT, _find_nvcc, _run

pytestmark = pytest.mark.cuda_build

HARNESS = os.path.join(ROOT, "tests", "csrc", "upfirdn2d_emu.cu")
# Kernels of csrc/upfirdn2d.cu: tiled: 4 dtypes x 11 x-axis configs (reduced (U', D') = (1, 1) with tap
# buckets 1 / 4 / 12, and (1, 2), (1, 4), (2, 1), (4, 1) with buckets 4 / 12) x 2 layouts (NCHW,
# channels_last); general: one per dtype.
N_KERNELS = 4 * (3 + 4 * 2) * 2 + 4
RUN_TIMEOUT_S = 600

# setup.py's flags (defines, include dir, C++ standard) without the device-code optimisation flags:
# the harness is host code, and -O0 keeps the build short.
HOST_FLAGS = [f for f in NVCC_FLAGS if f not in ("-O3", "--use_fast_math")] + ["-O0"]
SANITIZE_FLAGS = ["-Xcompiler", "-fsanitize=address", "-Xcompiler", "-fsanitize=undefined",
                  "-Xcompiler", "-fno-sanitize-recover=all", "-Xcompiler", "-fno-omit-frame-pointer"]
RUN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",  # cudart's static state is not a leak of ours
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:abort_on_error=1",  # abort: the harness names the config
}


def _build(nvcc, harness, exe, tmp_path, sanitize):
    cmd = [nvcc, *HOST_FLAGS, *(SANITIZE_FLAGS if sanitize else []), "-x", "cu", harness, "-o", str(exe)]
    proc, out = _run(cmd, tmp_path)
    return proc.returncode == 0, cmd, out


def _exec(args, tmp_path, timeout=RUN_TIMEOUT_S):
    env = {**os.environ, **RUN_ENV}
    try:
        proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"emulation timed out after {timeout}s:\n$ {' '.join(args)}\n{e.stdout or ''}{e.stderr or ''}")
    return proc.returncode, proc.stdout + proc.stderr


def _build_harness(nvcc, harness, tmp_path):
    """(executable, note): sanitized when possible (per FASTGAN_EMU_SANITIZE), else plain."""
    mode = os.environ.get("FASTGAN_EMU_SANITIZE", "auto").strip().lower()
    if mode not in ("auto", "0", "1"):
        pytest.fail(f"FASTGAN_EMU_SANITIZE must be 0, 1 or auto, got {mode!r}")
    name = os.path.splitext(os.path.basename(harness))[0]
    note = "plain build (FASTGAN_EMU_SANITIZE=0)"
    if mode != "0":
        exe = tmp_path / f"{name}_san"
        ok, cmd, out = _build(nvcc, harness, exe, tmp_path, sanitize=True)
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
    exe = tmp_path / name
    ok, cmd, out = _build(nvcc, harness, exe, tmp_path, sanitize=False)
    if not ok:
        pytest.fail(f"nvcc failed to build the emulation harness:\n$ {' '.join(cmd)}\n{out}")
    return exe, note


def run_emulation(harness, tmp_path, default_configs: str = "300") -> str:
    """Build ``harness`` (tests/csrc/*_emu.cu) and run it with FASTGAN_EMU_CONFIGS random configs
    (default ``default_configs``) and FASTGAN_EMU_SEED; fails the test on a non-zero exit and
    returns the harness output for the caller's coverage checks.  Skips without nvcc."""
    nvcc = _find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)")
    exe, note = _build_harness(nvcc, harness, tmp_path)
    configs = os.environ.get("FASTGAN_EMU_CONFIGS", default_configs)
    seed = os.environ.get("FASTGAN_EMU_SEED", "1234")
    rc, out = _exec([str(exe), configs, seed], tmp_path)
    print(f"[{note}]\n{out}")
    assert rc == 0, f"emulated kernels disagree with the reference (exit {rc}, {note}):\n{out}"
    return out


def test_upfirdn2d_kernels_emulated_on_cpu(tmp_path):
    out = run_emulation(HARNESS, tmp_path)

    m = re.search(r"kernel variants: (\d+) exercised of (\d+) instantiated", out)
    assert m, f"no variant summary in the harness output:\n{out}"
    exercised, instantiated = int(m.group(1)), int(m.group(2))
    assert instantiated == N_KERNELS, (
        f"the planner can name {instantiated} kernels, this test expects {N_KERNELS}; "
        f"update N_KERNELS (and the harness's targeted list) with the kernel set:\n{out}")
    assert exercised == N_KERNELS, f"only {exercised} of {N_KERNELS} kernel variants ran:\n{out}"

    m = re.search(r"configs: (\d+) run, (\d+) failing; looped launches: (\d+); NaN inputs: (\d+); "
                  r"negative pads: (\d+); fastdiv errors: (\d+)", out)
    assert m, f"no config summary in the harness output:\n{out}"
    run, failing, looped, nans, negpads, fd = (int(g) for g in m.groups())
    assert failing == 0 and fd == 0, out
    assert run >= N_KERNELS and looped > 0 and nans > 0 and negpads > 0, (
        f"the run did not cover looping blocks / NaN inputs / negative pads:\n{out}")
