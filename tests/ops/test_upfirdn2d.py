"""upfirdn2d: reference path against the step-by-step float64 oracle, float64 gradcheck /
gradgradcheck, the NVlabs helpers (setup_filter, upsample2d, downsample2d, filter2d), layouts,
dtypes, bad input, torch.library registration (opcheck, torch.compile)."""
import random

import pytest
import torch

from fastgan.ops import (BackendUnavailableError, available_impls, downsample2d, filter2d,
                         setup_filter, upfirdn2d, upsample2d)
from tests._upfirdn2d_oracle import random_config, upfirdn2d_definition

N_RANDOM = 60


def _rel_err(a, e):
    a, e = a.double(), e.double()
    return ((a - e).norm() / e.norm().clamp_min(1e-30)).item()


def _config(i):
    """Random config i (seeded), its filter (None, 1-D or 2-D) and NVlabs-form arguments: up/down as
    an int when both axes agree (sometimes), padding as an int or [x, y] when it has that form."""
    rng = random.Random(1000 + i)
    cfg = random_config(rng)
    if i % 5 == 0:  # make some paddings symmetric so the short forms get exercised
        p = cfg["padding"]
        cfg["padding"] = [p[0], p[0], p[2], p[2]] if i % 10 == 0 else [p[0]] * 4
    h, w = cfg["hw"]
    g = torch.Generator().manual_seed(i)
    f = None if i % 13 == 7 else torch.randn(cfg["fshape"], generator=g, dtype=torch.float64)
    if f is None:  # identity filter: make sure the output stays non-empty
        cfg["padding"] = [max(v, 0) for v in cfg["padding"]]
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)

    def form(v):
        return v[0] if v[0] == v[1] and rng.random() < 0.7 else list(v)

    p = cfg["padding"]
    if p[0] == p[1] == p[2] == p[3] and rng.random() < 0.7:
        pad = p[0]
    elif p[0] == p[1] and p[2] == p[3] and rng.random() < 0.7:
        pad = [p[0], p[2]]
    else:
        pad = list(p)
    kw = dict(up=form(cfg["up"]), down=form(cfg["down"]), padding=pad,
              flip_filter=cfg["flip_filter"], gain=cfg["gain"])
    return x, f, kw


@pytest.mark.parametrize("i", range(N_RANDOM))
def test_ref_matches_oracle_random_float64(i):
    x, f, kw = _config(i)
    want = upfirdn2d_definition(x, f, **kw)
    got = upfirdn2d(x, f, impl="ref", **kw)
    assert got.dtype == torch.float64 and got.shape == want.shape, (kw, got.shape, want.shape)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=lambda m: f"{kw}: {m}")


@pytest.mark.parametrize("i", range(0, N_RANDOM, 2))
def test_ref_matches_oracle_random_float32(i):
    x, f, kw = _config(i)
    want = upfirdn2d_definition(x, f, **kw)
    got = upfirdn2d(x.float(), None if f is None else f.float(), impl="ref", **kw)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert _rel_err(got, want) < 1e-6, kw


def test_random_configs_cover_the_interesting_cases():
    kws = [_config(i) for i in range(N_RANDOM)]
    pads = [kw["padding"] for _, _, kw in kws]
    assert any(isinstance(p, int) for p in pads) and any(isinstance(p, list) and len(p) == 2
                                                         for p in pads)
    assert any(min(p if isinstance(p, list) else [p]) < 0 for p in pads)
    assert any(f is None for _, f, _ in kws)
    assert any(f is not None and f.dim() == 1 for _, f, _ in kws)
    assert any(isinstance(kw["up"], int) and kw["up"] > 1 for _, _, kw in kws)
    assert any(kw["flip_filter"] for _, _, kw in kws) and any(kw["gain"] != 1 for _, _, kw in kws)


