"""GPU tier for upfirdn2d: the triton and cuda backends against the float64 reference on CUDA tensors
(skipped without a CUDA device; a backend that is not built/installed is reported as a failure, not a
skip, when FASTGAN_REQUIRE_ALL_BACKENDS=1).

Forward, backward (dx = the op with up/down swapped) and double backward (the backward's own
derivative w.r.t. dy, what R1 / path-length penalties go through) are compared as relative norms
against ``impl='ref'`` run in float64 on the same (rounded) inputs; the reference itself is checked
against the step-by-step oracle and by gradcheck in tests/ops/test_upfirdn2d.py."""
import random

import pytest
import torch

from fastgan.ops import available_impls, downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from tests._upfirdn2d_oracle import random_config, upfirdn2d_definition
from tests._compare import assert_rel_norm_list
from tests._gpu import need_impl

pytestmark = pytest.mark.gpu

FUSED = ["triton", "cuda"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# ||impl - ref(fp64)|| / ||ref||: half types store their results rounded; bf16 has an 8-bit mantissa
TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float64: 1e-12}


def _value_grads(fn, x, *, rounding, second_order=True, seed=0):
    """y, dx = J^T w and d<dx, v>/dw = J v (the backward's backward) for fixed random w, v rounded to
    ``rounding`` (so the float64 reference sees exactly the values the tested dtype does).
    x keeps its strides: a fresh leaf that shares x's storage (``x.clone()`` would make a sliced,
    non-dense x contiguous, and the strided-input tests would never reach the kernels' stride
    handling)."""
    x = x.detach().requires_grad_(True)
    y = fn(x)
    g = torch.Generator(device="cpu").manual_seed(seed)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64).to(rounding).to(y.device, y.dtype)
    w.requires_grad_(second_order)
    (dx,) = torch.autograd.grad(y, x, w, create_graph=second_order)
    out = [y.detach(), dx.detach()]
    if second_order:
        v = torch.randn(x.shape, generator=g, dtype=torch.float64).to(rounding).to(x.device, x.dtype)
        (dw,) = torch.autograd.grad(dx, w, v)
        out.append(dw.detach())
    return out


def _layout(x, layout):
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def _compare(impl, fn, x, dtype, layout, second_order=True, what=""):
    """fn(x, impl) on ``x`` converted to dtype/layout vs fn(x, 'ref') in float64."""
    xd = _layout(x.to(dtype), layout)
    got = _value_grads(lambda t: fn(t, impl), xd, rounding=dtype, second_order=second_order)
    want = _value_grads(lambda t: fn(t, "ref"), xd.double(), rounding=dtype,
                        second_order=second_order)
    cl = layout == "channels_last" and not xd.is_contiguous()
    assert got[0].is_contiguous(memory_format=torch.channels_last if cl else
                                torch.contiguous_format), what
    assert got[0].dtype == dtype
    assert_rel_norm_list(got, want, TOL[dtype], what=f"{impl} {dtype} {layout} {what}")


# ---------------------------------------------------------------------------------------------
# StyleGAN2 / StyleGAN3 workloads
# ---------------------------------------------------------------------------------------------

F4 = [1, 3, 3, 1]
STYLEGAN_CASES = {
    # name: (x shape, fn(x, f, impl), filter taps)
    "upsample2d": ((4, 32, 16, 16), lambda x, f, impl: upsample2d(x, f, impl=impl), F4),
    "downsample2d": ((4, 32, 33, 32), lambda x, f, impl: downsample2d(x, f, impl=impl), F4),
    "filter2d": ((4, 32, 17, 16), lambda x, f, impl: filter2d(x, f, impl=impl), F4),
    # conv2d_resample's paddings around a 3x3 transposed / strided conv
    "up_after_convT": ((2, 16, 17, 17), lambda x, f, impl: upfirdn2d(x, f, padding=1, gain=4,
                                                                     impl=impl), F4),
    "down_before_conv": ((2, 16, 32, 32), lambda x, f, impl: upfirdn2d(x, f, padding=2,
                                                                       impl=impl), F4),
    # toRGB-style skip upsample with a separable >= 8-tap filter (stays 1-D in setup_filter)
    "upsample2d_8tap_sep": ((2, 8, 16, 16), lambda x, f, impl: upsample2d(x, f, impl=impl),
                            [1, 3, 5, 7, 7, 5, 3, 1]),
    # StyleGAN3-like: up 4 then down 2 with a 12-tap filter
    "sg3_up4": ((2, 8, 12, 12), lambda x, f, impl: upfirdn2d(x, f, up=4, padding=[7, 6, 7, 6],
                                                             gain=16, impl=impl), [1.0] * 12),
    "sg3_down2": ((2, 8, 24, 24), lambda x, f, impl: upfirdn2d(x, f, down=2, padding=[5, 6, 5, 6],
                                                               impl=impl), [1.0] * 12),
}


