"""Shared helper of the GPU test tiers."""
import os

import pytest

from fastgan.ops import available_impls


def need_impl(impl: str, status=None) -> None:
    """Skip the test when backend ``impl`` cannot run on CUDA (``status``: a precomputed
    ImplStatus, else ``available_impls('cuda')``); with FASTGAN_REQUIRE_ALL_BACKENDS=1 an
    unavailable backend fails the test instead."""
    st = available_impls("cuda")[impl] if status is None else status
    if not st:
        if os.environ.get("FASTGAN_REQUIRE_ALL_BACKENDS") == "1":
            pytest.fail(f"{impl} unavailable: {st.reason}")
        pytest.skip(f"{impl} unavailable: {st.reason}")
