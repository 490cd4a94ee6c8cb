"""The fused modulated-convolution Triton kernel under TRITON_INTERPRET=1 on CPU tensors, called
through its launcher (``fastgan.kernels.modulated_conv2d.modulated_conv2d_triton``) and compared
with a float64 PyTorch definition (x * s -> F.conv2d -> * d + noise -> bias_act 'ref'): fp32 and
fp64, NCHW and channels_last, with and without demodulation / noise (per-sample, shared, full,
strided, other dtype) / bias / c, every activation with and without clamp, kernel sizes 1..5 and
even, paddings 0..2 (also different along x and y), sizes that are not multiples of the tiles,
small maps, forced small tiles (several tiles along every axis, both modulated operands, channel
tails), the 64-bit offset variant, NaN propagation.  Shapes stay tiny: the interpreter is slow."""
import pytest
import torch
import torch.nn.functional as F

from fastgan.ops import ACTIVATIONS, bias_act

pytestmark = pytest.mark.interpret

CL = torch.channels_last
NCHW = torch.contiguous_format
TOL = {torch.float32: 2e-5, torch.float64: 1e-12}


def _k():
    import fastgan.kernels.modulated_conv2d as k
    return k


def modulated_conv2d_reference(x, w, s, d, noise, b, padx, pady, act, alpha, gain, clamp):
    """(y, c) in float64 by the definition: c = conv2d(x * s, w), y = bias_act(c * d + noise, b)."""
    xs = x.double() * s.double()[:, :, None, None]
    if x.shape[1] == 0:  # F.conv2d does not take zero input channels
        oh, ow = x.shape[2] + 2 * pady - w.shape[2] + 1, x.shape[3] + 2 * padx - w.shape[3] + 1
        c = xs.new_zeros(x.shape[0], w.shape[0], oh, ow)
    else:
        c = F.conv2d(xs, w.double(), padding=(pady, padx))
    t = c
    if d is not None:
        t = t * d.double()[:, :, None, None]
    if noise is not None:
        t = t + noise.double()
    y = bias_act(t, None if b is None else b.double(), dim=1, act=act, alpha=alpha, gain=gain,
                 clamp=clamp, impl="ref")
    return y, c


def _inputs(n=2, i=5, o=7, h=6, w=5, kh=3, kw=3, padx=1, pady=1, dtype=torch.float32,
            fmt=NCHW, demod=True, noise="per_sample", bias=True, noise_dtype=None):
    """Random inputs of the launcher's contract (never zeros); noise: None, 'per_sample'
    [N,1,OH,OW], 'shared' [1,1,OH,OW], 'full' [N,O,OH,OW], 'strided' (a transposed view),
    'per_channel' [N,O,1,1], expanded to [N, O, OH, OW]."""
    cdt = torch.float64 if dtype == torch.float64 else torch.float32
    oh, ow = h + 2 * pady - kh + 1, w + 2 * padx - kw + 1
    x = torch.randn(n, i, h, w, dtype=dtype).contiguous(memory_format=fmt)
    wt = torch.randn(o, i, kh, kw, dtype=dtype)
    s = (torch.rand(n, i, dtype=cdt) + 0.5) * torch.where(torch.rand(n, i) < 0.2, -1.0, 1.0).to(cdt)
    d = (torch.rand(n, o, dtype=cdt) + 0.5) if demod else None
    nd = noise_dtype or dtype
    nz = None
    if noise == "per_sample":
        nz = torch.randn(n, 1, oh, ow, dtype=nd).expand(n, o, oh, ow)
    elif noise == "shared":
        nz = torch.randn(1, 1, oh, ow, dtype=nd).expand(n, o, oh, ow)
    elif noise == "full":
        nz = torch.randn(n, o, oh, ow, dtype=nd)
    elif noise == "strided":
        nz = torch.randn(o, n, ow, oh, dtype=nd).permute(1, 0, 3, 2)
    elif noise == "per_channel":
        nz = torch.randn(n, o, 1, 1, dtype=nd).expand(n, o, oh, ow)
    b = torch.randn(o, dtype=dtype) if bias else None
    return dict(x=x, w=wt, s=s, d=d, noise=nz, b=b, padx=padx, pady=pady)


