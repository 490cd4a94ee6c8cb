"""fastgan.nn.MinibatchStdDev against a direct loop over the sample groups (and rosinality's
formula), layouts, dtypes and bad input."""
import pytest
import torch

from fastgan.nn import MinibatchStdDev

D = torch.float64


def _loop_def(x, group_size, num_channels):
    """For each sample n: the samples m = n (mod N / G) form its group; per feature slice f the
    population std over the group of every (channel, pixel), + 1e-8 under the root, averaged."""
    n, c, h, w = x.shape
    g = n if group_size is None else min(group_size, n)
    m = n // g
    cf = c // num_channels
    out = torch.empty(n, num_channels, h, w, dtype=x.dtype)
    for i in range(n):
        members = [j for j in range(n) if j % m == i % m]
        assert len(members) == g
        grp = x[members]  # [G, C, H, W]
        for f in range(num_channels):
            sl = grp[:, f * cf:(f + 1) * cf]
            var = ((sl - sl.mean(0)) ** 2).mean(0)
            out[i, f] = (var + 1e-8).sqrt().mean()
    return torch.cat([x, out], 1)


def _rosinality(x, stddev_group, stddev_feat):
    batch, channel, height, width = x.shape
    group = min(batch, stddev_group)
    stddev = x.view(group, -1, stddev_feat, channel // stddev_feat, height, width)
    stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
    stddev = stddev.mean([2, 3, 4], keepdims=True).squeeze(2)
    stddev = stddev.repeat(group, 1, height, width)
    return torch.cat([x, stddev], 1)


@pytest.mark.parametrize("n,group_size,num_channels", [
    (8, 4, 1), (8, 4, 2), (6, None, 1), (3, 4, 1), (8, 2, 4), (4, 1, 1), (12, 3, 2),
])
def test_vs_loop(n, group_size, num_channels):
    x = torch.randn(n, 4, 3, 5, dtype=D) * 2 + 1
    m = MinibatchStdDev(group_size, num_channels)
    y = m(x)
    assert y.shape == (n, 4 + num_channels, 3, 5) and y.dtype == D
    torch.testing.assert_close(y, _loop_def(x, group_size, num_channels), rtol=1e-12, atol=1e-12)
    if group_size is not None:
        torch.testing.assert_close(y, _rosinality(x, group_size, num_channels), rtol=1e-12,
                                   atol=1e-12)


def test_dtypes_layout_and_gradients():
    x = torch.randn(8, 6, 4, 4)
    m = MinibatchStdDev(4, 2)
    want = _loop_def(x.double(), 4, 2)
    y = m(x.contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, want.float())
    for dt in (torch.float16, torch.bfloat16):  # statistics in float32, output in x's dtype
        yh = m(x.to(dt))
        assert yh.dtype == dt
        torch.testing.assert_close(yh.float(), _loop_def(x.to(dt).double(), 4, 2).float(),
                                   rtol=1e-2, atol=1e-2)
    xg = torch.randn(4, 2, 3, 3, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(MinibatchStdDev(2), (xg,))
    assert list(m.state_dict()) == [] and list(m.parameters()) == []


def test_bad_input():
    with pytest.raises(ValueError, match=r"batch size N = 6 .* group size G = .* = 4"):
        MinibatchStdDev(4)(torch.randn(6, 4, 3, 3))
    with pytest.raises(ValueError, match="C = 5 channels must be divisible by num_channels = 2"):
        MinibatchStdDev(4, 2)(torch.randn(4, 5, 3, 3))
    with pytest.raises(ValueError, match=r"x must be a float tensor \[N, C, H, W\]"):
        MinibatchStdDev()(torch.randn(4, 3, 3))
    with pytest.raises(ValueError, match="group_size must be an int >= 1"):
        MinibatchStdDev(0)
