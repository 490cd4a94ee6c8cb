"""fastgan.ops.compat.rosinality: rosinality/stylegan2-pytorch's op signatures against the
float64 upfirdn2d oracle (pad=(p0, p1) pads both axes by p0 before and p1 after)."""
import pytest
import torch

from fastgan.ops.compat import rosinality
from fastgan.ops.compat.rosinality import (FusedLeakyReLU, fused_leaky_relu, make_kernel,
                                           upfirdn2d)
from tests._upfirdn2d_oracle import upfirdn2d_definition


@pytest.mark.parametrize("up,down,pad", [
    (1, 1, (0, 0)), (2, 1, (2, 1)), (1, 2, (1, 1)), (2, 2, (1, 2)), (1, 1, (-1, 2)),
    (3, 1, (1, 0)), ((2, 1), (1, 2), (1, 0, 2, -1)),
])
def test_upfirdn2d_matches_oracle(up, down, pad):
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    k = torch.rand(4, 3, dtype=torch.float64) + 0.1   # asymmetric: catches a flip or axis swap
    y = upfirdn2d(x, k, up=up, down=down, pad=pad)
    nv_pad = [pad[0], pad[1], pad[0], pad[1]] if len(pad) == 2 else list(pad)
    torch.testing.assert_close(y, upfirdn2d_definition(x, k, up=up, down=down, padding=nv_pad),
                               rtol=1e-12, atol=1e-12)


def test_upfirdn2d_positional_call_and_float32():
    # rosinality's calls are positional for input/kernel and keyword for the rest
    x = torch.randn(1, 2, 8, 8)
    k = make_kernel([1, 3, 3, 1]) * 4
    y = upfirdn2d(x, k, up=2, pad=(2, 1))
    assert y.shape == (1, 2, 16, 16) and y.dtype == torch.float32
    torch.testing.assert_close(y.double(), upfirdn2d_definition(x, k, up=2, padding=[2, 1, 2, 1]))


def test_upfirdn2d_kernel_is_not_differentiated():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    k = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    upfirdn2d(x, k, pad=(1, 1)).sum().backward()
    assert x.grad is not None and k.grad is None


@pytest.mark.parametrize("kernel,pad,match", [
    (torch.ones(3), (1, 1), "kernel must be a 2-D tensor"),
    ([[1.0]], (1, 1), "kernel must be a 2-D tensor"),
    (torch.ones(3, 3), (1, 1, 1), "pad must be"),
    (torch.ones(3, 3), 1, "pad must be"),
])
def test_upfirdn2d_bad_input(kernel, pad, match):
    with pytest.raises(ValueError, match=match):
        upfirdn2d(torch.randn(1, 1, 5, 5), kernel, pad=pad)


def test_make_kernel():
    k = make_kernel([1, 3, 3, 1])
    want = torch.tensor([1.0, 3, 3, 1])
    assert k.dtype == torch.float32 and k.shape == (4, 4)
    torch.testing.assert_close(k, torch.outer(want, want) / 64)
    k2 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(make_kernel(k2), k2 / 10)
    assert torch.equal(k2, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))  # input left alone
    with pytest.raises(ValueError, match="sum to 0"):
        make_kernel([1.0, -1.0])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        make_kernel(torch.ones(2, 2, 2))


def test_fused_leaky_relu():
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    want = torch.nn.functional.leaky_relu(x + b.view(1, -1, 1, 1), 0.2) * 2 ** 0.5
    torch.testing.assert_close(fused_leaky_relu(x, b), want)
    torch.testing.assert_close(fused_leaky_relu(x, b.float()), want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fused_leaky_relu(x, None, 0.1, 1.0),
                               torch.nn.functional.leaky_relu(x, 0.1))
    assert FusedLeakyReLU is __import__("fastgan").nn.FusedLeakyReLU
    assert set(rosinality.__all__) >= {"upfirdn2d", "fused_leaky_relu", "FusedLeakyReLU"}