def run(inp, act="lrelu", alpha=0.2, gain=2 ** 0.5, clamp=-1.0, with_c=True, y_fmt=None,
        expect_nan=False, config=None, int64=None):
    """The launcher into NaN-poisoned y (and c) versus the float64 definition; returns (y, c)."""
    x = inp["x"]
    n, o = x.shape[0], inp["w"].shape[0]
    kh, kw = inp["w"].shape[2:]
    oh = x.shape[2] + 2 * inp["pady"] - kh + 1
    ow = x.shape[3] + 2 * inp["padx"] - kw + 1
    if y_fmt is None:
        y_fmt = CL if (x.stride(1) == 1 and x.shape[1] > 1) else NCHW
    y = torch.full((n, o, oh, ow), float("nan"), dtype=x.dtype).contiguous(memory_format=y_fmt)
    c = torch.full_like(y, float("nan")) if with_c else None
    _k().modulated_conv2d_triton(y, c, x, inp["w"], inp["s"], inp["d"], inp["noise"], inp["b"],
                                 inp["padx"], inp["pady"], ACTIVATIONS[act].id, alpha, gain, clamp,
                                 config=config, int64=int64)
    want_y, want_c = modulated_conv2d_reference(x, inp["w"], inp["s"], inp["d"], inp["noise"],
                                                inp["b"], inp["padx"], inp["pady"], act, alpha,
                                                gain, clamp)
    tol = TOL[x.dtype]
    for got, want, name in ((y, want_y, "y"), (c, want_c, "c")):
        if got is None:
            continue
        if not expect_nan:
            assert not got.isnan().any(), f"{name}: an output was never written (or a NaN appeared)"
        assert torch.equal(got.isnan(), want.isnan()), f"{name}: NaN pattern differs"
        finite = want[want.isfinite()]
        scale = finite.abs().max().item() if finite.numel() else 1.0
        torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol * scale, equal_nan=True,
                                   msg=lambda m: f"{name}: {m}")
    return y, c


# --------------------------------------------------------------------------------------------
# the epilogue flags, both layouts, both dtypes
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("variant", ["full", "bare", "no_demod", "shared_noise", "full_noise"])
def test_epilogue_variants(dtype, fmt, variant):
    kw = dict(dtype=dtype, fmt=fmt)
    act, clamp, with_c = "lrelu", 0.9, True
    if variant == "bare":
        kw.update(demod=False, noise=None, bias=False)
        act, clamp, with_c = "linear", -1.0, False
    elif variant == "no_demod":
        kw.update(demod=False, bias=False)
        with_c = False
    elif variant == "shared_noise":
        kw.update(noise="shared", bias=False)
    elif variant == "full_noise":
        kw.update(noise="full", demod=False)
    y, _ = run(_inputs(**kw), act=act, clamp=clamp, with_c=with_c)
    assert y.is_contiguous(memory_format=fmt)
    if clamp > 0:
        assert (y.abs() <= clamp).all() and (y.abs() == clamp).any()  # the clamp is exercised


@pytest.mark.parametrize("noise", ["strided", "per_channel", "half_dtype"])
def test_noise_views_and_dtypes(noise):
    # any strides (a permuted view, stride 0 on the pixels) and any float dtype
    if noise == "half_dtype":
        inp = _inputs(noise="per_sample", noise_dtype=torch.float16, fmt=CL)
    else:
        inp = _inputs(noise=noise, fmt=CL if noise == "strided" else NCHW)
    run(inp)


@pytest.mark.parametrize("x_fmt,y_fmt", [(NCHW, CL), (CL, NCHW)], ids=["nchw-to-cl", "cl-to-nchw"])
def test_y_layout_independent_of_x(x_fmt, y_fmt):
    run(_inputs(fmt=x_fmt), y_fmt=y_fmt)


# --------------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_every_activation_fp64(act):
    i = list(ACTIVATIONS).index(act)
    spec = ACTIVATIONS[act]
    clamp = 1.3 if i % 2 else -1.0
    run(_inputs(dtype=torch.float64, fmt=CL if i % 2 else NCHW), act=act, alpha=0.3,
        gain=spec.def_gain * 0.9, clamp=clamp)


@pytest.mark.parametrize("act", ["swish", "tanh", "sigmoid", "softplus"])
def test_transcendental_activations_fp32_with_clamp(act):
    run(_inputs(fmt=CL), act=act, alpha=0.0, gain=ACTIVATIONS[act].def_gain, clamp=0.8)


