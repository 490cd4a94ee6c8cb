"""pytest-benchmark view of every op family's cases: ``pytest bench/test_ops.py``
(``-k adain`` for one family, ``-k "bias_act and fwd"`` for a subset).

The families are ``bench.run.OP_FAMILIES``, so a new one is picked up without a file of its own.
Each test first checks the provider against the eager composite, so a wrong-but-fast kernel
fails instead of winning. Full set on CUDA; a handful of small cases per family on CPU (seconds).
"""
import importlib

import pytest

pytest.importorskip("pytest_benchmark")

import torch  # noqa: E402

from bench import harness as H  # noqa: E402
from bench.run import OP_FAMILIES  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FAMILIES = {name: importlib.import_module(f"bench.{name}") for name in OP_FAMILIES}
CASES = [(name, case) for name, fam in FAMILIES.items() for case in H.pytest_cases(fam, DEVICE)]


@pytest.mark.parametrize("provider", H.PROVIDERS)
@pytest.mark.parametrize("family,case", CASES, ids=[case.id for _, case in CASES])
def test_op(benchmark, family, case, provider):
    benchmark.group = case.id
    H.bench_pytest(benchmark, FAMILIES[family], case, provider, DEVICE)