def test_argument_forms_agree():
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    f = torch.randn(4, 3, dtype=torch.float64)
    base = upfirdn2d(x, f, up=[2, 2], down=[1, 1], padding=[1, 1, 1, 1])
    torch.testing.assert_close(upfirdn2d(x, f, up=2, padding=1), base, rtol=0, atol=0)
    torch.testing.assert_close(upfirdn2d(x, f, up=(2, 2), padding=(1, 1)), base, rtol=0, atol=0)
    torch.testing.assert_close(base, upfirdn2d_definition(x, f, up=2, padding=1))
    # x and y are distinct: [x, y] order for up / down, [x0, x1, y0, y1] for padding
    y = upfirdn2d(x, f, up=[1, 3], down=[2, 1], padding=[0, 2, -1, 1])
    assert y.shape == (2, 3, (7 * 3 - 1 + 1 - 4) // 1 + 1, (6 + 0 + 2 - 3) // 2 + 1)
    torch.testing.assert_close(y, upfirdn2d_definition(x, f, up=[1, 3], down=[2, 1],
                                                       padding=[0, 2, -1, 1]))


def test_none_and_0d_filters_are_identity_taps():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(upfirdn2d(x, None), x, rtol=0, atol=0)
    torch.testing.assert_close(upfirdn2d(x, None, gain=3.0), 3 * x)
    torch.testing.assert_close(upfirdn2d(x, torch.tensor(2.0, dtype=torch.float64)), 2 * x)
    # pure zero insertion / decimation / crop
    up = upfirdn2d(x, None, up=2)
    assert up.shape == (2, 3, 10, 8)
    torch.testing.assert_close(up[:, :, ::2, ::2], x)
    assert (up[:, :, 1::2] == 0).all() and (up[:, :, :, 1::2] == 0).all()
    torch.testing.assert_close(upfirdn2d(x, None, down=2), x[:, :, ::2, ::2])
    torch.testing.assert_close(upfirdn2d(x, None, padding=[-1, 0, -2, -1]), x[:, :, 2:-1, 1:])


def test_separable_filter_gain_applies_once():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    a = upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4.0)
    b = upfirdn2d(x, torch.outer(f, f), up=2, padding=[2, 1, 2, 1], gain=4.0)
    torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)


def test_true_convolution_vs_correlation():
    # an asymmetric filter on a single impulse writes out the (flipped or not) filter
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 2] = 1
    f = torch.arange(1.0, 7.0, dtype=torch.float64).reshape(2, 3)
    y = upfirdn2d(x, f, padding=[2, 2, 1, 1])       # pad (fw - 1, fh - 1) - (1, 1) ... full-ish
    corr = upfirdn2d(x, f, padding=[2, 2, 1, 1], flip_filter=True)
    yy = y[0, 0]
    nz = yy.nonzero()
    r0, c0 = nz.min(0).values.tolist()
    torch.testing.assert_close(yy[r0:r0 + 2, c0:c0 + 3], f)                # convolution
    cc = corr[0, 0]
    r0, c0 = cc.nonzero().min(0).values.tolist()
    torch.testing.assert_close(cc[r0:r0 + 2, c0:c0 + 3], f.flip([0, 1]))   # correlation


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------

GRAD_CASES = [  # (x shape, filter shape or None, kwargs)
    ((1, 2, 4, 5), (4,), dict(up=2, padding=[2, 1, 2, 1])),
    ((2, 1, 6, 5), (4, 4), dict(down=2, padding=1)),
    ((1, 2, 5, 4), (3, 2), dict(up=[3, 1], down=[1, 2], padding=[-1, 2, 0, -2], flip_filter=True,
                                gain=0.5)),
    ((1, 1, 5, 5), (5,), dict(up=2, down=3, padding=[3, 1, -2, 4], gain=2.0)),
    ((1, 2, 4, 4), None, dict(up=[2, 3], down=[3, 2], padding=[0, 1, 2, 0])),
    ((1, 1, 5, 9), (2, 5), dict(padding=[-2, -1, 0, -1], flip_filter=True)),
]


