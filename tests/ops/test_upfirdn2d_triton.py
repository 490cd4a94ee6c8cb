"""upfirdn2d Triton kernels under TRITON_INTERPRET=1 on CPU tensors, against the step-by-step oracle
(tests/_upfirdn2d_oracle.py): the kernel contract directly -- every fast-path (up, down) combination,
filters of 1..13 taps, the general path, padding of both signs, layouts, strides, NaN/Inf, both
offset widths, chunked grids -- and the public op with impl='triton' (forward, backward, double
backward) against impl='ref'.  Shapes stay tiny: the interpreter is slow."""
import itertools
import random

import pytest
import torch

from tests._upfirdn2d_oracle import upfirdn2d_definition

pytestmark = pytest.mark.interpret

TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
MODES = [(1, 1), (2, 1), (4, 1), (1, 2), (1, 4)]  # per-axis (up, down) of the fast paths
CL = torch.channels_last
NCHW = torch.contiguous_format


def _k():
    import fastgan.kernels.upfirdn2d as k
    return k


def _out_size(size, up, down, pad0, pad1, taps):
    return (size * up + pad0 + pad1 - taps) // down + 1


def run(x, f, up=(1, 1), down=(1, 1), pad0=(0, 0), out_hw=None, out_format=None, tol=None,
        expect_nan=False):
    """upfirdn2d_triton into a NaN-poisoned ``out`` versus the float64 oracle; returns out.
    ``out_hw`` defaults to the size that padding |pad0| on the far side gives (at least 1)."""
    (upx, upy), (dx, dy), (px0, py0) = up, down, pad0
    n, c, h, w = x.shape
    fh, fw = f.shape
    if out_hw is None:  # as if padded by |pad0| on the far side
        out_hw = (max(1, _out_size(h, upy, dy, py0, abs(py0), fh)),
                  max(1, _out_size(w, upx, dx, px0, abs(px0), fw)))
    oh, ow = out_hw
    # the far-side padding that makes the definition produce exactly (oh, ow) outputs
    px1 = (ow - 1) * dx + fw - w * upx - px0
    py1 = (oh - 1) * dy + fh - h * upy - py0
    want = upfirdn2d_definition(x, f, up=[upx, upy], down=[dx, dy], padding=[px0, px1, py0, py1],
                                flip_filter=True)
    assert tuple(want.shape[2:]) == (oh, ow)
    if out_format is None:
        out_format = CL if (x.dim() == 4 and x.stride(1) == 1 and x.shape[1] > 1) else NCHW
    out = torch.full((n, c, oh, ow), float("nan"), dtype=x.dtype).contiguous(memory_format=out_format)
    kf = f.to(torch.float64 if x.dtype == torch.float64 else torch.float32).contiguous()
    _k().upfirdn2d_triton(out, x, kf, upx, upy, dx, dy, px0, py0)
    tol = TOL[x.dtype] if tol is None else tol
    if not expect_nan:
        assert not out.isnan().any(), "an output was never written (or a NaN appeared)"
    finite = want[want.isfinite()]
    scale = finite.abs().max().item() if finite.numel() else 1.0
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol * scale, equal_nan=True)
    return out


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles small enough that images of a few dozen pixels have interior (unmasked) tiles, border
    tiles and tiles straddling the shifted phase grid."""
    k = _k()
    monkeypatch.setattr(k, "nchw_config", lambda *a, **k: (2, 8, 1))
    monkeypatch.setattr(k, "nhwc_config", lambda *a, **k: (2, 4, 2, 1))


def _filt(fh, fw, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(fh, fw, generator=g, dtype=dtype)


# --------------------------------------------------------------------------------------------
# StyleGAN2 cases (NVlabs upsample2d / downsample2d / filter2d padding)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", [NCHW, CL])
def test_stylegan2_cases(dtype, fmt):
    f1 = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    f4 = torch.outer(f1, f1) / f1.sum() ** 2
    b1 = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    f3 = torch.outer(b1, b1) / 16
    x = torch.randn(2, 3, 10, 12, dtype=dtype).contiguous(memory_format=fmt)
    # upsample2d(up=2): pad (fw + up - 1) // 2 = 2 before, (fw - up) // 2 = 1 after, gain up^2
    run(x, f4 * 4, up=(2, 2), pad0=(2, 2), out_hw=(20, 24))
    # downsample2d(down=2): pad (fw - down + 1) // 2 = 1 on both sides
    run(x, f4, down=(2, 2), pad0=(1, 1), out_hw=(5, 6))
    # filter2d with a 3x3 blur: same size; and the 4x4 blur of the upsampling conv (pad 2 / 1)
    run(x, f3, pad0=(1, 1), out_hw=(10, 12))
    run(x, f4, pad0=(2, 2), out_hw=(11, 13))


# --------------------------------------------------------------------------------------------
# every fast-path combination, interior and border tiles, both layouts
# --------------------------------------------------------------------------------------------

COMBOS = list(itertools.product(MODES, MODES))


@pytest.mark.parametrize("mx,my", COMBOS)
def test_fast_path_combinations(mx, my, small_tiles):
    # NCHW for all 25 (x, y) mode pairs, channels_last for every third (and so for each mode per axis)
    rng = random.Random(hash((mx, my)) & 0xFFFF)
    fh, fw = rng.randint(1, 5), rng.randint(1, 5)
    px0, py0 = rng.randint(-2, 4), rng.randint(-2, 4)
    up, down = (mx[0], my[0]), (mx[1], my[1])
    assert _k()._is_fast(up[0], up[1], down[0], down[1], fh, fw)
    h = 8 * my[1] + 4 // my[0] + 2
    w = 24 * mx[1] + 20 // mx[0]
    x = torch.randn(1, 2, h, w, dtype=torch.float64)
    run(x, _filt(fh, fw), up=up, down=down, pad0=(px0, py0))
    if COMBOS.index((mx, my)) % 3 == 0:
        run(x.contiguous(memory_format=CL), _filt(fh, fw), up=up, down=down, pad0=(px0, py0))


@pytest.mark.parametrize("mx,my", [((2, 1), (2, 1)), ((1, 2), (1, 2)), ((1, 1), (1, 1)),
                                   ((4, 1), (1, 4)), ((1, 4), (4, 1))])
@pytest.mark.parametrize("fmt", [NCHW, CL])
def test_fast_path_default_tiles(mx, my, fmt):
    # the launcher's own tile choice on an image a little larger than one tile
    up, down = (mx[0], my[0]), (mx[1], my[1])
    x = torch.randn(1, 3, 19, 70, dtype=torch.float32).contiguous(memory_format=fmt)
    run(x, _filt(4, 4), up=up, down=down, pad0=(2, 1))


@pytest.mark.parametrize("taps", list(range(1, 14)))
def test_filter_sizes(taps):
    # 1..12 taps per axis take the fast paths, 13 the general one; square and non-square filters
    rng = random.Random(taps)
    mx, my = rng.choice(MODES), rng.choice(MODES)
    up, down = (mx[0], my[0]), (mx[1], my[1])
    other = rng.randint(1, taps)
    assert _k()._is_fast(up[0], up[1], down[0], down[1], taps, other) == (taps <= 12)
    # about the same output size whatever the upsampling (the interpreter's cost)
    x = torch.randn(1, 2, 12 // up[1] + 3, 14 // up[0] + 3, dtype=torch.float64)
    for fh, fw in ((taps, other), (other, taps)):
        pad = (fw // 2, fh // 2)
        run(x, _filt(fh, fw, seed=fh * 16 + fw), up=up, down=down, pad0=pad)
    run(x.contiguous(memory_format=CL), _filt(taps, other), up=up, down=down, pad0=(1, taps - 1))


# --------------------------------------------------------------------------------------------
# general path
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up,down,fshape", [
    ((3, 3), (1, 1), (5, 5)), ((1, 1), (3, 3), (4, 4)), ((3, 1), (1, 2), (3, 4)),
    ((2, 2), (2, 2), (4, 4)), ((2, 1), (3, 1), (6, 2)), ((1, 1), (1, 1), (13, 3)),
    ((5, 2), (2, 3), (7, 7)), ((2, 2), (1, 1), (4, 16)), ((8, 1), (1, 1), (3, 3)),
])
@pytest.mark.parametrize("fmt", [NCHW, CL])
def test_general_path(up, down, fshape, fmt):
    assert not _k()._is_fast(up[0], up[1], down[0], down[1], *fshape)
    x = torch.randn(2, 3, 8, 11, dtype=torch.float64).contiguous(memory_format=fmt)
    for pad in [(0, 0), (3, -1), (-2, 5)]:
        run(x, _filt(*fshape), up=up, down=down, pad0=pad)


# --------------------------------------------------------------------------------------------
# padding, sizes, layouts, strides
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pad0", [(0, 0), (3, 1), (-1, -2), (-3, 4), (7, -5)])
@pytest.mark.parametrize("up,down", [((2, 2), (1, 1)), ((1, 1), (2, 2)), ((4, 1), (1, 4))])
def test_padding(pad0, up, down):
    x = torch.randn(1, 2, 11, 14, dtype=torch.float64)
    f = _filt(4, 5)
    run(x, f, up=up, down=down, pad0=pad0)
    # an output size unrelated to the padding: the far side crops or pads as it must
    run(x, f, up=up, down=down, pad0=pad0, out_hw=(5, 17))
    run(x.contiguous(memory_format=CL), f, up=up, down=down, pad0=pad0, out_hw=(9, 3))


def test_padding_beyond_the_image():
    # every tap of most outputs lands in the padding (zeros); some outputs see no pixel at all
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    run(x, _filt(3, 3), up=(2, 2), pad0=(9, 11), out_hw=(30, 31))
    run(x, _filt(3, 3), down=(2, 2), pad0=(-7, -6), out_hw=(3, 3))


@pytest.mark.parametrize("x_fmt,out_fmt", [(NCHW, CL), (CL, NCHW), (CL, CL), (NCHW, NCHW)])
@pytest.mark.parametrize("up,down", [((2, 2), (1, 1)), ((1, 1), (2, 2)), ((3, 1), (1, 1))])
def test_layouts(x_fmt, out_fmt, up, down):
    x = torch.randn(2, 5, 9, 10, dtype=torch.float64).contiguous(memory_format=x_fmt)
    run(x, _filt(4, 4), up=up, down=down, pad0=(2, 1), out_format=out_fmt)


@pytest.mark.parametrize("kind", ["w_stride", "c_slice", "h_slice_cl", "transposed", "expanded"])
@pytest.mark.parametrize("up,down", [((2, 2), (1, 1)), ((1, 1), (2, 2))])
def test_strided_inputs(kind, up, down):
    base = torch.randn(2, 6, 18, 22, dtype=torch.float64)
    if kind == "w_stride":      # W stride 2: general path
        x = base[:, :, :, ::2]
    elif kind == "c_slice":     # W-contiguous, odd channel and row strides: NCHW fast path
        x = base[:, 1::2, 3:14]
    elif kind == "h_slice_cl":  # channels_last rows sliced: C-contiguous fast path
        x = base.contiguous(memory_format=CL)[:, :, ::3]
    elif kind == "transposed":  # H and W swapped
        x = base.transpose(2, 3)
    else:                       # a broadcast (stride 0) batch
        x = base[:1].expand(3, 6, 18, 22)
    assert not x.is_contiguous() and not x.is_contiguous(memory_format=CL)
    run(x, _filt(3, 4), up=up, down=down, pad0=(1, 2), out_format=NCHW)


def test_single_pixel_dims():
    for shape in [(1, 1, 1, 1), (2, 1, 1, 7), (1, 3, 6, 1), (3, 2, 1, 1)]:
        for fmt in (NCHW, CL):
            x = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=fmt)
            run(x, _filt(3, 3), up=(2, 2), pad0=(1, 1))
            run(x, _filt(2, 2), down=(2, 2), pad0=(1, 1))


def test_empty():
    k = _k()
    f = _filt(3, 3, torch.float32)
    for n, c, oh, ow in [(0, 3, 4, 4), (2, 0, 4, 4), (2, 3, 0, 4)]:
        out = torch.empty(n, c, oh, ow)
        k.upfirdn2d_triton(out, torch.randn(n, c, 5, 5), f, 1, 1, 1, 1, 1, 1)
    # an empty image: every output is zero
    out = torch.full((1, 2, 3, 4), float("nan"))
    k.upfirdn2d_triton(out, torch.randn(1, 2, 0, 0), f, 2, 2, 1, 1, 1, 1)
    assert (out == 0).all()


# --------------------------------------------------------------------------------------------
# NaN / Inf, dtypes
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up,down,fshape", [((2, 2), (1, 1), (4, 4)), ((1, 1), (2, 2), (4, 4)),
                                            ((1, 1), (1, 1), (3, 3)), ((3, 3), (1, 1), (3, 3))])
@pytest.mark.parametrize("fmt", [NCHW, CL])
def test_nan_and_inf_propagate_exactly(up, down, fshape, fmt, small_tiles):
    x = torch.randn(1, 2, 12, 26, dtype=torch.float64)
    x[0, 0, 5, 7] = float("nan")
    x[0, 1, 0, 0] = float("inf")    # a corner pixel: only border tiles read it
    x[0, 1, 9, 16] = float("-inf")
    x = x.contiguous(memory_format=fmt)
    out = run(x, _filt(*fshape), up=up, down=down, pad0=(1, 2), expect_nan=True)
    # the oracle multiplies the non-finite pixel into exactly the outputs whose taps reach it;
    # everything else stays finite (no 0 * NaN from masked or phase-invalid taps)
    assert out.isnan().any() and out.isfinite().any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fmt", [NCHW, CL])
def test_half_types(dtype, fmt):
    x = torch.randn(2, 3, 9, 10).to(dtype).contiguous(memory_format=fmt)
    f = _filt(4, 4, torch.float32) / 4
    for up, down in [((2, 2), (1, 1)), ((1, 1), (2, 2)), ((3, 1), (1, 1))]:
        out = run(x, f, up=up, down=down, pad0=(2, 1))
        assert out.dtype == dtype


# --------------------------------------------------------------------------------------------
# launcher mechanics: 64-bit offsets, grids split over several launches
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [NCHW, CL, "strided"])
def test_int64_offsets_match(fmt, monkeypatch):
    # force the 64-bit offset variants (the launcher picks them past 2**31) on small tensors
    base = torch.randn(2, 3, 9, 13, dtype=torch.float64)
    x = base[:, :, :, ::2] if fmt == "strided" else base.contiguous(memory_format=fmt)
    monkeypatch.setattr(_k(), "_I32_LIMIT", 0)
    run(x, _filt(4, 4), up=(2, 2), pad0=(2, 1))
    run(x, _filt(4, 4), down=(2, 2), pad0=(1, 1))


@pytest.mark.parametrize("fmt", [NCHW, CL, "general"])
def test_grid_split_over_launches(fmt, monkeypatch):
    # more programs than one launch allows: the pid offset carries on where the last launch ended
    monkeypatch.setattr(_k(), "_MAX_GRID", 3)
    x = torch.randn(2, 3, 10, 9, dtype=torch.float64)
    if fmt == CL:
        x = x.contiguous(memory_format=CL)
    up = (3, 1) if fmt == "general" else (2, 2)
    run(x, _filt(3, 3), up=up, pad0=(1, 1))


# --------------------------------------------------------------------------------------------
# the public op: impl='triton' against impl='ref', forward and two orders of derivatives
# --------------------------------------------------------------------------------------------

def _op_value_grads(impl, x, f, **kw):
    from fastgan.ops import upfirdn2d

    x = x.detach().clone().requires_grad_(True)
    y = upfirdn2d(x, f, impl=impl, **kw)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.dtype).requires_grad_(True)
    (dx,) = torch.autograd.grad(y, x, w, create_graph=True)
    v = torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)
    # d<dx, v>/dw (the backward's backward) and, through the graph, d<dx, v>/dx (zero: linear op)
    (dw,) = torch.autograd.grad(dx, w, v)
    return y.detach(), dx.detach(), dw.detach()


OP_CASES = [
    dict(up=2, padding=[2, 1, 2, 1], gain=4.0),          # upsample2d
    dict(down=2, padding=1),                             # downsample2d
    dict(padding=1, flip_filter=True),                   # filter2d
    dict(up=[1, 2], down=[2, 1], padding=[0, 1, 2, -1]),
    dict(up=3, down=2, padding=[1, 2, 3, 0]),            # general path both ways
]


@pytest.mark.parametrize("kw", OP_CASES)
@pytest.mark.parametrize("separable", [True, False])
def test_op_triton_vs_ref(kw, separable):
    pytest.importorskip("fastgan.ops.upfirdn2d")
    g = torch.Generator().manual_seed(1)
    dtype = torch.float64
    f = (torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=dtype) if separable
         else torch.randn(4, 3, generator=g, dtype=dtype))
    x = torch.randn(2, 3, 9, 8, generator=g, dtype=dtype)
    _compare_op(x.contiguous(memory_format=CL) if separable else x, f, **kw)


@pytest.mark.parametrize("kw", OP_CASES[:2])
def test_op_triton_vs_ref_float32(kw):
    pytest.importorskip("fastgan.ops.upfirdn2d")
    x = torch.randn(2, 3, 9, 8)
    _compare_op(x, torch.tensor([1.0, 3.0, 3.0, 1.0]), **kw)


def _compare_op(x, f, **kw):
    tol = TOL[x.dtype]
    got = _op_value_grads("triton", x, f, **kw)
    want = _op_value_grads("ref", x, f, **kw)
    for a, e in zip(got, want):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, rtol=tol, atol=tol * e.abs().max().item())
    assert got[0].stride() == want[0].stride()
