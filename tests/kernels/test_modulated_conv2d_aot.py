"""The fused modulated-convolution Triton kernel compiles ahead of time for sm_90 (no GPU needed)
with the launcher's own specialisations (tile sizes, warps, stages, flags: taken from
``fastgan.kernels.modulated_conv2d.plan`` run on meta tensors) for the StyleGAN2 config-F layers at
batch 32: no register spills and no local memory; fp16 / bf16 / TF32 use tensor-core MMA
(wgmma for tiles of >= 64 pixels, mma.sync for the 4x4 map's 16-pixel tiles); channels_last
operand tiles reach shared memory as 16-byte cp.async copies in a pipelined K loop."""
import re

import pytest
import torch

from tests.kernels._aot import assert_no_spills, compile_for, global_accesses

pytestmark = pytest.mark.aot

import triton  # noqa: E402  (after _aot's importorskip)

from fastgan.kernels.modulated_conv2d import (  # noqa: E402
    modconv2d_kernel, modconv_wgrad_kernel, plan, plan_wgrad)

TT = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", torch.float64: "fp64"}
H16 = (torch.float16, torch.bfloat16)
LRELU, TANH, SWISH = 2, 3, 8

# (N, I, O, H, k): StyleGAN2 config-F at batch 32 (padding k // 2)
LAYERS = {
    "512x8": (32, 512, 512, 8, 3),
    "512x64": (32, 512, 512, 64, 3),
    "128x256": (32, 128, 128, 256, 3),
    "32x1024": (32, 32, 32, 1024, 3),
    "torgb512x64": (32, 512, 3, 64, 1),
    "512x4": (32, 512, 512, 4, 3),
}


def _compile(args, meta, kernel=modconv2d_kernel):
    """compile_for with the launcher's argument values: tensors -> pointer types, ints -> i32/i64
    (16-divisible ones declared so, as Triton specialises them), floats -> fp32."""
    names = [n for n in kernel.arg_names if n not in meta]
    vals = list(args) + [0]  # pid_off
    assert len(names) == len(vals)
    scalars, ptypes = {}, {}
    for name, v in zip(names, vals):
        if isinstance(v, torch.Tensor):
            ptypes[name] = TT[v.dtype]
        elif isinstance(v, float):
            scalars[name] = "fp32"
        else:
            scalars[name] = ("i64" if abs(v) >= 2 ** 31 else "i32") + ("/16" if v % 16 == 0 else "")
    const = {k: v for k, v in meta.items() if k not in ("num_warps", "num_stages")}
    # compile_for sets num_warps only; the launcher's num_stages matters as much (shared memory,
    # registers), so pass it through to triton.compile.
    orig = triton.compile

    def with_stages(src, target=None, options=None):
        return orig(src, target=target, options=dict(options or {}, num_stages=meta["num_stages"]))

    triton.compile = with_stages
    try:
        return compile_for(kernel, ptypes["x_ptr"], scalars, const,
                           num_warps=meta["num_warps"], ptr_dtypes=ptypes)
    finally:
        triton.compile = orig


def _plan(dtype, layer, cl, full=True, act=LRELU, clamp=256.0, tf32=True, int64=None,
          noise="per_sample"):
    """The launcher's (args, meta) for ``layer`` on meta tensors.  full: c, d, noise, bias;
    otherwise none of them and a linear act."""
    n, i, o, h, k = LAYERS[layer] if isinstance(layer, str) else layer
    pad = k // 2
    fmt = torch.channels_last if cl else torch.contiguous_format
    cdt = torch.float64 if dtype == torch.float64 else torch.float32
    oh = h + 2 * pad - k + 1
    kw = dict(dtype=dtype, device="meta")
    x = torch.empty(n, i, h, h, memory_format=fmt, **kw)
    w = torch.empty(o, i, k, k, **kw)
    s = torch.empty(n, i, dtype=cdt, device="meta")
    y = torch.empty(n, o, oh, oh, memory_format=fmt, **kw)
    if full:
        c = torch.empty_like(y)
        d = torch.empty(n, o, dtype=cdt, device="meta")
        nz = (torch.empty(n if noise == "per_sample" else 1, 1, oh, oh, **kw).expand(n, o, oh, oh)
              if noise != "full" else torch.empty(n, o, oh, oh, memory_format=fmt, **kw))
        b = torch.empty(o, **kw)
    else:
        c = d = nz = b = None
        act, clamp = 0, -1.0
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=tf32):
        args, meta, _ = plan(y, c, x, w, s, d, nz, b, pad, pad, act, 0.2, 2 ** 0.5, clamp,
                             int64=int64)
    return args, meta