@pytest.mark.parametrize("case", range(len(GRAD_CASES)))
def test_ref_gradcheck_gradgradcheck(case):
    shape, fshape, kw = GRAD_CASES[case]
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    f = None if fshape is None else torch.randn(fshape, dtype=torch.float64)

    def fn(x):
        return upfirdn2d(x, f, impl="ref", **kw)

    assert fn(x).shape == upfirdn2d_definition(x, f, **kw).shape
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("i", range(0, N_RANDOM, 3))
def test_backward_matches_oracle_adjoint(i):
    # upfirdn2d is linear in x: <y, dy> must equal <x, dx> for every dy, with dx from autograd
    x, f, kw = _config(i)
    x = x.requires_grad_()
    y = upfirdn2d(x, f, impl="ref", **kw)
    dy = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, dy)
    assert dx.shape == x.shape
    lhs = (upfirdn2d_definition(x, f, **kw) * dy).sum()
    torch.testing.assert_close((x.detach() * dx).sum(), lhs, rtol=1e-12, atol=1e-12)


def test_third_order_gradients():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1]).double()

    def fn(x):
        return upsample2d(x, f).square().sum()

    (g,) = torch.autograd.grad(fn(x), x, create_graph=True)
    (h,) = torch.autograd.grad(g.square().sum(), x, create_graph=True)
    (k,) = torch.autograd.grad(h.sum(), x)
    assert k.shape == x.shape and torch.isfinite(k).all()


def test_filter_requires_grad_raises():
    x = torch.randn(1, 1, 4, 4)
    f = torch.ones(3, 3, requires_grad=True)
    with pytest.raises(ValueError, match="filter gradients are not supported"):
        upfirdn2d(x, f, padding=1)
    with torch.no_grad():  # no graph is built: nothing to refuse
        assert upfirdn2d(x, f, padding=1).shape == (1, 1, 4, 4)


# ---------------------------------------------------------------------------------------------
# NVlabs helpers
# ---------------------------------------------------------------------------------------------

HELPER_FILTERS = [None, [1, 3, 3, 1], [1, 2, 1], [1, 1], [[1, 2, 1], [2, 4, 2], [1, 2, 1]],
                  [[1, 2], [3, 4], [5, 6]], [1, 3, 5, 7, 7, 5, 3, 1]]


def _helper_filter(spec):
    return None if spec is None else setup_filter(spec).double()


def _fsize(f):
    if f is None:
        return 1, 1
    return (f.shape[0], f.shape[0]) if f.dim() == 1 else (f.shape[1], f.shape[0])


