"""pytest-benchmark view of the upfirdn2d cases: ``pytest bench/test_upfirdn2d.py``.

Each test first checks the provider against the eager composite, so a wrong-but-fast kernel
fails instead of winning. Full set on CUDA; a handful of small cases on CPU (seconds).
"""
import pytest

pytest.importorskip("pytest_benchmark")

import torch  # noqa: E402

from bench import upfirdn2d as fam  # noqa: E402
from bench import harness as H  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CASES = H.pytest_cases(fam, DEVICE)


@pytest.mark.parametrize("provider", H.PROVIDERS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_upfirdn2d(benchmark, case, provider):
    benchmark.group = f"{case.id}"
    H.bench_pytest(benchmark, fam, case, provider, DEVICE)
