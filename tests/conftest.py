import os

import pytest
import torch

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def pytest_collection_modifyitems(config, items):
    # TRITON_INTERPRET must be set before triton is imported, so the interpreter tier runs in its own
    # pytest process (`make test` runs both passes); each pass skips the other's tests.
    for item in items:
        is_interp = "interpret" in item.keywords
        if is_interp and not INTERPRET:
            item.add_marker(pytest.mark.skip(reason="runs in the TRITON_INTERPRET=1 pass of make test"))
        elif not is_interp and INTERPRET:
            item.add_marker(pytest.mark.skip(reason="runs in the compiled (non-interpreter) pass"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="no CUDA device"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)


@pytest.fixture
def bf16_dot_in_interpreter(monkeypatch):
    """Make ``tl.dot`` on bfloat16 operands correct under TRITON_INTERPRET=1.

    The interpreter stores bfloat16 as uint16 and its ``create_dot`` multiplies those bit patterns
    (values ~1e10; triton-lang/triton#11584, "not supported yet" in triton 3.6 and 3.9).  Widening
    bf16 to float32 is exact, and a float32 matmul of the widened values is what the GPU's bf16
    MMA with float32 accumulation computes, so the kernels' bf16 paths can be checked on CPU."""
    import numpy as np
    import triton.language as tl
    from triton.runtime import interpreter

    orig = interpreter.InterpreterBuilder.create_dot

    def widen(h):
        return (h.data.astype(np.uint32) << 16).view(np.float32)

    def create_dot(self, a, b, d, *args, **kwargs):
        if tl.bfloat16 not in (a.dtype, b.dtype):
            return orig(self, a, b, d, *args, **kwargs)
        a_data = widen(a) if a.dtype == tl.bfloat16 else a.data.astype(np.float32)
        b_data = widen(b) if b.dtype == tl.bfloat16 else b.data.astype(np.float32)
        return interpreter.TensorHandle(np.matmul(a_data, b_data, dtype=d.data.dtype) + d.data,
                                        d.dtype.scalar)

    monkeypatch.setattr(interpreter.InterpreterBuilder, "create_dot", create_dot)
