"""GPU tier for adain: the triton and cuda backends against the float64 reference on CUDA tensors
(skipped without a CUDA device; a backend that is not built/installed is reported as a failure, not a
skip, when FASTGAN_REQUIRE_ALL_BACKENDS=1).

Forward, backward and double backward (a gradient penalty through the op) are compared as relative
norms against ``impl='ref'`` run in float64 on the same (rounded) inputs; the reference itself is
checked against an independent oracle and by gradcheck in tests/ops/test_adain.py.  The shapes
cover every launch plan of both backends: whole planes in one tile / block, planes looped over
tiles, planes split across programs + combine, NCHW and channels_last, vectorised and scalar
(misaligned / odd-size) paths."""
import math
import sys

import pytest
import torch

from fastgan.ops import adain, available_impls
from tests._adain_oracle import assert_rel_norm_list, value_grads
from tests._gpu import need_impl

pytestmark = pytest.mark.gpu

FUSED = ["triton", "cuda"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# ||impl - ref(fp64)|| / ||ref||: half types store y / dx rounded; bf16 has an 8-bit mantissa
TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float64: 1e-12}


def _layout(x, layout):
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def _inputs(shape, dtype, layout, param_dtype=None, shift=0.5):
    n, c = shape[:2]
    x = _layout((torch.randn(shape, device="cuda") * 2 + shift).to(dtype), layout)
    pd = param_dtype or dtype
    g = (torch.randn(n, c, device="cuda") + 1).to(pd)
    b = torch.randn(n, c, device="cuda").to(pd)
    return x, g, b


def _zero_scale(x, g, want):
    """For 1x1 planes (M = 1) the reference's x gradients are exactly zero, but the kernels form
    dx = k * dy + c2 + c3 * (x - mean) with c2 = -k * sum(dy) / M, and a fused multiply-add
    fma(k, dy, c2) leaves the rounding error of k * dy (emulated on CPU: ~1e-7 relative in float32,
    ~1e-16 in float64), which a relative norm against zero would fail.  So those are measured
    against ||gamma * rstd * dy||, the size of the terms that cancel (assert_rel_norm_list's
    zero_scale) -- there dy = dbeta (one pixel) and rstd = 1 / sqrt(0 + eps); in the
    double backward the x gradient's dy is dbeta again (d penalty / d dbeta = 2 dbeta, through
    d(0.25 y^2) / dy = 0.5 y).  None for larger planes (no exactly-zero reference)."""
    if x.shape[2] * x.shape[3] != 1 or g.numel() == 0:
        return None
    return (g.double().abs().max() / math.sqrt(1e-5) * want[3].double().norm()).item()


def _loss_scale(x):
    """A power of two by which the tested output is scaled before the loss of value_grads, for
    float16 planes of more than 8192 pixels: that loss (y * w + 0.25 * y^2) makes dgamma and dbeta
    grow like 0.5 * M * gamma (beta), which overflows float16 (65504) at M = 256^2 for |gamma| > 2
    (impl='ref' in float16 on CPU: max |dgamma| 1.2e5 -> inf; 4.2e4 at 136^2) -- a correct kernel
    must return inf there too.  With y * s the sums are ~0.5 * s^2 * M * gamma <= 2048 * gamma.
    Exact (a power of two), and applied to the float64 reference alike."""
    m = x.shape[2] * x.shape[3]
    if x.dtype != torch.float16 or m <= 8192:
        return 1.0
    return 2.0 ** -math.ceil(math.log2(m / 8192) / 2)


def _compare(impl, x, g, b, second_order=True, what="", prep=None):
    """``prep``: applied (differentiably) to the x leaf before the tested call only, to give the op
    an x that value_grads' detach().clone() of the leaf would not keep (a storage offset, strides
    that are not dense)."""
    prep = prep or (lambda t: t)
    s = _loss_scale(x)
    got = value_grads(lambda x, g, b: adain(prep(x), g, b, impl=impl) * s, x, g, b,
                      second_order=second_order, rounding=x.dtype)
    want = value_grads(lambda x, g, b: adain(x, g, b, impl="ref") * s, x.double(), g.double(),
                       b.double(), second_order=second_order, rounding=x.dtype)
    got[0], want[0] = got[0] / s, want[0] / s  # exact
    dense = x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)
    assert got[0].dtype == x.dtype, what
    assert got[0].stride() == (x if dense else x.contiguous()).stride(), what
    assert got[2].dtype == g.dtype and got[3].dtype == b.dtype, what
    # the rounded dy of a half-type loss adds its own error: judge first order at 2x
    # (ref in the same dtype on CPU, every shape and layout below: max error / tol = 0.04 (fp32,
    # second order included), 0.13 (fp16), 0.13 (bf16))
    tol = TOL[x.dtype] * (1 if x.dtype in (torch.float32, torch.float64) else 2)
    assert_rel_norm_list(got, want, tol, what=f"{impl} {x.dtype} {what}",
                         zero_scale=_zero_scale(x, g, want))


