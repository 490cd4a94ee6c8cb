"""GPU tier for the modulated convolution's coefficient and epilogue kernels (kernel level): the
CUDA ops ``torch.ops.fastgan_cuda.modconv_dcoefs`` / ``modconv_epilogue`` and the Triton launchers
``modconv_dcoefs_triton`` / ``modconv_epilogue_triton`` on CUDA tensors, against float64
definitions computed from the same rounded inputs (the epilogue through tests/_bias_act_oracle's
torch.nn.functional definition): float16 / bfloat16 / float32 / float64, NCHW and channels_last,
every activation, d / noise / bias present or absent, every noise broadcast form (and other noise
dtypes), misaligned tensors, NaN propagation, a tensor of more than 2**31 elements (skipped when
the GPU lacks the memory), and the CUDA ops' argument checks.  Skipped without a CUDA device; a
backend that is not built is a skip, or a failure with FASTGAN_REQUIRE_ALL_BACKENDS=1.  The public
op and its autograd are tested by tests/ops/test_modulated_conv2d*.py."""
import math

import pytest
import torch

from fastgan.ops import ACTIVATIONS, available_impls
from tests._bias_act_oracle import definition
from tests._gpu import need_impl

pytestmark = pytest.mark.gpu

CL = torch.channels_last
NCHW = torch.contiguous_format
IMPLS = ["cuda", "triton"]
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
IDS = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", torch.float64: "fp64"}
# elementwise vs the float64 definition of the stored inputs: one rounding of the output (16-bit),
# a few float32 roundings of the intermediate (fp32)
TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 1e-5, torch.float64: 1e-12}


def _need(impl):
    st = available_impls("cuda")[impl]
    if st and impl == "cuda" and not hasattr(torch.ops.fastgan_cuda, "modconv_epilogue"):
        st = type(st)(False, "fastgan._C has no modconv_dcoefs / modconv_epilogue kernels (rebuild it)")
    need_impl(impl, st)


