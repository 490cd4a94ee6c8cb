"""Compile-only checks of the CUDA extension sources in csrc/ (no GPU needed).

* every ``csrc/*.cu`` compiles with nvcc for sm_80 and sm_90 with the flags setup.py uses, and
  ptxas reports no register spills and no stack frame for any function;
* every ``csrc/*.cpp`` passes ``g++ -fsyntax-only`` against torch's headers.

Each test skips with the reason when its tool (nvcc, g++) or headers (torch, CUDA, Python) are
missing.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests._setup_py import setup_functions

pytestmark = pytest.mark.cuda_build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
CU_FILES = sorted(glob.glob(os.path.join(CSRC, "*.cu")))
CPP_FILES = sorted(glob.glob(os.path.join(CSRC, "*.cpp")))
ARCHS = ("80", "90")
TIMEOUT_S = 900

# setup.py's nvcc flags plus the ones torch.utils.cpp_extension adds to every CUDAExtension.
NVCC_FLAGS = [
    "-std=c++20", "-O3", "--use_fast_math", "--expt-relaxed-constexpr", f"-I{CSRC}",
    "-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
    "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
]

# ptxas -v prints, per function: "<S> bytes stack frame, <W> bytes spill stores, <R> bytes spill loads"
_FUNC_RE = re.compile(r"Function properties for (\S+)")
_STACK_RE = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def _find_nvcc():
    for cand in (shutil.which("nvcc"),
                 os.path.join(os.environ.get("CUDA_HOME", ""), "bin", "nvcc") if os.environ.get("CUDA_HOME") else None,
                 "/usr/local/cuda/bin/nvcc"):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _cuda_include_dir(nvcc):
    """The include folder of the toolkit setup.py would build with (CUDA_HOME, else nvcc's root,
    found through a wrapper script too): setup.py's own lookup, not a copy of it."""
    if not nvcc and not os.environ.get("CUDA_HOME"):
        return None
    S = setup_functions()
    home = os.environ.get("CUDA_HOME") or S["_cuda_home"](nvcc)
    return os.path.join(home, "include") if S["_has_cuda_headers"](home) else None


def _run(cmd, cwd):
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"compiler timed out after {TIMEOUT_S}s:\n$ {' '.join(cmd)}\n{e.stdout or ''}{e.stderr or ''}")
    return proc, proc.stdout + proc.stderr


def _ptxas_report(output):
    """[(function, stack, spill_stores, spill_loads)] from ptxas -v output."""
    rows, func = [], None
    for line in output.splitlines():
        m = _FUNC_RE.search(line)
        if m:
            func = m.group(1)
            continue
        m = _STACK_RE.search(line)
        if m:
            rows.append((func, *(int(g) for g in m.groups())))
            func = None
    return rows


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("src", CU_FILES, ids=os.path.basename)
def test_nvcc_compiles_without_spills(src, arch, tmp_path):
    nvcc = _find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)")
    cmd = [nvcc, "-c", src, "-o", str(tmp_path / "tmp.o"),
           "-gencode", f"arch=compute_{arch},code=sm_{arch}", *NVCC_FLAGS, "-Xptxas", "-v"]
    proc, out = _run(cmd, tmp_path)
    if proc.returncode != 0:
        pytest.fail(f"nvcc failed (exit {proc.returncode}):\n$ {' '.join(cmd)}\n{out}")
    print(out)

    rows = _ptxas_report(out)
    if not rows and "Compiling entry function" not in out:
        return  # no device code in this file
    assert rows, f"could not parse ptxas resource usage from:\n{out}"
    bad = [r for r in rows if r[1] or r[2] or r[3]]
    assert not bad, (
        f"{len(bad)} of {len(rows)} functions use stack or spill registers for sm_{arch}:\n"
        + "\n".join(f"  {f}: {s} B stack, {st} B spill stores, {ld} B spill loads" for f, s, st, ld in bad)
        + f"\n\nfull output:\n{out}")


@pytest.mark.parametrize("src", CPP_FILES, ids=os.path.basename)
def test_cpp_syntax(src, tmp_path):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("g++ not found")
    try:
        import torch
        from torch.utils.cpp_extension import include_paths
    except ImportError as e:
        pytest.skip(f"torch is not importable: {e}")
    torch_inc = include_paths()
    if not any(os.path.isfile(os.path.join(d, "torch", "library.h")) for d in torch_inc):
        pytest.skip(f"torch C++ headers not found in {torch_inc}")
    cuda_inc = _cuda_include_dir(_find_nvcc())
    if cuda_inc is None:
        pytest.skip("CUDA headers (include/cuda_runtime.h) not found for the toolkit setup.py would use")
    py_inc = sysconfig.get_paths()["include"]
    if not os.path.isfile(os.path.join(py_inc, "Python.h")):
        pytest.skip(f"Python.h not found in {py_inc}")

    inc = [*torch_inc, cuda_inc, py_inc]
    # A CPU build of torch ships c10/cuda/*.h but not the CMake-generated
    # c10/cuda/impl/cuda_cmake_macros.h they include; stand in for it (a CUDA build has it).
    if not any(os.path.isfile(os.path.join(d, "c10", "cuda", "impl", "cuda_cmake_macros.h")) for d in torch_inc):
        shim = tmp_path / "shim" / "c10" / "cuda" / "impl"
        shim.mkdir(parents=True)
        (shim / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
        inc.append(str(tmp_path / "shim"))

    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", True))
    cmd = [cxx, "-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", f"-I{CSRC}",
           *(f"-isystem{d}" for d in inc),
           "-DTORCH_EXTENSION_NAME=_C", "-DTORCH_API_INCLUDE_EXTENSION_H", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
           src]
    proc, out = _run(cmd, tmp_path)
    if proc.returncode != 0:
        pytest.fail(f"{os.path.basename(cxx)} -fsyntax-only failed (exit {proc.returncode}):\n$ {' '.join(cmd)}\n{out}")
    if out.strip():
        print(out, file=sys.stderr)