# (label, shape): every plan of both backends at small sizes (H100: 132 SMs)
SHAPES = [
    ("4x4-many-planes", (8, 64, 4, 4)),
    ("odd", (3, 5, 7, 9)),
    ("64^2-one-tile", (2, 16, 64, 64)),
    ("136^2-loop", (16, 64, 136, 136)),  # NCHW: 5 tiles a plane, no split
    ("256^2-split", (1, 4, 256, 256)),
    ("1x1", (2, 3, 1, 1)),
    ("c3", (2, 3, 33, 31)),
]


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("label,shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_vs_reference(impl, dtype, layout, label, shape):
    need_impl(impl)
    x, g, b = _inputs(shape, dtype, layout)
    _compare(impl, x, g, b, second_order=dtype == torch.float32, what=f"{layout} {label}")


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_float32_params_with_half_x(impl, dtype):
    need_impl(impl)
    for layout in ("contiguous", "channels_last"):
        x, g, b = _inputs((4, 16, 32, 32), dtype, layout, param_dtype=torch.float32)
        _compare(impl, x, g, b, second_order=False, what=layout)


@pytest.mark.parametrize("impl", FUSED)
def test_float64(impl):
    need_impl(impl)
    for label, shape in SHAPES:
        for layout in ("contiguous", "channels_last"):
            x, g, b = _inputs(shape, torch.float64, layout)
            got = value_grads(lambda x, g, b: adain(x, g, b, impl=impl), x, g, b)
            want = value_grads(lambda x, g, b: adain(x, g, b, impl="ref"), x, g, b)
            # two correct float64 evaluations (ref on NCHW vs channels_last, ref vs the autograd
            # oracle) differ by <= 7e-16 on these shapes, second order included
            assert_rel_norm_list(got, want, TOL[torch.float64], what=f"{impl} {layout} {label}",
                                 zero_scale=_zero_scale(x, g, want))


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [(1, 2, 1024, 1024), (2, 8, 64, 64), (32, 32, 32, 32)])
def test_large_mean_statistics(impl, layout, shape):
    """x = 1000 + randn, a big plane included: E[x^2] - E[x]^2 in float32 would be off by ~6%."""
    need_impl(impl)
    n, c = shape[:2]
    x = _layout(1000 + torch.randn(shape, device="cuda"), layout)
    g, b = torch.randn(n, c, device="cuda"), torch.randn(n, c, device="cuda")
    stats = sys.modules["fastgan.ops.adain"].adain_with_stats
    y, mean, rstd = stats(x, g, b, impl=impl)
    xd = x.double()
    mu = xd.mean((2, 3), keepdim=True)
    var = ((xd - mu) ** 2).mean((2, 3))
    torch.testing.assert_close(mean.double(), mu[:, :, 0, 0], rtol=2e-7, atol=0)
    torch.testing.assert_close(rstd.double(), 1 / torch.sqrt(var + 1e-5), rtol=1e-5, atol=0)
    yd = (xd - mu) * (g.double() / torch.sqrt(var + 1e-5))[..., None, None] + b.double()[..., None, None]
    torch.testing.assert_close(y.double(), yd, rtol=0, atol=3e-4)


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_many_small_planes(impl, layout):
    # N * C = 70000 planes of 20 pixels
    need_impl(impl)
    x, g, b = _inputs((7, 10000, 4, 5), torch.float32, layout)
    _compare(impl, x, g, b, second_order=False, what=layout)


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_misaligned_storage(impl, layout):
    # a storage offset of one element: no 16-byte vectors (scalar path of the cuda kernels)
    need_impl(impl)
    shape = (2, 16, 12, 12)
    numel = 2 * 16 * 12 * 12
    buf = torch.randn(numel + 1, device="cuda", dtype=torch.float16)
    if layout == "contiguous":
        x = buf[1:].view(shape)
    else:
        x = buf[1:].view(2, 12, 12, 16).permute(0, 3, 1, 2)
        assert x.is_contiguous(memory_format=torch.channels_last)
    g, b = torch.randn(2, 16, device="cuda").half() + 1, torch.randn(2, 16, device="cuda").half()
    # value_grads clones its leaves (storage offset 0, aligned): re-create the offset for the op
    _compare(impl, x, g, b, second_order=False, what=layout, prep=_misaligned)