CORE_CASES = ["upsample2d", "downsample2d", "filter2d"]  # every dtype; the rest in float32
SG_PARAMS = [(case, dtype) for case in STYLEGAN_CASES for dtype in DTYPES
             if dtype == torch.float32 or case in CORE_CASES]


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("case,dtype", SG_PARAMS)
def test_stylegan_cases(impl, layout, case, dtype):
    need_impl(impl)
    shape, fn, taps = STYLEGAN_CASES[case]
    f = setup_filter(taps, device="cuda")
    x = torch.randn(shape, device="cuda")
    _compare(impl, lambda t, im: fn(t, f, im), x, dtype, layout, what=case)


# ---------------------------------------------------------------------------------------------
# random configurations (fast and general paths)
# ---------------------------------------------------------------------------------------------

def _random_case(i):
    rng = random.Random(5000 + i)
    if i % 4 == 0:    # fast-path shapes: per axis (up, down) in {(1,1), (2,1), (4,1), (1,2), (1,4)}
        modes = [(1, 1), (2, 1), (4, 1), (1, 2), (1, 4)]
        while True:
            cfg = random_config(rng, max_up=1, max_down=1, max_taps=12)
            (ux, dx), (uy, dy) = rng.choice(modes), rng.choice(modes)
            h, w = cfg["hw"]
            fh, fw = (cfg["fshape"] * 2)[:2]
            p = cfg["padding"]
            if (h * uy + p[2] + p[3] - fh) // dy + 1 >= 1 and (w * ux + p[0] + p[1] - fw) // dx + 1 >= 1:
                cfg.update(up=[ux, uy], down=[dx, dy])
                break
    else:
        cfg = random_config(rng, max_up=3, max_down=3, max_taps=12)
    g = torch.Generator().manual_seed(i)
    f = torch.randn(cfg["fshape"], generator=g)
    n, c = rng.choice([(1, 1), (2, 3), (3, 17), (1, 64)])
    x = torch.randn((n, c) + tuple(cfg["hw"]), generator=g)
    kw = dict(up=cfg["up"], down=cfg["down"], padding=cfg["padding"],
              flip_filter=cfg["flip_filter"], gain=cfg["gain"])
    return x, f, kw


