"""Backend selection: available_impls, quiet fallback, explicit requests, FASTGAN_IMPL."""
import pytest
import torch

import fastgan
from fastgan.ops import BackendUnavailableError, available_impls, bias_act
from fastgan.ops._backend import resolve_impl


def test_available_impls_reports_every_backend_with_a_reason():
    st = available_impls("cpu")
    assert set(st) == {"ref", "triton", "cuda"}
    assert st["ref"].available
    assert not st["cuda"].available and "CUDA" in st["cuda"].reason
    for name, s in st.items():
        assert s.available or s.reason, name
    assert fastgan.available_impls() == available_impls()


def test_auto_falls_back_quietly_on_cpu(monkeypatch, recwarn):
    monkeypatch.delenv("FASTGAN_IMPL", raising=False)
    assert resolve_impl(None, torch.device("cpu")) == "ref"
    x = torch.randn(2, 3)
    torch.testing.assert_close(bias_act(x, act="relu"), torch.relu(x) * 2 ** 0.5)
    assert not recwarn.list


def test_explicit_unavailable_backend_raises_with_instructions():
    x = torch.randn(2, 3)
    with pytest.raises(BackendUnavailableError, match="FASTGAN_BUILD_CUDA=1|CUDA tensors"):
        bias_act(x, impl="cuda")
    if not available_impls("cpu")["triton"]:
        with pytest.raises(BackendUnavailableError, match="TRITON_INTERPRET"):
            bias_act(x, impl="triton")


def test_env_override(monkeypatch):
    monkeypatch.setenv("FASTGAN_IMPL", "ref")
    assert resolve_impl(None, torch.device("cpu")) == "ref"
    monkeypatch.setenv("FASTGAN_IMPL", "cuda")
    with pytest.raises(BackendUnavailableError, match="FASTGAN_IMPL"):
        bias_act(torch.randn(2, 3))
    assert resolve_impl("ref", torch.device("cpu")) == "ref"  # the argument beats the environment
    monkeypatch.setenv("FASTGAN_IMPL", "bogus")
    with pytest.raises(ValueError, match="FASTGAN_IMPL"):
        bias_act(torch.randn(2, 3))


def test_kernels_installed_under_fastgan(tmp_path):
    # from outside the source tree: fastgan.kernels imports, a top-level `kernels` does not exist
    import subprocess
    import sys
    code = ("import importlib.util as u, fastgan.kernels.bias_act as k; "
            "print(u.find_spec('kernels') is None, k.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"},
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "fastgan.kernels.bias_act"]