def _misaligned(t):
    """t's values and layout (NCHW or channels_last) at storage offset 1 of a new buffer, as a
    differentiable view: the kernels see an x that is not 16-byte aligned."""
    cl = not t.is_contiguous()
    flat = (t.permute(0, 2, 3, 1) if cl else t).reshape(-1)
    v = torch.cat([flat.new_zeros(1), flat])[1:]
    n, c, h, w = t.shape
    out = v.view(n, h, w, c).permute(0, 3, 1, 2) if cl else v.view(n, c, h, w)
    assert out.storage_offset() == 1 and out.data_ptr() % 16 != 0 and out.stride() == t.stride()
    return out


def _strided(t):
    """t's values as a differentiable view with H stride 2 W (neither NCHW- nor channels_last-dense):
    value_grads' clone of a non-dense leaf is contiguous, so the op would never see one."""
    out = torch.stack((t, torch.zeros_like(t)), 3).flatten(2, 3)[:, :, ::2]
    assert not (out.is_contiguous() or out.is_contiguous(memory_format=torch.channels_last))
    return out


@pytest.mark.parametrize("impl", FUSED)
def test_non_dense_input(impl):
    need_impl(impl)
    x = torch.randn(2, 8, 24, 18, device="cuda")[:, :, ::2]
    g, b = torch.randn(2, 8, device="cuda"), torch.randn(2, 8, device="cuda")
    _compare(impl, x, g, b, prep=_strided)


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_nan_propagates_to_its_plane(impl, layout):
    need_impl(impl)
    for shape in [(2, 4, 16, 16), (1, 2, 512, 512)]:
        x, g, b = _inputs(shape, torch.float32, layout)
        x[0, 1, 5, 7] = float("nan")
        y = adain(x, g, b, impl=impl)
        assert y[0, 1].isnan().all()
        y[0, 1] = 0
        assert not y.isnan().any()


def test_default_impl_on_cuda(monkeypatch):
    monkeypatch.delenv("FASTGAN_IMPL", raising=False)
    x, g, b = _inputs((2, 3, 8, 8), torch.float32, "contiguous")
    torch.testing.assert_close(adain(x, g, b), adain(x, g, b, impl="ref"), rtol=1e-5, atol=1e-5)
    chosen = sys.modules["fastgan.ops.adain"]._resolve(None, x.device)
    if any(available_impls("cuda")[name] for name in FUSED):
        assert chosen in FUSED


def test_ref_on_cuda_matches_definition():
    from tests._adain_oracle import definition
    x, g, b = _inputs((2, 3, 9, 7), torch.float64, "contiguous")
    torch.testing.assert_close(adain(x, g, b, impl="ref"), definition(x, g, b), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.bigmem
@pytest.mark.slow
@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_over_2_pow_31_elements(impl, layout):
    need_impl(impl)
    shape = (2, 16, 8192, 8193)  # 2 * 16 * 8192 * 8193 = 2**31 + 262144 elements
    numel = 2 * 16 * 8192 * 8193
    assert numel > 2 ** 31
    need = 5 * numel * 2 + (2 << 30)  # x (and its channels_last copy), y, dy, dx in fp16 + slack
    free, _ = torch.cuda.mem_get_info()
    if free < need:
        pytest.skip(f"needs ~{need / 2**30:.0f} GiB free GPU memory, have {free / 2**30:.0f}")
    x = _layout(torch.randn(shape, device="cuda", dtype=torch.float16), layout)
    g = torch.randn(2, 16, device="cuda", dtype=torch.float16) + 1
    b = torch.randn(2, 16, device="cuda", dtype=torch.float16)
    xr = x.requires_grad_()
    y = adain(xr, g, b, impl=impl)
    dy = torch.ones_like(y)  # d/dx of sum(y) is 0: any int32 wrap shows up as garbage
    dy[:, :, ::2] = -1
    (dx,) = torch.autograd.grad(y, xr, dy)
    del dy
    for n, c in [(0, 0), (1, 15), (1, 14)]:  # the last planes lie beyond 2**31
        xs = x.detach()[n:n + 1, c:c + 1].float()
        want = adain(xs, g[n:n + 1, c:c + 1].float(), b[n:n + 1, c:c + 1].float(), impl="ref")
        torch.testing.assert_close(y[n:n + 1, c:c + 1].float(), want, rtol=1e-2, atol=1e-2)
        dys = torch.ones_like(xs)
        dys[:, :, ::2] = -1
        _, mean, rstd = sys.modules["fastgan.ops.adain"].adain_with_stats(
            xs, g[n:n + 1, c:c + 1].float(), b[n:n + 1, c:c + 1].float(), impl="ref")
        dxs = torch.ops.fastgan.adain_backward(dys, xs, g[n:n + 1, c:c + 1].float(), mean, rstd,
                                               torch.float32, "ref")[0]
        torch.testing.assert_close(dx[n:n + 1, c:c + 1].float(), dxs, rtol=2e-2, atol=2e-2)