# --------------------------------------------------------------------------------------------
# geometry: kernel sizes, paddings, odd sizes, small maps, tiles
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kh,kw,pady,padx", [(1, 1, 0, 0), (3, 3, 0, 0), (3, 3, 2, 2),
                                             (5, 5, 2, 2), (2, 2, 1, 1), (4, 2, 0, 1),
                                             (1, 3, 2, 0)])
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
def test_kernel_sizes_and_paddings(kh, kw, pady, padx, fmt):
    run(_inputs(n=2, i=5, o=7, h=6, w=5, kh=kh, kw=kw, padx=padx, pady=pady, fmt=fmt))


@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_4x4_map(fmt, dtype):
    # StyleGAN2's first layer shape (few channels): a 16-pixel tile per sample
    inp = _inputs(n=3, i=24, o=40, h=4, w=4, dtype=dtype, fmt=fmt)
    run(inp)
    assert _k().launch_config(24, 40, 4, 4, 3, 3, inp["x"].element_size(), fmt == CL)["MOD_X"]


def test_1x1_map_and_1x1_kernel():
    run(_inputs(n=3, i=6, o=3, h=1, w=1, kh=1, kw=1, padx=0, pady=0))
    run(_inputs(n=2, i=6, o=5, h=1, w=1, kh=3, kw=3, padx=1, pady=1, fmt=CL))


# forced small tiles: several tiles along y, x, output channels and K chunks, ragged tails on all
SMALL = dict(TH=2, TW=8, BLOCK_N=16, BLOCK_K=16, num_warps=4, num_stages=2)


@pytest.mark.parametrize("mod_x", [False, True], ids=["mod_weight", "mod_x"])
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("i,o", [(21, 19), (32, 32)], ids=["ragged", "even"])
def test_forced_small_tiles(mod_x, fmt, i, o):
    # (32, 32): EVEN_K / EVEN_N (no channel masks); (21, 19): tails in K and in output channels;
    # 2 x 2 pixel tiles with a partial last tile in x
    inp = _inputs(n=2, i=i, o=o, h=3, w=10, fmt=fmt, noise="full" if mod_x else "per_sample")
    run(inp, config=dict(SMALL, MOD_X=mod_x), clamp=1.0)


@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
def test_int64_offsets(fmt):
    # the 64-bit offset variant (the launcher picks it when one sample can exceed 2**31 elements)
    inp = _inputs(n=2, i=19, o=9, h=3, w=6, fmt=fmt, noise="strided")
    run(inp, config=SMALL, int64=True)
    args, meta, _ = _k().plan(torch.empty(1, 512, 2048, 2048, device="meta"), None,
                              torch.empty(1, 512, 2048, 2048, device="meta"),
                              torch.empty(512, 512, 3, 3, device="meta"),
                              torch.empty(1, 512, device="meta"), None, None, None, 1, 1, 0,
                              0.0, 1.0, -1.0)
    assert meta["INT64"]


def test_launch_config_choices():
    # the StyleGAN2 tiles the AOT tier compiles: one sample per tile, dot dims >= 16
    lc = _k().launch_config
    big = lc(512, 512, 64, 64, 3, 3, 2, True)
    tile = (big["TH"] * big["TW"], big["BLOCK_N"], big["BLOCK_K"], big["num_warps"])
    assert tile == (128, 128, 64, 8)
    assert not big["MOD_X"]
    small = lc(512, 512, 4, 4, 3, 3, 2, True)
    assert small["TH"] * small["TW"] == 16 and small["MOD_X"]
    rgb = lc(512, 3, 64, 64, 1, 1, 2, True)
    assert rgb["BLOCK_N"] == 16 and not rgb["MOD_X"]
    tanh = lc(512, 512, 64, 64, 3, 3, 2, True, True, ACTIVATIONS["tanh"].id)
    assert tanh["BLOCK_N"] == 64 and tanh["num_warps"] == 8  # longer epilogue: fewer accumulators
    for args in [(5, 7, 6, 5, 3, 3, 4, False), (1, 1, 1, 1, 1, 1, 8, True),
                 (512, 512, 64, 64, 3, 3, 4, True, False), (64, 64, 8, 8, 3, 3, 2, False, True, 3)]:
        cfg = lc(*args)
        assert min(cfg["TH"] * cfg["TW"], cfg["BLOCK_N"], cfg["BLOCK_K"]) >= 16, (args, cfg)


def test_empty_and_zero_channel_inputs():
    # no outputs: nothing launched; I = 0: c = 0 and y = act(noise + b) (an empty K loop)
    inp = _inputs(n=0)
    run(inp)
    run(_inputs(i=0), act="lrelu")


