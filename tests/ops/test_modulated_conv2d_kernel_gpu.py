"""GPU tier for the fused modulated-convolution Triton kernel (kernel level): the launcher
``modulated_conv2d_triton`` on CUDA tensors against the float64 definition
(tests/kernels/test_modulated_conv2d_kernel.py: x * s -> conv2d -> * d + noise -> bias_act 'ref')
computed from the same rounded inputs.  fp16 / bf16 / fp32 (TF32 on and off), NCHW and
channels_last, StyleGAN2-sized layers (4x4 .. 1024x1024 maps, toRGB), NaN propagation through the
tensor cores, and samples of more than 2**31 elements (the 64-bit offset variant; skipped when the
GPU lacks the memory).  Skipped without a CUDA device.  The public op and its autograd are tested
by the op's own test files."""
import math

import pytest
import torch
import torch.nn.functional as F

from fastgan.ops import ACTIVATIONS
from tests._gpu import need_impl
from tests.kernels.test_modulated_conv2d_kernel import modulated_conv2d_reference

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _need_triton():
    # an unusable Triton is a skip (a failure with FASTGAN_REQUIRE_ALL_BACKENDS=1), as in the
    # other GPU tiers
    need_impl("triton")

CL = torch.channels_last
NCHW = torch.contiguous_format
# ||kernel - ref(fp64)|| / ||ref||: 16-bit runs round w * s to the storage type before the MMA and
# store rounded outputs; TF32 rounds both MMA operands to a 10-bit mantissa
TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 1e-5, "tf32": 3e-3}
DTYPES = [torch.float16, torch.bfloat16, torch.float32]
IDS = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}

# (N, I, O, H, k): StyleGAN2 config-F layers (batch reduced so the float64 reference stays quick),
# toRGB, and a ragged shape (nothing a multiple of a tile)
LAYERS = {
    "512@4": (8, 512, 512, 4, 3),
    "512@8": (8, 512, 512, 8, 3),
    "512@32": (4, 512, 512, 32, 3),
    "256@128": (2, 256, 256, 128, 3),
    "128@256": (2, 128, 128, 256, 3),
    "32@1024": (1, 32, 32, 1024, 3),
    "torgb512@64": (4, 512, 3, 64, 1),
    "ragged": (3, 77, 45, 19, 3),
}


def _k():
    import fastgan.kernels.modulated_conv2d as k
    return k


def _inputs(n, i, o, h, k, dtype, fmt, noise="per_sample", device="cuda", w_width=None):
    """StyleGAN2-like inputs: unit-variance x, weights with fan-in scaling, styles in +-[0.5, 1.5],
    real demodulation coefficients (so outputs are O(1)), per-sample noise, bias."""
    cdt = torch.float64 if dtype == torch.float64 else torch.float32
    pad = k // 2
    w_width = h if w_width is None else w_width
    oh, ow = h + 2 * pad - k + 1, w_width + 2 * pad - k + 1
    x = torch.randn(n, i, h, w_width, device=device, dtype=dtype).contiguous(memory_format=fmt)
    w = (torch.randn(o, i, k, k, device=device) / (i * k * k) ** 0.5).to(dtype)
    sign = torch.where(torch.rand(n, i, device=device) < 0.2, -1.0, 1.0)
    s = ((torch.rand(n, i, device=device) + 0.5) * sign).to(cdt)
    wsq = w.to(cdt).square().sum([2, 3])
    # the demodulation of these (already fan-in scaled) weights: c * d ~ 1 like the noise (an
    # extra (i*k*k)**-0.5 here made c * d ~ 0.015, so y hardly saw the convolution)
    d = (s.square() @ wsq.t() + 1e-8).rsqrt()
    nz = None
    if noise == "per_sample":
        nz = torch.randn(n, 1, oh, ow, device=device, dtype=dtype).expand(n, o, oh, ow)
    b = torch.randn(o, device=device, dtype=dtype) * 0.1
    return dict(x=x, w=w, s=s, d=d.contiguous(), noise=nz, b=b, padx=pad, pady=pad)


def _launch(inp, with_c=True, act="lrelu", clamp=256.0, y_fmt=None):
    x = inp["x"]
    n, o = x.shape[0], inp["w"].shape[0]
    kh, kw = inp["w"].shape[2:]
    oh = x.shape[2] + 2 * inp["pady"] - kh + 1
    ow = x.shape[3] + 2 * inp["padx"] - kw + 1
    fmt = y_fmt or (CL if (x.stride(1) == 1 and x.shape[1] > 1) else NCHW)
    y = torch.full((n, o, oh, ow), float("nan"), device=x.device, dtype=x.dtype)
    y = y.contiguous(memory_format=fmt)
    c = torch.full_like(y, float("nan")) if with_c else None
    spec = ACTIVATIONS[act]
    _k().modulated_conv2d_triton(y, c, x, inp["w"], inp["s"], inp["d"], inp["noise"], inp["b"],
                                 inp["padx"], inp["pady"], spec.id, spec.def_alpha, spec.def_gain,
                                 clamp)
    return y, c