def _check(args, meta, dtype):
    wgrad = "BLOCK_O" in meta
    k = _compile(args, meta, modconv_wgrad_kernel if wgrad else modconv2d_kernel)
    ru = assert_no_spills(k)
    ptx = k.asm["ptx"]
    bm = meta["BLOCK_O"] if wgrad else meta["TH"] * meta["TW"]  # the MMA's M
    if dtype in H16 or (dtype == torch.float32 and meta["PRECISION"] == "tf32"):
        # tensor cores: wgmma (Hopper) for tiles of >= 64 pixels, mma.sync for 16-pixel tiles
        mma = re.findall(r"\b(wgmma\.mma_async[\w.]*|mma\.sync[\w.]*)", ptx)
        assert mma, "no tensor-core MMA in the PTX"
        if bm >= 64:
            assert all(m.startswith("wgmma") for m in mma), sorted(set(mma))
        if dtype == torch.float32:
            assert all(".tf32" in m for m in mma), sorted(set(mma))
    return k, ru


def _async_operand_copies(k, cl, dtype, meta) -> bool:
    """Where the operands are 16-bit channels_last with BLOCK_K 64, assert the operand tiles move
    by 16-byte cp.async copies into shared memory with several stages in flight; say whether it
    applied."""
    if not (cl and dtype in H16 and meta["BLOCK_K"] == 64):
        return False
    ptx = k.asm["ptx"]
    assert re.search(r"cp\.async\.cg\.shared\.global \[[^\]]*\], \[[^\]]*\], 0x10", ptx)
    assert "cp.async.wait_group" in ptx
    return True


def _plan_dgrad(dtype, layer, cl, int64=None):
    """The launcher's (args, meta) of :func:`modconv_dgrad_triton` for ``layer`` (the data
    gradient: dc [N, O, H, W] convolved with the K-major transposed weight [I, O, k, k], the style
    as the epilogue scale, x read for the style-gradient partials)."""
    n, i, o, h, k = LAYERS[layer]
    pad = k // 2
    fmt = torch.channels_last if cl else torch.contiguous_format
    cdt = torch.float64 if dtype == torch.float64 else torch.float32
    kw = dict(dtype=dtype, device="meta")
    dc = torch.empty(n, o, h, h, memory_format=fmt, **kw)
    wt = torch.empty(i, o, k, k, memory_format=torch.channels_last, **kw)
    s = torch.empty(n, i, dtype=cdt, device="meta")
    x = torch.empty(n, i, h, h, memory_format=fmt, **kw)
    dx = torch.empty_like(x)
    args, meta, _ = plan(dx, None, dc, wt, None, s, None, None, k - 1 - pad, k - 1 - pad, 0, 0.0,
                         1.0, -1.0, xds=x, int64=int64)
    assert meta["HAS_DS"] and meta["HAS_D"] and not (meta["HAS_S"] or meta["HAS_C"])
    return args, meta


