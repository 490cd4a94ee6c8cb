import pytest
import torch

from fastgan.nn import FusedLeakyReLU


@pytest.mark.parametrize("slope,scale", [(0.2, 2 ** 0.5), (0.1, 1.0)])
def test_fused_leaky_relu_module(slope, scale):
    m = FusedLeakyReLU(6, negative_slope=slope, scale=scale).double()
    assert m.bias.shape == (6,) and torch.equal(m.bias, torch.zeros(6, dtype=torch.float64))
    with torch.no_grad():
        m.bias.normal_()
    x = torch.randn(3, 6, 4, 4, dtype=torch.float64, requires_grad=True)
    want = torch.nn.functional.leaky_relu(x + m.bias.view(1, -1, 1, 1), slope) * scale
    torch.testing.assert_close(m(x), want)
    assert torch.autograd.gradcheck(m, (x,))
    assert torch.autograd.gradgradcheck(m, (x,))
    assert set(dict(m.named_parameters())) == {"bias"}  # rosinality state-dict layout


def test_fused_leaky_relu_module_no_bias_and_channels_last():
    m = FusedLeakyReLU(4, bias=False)
    x = torch.randn(2, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    y = m(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, torch.nn.functional.leaky_relu(x, 0.2) * 2 ** 0.5)