def _rel_err(got, want):
    got, want = got.double(), want.double()
    return ((got - want).norm() / want.norm().clamp_min(1e-30)).item()


def _check(got, want, tol, what):
    assert not got.isnan().any(), f"{what}: NaN (an output never written?)"
    err = _rel_err(got, want)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS.get)
def test_stylegan2_layers_vs_float64(layer, fmt, dtype):
    n, i, o, h, k = LAYERS[layer]
    inp = _inputs(n, i, o, h, k, dtype, fmt)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        y, c = _launch(inp)
    want_y, want_c = modulated_conv2d_reference(**inp, act="lrelu", alpha=0.2, gain=2 ** 0.5,
                                                clamp=256.0)
    assert y.is_contiguous(memory_format=fmt) and y.dtype == dtype
    _check(y, want_y, TOL[dtype], f"y {layer}")
    _check(c, want_c, TOL[dtype], f"c {layer}")


@pytest.mark.parametrize("layer", ["512@8", "256@128", "torgb512@64", "ragged"])
@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
def test_fp32_tf32(layer, fmt):
    # allow_tf32 (cuDNN's flag, default True) selects TF32 tensor-core dots for float32
    n, i, o, h, k = LAYERS[layer]
    inp = _inputs(n, i, o, h, k, torch.float32, fmt)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=True):
        y, c = _launch(inp)
    want_y, want_c = modulated_conv2d_reference(**inp, act="lrelu", alpha=0.2, gain=2 ** 0.5,
                                                clamp=256.0)
    _check(y, want_y, TOL["tf32"], f"y {layer}")
    _check(c, want_c, TOL["tf32"], f"c {layer}")


@pytest.mark.parametrize("act", ["linear", "swish", "tanh", "softplus"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=IDS.get)
def test_other_acts_and_bare_epilogue(act, dtype):
    # the heavier epilogues (their own tile choice) and the no-c / no-noise / no-demod path
    inp = _inputs(4, 256, 256, 32, 3, dtype, CL)
    if act == "linear":
        inp.update(d=None, noise=None, b=None)
    y, _ = _launch(inp, with_c=act != "linear", act=act, clamp=-1.0 if act == "linear" else 1.0)
    spec = ACTIVATIONS[act]
    want_y, _ = modulated_conv2d_reference(**inp, act=act, alpha=spec.def_alpha,
                                           gain=spec.def_gain,
                                           clamp=-1.0 if act == "linear" else 1.0)
    _check(y, want_y, TOL[dtype], f"y {act}")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS.get)
def test_nan_propagates_through_tensor_cores(dtype):
    inp = _inputs(2, 64, 64, 16, 3, dtype, CL)
    inp["x"][1, 7, 5, 9] = float("nan")
    y, c = _launch(inp, clamp=1.0)
    hit = torch.zeros(1, 1, 16, 16, device="cuda", dtype=torch.float64)
    hit[0, 0, 5, 9] = 1
    ones = torch.ones(1, 1, 3, 3, device="cuda", dtype=torch.float64)
    win = F.conv2d(hit, ones, padding=1)[0, 0] > 0
    want = torch.zeros(c.shape, dtype=torch.bool, device="cuda")
    want[1, :, win] = True
    assert torch.equal(c.isnan(), want)
    assert torch.equal(y.isnan(), want)


def _free_gib():
    free, _ = torch.cuda.mem_get_info()
    return free / 2 ** 30


def _ref_rows(inp, r0, r1):
    """The float64 definition on output rows r0:r1 only (a window of x, padded by hand)."""
    x, k, pad = inp["x"], inp["w"].shape[2], inp["pady"]
    h = x.shape[2]
    lo, hi = max(r0 - pad, 0), min(r1 - 1 - pad + k, h)
    xw = F.pad(x[:, :, lo:hi].double(), (0, 0, lo - (r0 - pad), (r1 - 1 - pad + k) - hi))
    sub = dict(inp, x=xw, pady=0,
               noise=None if inp["noise"] is None else inp["noise"][:, :, r0:r1])
    return modulated_conv2d_reference(**sub, act="lrelu", alpha=0.2, gain=2 ** 0.5, clamp=256.0)