def _cdt(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _epilogue(impl, y, c, d, noise, b, act, alpha, gain, clamp):
    if impl == "cuda":
        torch.ops.fastgan_cuda.modconv_epilogue(y, c, d, noise, b, ACTIVATIONS[act].id, alpha, gain, clamp)
    else:
        from fastgan.kernels.modconv_epilogue import modconv_epilogue_triton
        modconv_epilogue_triton(y, c, d, noise, b, ACTIVATIONS[act].id, alpha, gain, clamp)
    return y


def _dcoefs(impl, d, s, wsq, eps):
    if impl == "cuda":
        torch.ops.fastgan_cuda.modconv_dcoefs(d, s, wsq, eps)
    else:
        from fastgan.kernels.modconv_epilogue import modconv_dcoefs_triton
        modconv_dcoefs_triton(d, s, wsq, eps)
    return d


def _want(c, d, noise, b, act, alpha, gain, clamp):
    """float64 definition from the stored inputs; float32 compute rounds noise to float32 first
    (as the kernels and the reference backend do)."""
    t = c.double()
    if d is not None:
        t = t * d.double()[:, :, None, None]
    if noise is not None:
        t = t + noise.to(_cdt(c.dtype)).double()
    return definition(t, None if b is None else b.double(), dim=1, act=act, alpha=alpha, gain=gain,
                      clamp=clamp if clamp >= 0 else None)


def _noise(kind, n, o, h, w, dtype, device="cuda"):
    if kind is None:
        return None
    if kind == "per_sample":
        return torch.randn(n, 1, h, w, device=device, dtype=dtype).expand(n, o, h, w)
    if kind == "shared":
        return torch.randn(1, 1, h, w, device=device, dtype=dtype).expand(n, o, h, w)
    if kind == "full":
        return torch.randn(n, o, h, w, device=device, dtype=dtype)
    if kind == "full_cl":
        return torch.randn(n, o, h, w, device=device, dtype=dtype).contiguous(memory_format=CL)
    if kind == "per_channel":
        return torch.randn(n, o, 1, 1, device=device, dtype=dtype).expand(n, o, h, w)
    if kind == "permuted":
        return torch.randn(w, h, o, n, device=device, dtype=dtype).permute(3, 2, 1, 0)
    raise ValueError(kind)


def _inputs(n, o, h, w, dtype, fmt, has_d=True, noise="per_sample", has_b=True, noise_dtype=None):
    c = (torch.randn(n, o, h, w, device="cuda") * 1.5).to(dtype).contiguous(memory_format=fmt)
    d = (torch.rand(n, o, device="cuda", dtype=_cdt(dtype)) + 0.5) if has_d else None
    nz = _noise(noise, n, o, h, w, noise_dtype or dtype)
    b = (torch.randn(o, device="cuda") * 0.5).to(dtype) if has_b else None
    return c, d, nz, b


def _check(got, want, dtype, what):
    torch.testing.assert_close(got.double(), want, rtol=TOL[dtype], atol=TOL[dtype],
                               msg=lambda m: f"{what}: {m}")


def _run_and_check(impl, c, d, nz, b, act, alpha, gain, clamp, what=""):
    y = torch.full_like(c, float("nan"))  # every element must be written
    _epilogue(impl, y, c, d, nz, b, act, alpha, gain, clamp)
    assert y.stride() == c.stride() and y.dtype == c.dtype
    _check(y, _want(c, d, nz, b, act, alpha, gain, clamp), c.dtype, what or f"{impl} {act}")
    return y


def _act_params(act):
    spec = ACTIVATIONS[act]
    return spec.def_alpha, spec.def_gain


# ----------------------------------------------------------------------------------------------
# epilogue

ACT_CASES = [(dt, a) for dt in (torch.float16, torch.float32) for a in sorted(ACTIVATIONS)] + \
            [(dt, a) for dt in (torch.bfloat16, torch.float64) for a in ("linear", "lrelu", "swish")]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dtype,act", ACT_CASES, ids=[f"{IDS[d]}-{a}" for d, a in ACT_CASES])
def test_epilogue_acts_dtypes_layouts(impl, fmt, dtype, act):
    _need(impl)
    # StyleGAN-like: 512 channels at 16x16, per-sample noise, demodulation, bias; clamp 256 is
    # inactive for typical values, the 0.7 clamp saturates many
    c, d, nz, b = _inputs(4, 512, 16, 16, dtype, fmt)
    alpha, gain = _act_params(act)
    for clamp in (-1.0, 0.7):
        _run_and_check(impl, c, d, nz, b, act, alpha, gain, clamp, f"{impl} {act} clamp={clamp}")


NOISE_KINDS = [None, "per_sample", "shared", "full", "full_cl", "per_channel", "permuted"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("noise", NOISE_KINDS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=IDS.get)
def test_epilogue_optional_inputs_and_noise_forms(impl, fmt, noise, dtype):
    _need(impl)
    for has_d, has_b in ((True, True), (False, True), (True, False), (False, False)):
        c, d, nz, b = _inputs(3, 40, 9, 13, dtype, fmt, has_d=has_d, noise=noise, has_b=has_b)
        _run_and_check(impl, c, d, nz, b, "lrelu", 0.2, math.sqrt(2), 1.5,
                       f"{impl} noise={noise} d={has_d} b={has_b}")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("noise_dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64],
                         ids=IDS.get)
def test_epilogue_noise_of_another_dtype(impl, noise_dtype):
    _need(impl)
    for dtype in (torch.float16, torch.float32):
        for fmt in (NCHW, CL):
            c, d, nz, b = _inputs(2, 24, 8, 8, dtype, fmt, noise="per_sample", noise_dtype=noise_dtype)
            _run_and_check(impl, c, d, nz, b, "lrelu", 0.2, math.sqrt(2), -1.0, f"{impl} {noise_dtype}")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 7, 5, 3), (2, 5, 1, 1), (1, 3, 33, 65),
                                   (5, 1, 4, 4), (2, 13, 2, 129), (2, 512, 4, 4), (1, 3, 256, 256)],
                         ids=str)
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
def test_epilogue_odd_sizes(impl, shape, fmt):
    # sizes that are not multiples of the 16-byte vectors or of the tiles (rows straddling
    # vectors, ragged tails), 1x1 maps, a single channel, toRGB-like 3 channels
    _need(impl)
    for dtype in (torch.float16, torch.float32, torch.float64):
        c, d, nz, b = _inputs(*shape, dtype, fmt)
        _run_and_check(impl, c, d, nz, b, "swish", 0.0, math.sqrt(2), 3.0, f"{impl} {shape} {dtype}")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
def test_epilogue_misaligned_tensors(impl, fmt):
    # storage offsets of one element: no 16-byte vector path for c / y (scalar path), and d / b
    # misaligned (per-element loads)
    _need(impl)
    n, o, h, w = 2, 32, 8, 8
    for dtype in (torch.float16, torch.float32):
        def shifted(t):
            buf = torch.empty(t.numel() + 1, device="cuda", dtype=t.dtype)
            v = buf[1:].as_strided(t.shape, t.stride())
            return v.copy_(t)
        c0, d0, nz, b0 = _inputs(n, o, h, w, dtype, fmt)
        c, d, b = shifted(c0), shifted(d0), shifted(b0)
        y = shifted(torch.full_like(c0, float("nan")))
        _epilogue(impl, y, c, d, nz, b, "lrelu", 0.2, math.sqrt(2), -1.0)
        _check(y, _want(c, d, nz, b, "lrelu", 0.2, math.sqrt(2), -1.0), dtype, f"{impl} misaligned")