# --------------------------------------------------------------------------------------------
# NaN
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("mod_x", [False, True], ids=["mod_weight", "mod_x"])
def test_nan_propagates_to_exactly_the_receptive_field(fmt, mod_x):
    inp = _inputs(n=2, i=5, o=7, h=7, w=6, padx=1, pady=2, fmt=fmt, noise=None)
    inp["x"][1, 3, 2, 4] = float("nan")
    inp["b"][5] = float("nan")
    y, c = run(inp, clamp=2.0, expect_nan=True, config=dict(SMALL, MOD_X=mod_x))
    # expected, independently of the reference: the outputs whose 3x3 window covers (2, 4) in
    # sample 1 (all channels), and channel 5 everywhere (y only; c has no bias)
    hit = torch.zeros(1, 1, 7, 6, dtype=torch.float64)
    hit[0, 0, 2, 4] = 1
    win = F.conv2d(hit, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=(2, 1))[0, 0] > 0
    want_c = torch.zeros(c.shape, dtype=torch.bool)
    want_c[1, :, win] = True
    assert torch.equal(c.isnan(), want_c)
    want_y = want_c.clone()
    want_y[:, 5] = True
    assert torch.equal(y.isnan(), want_y)


# --------------------------------------------------------------------------------------------
# the data-gradient launch: dx = s * conv2d_input(dc, w), ds = sum_pixels(conv2d_input(dc, w) * x)
# --------------------------------------------------------------------------------------------

def dgrad_reference(dc, w, s, x, padx, pady):
    """(dx, ds) in float64 by the definition: autograd of c = conv2d(x * s, w) at dc."""
    xd = x.double().requires_grad_()
    sd = s.double().requires_grad_()
    c = F.conv2d(xd * sd[:, :, None, None], w.double(), padding=(pady, padx))
    return torch.autograd.grad(c, (xd, sd), dc.double())


def run_dgrad(n=2, i=5, o=7, h=6, w=5, kh=3, kw=3, padx=1, pady=1, dtype=torch.float32,
              fmt=NCHW, config=None, int64=None, poison=None):
    """modconv_dgrad_triton into a NaN-poisoned dx versus the float64 definition; poison: an
    (n, i, h, w) index of x set to NaN.  Returns (dx, ds)."""
    inp = _inputs(n=n, i=i, o=o, h=h, w=w, kh=kh, kw=kw, padx=padx, pady=pady, dtype=dtype,
                  fmt=fmt)
    x, wt, s = inp["x"], inp["w"], inp["s"]
    if poison is not None:
        x[poison] = float("nan")
    oh, ow = h + 2 * pady - kh + 1, w + 2 * padx - kw + 1
    dc = torch.randn(n, o, oh, ow, dtype=dtype).contiguous(memory_format=fmt)
    dx = torch.full_like(x, float("nan"))
    ds = _k().modconv_dgrad_triton(dx, dc, wt, s, x, padx, pady, config=config, int64=int64)
    assert dx.stride() == x.stride() and ds.shape == (n, i) and ds.dtype == s.dtype
    want_dx, want_ds = dgrad_reference(dc, wt, s, x, padx, pady)
    tol = TOL[dtype]
    for got, want in ((dx, want_dx), (ds, want_ds)):
        assert torch.equal(got.isnan(), want.isnan())
        scale = want[want.isfinite()].abs().max().item()
        torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol * scale, equal_nan=True)
    return dx, ds


@pytest.mark.parametrize("kh,kw,pady,padx", [(3, 3, 1, 1), (1, 1, 0, 0), (3, 3, 0, 0),
                                             (3, 3, 2, 2), (4, 4, 1, 1), (3, 1, 1, 0)])
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_dgrad_kernel_sizes_and_paddings(kh, kw, pady, padx, fmt, dtype):
    run_dgrad(kh=kh, kw=kw, padx=padx, pady=pady, dtype=dtype, fmt=fmt)


@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("i,o", [(21, 19), (32, 32)], ids=["ragged", "even"])
def test_dgrad_forced_small_tiles(fmt, i, o):
    # several pixel tiles per sample (the style gradient is summed over their partials), several
    # channel blocks and K chunks, ragged tails (masked rows must not reach the partials)
    run_dgrad(n=2, i=i, o=o, h=5, w=10, fmt=fmt, config=SMALL)


