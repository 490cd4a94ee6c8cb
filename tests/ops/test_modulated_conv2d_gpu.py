"""GPU tier for modulated_conv2d: the triton and cuda backends against impl='ref' run in float64 on
the same (rounded) inputs, at StyleGAN2 layer shapes, fp32 / fp16 / bf16, NCHW and channels_last:
forward, first-order gradients of x, weight, styles, noise and bias, and the path-length second
order.  Skipped without a CUDA device; an unavailable backend fails instead of skipping when
FASTGAN_REQUIRE_ALL_BACKENDS=1."""

import pytest
import torch

from fastgan.ops import available_impls, modulated_conv2d, setup_filter
from tests._compare import lrelu_matched
from tests._gpu import need_impl

pytestmark = pytest.mark.gpu

# ||impl - ref(fp64)|| / ||ref||.  fp32 may run the convolutions in TF32 (cuDNN's default and the
# Triton kernel's when allowed); half types round the stored results; bf16 has an 8-bit mantissa.
TOL = {torch.float32: 2e-3, torch.float16: 4e-3, torch.bfloat16: 3e-2}
CL = torch.channels_last


def _need(impl):
    st = available_impls("cuda")[impl]
    if st and impl == "cuda":
        from fastgan.ops.modulated_conv2d import _cuda_ext_has_ops
        if not _cuda_ext_has_ops():
            st = type(st)(False, "fastgan._C has no modconv_dcoefs / modconv_epilogue kernels")
    need_impl(impl, st)


def _rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


SHAPES = [  # (n, i, o, h, up, k): StyleGAN2 layers (small batch) and odd sizes
    (4, 512, 512, 4, 1, 3), (4, 512, 512, 16, 1, 3), (4, 256, 128, 32, 1, 3),
    (2, 64, 32, 128, 1, 3), (3, 37, 53, 11, 1, 3), (4, 512, 3, 16, 1, 1),
    (4, 512, 256, 16, 2, 3), (2, 128, 64, 32, 2, 3),
]


@pytest.mark.parametrize("impl", ["triton", "cuda"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL])
@pytest.mark.parametrize("n,i,o,h,up,k", SHAPES)
def test_backend_vs_ref(impl, dtype, fmt, n, i, o, h, up, k):
    _need(impl)
    torch.manual_seed(0)
    dev = "cuda"
    x = torch.randn(n, i, h, h, device=dev).to(dtype).contiguous(memory_format=fmt)
    w = torch.randn(o, i, k, k, device=dev)
    s = 1 + 0.3 * torch.randn(n, i, device=dev)
    b = 0.1 * torch.randn(o, device=dev)
    f = setup_filter([1, 3, 3, 1], device=dev) if up > 1 else None
    r = h * up
    nz = 0.1 * torch.randn(n, 1, r, r, device=dev)
    pad = k // 2
    act = "lrelu" if k == 3 else "linear"
    demod = k == 3

    def run(impl_, xx, ww, ss, nn, bb, act_=act):
        return modulated_conv2d(xx, ww, ss, noise=nn, up=up, padding=pad, resample_filter=f,
                                demodulate=demod, bias=bb, act=act_, impl=impl_)

    leaves = [t.detach().clone().requires_grad_() for t in (x, w, s, nz, b)]
    y = run(impl, *leaves)
    assert y.dtype == dtype and y.is_contiguous(memory_format=fmt)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, leaves, dy)
    leaves64 = [t.detach().double().requires_grad_() for t in (x, w, s, nz, b)]
    with torch.backends.cudnn.flags(allow_tf32=False):
        y64 = run("ref", *leaves64)
        # the gradient reference takes lrelu's branch from y (tests/_compare.py lrelu_matched)
        g64 = lrelu_matched(run("ref", *leaves64, act_="linear"), y) if act == "lrelu" else y64
        grads64 = torch.autograd.grad(g64, leaves64, dy.double())
    tol = TOL[dtype]
    assert _rel(y, y64) <= tol, f"forward: rel err {_rel(y, y64):.2e}"
    for name, g, g64 in zip(("x", "weight", "styles", "noise", "bias"), grads, grads64):
        # gradients sum many rounded products: allow 2x the forward tolerance
        assert _rel(g, g64) <= 2 * tol, f"d{name}: rel err {_rel(g, g64):.2e}"


@pytest.mark.parametrize("impl", ["triton", "cuda"])
def test_path_length_second_order(impl):
    _need(impl)
    torch.manual_seed(1)
    dev = "cuda"
    x = torch.randn(4, 64, 16, 16, device=dev)
    w = torch.randn(64, 64, 3, 3, device=dev, requires_grad=True)
    wl = torch.randn(4, 32, device=dev, requires_grad=True)
    aff = torch.randn(64, 32, device=dev, requires_grad=True) / 32 ** 0.5
    aff.retain_grad()
    pl_noise = torch.randn(4, 64, 16, 16, device=dev)

    def run(impl_, dt):
        s = wl.to(dt) @ aff.to(dt).t() + 1
        y = modulated_conv2d(x.to(dt), w.to(dt), s, padding=1, act="lrelu", impl=impl_)
        (g,) = torch.autograd.grad((y * pl_noise.to(dt)).sum(), wl, create_graph=True)
        pen = g.square().sum(1).sqrt().sub(1).square().mean()
        return torch.autograd.grad(pen, (w, aff))

    # both in full fp32: TF32's ~1e-3 forward error would move pre-activations near 0 across
    # lrelu's kink and give the penalty's gradients ~1e-2 of noise (see tests/_compare.py)
    with torch.backends.cudnn.flags(allow_tf32=False):
        want = run("ref", torch.float64)
        got = run(impl, torch.float32)
    for g, r in zip(got, want):
        assert _rel(g, r) <= 5e-3


@pytest.mark.bigmem
def test_large_batch_int64_offsets_triton():
    """A layer whose activations exceed 2^31 elements (needs ~10 GB per tensor in fp16)."""
    _need("triton")
    n, c, h = 33, 256, 512  # 33 * 256 * 512 * 512 > 2^31
    need = 3 * n * c * h * h * 2 + (1 << 30)
    free, _ = torch.cuda.mem_get_info()
    if free < need:
        pytest.skip(f"needs {need / 2**30:.0f} GiB free, have {free / 2**30:.0f}")
    torch.manual_seed(2)
    x = torch.randn(n, c, h, h, device="cuda", dtype=torch.float16)
    w = torch.randn(8, c, 1, 1, device="cuda")
    s = torch.rand(n, c, device="cuda") + 0.5
    y = modulated_conv2d(x, w, s, impl="triton")
    # spot-check the last sample (beyond 2^31 elements of x) against the reference on it alone
    r = modulated_conv2d(x[-1:].float(), w, s[-1:], impl="ref")
    assert _rel(y[-1:], r) <= 4e-3