@pytest.mark.parametrize("impl", IMPLS)
def test_epilogue_nan_propagates(impl):
    _need(impl)
    for fmt in (NCHW, CL):
        for act in sorted(ACTIVATIONS):
            c, d, nz, b = _inputs(2, 16, 8, 8, torch.float32, fmt, noise="full")
            c[1, 3, 4, 5] = float("nan")
            nz[0, 2, 1, 1] = float("nan")
            y = torch.empty_like(c)
            _epilogue(impl, y, c, d, nz, b, act, *_act_params(act), 1.0)
            assert y[1, 3, 4, 5].isnan() and y[0, 2, 1, 1].isnan() and y.isnan().sum() == 2, (impl, act)


def _free_gib():
    free, _ = torch.cuda.mem_get_info()
    return free / 2 ** 30


@pytest.mark.bigmem
@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
def test_epilogue_over_2_31_elements(impl, fmt):
    # c and y of 2**31 + 4.5M float16 elements: 32-bit offsets would wrap; the regions with the
    # largest offsets (the last sample's last channels / rows) are checked against float64
    _need(impl)
    n, o, h, w = 2, 512, 1449, 1449
    assert n * o * h * w > 2 ** 31
    need = 2 * n * o * h * w * 2 / 2 ** 30 + 2
    if _free_gib() < need:
        pytest.skip(f"needs about {need:.0f} GiB of free GPU memory")
    c = torch.empty(n, o, h, w, device="cuda", dtype=torch.float16, memory_format=fmt)
    c.normal_()
    d = torch.rand(n, o, device="cuda") + 0.5
    nz = torch.randn(n, 1, h, w, device="cuda", dtype=torch.float16).expand(n, o, h, w)
    b = torch.randn(o, device="cuda", dtype=torch.float16)
    y = torch.empty_like(c)
    _epilogue(impl, y, c, d, nz, b, "lrelu", 0.2, math.sqrt(2), 256.0)
    for region in ((slice(n - 1, n), slice(o - 3, o), slice(None), slice(None)),
                   (slice(None), slice(None), slice(h - 2, h), slice(w - 40, w)),
                   (slice(0, 1), slice(0, 2), slice(0, 2), slice(None))):
        nn, oo = region[0], region[1]
        want = _want(c[region], d[nn, oo], nz[region], b[oo], "lrelu", 0.2, math.sqrt(2), 256.0)
        _check(y[region], want, torch.float16, f"{impl} region {region}")
    del c, y, nz
    torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------
# demodulation coefficients

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=IDS.get)
@pytest.mark.parametrize("n,i,o", [(3, 5, 7), (1, 1, 1), (2, 1, 9), (32, 512, 512), (64, 512, 512),
                                   (5, 130, 3), (17, 33, 70), (40, 2000, 24)])