@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
def test_dgrad_int64_offsets(fmt):
    run_dgrad(n=2, i=19, o=9, h=3, w=6, fmt=fmt, config=SMALL, int64=True)


def test_dgrad_small_map_and_empty():
    run_dgrad(n=3, i=24, o=40, h=4, w=4, fmt=CL)
    run_dgrad(n=2, i=6, o=5, h=1, w=1)
    dx = torch.empty(0, 3, 4, 4)
    ds = _k().modconv_dgrad_triton(dx, torch.empty(0, 2, 4, 4), torch.randn(2, 3, 3, 3),
                                   torch.empty(0, 3), torch.empty(0, 3, 4, 4), 1, 1)
    assert ds.shape == (0, 3)


@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
def test_dgrad_nan_in_x_reaches_only_its_style_gradient(fmt):
    # x enters only the style-gradient partials: one NaN pixel makes exactly ds[n, i] NaN
    dx, ds = run_dgrad(n=2, i=5, o=7, h=7, w=6, fmt=fmt, config=SMALL, poison=(1, 3, 6, 5))
    assert dx.isfinite().all()
    want = torch.zeros(2, 5, dtype=torch.bool)
    want[1, 3] = True
    assert torch.equal(ds.isnan(), want)


# --------------------------------------------------------------------------------------------
# the weight-gradient launch: dw = conv2d_weight(x * s, dc), x * s never materialised
# --------------------------------------------------------------------------------------------

def wgrad_reference(dc, x, s, kh, kw, padx, pady):
    """dw in float64 by the definition: autograd of c = conv2d(x * s, w) w.r.t. w at dc (on x's
    device: the GPU tier calls it too)."""
    w = torch.zeros(dc.shape[1], x.shape[1], kh, kw, dtype=torch.float64, device=x.device,
                    requires_grad=True)
    c = F.conv2d(x.double() * s.double()[:, :, None, None], w, padding=(pady, padx))
    return torch.autograd.grad(c, w, dc.double())[0]


SMALL_W = dict(TH=2, TW=8, BLOCK_O=16, BLOCK_I=16, num_warps=4, num_stages=2)


def run_wgrad(n=2, i=5, o=7, h=6, w=5, kh=3, kw=3, padx=1, pady=1, dtype=torch.float32,
              fmt=NCHW, dc_fmt=None, config=None, int64=None, chunks=None, poison=None):
    """modconv_wgrad_triton versus the float64 definition; poison: an (n, i, h, w) index of x set
    to NaN.  Returns dw."""
    inp = _inputs(n=n, i=i, o=o, h=h, w=w, kh=kh, kw=kw, padx=padx, pady=pady, dtype=dtype,
                  fmt=fmt)
    x, s = inp["x"], inp["s"]
    if poison is not None:
        x[poison] = float("nan")
    oh, ow = h + 2 * pady - kh + 1, w + 2 * padx - kw + 1
    dc = torch.randn(n, o, oh, ow, dtype=dtype).contiguous(memory_format=dc_fmt or fmt)
    dw = _k().modconv_wgrad_triton(dc, x, s, kh, kw, padx, pady, config=config, int64=int64,
                                   chunks=chunks)
    assert dw.shape == (o, i, kh, kw) and dw.dtype == dtype and dw.is_contiguous()
    want = wgrad_reference(dc, x, s, kh, kw, padx, pady)
    assert torch.equal(dw.isnan(), want.isnan())
    tol = TOL[dtype]
    scale = want[want.isfinite()].abs().max().item()
    torch.testing.assert_close(dw.double(), want, rtol=tol, atol=tol * scale, equal_nan=True)
    return dw


@pytest.mark.parametrize("kh,kw,pady,padx", [(3, 3, 1, 1), (1, 1, 0, 0), (3, 3, 0, 0),
                                             (3, 3, 2, 2), (4, 4, 1, 1), (3, 1, 1, 0)])
@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_wgrad_kernel_sizes_and_paddings(kh, kw, pady, padx, fmt, dtype):
    run_wgrad(kh=kh, kw=kw, padx=padx, pady=pady, dtype=dtype, fmt=fmt)


@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("i,o", [(21, 19), (32, 32)], ids=["ragged", "even"])
@pytest.mark.parametrize("chunks", [1, 3, 100], ids=["one_chunk", "3_chunks", "chunk_per_tile"])
def test_wgrad_forced_small_tiles_and_chunks(fmt, i, o, chunks):
    # several output / input channel blocks with ragged tails, several pixel tiles per sample
    # with ragged edges (masked rows must not reach the sums), chunks that cut through samples
    run_wgrad(n=3, i=i, o=o, h=5, w=10, fmt=fmt, config=SMALL_W, chunks=chunks)