N_RANDOM = 20


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("i", range(N_RANDOM))
def test_random_configs_float32(impl, i):
    need_impl(impl)
    x, f, kw = _random_case(i)
    x, f = x.cuda(), f.cuda()
    for layout in ["contiguous", "channels_last"]:
        _compare(impl, lambda t, im: upfirdn2d(t, f.to(t.dtype), impl=im, **kw), x, torch.float32,
                 layout, what=str(kw))


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("i", range(0, N_RANDOM, 4))
def test_random_configs_half(impl, dtype, i):
    need_impl(impl)
    x, f, kw = _random_case(i + 1)
    x, f = x.cuda(), f.cuda()
    for layout in ["contiguous", "channels_last"]:
        _compare(impl, lambda t, im: upfirdn2d(t, f, impl=im, **kw), x, dtype, layout,
                 what=str(kw))


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("i", range(0, N_RANDOM, 2))
def test_random_configs_float64(impl, i):
    need_impl(impl)
    x, f, kw = _random_case(i)
    x, f = x.cuda().double(), f.cuda().double()
    want = upfirdn2d_definition(x, f, **kw)
    for layout in ["contiguous", "channels_last"]:
        xl = _layout(x, layout)
        got = upfirdn2d(xl, f, impl=impl, **kw)
        assert got.dtype == torch.float64
        torch.testing.assert_close(got.cpu(), want, rtol=1e-12, atol=1e-12)
        _compare(impl, lambda t, im: upfirdn2d(t, f, impl=im, **kw), x, torch.float64, layout,
                 what=str(kw))


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("fshape,kw", [
    ((15,), dict(up=2, padding=[8, 7, 8, 7], gain=4)),            # > 12 taps: general path
    ((15, 13), dict(down=2, padding=[6, 6, 7, 7])),
    ((13,), dict(up=3, down=2, padding=[-1, 5, 4, -2], flip_filter=True)),
    ((12, 12), dict(up=4, padding=[5, 6, 5, 6])),                 # largest fast filter
    ((1, 12), dict(down=[4, 1], padding=[5, 6, 0, 0])),
    ((3, 3), dict(up=[2, 4], down=[1, 1], padding=[-3, 0, 2, -5])),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_and_edge_filters(impl, fshape, kw, dtype):
    need_impl(impl)
    x = torch.randn(2, 6, 19, 23, device="cuda")
    f = torch.randn(fshape, device="cuda") / 4
    for layout in ["contiguous", "channels_last"]:
        _compare(impl, lambda t, im: upfirdn2d(t, f, impl=im, **kw), x, dtype, layout,
                 second_order=dtype == torch.float32, what=f"{fshape} {kw}")


# ---------------------------------------------------------------------------------------------
# launch geometry, layouts, special values
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("mode", ["up2", "down2", "general"])
def test_many_small_planes_grid_limits(impl, layout, mode):
    # N * C = 70000 planes: more than a 65535 grid dimension holds
    need_impl(impl)
    x = _layout(torch.randn(7, 10000, 4, 5, device="cuda"), layout)
    f = setup_filter(F4, device="cuda")
    fn = {"up2": lambda t, im: upsample2d(t, f, impl=im),
          "down2": lambda t, im: downsample2d(t, f, impl=im),
          "general": lambda t, im: upfirdn2d(t, f, up=3, down=2, padding=[2, 1, 1, 2], impl=im)}[mode]
    got = fn(x, impl)
    want = fn(x.double(), "ref")
    assert_rel_norm_list([got], [want], TOL[torch.float32], what=f"{impl} {layout} {mode}")


@pytest.mark.bigmem
@pytest.mark.slow
@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("mode", ["down2", "up2"])
def test_over_2_pow_31_elements(impl, layout, mode):
    # down2 reads an input of 2**31 + 262144 fp16 elements, up2 writes an output of 2**31 + 524288:
    # 32-bit offsets would wrap.  The op is per plane, so the planes that lie past 2**31 (the last
    # ones in NCHW; the last rows of every plane of the last sample in channels_last) are compared
    # with the float64 reference run on those planes alone.
    need_impl(impl)
    shape = (2, 16, 8192, 8193) if mode == "down2" else (2, 16, 4096, 4097)
    f = setup_filter(F4, device="cuda")
    fn = {"down2": lambda t, im: downsample2d(t, f, impl=im),
          "up2": lambda t, im: upsample2d(t, f, impl=im)}[mode]
    n, c, h, w = shape
    # centred padding: down2 with 4 taps gives (size - 2) // 2 + 1 per axis, up2 exactly 2 * size
    out_numel = n * c * ((h - 2) // 2 + 1) * ((w - 2) // 2 + 1) if mode == "down2" else 4 * n * c * h * w
    assert max(n * c * h * w, out_numel) > 2 ** 31
    need = 2 * (2 * n * c * h * w + out_numel) + (2 << 30)  # fp16 x (+ its layout copy), y, slack
    free, _ = torch.cuda.mem_get_info()
    if free < need:
        pytest.skip(f"needs ~{need / 2**30:.0f} GiB free GPU memory, have {free / 2**30:.0f}")
    x = _layout(torch.randn(shape, device="cuda", dtype=torch.float16), layout)
    y = fn(x, impl)
    assert y.shape[:2] == (n, c) and y.numel() == out_numel
    for sn, sc in [(slice(0, 1), slice(0, 1)), (slice(n - 1, n), slice(c - 2, c))]:
        want = fn(x[sn, sc].double().contiguous(), "ref")
        assert_rel_norm_list([y[sn, sc]], [want], TOL[torch.float16], what=f"{impl} {layout} {mode}")


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("shape", [(3, 5, 37, 29), (1, 1, 1, 1), (2, 3, 1, 97), (1, 130, 65, 3),
                                   (5, 7, 129, 2)])
def test_odd_shapes_every_element(impl, shape):
    need_impl(impl)
    x = torch.randn(shape, device="cuda")
    for f, kw in [(setup_filter(F4, device="cuda"), dict(up=2, padding=[2, 1, 2, 1])),
                  (setup_filter(F4, device="cuda"), dict(down=2, padding=[1, 2, 1, 2])),
                  (torch.randn(3, 5, device="cuda"), dict(up=[1, 3], down=[2, 1],
                                                          padding=[2, 2, 1, 1])),
                  (None, dict(padding=[0, 1, 1, 0]))]:
        for layout in ["contiguous", "channels_last"]:
            xl = _layout(x, layout)
            got = upfirdn2d(xl, f, impl=impl, **kw)
            want = upfirdn2d(xl.double(), None if f is None else f.double(), impl="ref", **kw)
            assert got.shape == want.shape
            torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f"{impl} {shape} {kw} {layout}: {m}")


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("layout", ["sliced", "transposed", "cl_sliced"])
def test_non_contiguous_input(impl, layout):
    need_impl(impl)
    base = torch.randn(2, 8, 24, 18, device="cuda")
    x = {"sliced": base[:, :, ::2],
         "transposed": torch.randn(2, 8, 18, 12, device="cuda").transpose(2, 3),
         "cl_sliced": base.contiguous(memory_format=torch.channels_last)[:, :, 1:-1, 2:]}[layout]
    # really strided: neither NCHW- nor channels_last-contiguous (what the kernels receive)
    assert not x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    f = setup_filter(F4, device="cuda")
    for fn in (lambda t, im: upsample2d(t, f, impl=im), lambda t, im: downsample2d(t, f, impl=im),
               lambda t, im: upfirdn2d(t, f, up=3, down=2, padding=1, impl=im)):
        got = _value_grads(lambda t: fn(t, impl), x, rounding=torch.float32)
        want = _value_grads(lambda t: fn(t, "ref"), x.double(), rounding=torch.float32)
        assert_rel_norm_list(got, want, TOL[torch.float32], what=f"{impl} {layout}")


@pytest.mark.parametrize("impl", FUSED)
def test_nan_propagates_to_the_pixel_footprint(impl):
    need_impl(impl)
    x = torch.randn(2, 4, 16, 16, device="cuda")
    x[1, 2, 5, 7] = float("nan")
    f = setup_filter(F4, device="cuda")
    for kw in [dict(up=2, padding=[2, 1, 2, 1], gain=4), dict(down=2, padding=1),
               dict(up=3, down=2, padding=[1, 2, 0, 1])]:
        got = upfirdn2d(x, f, impl=impl, **kw).cpu()
        want = upfirdn2d_definition(x, f, **kw)
        assert torch.equal(got.isnan(), want.isnan()), kw
        torch.testing.assert_close(got.double()[~want.isnan()], want[~want.isnan()], rtol=1e-5,
                                   atol=1e-5)


def test_default_impl_on_cuda_runs(monkeypatch):
    # impl=None picks a fused backend that has this op (a stale fastgan._C without it is skipped)
    monkeypatch.delenv("FASTGAN_IMPL", raising=False)
    x = torch.randn(2, 3, 8, 8, device="cuda")
    f = setup_filter(F4, device="cuda")
    torch.testing.assert_close(upsample2d(x, f), upsample2d(x, f, impl="ref"), rtol=1e-5, atol=1e-5)
    import sys
    chosen = sys.modules["fastgan.ops.upfirdn2d"]._resolve(None, x.device)
    if any(available_impls("cuda")[name] for name in FUSED):
        assert chosen in FUSED


def test_ref_on_cuda_matches_oracle():
    x = torch.randn(2, 3, 9, 7, device="cuda", dtype=torch.float64)
    f = torch.randn(4, 3, device="cuda", dtype=torch.float64)
    kw = dict(up=[2, 3], down=[3, 1], padding=[1, -1, 2, 0], flip_filter=True, gain=2.0)
    torch.testing.assert_close(upfirdn2d(x, f, impl="ref", **kw).cpu(),
                               upfirdn2d_definition(x, f, **kw), rtol=1e-12, atol=1e-12)


def test_filter_on_another_device_raises():
    with pytest.raises(ValueError, match="f must be on x's device"):
        upfirdn2d(torch.randn(1, 1, 4, 4, device="cuda"), torch.ones(3, 3))
