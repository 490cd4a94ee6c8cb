"""setup.py's decision to build the CUDA extension, and how it finds the toolkit root (no build)."""
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from tests._setup_py import setup_functions

S = setup_functions()


def _script(path: Path, body: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _toolkit(root: Path) -> str:
    (root / "include").mkdir(parents=True)
    (root / "include" / "cuda_runtime.h").write_text("")
    return _script(root / "bin" / "nvcc", "exit 0")


def test_toolkit_root_above_nvcc(tmp_path):
    nvcc = _toolkit(tmp_path / "cuda")
    assert S["_cuda_home"](nvcc) == os.path.realpath(tmp_path / "cuda")


def test_toolkit_root_of_a_wrapper_script_from_nvccs_dry_run(tmp_path):
    _toolkit(tmp_path / "cuda-13.0")
    # /usr/local/bin/nvcc style: a script that runs the real nvcc, whose dry run names TOP
    wrapper = _script(tmp_path / "local" / "bin" / "nvcc",
                      f'echo "#$ _HERE_={tmp_path}/cuda-13.0/bin" >&2\n'
                      f'echo "#$ TOP={tmp_path}/cuda-13.0/bin/.." >&2')
    assert S["_cuda_home"](wrapper) == str(tmp_path / "cuda-13.0")
    headerless = _script(tmp_path / "other" / "bin" / "nvcc", f'echo "#$ TOP={tmp_path}/nowhere" >&2')
    assert S["_cuda_home"](headerless) is None


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc on PATH")
def test_toolkit_root_of_this_machines_nvcc():
    home = S["_cuda_home"](shutil.which("nvcc"))
    assert home and os.path.exists(os.path.join(home, "include", "cuda_runtime.h"))


def test_forced_build_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("FASTGAN_BUILD_CUDA", "0")
    assert S["_want_cuda"]() == (False, "FASTGAN_BUILD_CUDA=0")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "empty"))  # no bin/nvcc there
    monkeypatch.setenv("FASTGAN_BUILD_CUDA", "")
    assert S["_want_cuda"]()[0] is False  # automatic: skipped quietly
    monkeypatch.setenv("FASTGAN_BUILD_CUDA", "1")
    with pytest.raises(RuntimeError, match="no CUDA toolkit.*set CUDA_HOME"):
        S["_want_cuda"]()
    monkeypatch.setenv("CUDA_HOME", os.path.dirname(os.path.dirname(_toolkit(tmp_path / "cuda"))))
    if torch.version.cuda is None:  # the CPU build CI has
        with pytest.raises(RuntimeError, match="CPU build"):
            S["_want_cuda"]()
        monkeypatch.setenv("FASTGAN_BUILD_CUDA", "")
        assert S["_want_cuda"]() == (False, "the installed torch is a CPU build")
    else:
        assert S["_want_cuda"]() == (True, "")