def test_wgrad_mixed_layouts_and_int64_offsets():
    run_wgrad(n=2, i=19, o=9, h=3, w=6, fmt=NCHW, dc_fmt=CL, config=SMALL_W)
    run_wgrad(n=2, i=19, o=9, h=3, w=6, fmt=CL, dc_fmt=NCHW, config=SMALL_W, chunks=2, int64=True)


def test_wgrad_small_maps_and_empty():
    run_wgrad(n=3, i=24, o=40, h=4, w=4, fmt=CL)   # one 16-pixel tile per sample
    run_wgrad(n=2, i=6, o=5, h=1, w=1)             # a 1x1 map (mostly masked tile rows)
    run_wgrad(n=2, i=6, o=3, h=6, w=5, kh=1, kw=1, padx=0, pady=0)  # ToRGB-like
    dw = _k().modconv_wgrad_triton(torch.empty(0, 2, 4, 4), torch.empty(0, 3, 4, 4),
                                   torch.empty(0, 3), 3, 3, 1, 1)
    assert dw.shape == (2, 3, 3, 3) and not dw.any()


def test_wgrad_launch_config_choices():
    k = _k()
    # 16-bit channels_last: 128 x 128 blocks, 64-pixel K tiles; NCHW: 32 (2-byte gathers)
    c = k.wgrad_launch_config(512, 512, 64, 64, 2, True)
    assert (c["BLOCK_O"], c["BLOCK_I"], c["TH"] * c["TW"], c["num_warps"]) == (128, 128, 64, 8)
    assert k.wgrad_launch_config(512, 512, 64, 64, 2, False)["TW"] == 32
    # narrow layers: smaller blocks, twice the pixels per K step
    c = k.wgrad_launch_config(32, 32, 1024, 1024, 2, True)
    assert (c["BLOCK_O"], c["BLOCK_I"], c["TH"] * c["TW"], c["num_warps"]) == (32, 32, 128, 4)
    # 4x4 maps: one 16-pixel tile; fp64 / IEEE fp32: small CUDA-core tiles
    c = k.wgrad_launch_config(512, 512, 4, 4, 2, True)
    assert (c["TH"], c["TW"]) == (4, 4)
    assert k.wgrad_launch_config(512, 512, 64, 64, 8, True)["BLOCK_I"] == 32
    assert k.wgrad_launch_config(512, 512, 64, 64, 4, True, tf32=False)["num_stages"] == 2
    # the split: a grid of about four programs per SM (132 on a meta plan), >= 8 tiles per chunk
    x = torch.empty(32, 32, 1024, 1024, dtype=torch.bfloat16, device="meta")
    dc = torch.empty(32, 32, 1024, 1024, dtype=torch.bfloat16, device="meta")
    s = torch.empty(32, 32, device="meta")
    args, meta, programs, chunks = k.plan_wgrad(None, dc, x, s, 3, 3, 1, 1)
    assert 4 * 132 <= programs < 4 * 132 + 9 and programs == 9 * chunks
    assert args[0].shape == (chunks, 9, 32, 32) and not meta["INT64"]
    x = torch.empty(2, 512, 4, 4, dtype=torch.bfloat16, device="meta")
    dc = torch.empty(2, 512, 4, 4, dtype=torch.bfloat16, device="meta")
    assert k.plan_wgrad(None, dc, x, torch.empty(2, 512, device="meta"), 3, 3, 1, 1)[3] == 1


@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
def test_wgrad_nan_in_x_reaches_only_the_weights_that_read_it(fmt):
    # x[1, 3, 6, 5] (the bottom-right pixel) is read by taps (u, v) with u >= 1 and v >= 1 of a
    # 3x3 kernel padded by 1 (the output pixels (5..6, 4..5) it feeds): NaN exactly in
    # dw[:, 3, 1:, 1:]; masked rows of edge tiles and the other channels stay finite
    dw = run_wgrad(n=2, i=5, o=7, h=7, w=6, fmt=fmt, config=SMALL_W, chunks=3,
                   poison=(1, 3, 6, 5))
    want = torch.zeros(7, 5, 3, 3, dtype=torch.bool)
    want[:, 3, 1:, 1:] = True
    assert torch.equal(dw.isnan(), want)