@pytest.mark.bigmem
@pytest.mark.slow
@pytest.mark.parametrize("big", ["x", "y"])
@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
def test_samples_over_2_31_elements(big, fmt):
    # one sample of x (512 -> 64 channels) or of y and c (64 -> 512) holds more than 2**31
    # elements at 2050 x 2050: the launcher must pick the 64-bit offset variant; the first and
    # last output rows (the largest offsets) are checked against the float64 definition
    i, o = (512, 64) if big == "x" else (64, 512)
    side = 2050
    need = (i + 3 * o) * side * side * 2 / 2 ** 30 + 2
    if _free_gib() < need:
        pytest.skip(f"needs about {need:.0f} GiB of free GPU memory")
    inp = _inputs(1, i, o, side, 3, torch.float16, fmt, w_width=side)
    assert max(inp["x"].numel(), o * side * side) > 2 ** 31
    y, c = _launch(inp)
    _, meta, _ = _k().plan(y, c, inp["x"], inp["w"], inp["s"], inp["d"], inp["noise"], inp["b"],
                           1, 1, ACTIVATIONS["lrelu"].id, 0.2, 2 ** 0.5, 256.0)
    assert meta["INT64"]
    for r0, r1 in ((0, 3), (side - 3, side)):
        want_y, want_c = _ref_rows(inp, r0, r1)
        _check(y[:, :, r0:r1], want_y, TOL[torch.float16], f"y rows {r0}:{r1}")
        _check(c[:, :, r0:r1], want_c, TOL[torch.float16], f"c rows {r0}:{r1}")
    del y, c, inp
    torch.cuda.empty_cache()


def _grad_inputs(layer, fmt, dtype):
    """(x, w, s, pad, dc) of a LAYERS layer for the gradient launches; dc a random output grad."""
    n, i, o, h, k = LAYERS[layer]
    inp = _inputs(n, i, o, h, k, dtype, fmt, noise=None)
    dc = torch.randn(n, o, h, h, device="cuda", dtype=dtype).contiguous(memory_format=fmt)
    return inp["x"], inp["w"], inp["s"], inp["padx"], dc


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS.get)
def test_data_gradient_vs_float64(layer, fmt, dtype):
    # modconv_dgrad_triton (the first-order backward's launch): dx = s * conv2d_input(dc, w) and
    # ds = sum_pixels(conv2d_input(dc, w) * x) against autograd of the float64 definition
    from tests.kernels.test_modulated_conv2d_kernel import dgrad_reference

    x, w, s, pad, dc = _grad_inputs(layer, fmt, dtype)
    dx = torch.full_like(x, float("nan"))
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        ds = _k().modconv_dgrad_triton(dx, dc, w, s, x, pad, pad)
    want_dx, want_ds = dgrad_reference(dc, w, s, x, pad, pad)  # float64 on the GPU
    assert dx.stride() == x.stride()
    _check(dx, want_dx, TOL[dtype], f"dx {layer}")
    # ds: float32 accumulation of the unrounded GEMM result (no storage rounding)
    _check(ds, want_ds, TOL[dtype], f"ds {layer}")


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS.get)
def test_weight_gradient_vs_float64(layer, fmt, dtype):
    # modconv_wgrad_triton (FASTGAN_MODCONV_TRITON_WGRAD=1's launch): dw = conv2d_weight(x * s, dc)
    # with x * s rounded per tile, against the float64 definition; and no less accurate than
    # torch's weight gradient of the materialised x * s (the default path), within 2x + slack
    from fastgan.ops.modulated_conv2d import _wgrad_ref
    from tests.kernels.test_modulated_conv2d_kernel import wgrad_reference

    n, i, o, h, k = LAYERS[layer]
    x, _, s, pad, dc = _grad_inputs(layer, fmt, dtype)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        dw = _k().modconv_wgrad_triton(dc, x, s, k, k, pad, pad)
        torch_dw = _wgrad_ref(dc, x, s, k, k, (pad, pad))
        _, wmeta, _, chunks = _k().plan_wgrad(None, dc, x, s, k, k, pad, pad)
    assert dw.shape == (o, i, k, k) and dw.dtype == dtype and dw.is_contiguous()
    want = wgrad_reference(dc, x, s, k, k, pad, pad)  # float64 on the GPU
    _check(dw, want, TOL[dtype], f"dw {layer}")
    torch_err = _rel_err(torch_dw, want)
    # Each split-K program sums its chunk's pixels in one sequential float32 chain (the IEEE fp32
    # dot is an FMA chain), expected relative error 2**-24 * sqrt(L / 6) for L pixels per chunk
    # (L = tiles per chunk * TH * TW, from the launcher's plan); cuDNN's blocked sums can be far
    # below that.  Simulated on CPU (fp32, StyleGAN2 layers): 1.2e-6 (512@32, L = 4096),
    # 1.7e-6 (256@128 / 128@256, L ~ 8.2k-8.7k), 2.4e-6 (32@1024, L ~ 17.8k), while torch's fp32
    # weight gradient on CPU reached 3.0e-7 / 4.6e-7 / 9.1e-7 on the first three: 2 * torch +
    # TOL / 10 alone would fail a correct kernel.  The chain term (2x the model, which the
    # simulation stays ~1.35x below) is negligible next to TOL / 10 for 16-bit.
    th, tw = wmeta["TH"], wmeta["TW"]
    n_tiles = n * -(-h // th) * -(-h // tw)
    chain = 2 * 2.0 ** -24 * math.sqrt(-(-n_tiles // chunks) * th * tw / 6)
    assert _rel_err(dw, want) <= 2 * torch_err + TOL[dtype] / 10 + chain, (
        f"dw {layer}: {_rel_err(dw, want):.3g} vs torch's {torch_err:.3g} (+ chain {chain:.3g})")
