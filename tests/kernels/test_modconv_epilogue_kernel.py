"""The modulated-conv epilogue and coefficient Triton kernels under TRITON_INTERPRET=1 on CPU
tensors against float64 definitions: every act with and without clamp, d / noise / bias present or
absent, noise broadcast forms (expanded views with stride 0, a permuted view), NCHW and
channels_last, odd sizes, NaN propagation."""
import math

import pytest
import torch

from fastgan.ops import ACTIVATIONS
from fastgan.ops.bias_act import _ref_act

pytestmark = pytest.mark.interpret
CL = torch.channels_last


def _k():
    import fastgan.kernels.modconv_epilogue as k
    return k


def _definition(c, d, noise, b, act, alpha, gain, clamp):
    v = c.double()
    if d is not None:
        v = v * d.double()[:, :, None, None]
    if noise is not None:
        v = v + noise.double()
    if b is not None:
        v = v + b.double()[None, :, None, None]
    v = _ref_act(v, act, alpha) * gain
    return v.clamp(-clamp, clamp) if clamp >= 0 else v


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("clamp", [-1.0, 0.6])
def test_epilogue_every_act(dtype, fmt, act, clamp):
    n, o, h, w = 2, 5, 3, 7
    c = torch.randn(n, o, h, w, dtype=dtype).contiguous(memory_format=fmt)
    d = torch.rand(n, o, dtype=dtype) + 0.5
    noise = torch.randn(n, 1, h, w, dtype=torch.float32).expand(n, o, h, w)
    b = torch.randn(o, dtype=dtype)
    alpha, gain = (0.2, math.sqrt(2)) if act == "lrelu" else (0.0, 1.3)
    y = torch.full_like(c, float("nan"))
    _k().modconv_epilogue_triton(y, c, d, noise, b, ACTIVATIONS[act].id, alpha, gain, clamp)
    want = _definition(c, d, noise, b, act, alpha, gain, clamp)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(y.double(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL])
@pytest.mark.parametrize("has_d,noise_kind,has_b", [
    (False, None, False), (True, None, False), (False, "shared", True), (True, "full", True),
    (True, "per_channel", False), (False, "permuted", True)])
def test_epilogue_optional_inputs_and_noise_forms(fmt, has_d, noise_kind, has_b):
    n, o, h, w = 3, 4, 5, 6
    c = torch.randn(n, o, h, w).contiguous(memory_format=fmt)
    d = torch.rand(n, o) + 0.5 if has_d else None
    b = torch.randn(o) if has_b else None
    noise = None
    if noise_kind == "shared":
        noise = torch.randn(1, 1, h, w).expand(n, o, h, w)
    elif noise_kind == "full":
        noise = torch.randn(n, o, h, w, dtype=torch.float64)
    elif noise_kind == "per_channel":
        noise = torch.randn(n, o, 1, 1).expand(n, o, h, w)
    elif noise_kind == "permuted":
        noise = torch.randn(w, h, o, n).permute(3, 2, 1, 0)
    y = torch.full_like(c, float("nan"))
    _k().modconv_epilogue_triton(y, c, d, noise, b, ACTIVATIONS["lrelu"].id, 0.2, 1.4, -1.0)
    torch.testing.assert_close(y.double(), _definition(c, d, noise, b, "lrelu", 0.2, 1.4, -1.0),
                               rtol=2e-6, atol=2e-6)


def test_epilogue_nan_propagates():
    c = torch.randn(2, 3, 4, 4)
    c[1, 2, 3, 0] = float("nan")
    y = torch.empty_like(c)
    _k().modconv_epilogue_triton(y, c, torch.rand(2, 3) + 0.5, None, torch.randn(3),
                                 ACTIVATIONS["lrelu"].id, 0.2, 1.4, 0.5)
    assert torch.isnan(y[1, 2, 3, 0]) and torch.isnan(y).sum() == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,i,o", [(2, 3, 4), (3, 1, 7), (1, 70, 65), (5, 130, 3)])
def test_dcoefs(dtype, n, i, o):
    s = torch.randn(n, i, dtype=dtype)
    wsq = torch.rand(o, i, dtype=dtype)
    d = torch.full((n, o), float("nan"), dtype=dtype)
    _k().modconv_dcoefs_triton(d, s, wsq, 1e-8)
    want = 1 / (s.double().square() @ wsq.double().t() + 1e-8).sqrt()
    tol = 1e-13 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(d.double(), want, rtol=tol, atol=0)