def _plan_wgrad(dtype, layer, cl, int64=None, tf32=True):
    """The launcher's (args, meta) of :func:`modconv_wgrad_triton` for ``layer`` (the split-K
    weight gradient: dc [N, O, H, W] against the style-scaled, tap-shifted x)."""
    n, i, o, h, k = LAYERS[layer]
    fmt = torch.channels_last if cl else torch.contiguous_format
    cdt = torch.float64 if dtype == torch.float64 else torch.float32
    kw = dict(dtype=dtype, device="meta")
    dc = torch.empty(n, o, h, h, memory_format=fmt, **kw)
    x = torch.empty(n, i, h, h, memory_format=fmt, **kw)
    s = torch.empty(n, i, dtype=cdt, device="meta")
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=tf32):
        args, meta, _, _ = plan_wgrad(None, dc, x, s, k, k, k // 2, k // 2, int64=int64)
    return args, meta


@pytest.mark.parametrize("launch", ["forward", "data_gradient", "weight_gradient"])
@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("cl", [True, False], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=TT.get)
def test_stylegan2_layers(launch, layer, cl, dtype):
    # forward: c + demodulation + per-sample noise + bias + lrelu + clamp, the heaviest StyleGAN2
    # epilogue.  data_gradient: the backward's launch, no modulation in the K loop, the style as
    # the epilogue scale and x-weighted partial sums for the style gradient.  weight_gradient:
    # the split-K launch with the style applied to each x tile.
    forward = launch == "forward"
    plan_for = {"forward": _plan, "data_gradient": _plan_dgrad, "weight_gradient": _plan_wgrad}
    args, meta = plan_for[launch](dtype, layer, cl)
    k, _ = _check(args, meta, dtype)
    if launch == "weight_gradient":
        if cl and dtype in H16 and LAYERS[layer][2] % 8 == 0:
            # 16-bit channels_last: both operand tiles reach shared memory as 16-byte cp.async
            # copies (no register-staged global loads), several stages in flight
            ptx = k.asm["ptx"]
            assert re.search(r"cp\.async\.cg\.shared\.global \[[^\]]*\], \[[^\]]*\], 0x10", ptx)
            assert "cp.async.wait_group" in ptx
            loads, _ = global_accesses(k)
            assert not loads, sorted(set(loads))
        return
    if _async_operand_copies(k, cl, dtype, meta) and forward:
        if LAYERS[layer][2] % 8 == 0:
            # y and c: 16-byte stores along the output channels
            _, stores = global_accesses(k)
            assert stores and all(".v4" in st for st in stores), stores


@pytest.mark.parametrize("layer", ["512x8", "512x64", "32x1024", "torgb512x64"])
@pytest.mark.parametrize("cl", [True, False], ids=["channels_last", "nchw"])
def test_bare_layer_fp16(layer, cl):
    # no c, no demodulation, no noise, no bias, linear: the other end of the flag space
    args, meta = _plan(torch.float16, layer, cl, full=False)
    assert not (meta["HAS_C"] or meta["HAS_D"] or meta["HAS_NOISE"] or meta["HAS_B"])
    _check(args, meta, torch.float16)


@pytest.mark.parametrize("layer", ["512x8", "512x64", "torgb512x64"])
@pytest.mark.parametrize("cl", [True, False], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("kind", ["fp32_ieee", "fp64"])
def test_fma_and_fp64_tiles(layer, cl, kind):
    # allow_tf32=False (CUDA-core FMA dot: smaller tiles) and float64 (mma.sync fp64 / FMA)
    dtype = torch.float64 if kind == "fp64" else torch.float32
    args, meta = _plan(dtype, layer, cl, tf32=False)
    assert meta["PRECISION"] == "ieee"
    _check(args, meta, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=TT.get)
@pytest.mark.parametrize("cl", [True, False], ids=["channels_last", "nchw"])
def test_int64_variant(dtype, cl):
    args, meta = _plan(dtype, "512x64", cl, int64=True)
    assert meta["INT64"]
    _check(args, meta, dtype)


@pytest.mark.parametrize("act", [SWISH, TANH], ids=["swish", "tanh"])
@pytest.mark.parametrize("noise", ["shared", "full"])
def test_other_acts_and_noise_layouts(act, noise):
    # the transcendental acts (longest epilogues) and a full [N, O, H, W] noise tensor
    args, meta = _plan(torch.bfloat16, "512x64", True, act=act, noise=noise)
    assert meta["NOISE_BCAST_C"] == (noise != "full")
    _check(args, meta, torch.bfloat16)


def test_launcher_plans_stylegan2_layers_without_int64():
    # 32-bit offsets for every StyleGAN2 layer (the 64-bit variant is for > 2**31-element samples)
    for layer in LAYERS:
        for cl in (True, False):
            _, meta = _plan(torch.float16, layer, cl)
            assert not meta["INT64"], layer
    big = (1, 512, 512, 2048, 3)  # 2**31 elements in one sample
    _, meta = _plan(torch.float16, big, True)
    assert meta["INT64"]


def test_fp32_precision_follows_cudnn_tf32_flag():
    # TF32 tensor-core dots for fp32 exactly when F.conv2d would use them; 16-bit and fp64 ignore it
    for tf32, want in ((True, "tf32"), (False, "ieee")):
        _, meta = _plan(torch.float32, "512x64", True, tf32=tf32)
        assert meta["PRECISION"] == want
    assert meta["BLOCK_K"] == 16 and meta["TH"] * meta["TW"] == 64  # the FMA tiles
    _, meta = _plan(torch.float64, "512x64", True, tf32=True)
    assert meta["PRECISION"] == "ieee"


@pytest.mark.parametrize("cl", [True, False], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("mod_x", [False, True], ids=["mod_weight", "mod_x"])
def test_either_modulated_operand_fits_128x128_tiles(cl, mod_x):
    # The launcher modulates the smaller operand tile; both choices must stay spill-free on the
    # big tiles so the choice can be re-tuned from benchmarks.  (With MOD_X the modulated x tile
    # feeds wgmma from registers; a modulated weight tile goes back to shared memory first.)
    args, meta = _plan(torch.float16, "512x64", cl)
    assert meta["TH"] * meta["TW"] == 128 and meta["BLOCK_N"] == 128
    meta["MOD_X"] = mod_x
    _check(args, meta, torch.float16)


@pytest.mark.parametrize("cl", [True, False], ids=["channels_last", "nchw"])
def test_data_gradient_int64_and_fp64(cl):
    args, meta = _plan_dgrad(torch.float16, "512x64", cl, int64=True)
    assert meta["INT64"]
    _check(args, meta, torch.float16)
    args, meta = _plan_dgrad(torch.float64, "512x8", cl)
    _check(args, meta, torch.float64)


@pytest.mark.parametrize("cl", [True, False], ids=["channels_last", "nchw"])
def test_weight_gradient_int64_fma_and_fp64(cl):
    args, meta = _plan_wgrad(torch.bfloat16, "512x64", cl, int64=True)
    assert meta["INT64"]
    _check(args, meta, torch.bfloat16)
    args, meta = _plan_wgrad(torch.float32, "512x64", cl, tf32=False)
    assert meta["PRECISION"] == "ieee"
    _check(args, meta, torch.float32)
    args, meta = _plan_wgrad(torch.float64, "512x8", cl)
    _check(args, meta, torch.float64)