@pytest.mark.parametrize("spec", HELPER_FILTERS)
@pytest.mark.parametrize("up,padding", [(2, 0), ([2, 3], [1, 0, 0, -1]), (4, [1, -1])])
def test_upsample2d(spec, up, padding):
    f = _helper_filter(spec)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    fw, fh = _fsize(f)
    ux, uy = (up, up) if isinstance(up, int) else up
    p = padding if isinstance(padding, list) else [padding] * 2
    p = p * 1 if len(p) == 4 else [p[0], p[0], p[1], p[1]]
    want = upfirdn2d_definition(x, f, up=[ux, uy], gain=ux * uy, padding=[
        p[0] + (fw + ux - 1) // 2, p[1] + (fw - ux) // 2,
        p[2] + (fh + uy - 1) // 2, p[3] + (fh - uy) // 2])
    got = upsample2d(x, f, up=up, padding=padding)
    assert got.shape == (2, 3, 5 * uy + p[2] + p[3], 6 * ux + p[0] + p[1])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", HELPER_FILTERS)
@pytest.mark.parametrize("down,padding", [(2, 0), ([2, 3], [1, 0, 0, -1]), (3, [2, 1])])
def test_downsample2d(spec, down, padding):
    f = _helper_filter(spec)
    x = torch.randn(2, 3, 12, 13, dtype=torch.float64)
    fw, fh = _fsize(f)
    dx, dy = (down, down) if isinstance(down, int) else down
    p = padding if isinstance(padding, list) else [padding] * 2
    p = p * 1 if len(p) == 4 else [p[0], p[0], p[1], p[1]]
    want = upfirdn2d_definition(x, f, down=[dx, dy], padding=[
        p[0] + (fw - dx + 1) // 2, p[1] + (fw - dx) // 2,
        p[2] + (fh - dy + 1) // 2, p[3] + (fh - dy) // 2])
    got = downsample2d(x, f, down=down, padding=padding)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    if down == 2 and padding == 0:
        assert got.shape == (2, 3, 6, 6)  # floor(13 / 2)


@pytest.mark.parametrize("spec", HELPER_FILTERS)
@pytest.mark.parametrize("padding", [0, [1, 0, -1, 2]])
def test_filter2d(spec, padding):
    f = _helper_filter(spec)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    fw, fh = _fsize(f)
    p = [padding] * 4 if isinstance(padding, int) else padding
    want = upfirdn2d_definition(x, f, gain=1.5, flip_filter=True, padding=[
        p[0] + fw // 2, p[1] + (fw - 1) // 2, p[2] + fh // 2, p[3] + (fh - 1) // 2])
    got = filter2d(x, f, padding=padding, gain=1.5, flip_filter=True)
    assert got.shape == (2, 3, 7 + p[2] + p[3], 6 + p[0] + p[1])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_resampling_keeps_the_mean_of_a_constant_image():
    f = setup_filter([1, 3, 3, 1])
    x = torch.full((1, 2, 16, 16), 0.75)
    up = upsample2d(x, f)
    down = downsample2d(x, f)
    assert up.shape == (1, 2, 32, 32) and down.shape == (1, 2, 8, 8)
    # away from the zero-padded border the image stays exactly constant
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.full_like(up[:, :, 2:-2, 2:-2], 0.75))
    torch.testing.assert_close(down[:, :, 1:-1, 1:-1],
                               torch.full_like(down[:, :, 1:-1, 1:-1], 0.75))
    torch.testing.assert_close(filter2d(x, f)[:, :, 2:-2, 2:-2],
                               torch.full((1, 2, 12, 12), 0.75))


def test_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    assert f.dtype == torch.float32 and f.shape == (4, 4)
    torch.testing.assert_close(f, torch.outer(torch.tensor([1., 3, 3, 1]),
                                              torch.tensor([1., 3, 3, 1])) / 64)
    torch.testing.assert_close(f.sum(), torch.tensor(1.0))
    # no normalisation; gain on the 2-D filter
    torch.testing.assert_close(setup_filter([1, 2], normalize=False, gain=3),
                               3 * torch.tensor([[1., 2], [2, 4]]))
    # separable: default only for >= 8 taps; gain ** 0.5 per axis
    f8 = setup_filter([1.0] * 8)
    assert f8.shape == (8,)
    torch.testing.assert_close(f8, torch.full((8,), 1 / 8))
    fs = setup_filter([1, 2, 1], separable=True, gain=4)
    torch.testing.assert_close(fs, torch.tensor([1., 2, 1]) / 4 * 2)
    assert setup_filter([1.0] * 8, separable=False).shape == (8, 8)
    # flip
    torch.testing.assert_close(setup_filter([[1, 2], [3, 4]], normalize=False, flip_filter=True),
                               torch.tensor([[4., 3], [2, 1]]))
    torch.testing.assert_close(setup_filter([1, 2, 5], normalize=False, separable=True,
                                            flip_filter=True), torch.tensor([5., 2, 1]))
    # None and scalars
    torch.testing.assert_close(setup_filter(None), torch.ones(1, 1))
    torch.testing.assert_close(setup_filter(2.0, normalize=False), torch.full((1, 1), 4.0))
    assert setup_filter(torch.tensor([1., 2, 1], dtype=torch.float64), device="cpu").dtype == \
        torch.float32
    with pytest.raises(ValueError, match="0-, 1- or 2-D"):
        setup_filter(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="separable=True"):
        setup_filter([[1, 2], [3, 4]], separable=True)


def test_nvlabs_module_spelling():
    x = torch.randn(1, 2, 4, 4)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    torch.testing.assert_close(upfirdn2d.upsample2d(x, f), upsample2d(x, f))
    torch.testing.assert_close(upfirdn2d.upfirdn2d(x, f, padding=1), upfirdn2d(x, f, padding=1))
    assert upfirdn2d._get_filter_size(f) == (4, 4)
    assert upfirdn2d._get_filter_size(torch.ones(3, 5)) == (5, 3)
    assert upfirdn2d._parse_padding([1, 2]) == (1, 1, 2, 2)
    assert upfirdn2d._parse_scaling(2) == (2, 2)


# ---------------------------------------------------------------------------------------------
# layouts, dtypes, edge cases
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fshape", [(4,), (3, 4)])
def test_channels_last_in_channels_last_out(fshape):
    x = torch.randn(2, 5, 7, 6, dtype=torch.float64)
    f = torch.randn(fshape, dtype=torch.float64)
    xcl = x.contiguous(memory_format=torch.channels_last)
    kw = dict(up=2, down=[1, 2], padding=[1, 2, -1, 0])
    y = upfirdn2d(xcl, f, **kw)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    torch.testing.assert_close(y, upfirdn2d_definition(x, f, **kw), rtol=1e-12, atol=1e-12)
    assert upfirdn2d(x, f, **kw).is_contiguous()
    # gradients too
    xg = xcl.clone().requires_grad_()
    (dx,) = torch.autograd.grad(upfirdn2d(xg, f, **kw).sum(), xg)
    xr = x.clone().requires_grad_()
    (dref,) = torch.autograd.grad(upfirdn2d(xr, f, **kw).sum(), xr)
    torch.testing.assert_close(dx, dref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fshape,down", [((4,), [4, 1]), ((4, 4), [4, 1]), ((4,), 4)])
def test_one_channel_channels_last_float32(fshape, down):
    # one channel with channels_last strides (35, 1, 7, 1): PyTorch's float32 CPU convolution
    # mis-reads it when the output is one pixel wide (torch 2.13), so ref gives it NCHW strides
    x = torch.randn(3, 1, 5, 7)
    xcl = torch.empty(x.shape, memory_format=torch.channels_last).copy_(x)
    f = torch.randn(fshape)
    y = upfirdn2d(xcl, f, down=down, flip_filter=True, impl="ref")
    want = upfirdn2d_definition(x.double(), f.double(), down=down, flip_filter=True)
    torch.testing.assert_close(y.double(), want, rtol=1e-5, atol=1e-5)
    # the same through NVlabs' helper with StyleGAN's filter: four one-channel 3 x 3 images
    img = torch.randn(4, 1, 3, 3)
    img_cl = torch.empty(img.shape, memory_format=torch.channels_last).copy_(img)
    k = setup_filter([1, 3, 3, 1])
    torch.testing.assert_close(downsample2d(img_cl, k, impl="ref"),
                               downsample2d(img, k, impl="ref"), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", ["sliced", "transposed", "expanded", "cl_sliced"])
def test_non_contiguous_input(layout):
    base = torch.randn(2, 3, 12, 9, dtype=torch.float64)
    x = {"sliced": base[:, :, ::2],
         "transposed": torch.randn(2, 3, 9, 6, dtype=torch.float64).transpose(2, 3),
         "expanded": base[:1].expand(2, 3, 12, 9),
         "cl_sliced": base.contiguous(memory_format=torch.channels_last)[:, :, 1:-1]}[layout]
    f = torch.randn(3, 3, dtype=torch.float64)
    kw = dict(up=[1, 2], down=2, padding=[1, 1, 2, 0], flip_filter=True)
    y = upfirdn2d(x, f, **kw)
    assert y.is_contiguous()
    torch.testing.assert_close(y, upfirdn2d_definition(x.contiguous(), f, **kw), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_ref_half_types(dtype):
    x = torch.randn(2, 4, 9, 8)
    f = setup_filter([1, 3, 3, 1])
    y = upsample2d(x.to(dtype), f, impl="ref")
    assert y.dtype == dtype
    want = upfirdn2d_definition(x.to(dtype), f, up=2, padding=[2, 1, 2, 1], gain=4)
    # computed in float32, rounded once
    assert _rel_err(y, want) < {torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
    xg = x.to(dtype).requires_grad_()
    upsample2d(xg, f).sum().backward()
    assert xg.grad.dtype == dtype and xg.grad.shape == xg.shape


def test_float32_filter_with_float64_input_and_back():
    x64 = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    f32 = torch.randn(3, 3)
    torch.testing.assert_close(upfirdn2d(x64, f32, padding=1),
                               upfirdn2d_definition(x64, f32.double(), padding=1),
                               rtol=1e-12, atol=1e-12)
    x32 = x64.float()
    assert upfirdn2d(x32, f32.double(), padding=1).dtype == torch.float32


def test_nan_propagates():
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    x[0, 1, 3, 4] = float("nan")
    f = setup_filter([1, 3, 3, 1]).double()
    for fn in (lambda t: upsample2d(t, f), lambda t: downsample2d(t, f),
               lambda t: filter2d(t, f), lambda t: upfirdn2d(t, f, up=3, down=2, padding=-1)):
        y = fn(x)
        assert y.isnan().any() and not y[0, 0].isnan().any()
        assert y[0, 1].isnan().sum() < y[0, 1].numel()  # only the pixel's footprint


def test_empty_batch_and_channels():
    f = setup_filter([1, 3, 3, 1])
    for shape in [(0, 3, 4, 4), (2, 0, 4, 4)]:
        x = torch.randn(shape, requires_grad=True)
        y = upsample2d(x, f)
        assert y.shape == shape[:2] + (8, 8)
        y.sum().backward()
        assert x.grad.shape == x.shape


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=torch.randn(3, 4, 4)), ValueError, r"x must be 4-D.*\(3, 4, 4\)"),
    (dict(x=torch.randn(1, 1, 1, 4, 4)), ValueError, "x must be 4-D"),
    (dict(f=torch.ones(1, 2, 2)), ValueError, r"f must be 0-, 1- or 2-D.*\(1, 2, 2\)"),
    (dict(f=torch.ones(0)), ValueError, "at least one tap"),
    (dict(f=[1.0, 2.0]), TypeError, "f must be a torch.Tensor"),
    (dict(f=torch.ones(3, dtype=torch.int64)), TypeError, "f must be a floating"),
    (dict(up=0), ValueError, "up must be >= 1, got 0"),
    (dict(up=[2, 0]), ValueError, r"up must be >= 1, got \[2, 0\]"),
    (dict(down=-1), ValueError, "down must be >= 1"),
    (dict(up=[1, 2, 3]), ValueError, r"up must be an int or a list of 2 ints.*3 values"),
    (dict(down=[2]), ValueError, "down must be an int or a list of 2"),
    (dict(up=1.5), ValueError, "up must be made of ints"),
    (dict(padding=[1, 2, 3]), ValueError, r"padding must be an int, \[x, y\] or \[x0, x1, y0, y1\]"),
    (dict(padding=[1, 2, 3, 4, 5]), ValueError, "padding must be"),
    (dict(padding=-3), ValueError, r"output would be empty.*x is 4 x 4"),
    (dict(f=torch.ones(7, 2)), ValueError, r"output would be empty.*filter 7 x 2"),
    (dict(down=8, padding=[0, 0, -4, 0]), ValueError, "output would be empty"),
    (dict(impl="numba"), ValueError, "impl"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(x=torch.randn(1, 2, 4, 4), f=torch.ones(3, 3) / 9)
    args.update(kwargs)
    x, f = args.pop("x"), args.pop("f")
    with pytest.raises(exc, match=match):
        upfirdn2d(x, f, **args)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.uint8])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        upfirdn2d(torch.ones(1, 1, 4, 4, dtype=dtype), None)


def test_bad_type_and_device():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        upfirdn2d([[1.0]], None)
    with pytest.raises(ValueError, match="f must be on x's device cpu, got meta"):
        upfirdn2d(torch.randn(1, 1, 4, 4), torch.ones(3, 3, device="meta"))


def test_helpers_validate_too():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="upsample2d: up must be >= 1"):
        upsample2d(x, None, up=0)
    with pytest.raises(ValueError, match="downsample2d: padding must be"):
        downsample2d(x, None, padding=[1, 2, 3])
    with pytest.raises(ValueError, match="filter2d: f must be 0-, 1- or 2-D"):
        filter2d(x, torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="output would be empty"):
        downsample2d(x, setup_filter([1, 3, 3, 1]), down=2, padding=-2)


def test_stale_cuda_extension_without_the_op(monkeypatch):
    # a fastgan._C built before upfirdn2d existed: impl=None skips it, impl='cuda' explains
    import sys
    mod = sys.modules["fastgan.ops.upfirdn2d"]  # (fastgan.ops.upfirdn2d is the function)
    monkeypatch.delenv("FASTGAN_IMPL", raising=False)
    monkeypatch.setattr(mod, "resolve_impl", lambda impl, device, **kw: "cuda")
    monkeypatch.setattr(mod, "_cuda_ext_has_op", lambda: False)
    assert mod._resolve(None, torch.device("cpu")) in ("ref", "triton")
    with pytest.raises(BackendUnavailableError, match="has no upfirdn2d.*rebuild"):
        mod._resolve("cuda", torch.device("cpu"))
    monkeypatch.setenv("FASTGAN_IMPL", "cuda")
    with pytest.raises(BackendUnavailableError, match="FASTGAN_IMPL='cuda'"):
        mod._resolve(None, torch.device("cpu"))


def test_unavailable_backends_raise_on_cpu():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(BackendUnavailableError):
        upfirdn2d(x, None, impl="cuda")
    if not available_impls("cpu")["triton"]:
        with pytest.raises(BackendUnavailableError, match="TRITON_INTERPRET"):
            upfirdn2d(x, None, impl="triton")


# ---------------------------------------------------------------------------------------------
# torch.library registration
# ---------------------------------------------------------------------------------------------

def _op_samples():
    def r(*shape, cl=False):
        t = torch.randn(shape, dtype=torch.float64)
        if cl:
            t = t.contiguous(memory_format=torch.channels_last)
        return t.requires_grad_()

    f1 = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8
    f2 = torch.randn(3, 2, dtype=torch.float64)
    return [
        # x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain, impl
        (r(2, 3, 5, 4), f1, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0, "ref"),
        (r(2, 3, 8, 6, cl=True), f2, 1, 1, 2, 2, 1, 0, -1, 1, True, 1.0, "ref"),
        (r(1, 2, 5, 5), f2, 3, 2, 2, 3, -2, 3, 1, -1, False, 0.5, "ref"),
        (r(1, 2, 7, 5)[:, :, ::2], f1.float(), 1, 1, 1, 1, 1, 2, 2, 1, False, 1.0, "ref"),
        (torch.randn(2, 2, 6, 6), f1.float(), 2, 2, 2, 2, 1, 1, 1, 1, True, 2.0, "ref"),
        (torch.randn(2, 2, 6, 6, dtype=torch.bfloat16), torch.ones(1, 1), 1, 1, 2, 1, 0, 0, 0, 0,
         False, 1.0, "ref"),
    ]


@pytest.mark.parametrize("i", range(6))
def test_opcheck(i):
    torch.library.opcheck(torch.ops.fastgan.upfirdn2d.default, _op_samples()[i])


def test_torch_compile_fullgraph_forward_backward():
    torch._dynamo.reset()
    f = setup_filter([1, 3, 3, 1])

    def layer(x):
        y = upsample2d(x, f)
        y = filter2d(y * 0.5, f, padding=[1, -1, 0, 0])
        return downsample2d(y, f) + upfirdn2d(x, None, padding=[1, 1, 1, 1])[:, :, 1:-1, 1:-1]

    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    for shape in [(2, 3, 6, 6), (1, 3, 5, 7)]:
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        y1, y2 = layer(x), compiled(x2)
        torch.testing.assert_close(y2, y1)
        y1.square().sum().backward()
        y2.square().sum().backward()
        torch.testing.assert_close(x2.grad, x.grad)


def test_torch_compile_no_graph_break():
    torch._dynamo.reset()
    x = torch.randn(2, 4, 6, 6)
    f = setup_filter([1, 3, 3, 1])
    explanation = torch._dynamo.explain(
        lambda x: downsample2d(upsample2d(x, f), f, padding=[1, 0, 1, 0]) + 1)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
