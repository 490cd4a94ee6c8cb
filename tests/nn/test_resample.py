"""fastgan.nn.resample: rosinality's Blur / Upsample / Downsample against the float64 upfirdn2d
oracle, their state dicts, layouts and gradients."""
import pytest
import torch

from fastgan.nn import Blur, Downsample, Upsample
from fastgan.ops import conv2d_resample, setup_filter
from tests._upfirdn2d_oracle import upfirdn2d_definition


def _kernel2d(k):
    """rosinality's make_kernel, written out: outer product of a 1-D kernel, divided by its sum."""
    k = torch.tensor(k, dtype=torch.float64)
    if k.dim() == 1:
        k = torch.outer(k, k)
    return k / k.sum()


@pytest.mark.parametrize("kernel,pad,factor", [
    ([1, 3, 3, 1], (2, 1), 1), ([1, 3, 3, 1], (1, 1), 2), ([1, 2, 1], (1, 1), 1),
    ([[1, 2], [3, 4]], (0, 1), 1), ([1, 3, 3, 1], (1, 0, 2, -1), 1),
])
def test_blur(kernel, pad, factor):
    m = Blur(kernel, pad=pad, upsample_factor=factor).double()
    x = torch.randn(2, 3, 8, 7, dtype=torch.float64)
    k = _kernel2d(kernel) * (factor ** 2 if factor > 1 else 1)
    p = [pad[0], pad[1], pad[0], pad[1]] if len(pad) == 2 else list(pad)
    torch.testing.assert_close(m.kernel, k)  # the float32 buffer, within rounding
    torch.testing.assert_close(m(x), upfirdn2d_definition(x, m.kernel, padding=p),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,factor", [([1, 3, 3, 1], 2), ([1, 2, 1], 2), ([1, 1], 2),
                                           ([1, 3, 3, 1], 4), ([1, 2, 3], 3)])
def test_upsample(kernel, factor):
    m = Upsample(kernel, factor=factor).double()
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(m.kernel, _kernel2d(kernel) * factor ** 2)
    p = len(kernel) - factor
    pad0, pad1 = (p + 1) // 2 + factor - 1, p // 2
    assert m.pad == (pad0, pad1) and m.factor == factor
    y = m(x)
    assert y.shape == (2, 3, 5 * factor, 6 * factor)
    torch.testing.assert_close(y, upfirdn2d_definition(x, m.kernel, up=factor,
                                                       padding=[pad0, pad1, pad0, pad1]),
                               rtol=1e-12, atol=1e-12)
    if len(kernel) == factor:  # then it is a full convolution: every image keeps its mean
        torch.testing.assert_close(y.mean((2, 3)), x.mean((2, 3)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,factor", [([1, 3, 3, 1], 2), ([1, 2, 1], 2), ([1, 1], 2),
                                           ([1, 3, 3, 1], 4), ([1, 2, 3], 3)])
def test_downsample(kernel, factor):
    m = Downsample(kernel, factor=factor).double()
    x = torch.randn(2, 3, 12, 13, dtype=torch.float64)
    p = len(kernel) - factor
    pad0, pad1 = (p + 1) // 2, p // 2
    assert m.pad == (pad0, pad1) and m.factor == factor
    y = m(x)
    assert y.shape == (2, 3, 12 // factor, 13 // factor)
    torch.testing.assert_close(m.kernel, _kernel2d(kernel))
    torch.testing.assert_close(y, upfirdn2d_definition(x, m.kernel, down=factor,
                                                       padding=[pad0, pad1, pad0, pad1]),
                               rtol=1e-12, atol=1e-12)


def test_constant_image_keeps_its_mean():
    c = 0.75
    x = torch.full((1, 2, 16, 16), c, dtype=torch.float64)
    # away from the zero-padded border every output pixel is exactly the constant
    for m in (Upsample([1, 3, 3, 1]), Downsample([1, 3, 3, 1]), Blur([1, 3, 3, 1], pad=(2, 1))):
        y = m.double()(x)
        inner = y[:, :, 2:-2, 2:-2]
        torch.testing.assert_close(inner, torch.full_like(inner, c), rtol=1e-12, atol=1e-12)
    for m in (Upsample([1, 1]), Upsample([1, 2, 1], 3), Downsample([1, 1])):  # box: overall too
        torch.testing.assert_close(m.double()(x).mean(), torch.tensor(c, dtype=torch.float64))


def test_state_dict_matches_rosinality():
    # rosinality registers the normalised kernel as a persistent buffer named 'kernel'
    for m in (Blur([1, 3, 3, 1], pad=(1, 1)), Upsample([1, 3, 3, 1]), Downsample([1, 3, 3, 1])):
        sd = m.state_dict()
        assert list(sd) == ["kernel"] and list(m.parameters()) == []
        assert sd["kernel"].dtype == torch.float32 and sd["kernel"].shape == (4, 4)
    # a checkpoint's buffer loads (strict) into a nested layer
    net = torch.nn.Sequential(Upsample([1, 3, 3, 1]), Blur([1, 3, 3, 1], pad=(2, 1)))
    ckpt = {"0.kernel": torch.ones(4, 4) / 4, "1.kernel": torch.ones(4, 4) / 16}
    net.load_state_dict(ckpt)
    torch.testing.assert_close(net[0].kernel, ckpt["0.kernel"])


def test_channels_last():
    x = torch.randn(2, 4, 8, 8)
    xc = x.contiguous(memory_format=torch.channels_last)
    for m in (Upsample([1, 3, 3, 1]), Downsample([1, 3, 3, 1]), Blur([1, 3, 3, 1], pad=(2, 1))):
        y = m(xc)
        assert y.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(y, m(x))


def test_gradients_flow():
    for m in (Upsample([1, 3, 3, 1]), Downsample([1, 3, 3, 1]),
              Blur([1, 3, 3, 1], pad=(2, 1), upsample_factor=2)):
        m = m.double()
        x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(m, (x,))
        assert torch.autograd.gradgradcheck(m, (x,))
        assert m.kernel.grad is None and not m.kernel.requires_grad


def test_impl_keyword_and_repr():
    m = Upsample([1, 3, 3, 1], impl="ref")
    x = torch.randn(1, 1, 4, 4)
    torch.testing.assert_close(m(x), Upsample([1, 3, 3, 1])(x))
    assert "factor=2" in repr(m)
    with pytest.raises(ValueError, match="factor must be an int >= 1"):
        Downsample([1, 3, 3, 1], factor=0)
    with pytest.raises(ValueError, match="factor must be an int >= 1"):
        Upsample([1, 3, 3, 1], factor=2.0)
    # numpy integer scalars are integers
    import numpy as np
    assert Upsample([1, 3, 3, 1], factor=np.int64(2))(x).shape == (1, 1, 8, 8)
    assert Downsample([1, 3, 3, 1], factor=np.int64(2)).factor.__class__ is int


def test_rosinality_upsampling_conv_is_conv2d_resample():
    # rosinality's ModulatedConv2d(upsample=True): conv_transpose2d(stride=2) then
    # Blur(pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2), p = (4 - 2) - (3 - 1) = 0 ...
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    blur = Blur([1, 3, 3, 1], pad=(1, 1), upsample_factor=2).double()
    y = blur(torch.nn.functional.conv_transpose2d(x, w.transpose(0, 1), stride=2))
    # ... is NVlabs' upsampling layer (a true convolution with w, 'same' padding k // 2)
    f = setup_filter([1, 3, 3, 1]).double()
    want = conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False)
    assert y.shape == want.shape == (2, 4, 10, 10)
    torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12)
