"""conv2d_resample: every execution path against the general order written out with the float64
upfirdn2d oracle, gradients (first and second order), bad input, torch.compile."""
import pytest
import torch

from fastgan.ops import conv2d_resample
from tests._upfirdn2d_oracle import upfirdn2d_definition


def _pad4(p):
    if isinstance(p, int):
        return [p, p, p, p]
    if len(p) == 2:
        return [p[0], p[0], p[1], p[1]]
    return list(p)


def reference(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True,
              flip_filter=False):
    """The NVlabs definition, in the general (slow) order, in float64:
    zero-insert by ``up`` + pad + FIR (gain up^2)  ->  conv2d with w  ->  FIR + decimate by ``down``."""
    if f is None:
        fw = fh = 1
    else:
        fw, fh = f.shape[-1], f.shape[0]
    px0, px1, py0, py1 = _pad4(padding)
    if up > 1:   # centre the upsampling filter
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:  # centre the downsampling filter
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    y = upfirdn2d_definition(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1],
                             flip_filter=flip_filter, gain=up ** 2)
    w = w.detach().to(torch.float64)
    y = torch.nn.functional.conv2d(y, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        y = upfirdn2d_definition(y, f, down=down, flip_filter=flip_filter)
    return y


def _filter(kind):
    g = torch.Generator().manual_seed(7)
    if kind is None:
        return None
    if kind == "1d":      # asymmetric separable filter (odd number of taps)
        return torch.rand(5, generator=g) + 0.1
    if kind == "1d4":     # [1, 3, 3, 1]-like even separable filter, asymmetric
        return torch.rand(4, generator=g) + 0.1
    return torch.rand(3, 4, generator=g) + 0.1  # asymmetric non-square 2-D filter [fh=3, fw=4]


# (name, kernel (kh, kw), f, up, down, padding, groups) -- name says which path runs
CASES = [
    ("1x1_down", (1, 1), "1d4", 1, 2, 0, 1),
    ("1x1_down_pad", (1, 1), "2d", 1, 2, [1, 0, 2, -1], 1),
    ("1x1_up", (1, 1), "1d4", 2, 1, 0, 1),
    ("1x1_up_pad", (1, 1), "2d", 3, 1, [0, 2, -1, 1], 1),
    ("down", (3, 3), "1d4", 1, 2, 0, 1),
    ("down_2d_rect", (3, 2), "2d", 1, 2, [1, 2, 0, 1], 1),
    ("down3", (3, 3), "1d", 1, 3, 1, 2),
    ("up", (3, 3), "1d4", 2, 1, 0, 1),
    ("up_pad", (3, 3), "1d4", 2, 1, 1, 1),
    ("up_2d_rect", (2, 3), "2d", 2, 1, [0, 1, 2, 0], 1),
    ("up_crop", (3, 3), "1d", 2, 1, [-3, -2, -4, -1], 1),     # exercises the transposed crop
    ("up4", (3, 3), "1d", 4, 1, 0, 1),
    ("up_groups", (3, 3), "1d4", 2, 1, 0, 2),
    ("up_groups3", (3, 2), "2d", 2, 1, [1, 0, -1, 2], 3),
    ("up_down", (3, 3), "1d4", 2, 2, 0, 1),
    ("up_down_mixed", (3, 3), "1d", 3, 2, [1, -1, 0, 2], 2),
    ("up1x1_down", (1, 1), "1d4", 2, 2, 0, 1),                # 1x1 with both goes the transposed way
    ("plain", (3, 3), None, 1, 1, 1, 1),
    ("plain_pad_xy", (3, 5), "1d", 1, 1, [2, 1], 1),          # f is ignored without resampling
    ("plain_groups", (3, 3), None, 1, 1, 0, 3),
    ("fallback_asym", (3, 3), None, 1, 1, [2, 0, 1, 3], 1),
    ("fallback_neg", (2, 3), "2d", 1, 1, [-1, 2, 1, -2], 3),
    ("no_filter_down", (3, 3), None, 1, 2, 1, 1),             # f=None: plain decimation
    ("no_filter_up", (3, 3), None, 2, 1, 0, 1),               # f=None: zero insertion only
]


@pytest.mark.parametrize("name,k,fkind,up,down,padding,groups", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("flip_weight", [True, False])
@pytest.mark.parametrize("flip_filter", [False, True])
def test_matches_definition(name, k, fkind, up, down, padding, groups, flip_weight, flip_filter):
    c_in, c_out = 2 * groups, 3 * groups
    x = torch.randn(2, c_in, 7, 9, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, *k, dtype=torch.float64)
    f = _filter(fkind)
    kw = dict(f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight,
              flip_filter=flip_filter)
    y = conv2d_resample(x, w, **kw)
    want = reference(x, w, **kw)
    assert y.dtype == torch.float64 and y.shape == want.shape
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-10)


def test_flips_matter():
    # the asymmetric weight / filter make both flags observable (guards against a vacuous test)
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    f = _filter("1d4")
    for up, down in [(2, 1), (1, 2), (2, 2)]:
        base = conv2d_resample(x, w, f, up=up, down=down)
        assert not torch.allclose(base, conv2d_resample(x, w, f, up=up, down=down,
                                                        flip_weight=False))
        assert not torch.allclose(base, conv2d_resample(x, w, f, up=up, down=down,
                                                        flip_filter=True))


@pytest.mark.parametrize("up,down,k,groups", [(1, 2, 3, 1), (2, 1, 3, 2), (2, 2, 1, 1),
                                              (1, 1, 3, 1)])
def test_output_size_and_float32(up, down, k, groups):
    # the stylegan2 layer shapes: [1, 3, 3, 1] filter, 'same' padding k // 2
    from fastgan.ops.upfirdn2d import setup_filter
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(2, 4 * groups, 8, 8)
    w = torch.randn(5 * groups, 4, k, k)
    y = conv2d_resample(x, w, f, up=up, down=down, padding=k // 2, groups=groups)
    assert y.shape == (2, 5 * groups, 8 * up // down, 8 * up // down) and y.dtype == torch.float32
    want = reference(x, w, f, up=up, down=down, padding=k // 2, groups=groups)
    torch.testing.assert_close(y.double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("up,down,k,padding,groups", [
    (1, 2, 3, 1, 1),            # strided conv path
    (2, 1, 3, 1, 2),            # transposed conv path, grouped
    (2, 2, 2, [1, 0, 0, 1], 1),  # transposed + downsample
    (1, 2, 1, 0, 1),            # 1x1 down
    (2, 1, 1, 0, 1),            # 1x1 up
    (1, 1, 3, [1, 0, 2, -1], 1),  # fallback
])
def test_gradcheck(up, down, k, padding, groups):
    f = _filter("1d4").double()
    x = torch.randn(1, groups, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2 * groups, 1, k, k, dtype=torch.float64, requires_grad=True)

    def fn(x, w):
        return conv2d_resample(x, w, f, up=up, down=down, padding=padding, groups=groups,
                               flip_weight=False)

    assert torch.autograd.gradcheck(fn, (x, w))
    assert torch.autograd.gradgradcheck(fn, (x, w))


def test_channels_last_input():
    from fastgan.ops.upfirdn2d import setup_filter
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    xc = x.contiguous(memory_format=torch.channels_last)
    for up, down, padding in [(1, 1, 1), (1, 1, [1, 0, 2, 0]), (2, 1, 1), (1, 2, 1), (2, 2, 1)]:
        y = conv2d_resample(xc, w, f, up=up, down=down, padding=padding)
        assert y.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(y, conv2d_resample(x, w, f, up=up, down=down, padding=padding),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda x, w: conv2d_resample(x[0], w), "x must be 4-D"),
    (lambda x, w: conv2d_resample(x, w[0]), "w must be 4-D"),
    (lambda x, w: conv2d_resample(x[:, :3], w), "x has 3 channels"),
    (lambda x, w: conv2d_resample(x, w, groups=4), "divisible by groups"),
    (lambda x, w: conv2d_resample(x, w, groups=2), "x has 4 channels"),
    (lambda x, w: conv2d_resample(x, w, groups=0), "groups must be an int >= 1"),
    (lambda x, w: conv2d_resample(x, w, up=0), "up must be an int >= 1"),
    (lambda x, w: conv2d_resample(x, w, down=1.5), "down must be an int >= 1"),
    (lambda x, w: conv2d_resample(x, w, up=[2, 2]), "up must be an int >= 1"),
    (lambda x, w: conv2d_resample(x, w, padding=[1, 2, 3]), "padding must be"),
    (lambda x, w: conv2d_resample(x, w, f=torch.ones(1, 1, 3)), "f must be"),
])
def test_bad_input(call, match):
    x, w = torch.randn(2, 4, 6, 6), torch.randn(6, 4, 3, 3)
    with pytest.raises(ValueError, match=match):
        call(x, w)


def test_torch_compile_fullgraph():
    from fastgan.ops.upfirdn2d import setup_filter
    torch._dynamo.reset()
    f = setup_filter([1, 3, 3, 1])

    def layer(x, w_up, w_down):
        y = conv2d_resample(x, w_up, f, up=2, padding=1)                # transposed path
        return conv2d_resample(y, w_down, f, down=2, padding=1, groups=2)  # strided path

    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    w_up = torch.randn(4, 4, 3, 3, requires_grad=True)
    w_down = torch.randn(6, 2, 3, 3, requires_grad=True)
    args2 = [t.detach().clone().requires_grad_() for t in (x, w_up, w_down)]
    y1, y2 = layer(x, w_up, w_down), compiled(*args2)
    assert y1.shape == (2, 6, 6, 6)
    torch.testing.assert_close(y2, y1, rtol=1e-4, atol=1e-4)
    y1.square().sum().backward()
    y2.square().sum().backward()
    for a, b in zip((x, w_up, w_down), args2):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-4)


def test_nvlabs_module_spelling():
    # NVlabs: `from torch_utils.ops import conv2d_resample; conv2d_resample.conv2d_resample(x=...)`
    x, w = torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3)
    y = conv2d_resample.conv2d_resample(x=x, w=w, f=None, up=1, down=1, padding=1, groups=1,
                                        flip_weight=True, flip_filter=False)
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w, padding=1))