def test_dcoefs_vs_float64(impl, dtype, n, i, o):
    _need(impl)
    s = torch.randn(n, i, device="cuda", dtype=dtype)
    wsq = torch.rand(o, i, device="cuda", dtype=dtype) * 3
    d = torch.full((n, o), float("nan"), device="cuda", dtype=dtype)
    _dcoefs(impl, d, s, wsq, 1e-8)
    want = 1 / (s.double().square() @ wsq.double().t() + 1e-8).sqrt()
    # float32: sums of I positive terms (relative error ~ I ulp at worst)
    tol = 1e-13 if dtype == torch.float64 else 1e-6 * (1 + i / 64)
    torch.testing.assert_close(d.double(), want, rtol=tol, atol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_dcoefs_nan_and_tiny(impl):
    _need(impl)
    s = torch.randn(4, 6, device="cuda")
    s[2, 3] = float("nan")
    s[1] = 0.0  # q = eps: d = 1e4
    wsq = torch.rand(5, 6, device="cuda")
    d = torch.empty(4, 5, device="cuda")
    _dcoefs(impl, d, s, wsq, 1e-8)
    assert d[2].isnan().all() and not d[[0, 1, 3]].isnan().any()
    torch.testing.assert_close(d[1], torch.full_like(d[1], 1e4), rtol=1e-6, atol=0)
    # float64 takes eps exactly (not rounded to float32 on the way): 1 / sqrt(1e-8) = 1e4
    d64 = torch.empty(4, 5, device="cuda", dtype=torch.float64)
    _dcoefs(impl, d64, s.double(), wsq.double(), 1e-8)
    torch.testing.assert_close(d64[1], torch.full_like(d64[1], 1e4), rtol=1e-15, atol=0)


# ----------------------------------------------------------------------------------------------
# argument checks of the CUDA ops

def test_cuda_op_argument_errors():
    _need("cuda")
    op = torch.ops.fastgan_cuda.modconv_epilogue
    c, d, nz, b = _inputs(2, 8, 4, 4, torch.float16, NCHW)
    y = torch.empty_like(c)
    lin = ACTIVATIONS["lrelu"].id
    cases = [
        (lambda: op(y, c.cpu(), d, nz, b, lin, 0.2, 1.0, -1.0), "c must be a CUDA tensor"),
        (lambda: op(y, c.int(), d, nz, b, lin, 0.2, 1.0, -1.0), "unsupported dtype"),
        (lambda: op(y[:, :, 0], c[:, :, 0], d, None, b, lin, 0.2, 1.0, -1.0), r"4-D \[N, O, H, W\]"),
        (lambda: op(y, c.transpose(2, 3), d, nz, b, lin, 0.2, 1.0, -1.0), "contiguous or channels_last"),
        (lambda: op(y.float(), c, d, nz, b, lin, 0.2, 1.0, -1.0), "y must match c"),
        (lambda: op(y.contiguous(memory_format=CL), c, d, nz, b, lin, 0.2, 1.0, -1.0), "y must match c"),
        (lambda: op(y, c, d.half(), nz, b, lin, 0.2, 1.0, -1.0), r"d must be a contiguous \[N, O\]"),
        (lambda: op(y, c, d[:, :4], nz, b, lin, 0.2, 1.0, -1.0), r"d must be a contiguous \[N, O\]"),
        (lambda: op(y, c, d.t().contiguous().t(), nz, b, lin, 0.2, 1.0, -1.0), r"d must be a contiguous"),
        (lambda: op(y, c, d, nz[:, :, :2], b, lin, 0.2, 1.0, -1.0), "noise must be"),
        (lambda: op(y, c, d, nz.int(), b, lin, 0.2, 1.0, -1.0), "noise must be"),
        (lambda: op(y, c, d, nz, b.float(), lin, 0.2, 1.0, -1.0), r"b must be a contiguous \[O\]"),
        (lambda: op(y, c, d, nz, b[:4], lin, 0.2, 1.0, -1.0), r"b must be a contiguous \[O\]"),
        (lambda: op(y, c, d, nz, b, 9, 0.2, 1.0, -1.0), r"act must be in \[0, 9\)"),
        (lambda: op(y, c, d, nz, b, -1, 0.2, 1.0, -1.0), r"act must be in \[0, 9\)"),
    ]
    for fn, msg in cases:
        with pytest.raises(RuntimeError, match=msg):
            fn()

    dc = torch.ops.fastgan_cuda.modconv_dcoefs
    s = torch.randn(3, 5, device="cuda")
    wsq = torch.rand(7, 5, device="cuda")
    dd = torch.empty(3, 7, device="cuda")
    cases = [
        (lambda: dc(dd, s.cpu(), wsq, 1e-8), "s must be a CUDA tensor"),
        (lambda: dc(dd, s.half(), wsq.half(), 1e-8), "s must be float32 or float64"),
        (lambda: dc(dd, s, wsq.double(), 1e-8), "must have s's dtype"),
        (lambda: dc(dd, s, wsq[:, :4], 1e-8), r"wsq must be a contiguous \[O, I\]"),
        (lambda: dc(dd, s.t().contiguous().t(), wsq, 1e-8), r"s must be a contiguous \[N, I\]"),
        (lambda: dc(dd[:, :6], s, wsq, 1e-8), r"d must be a contiguous \[N, O\]"),
        (lambda: dc(dd, s, wsq, -1.0), "eps must be >= 0"),
    ]
    for fn, msg in cases:
        with pytest.raises(RuntimeError, match=msg):
            fn()


def test_cuda_ops_empty_inputs_are_no_ops():
    _need("cuda")
    c = torch.empty(0, 4, 3, 3, device="cuda")
    torch.ops.fastgan_cuda.modconv_epilogue(torch.empty_like(c), c, None, None, None, 0, 0.0, 1.0, -1.0)
    d = torch.empty(0, 5, device="cuda")
    torch.ops.fastgan_cuda.modconv_dcoefs(d, torch.empty(0, 3, device="cuda"), torch.rand(5, 3, device="cuda"), 1e-8)
    # I = 0: an empty sum, d = 1 / sqrt(eps)
    d = torch.empty(2, 5, device="cuda")
    torch.ops.fastgan_cuda.modconv_dcoefs(d, torch.empty(2, 0, device="cuda"), torch.empty(5, 0, device="cuda"), 1e-4)
    torch.testing.assert_close(d, torch.full_like(d, 100.0))
