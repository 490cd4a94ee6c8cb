"""modulated_conv2d with impl='triton' under TRITON_INTERPRET=1 on CPU tensors against impl='ref':
the fused layer (implicit-GEMM kernel) and the epilogue path (up / down, fused_modconv=False),
forward, first-order gradients of every input and the path-length second order (grad w.r.t. the
styles with create_graph, then backward).  The kernels' own contracts are tested in
tests/kernels/test_modulated_conv2d_kernel.py and test_modconv_epilogue_kernel.py."""
import pytest
import torch

from fastgan.ops import modulated_conv2d, setup_filter

pytestmark = pytest.mark.interpret

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
CL = torch.channels_last


def _inputs(dtype, n=2, i=5, o=6, h=5, w=6, k=3, fmt=torch.contiguous_format, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, i, h, w, generator=g, dtype=dtype).contiguous(memory_format=fmt)
    wt = torch.randn(o, i, k, k, generator=g, dtype=dtype)
    s = torch.randn(n, i, generator=g, dtype=dtype) + 1
    b = torch.randn(o, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, wt, s, b)]


def _close(got, want, dtype):
    tol = TOL[dtype]
    scale = want.detach().abs().max().item()
    torch.testing.assert_close(got.detach(), want.detach(), rtol=tol, atol=tol * max(scale, 1e-12))


CASES = [  # (up, down, padding, k, fused, act, clamp, demodulate, noise)
    (1, 1, 1, 3, True, "lrelu", None, True, "per_sample"),
    (1, 1, 0, 1, True, "linear", None, True, None),
    (1, 1, 1, 3, True, "swish", 0.8, True, "full"),
    (1, 1, 2, 3, True, "tanh", None, False, "shared"),
    (1, 1, 1, 3, False, "lrelu", 0.5, True, "per_sample"),
    (2, 1, 1, 3, True, "lrelu", None, True, "per_sample"),
    (1, 2, 1, 3, True, "tanh", None, True, None),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL])
@pytest.mark.parametrize("up,down,padding,k,fused,act,clamp,demodulate,noise", CASES)
def test_forward_and_gradients_vs_ref(dtype, fmt, up, down, padding, k, fused, act, clamp,
                                      demodulate, noise):
    x, w, s, b = _inputs(dtype, k=k, fmt=fmt)
    f = setup_filter([1, 3, 3, 1]).to(dtype) if up > 1 or down > 1 else None
    with torch.no_grad():
        oh, ow = modulated_conv2d(x, w, s, up=up, down=down, padding=padding, resample_filter=f,
                                  impl="ref").shape[2:]
    nz = None
    if noise is not None:
        shape = {"per_sample": (2, 1, oh, ow), "shared": (1, 1, oh, ow), "full": (2, 6, oh, ow)}[noise]
        nz = torch.randn(shape, dtype=dtype, requires_grad=True)
    kw = dict(noise=nz, up=up, down=down, padding=padding, resample_filter=f,
              demodulate=demodulate, fused_modconv=fused, bias=b, act=act, clamp=clamp)
    y = modulated_conv2d(x, w, s, impl="triton", **kw)
    r = modulated_conv2d(x, w, s, impl="ref", **kw)
    assert y.is_contiguous(memory_format=fmt)
    _close(y, r, dtype)
    ins = [t for t in (x, w, s, nz, b) if t is not None]
    dy = torch.randn_like(r)
    for g, gr in zip(torch.autograd.grad(y, ins, dy), torch.autograd.grad(r, ins, dy)):
        _close(g, gr, dtype)


@pytest.mark.parametrize("fused", [True, False])
def test_path_length_second_order_vs_ref(fused):
    dtype = torch.float64
    x, w, _, b = _inputs(dtype)
    wlat = torch.randn(2, 4, dtype=dtype, requires_grad=True)
    aff = torch.randn(5, 4, dtype=dtype, requires_grad=True)
    nz = torch.randn(2, 1, 5, 6, dtype=dtype)
    pl_noise = torch.randn(2, 6, 5, 6, dtype=dtype)

    def run(impl):
        s = wlat @ aff.t() + 1
        y = modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="tanh",
                             fused_modconv=fused, impl=impl)
        (g,) = torch.autograd.grad((y * pl_noise).sum(), wlat, create_graph=True)
        pen = g.square().sum(1).sqrt().sub(1).square().mean()
        return torch.autograd.grad(pen, (w, aff, x, b))

    for got, want in zip(run("triton"), run("ref")):
        _close(got, want, dtype)


def test_nan_propagates_triton():
    x, w, s, b = _inputs(torch.float32)
    x = x.detach().clone()
    x[0, 1, 2, 3] = float("nan")
    y = modulated_conv2d(x, w.detach(), s.detach(), padding=1, bias=b.detach(), act="lrelu",
                         impl="triton")
    assert torch.isnan(y[0, :, 1:4, 2:5]).all()
    assert torch.isfinite(y[1]).all()


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL])
def test_first_order_backward_uses_the_fused_data_gradient(monkeypatch, fmt):
    # impl='triton': a plain backward takes dx and ds from the fused data-gradient launch; a
    # create_graph backward keeps torch's differentiable convolution gradients.  Both match 'ref'.
    import fastgan.kernels.modulated_conv2d as k

    calls = []
    orig = k.modconv_dgrad_triton
    monkeypatch.setattr(k, "modconv_dgrad_triton", lambda *a, **kw: calls.append(1) or orig(*a, **kw))
    dtype = torch.float64
    x, w, s, b = _inputs(dtype, fmt=fmt)
    kw = dict(padding=1, bias=b, act="lrelu", noise=torch.randn(2, 1, 5, 6, dtype=dtype))
    r = modulated_conv2d(x, w, s, impl="ref", **kw)
    dy = torch.randn_like(r)
    want = torch.autograd.grad(r, (x, w, s, b), dy)
    got = torch.autograd.grad(modulated_conv2d(x, w, s, impl="triton", **kw), (x, w, s, b), dy)
    assert len(calls) == 1
    graph = torch.autograd.grad(modulated_conv2d(x, w, s, impl="triton", **kw), (x, w, s, b), dy,
                                create_graph=True)
    assert len(calls) == 1
    for a, g, ref in zip(got, graph, want):
        _close(a, ref, dtype)
        _close(g, ref, dtype)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL])
def test_first_order_backward_uses_the_triton_weight_gradient_when_switched_on(monkeypatch, fmt):
    # FASTGAN_MODCONV_TRITON_WGRAD=1 with impl='triton': a plain backward takes dw from the
    # split-K launch (x * s formed per tile); create_graph keeps torch's.  Both match 'ref'.
    import importlib

    import fastgan.kernels.modulated_conv2d as k

    mc = importlib.import_module("fastgan.ops.modulated_conv2d")
    monkeypatch.setattr(mc, "_TRITON_WGRAD", True)
    calls = []
    orig = k.modconv_wgrad_triton
    monkeypatch.setattr(k, "modconv_wgrad_triton", lambda *a, **kw: calls.append(1) or orig(*a, **kw))
    for dtype in (torch.float64, torch.float32):
        x, w, s, b = _inputs(dtype, fmt=fmt, seed=3)
        kw = dict(padding=1, bias=b, act="lrelu", noise=torch.randn(2, 1, 5, 6, dtype=dtype))
        r = modulated_conv2d(x, w, s, impl="ref", **kw)
        dy = torch.randn_like(r)
        want = torch.autograd.grad(r, (x, w, s, b), dy)
        got = torch.autograd.grad(modulated_conv2d(x, w, s, impl="triton", **kw), (x, w, s, b), dy)
        n = len(calls)
        assert n >= 1
        graph = torch.autograd.grad(modulated_conv2d(x, w, s, impl="triton", **kw), (x, w, s, b),
                                    dy, create_graph=True)
        assert len(calls) == n
        for a, g, ref in zip(got, graph, want):
            _close(a, ref, dtype)
            _close(g, ref, dtype)


# Half types vs float64 'ref' on the same rounded inputs; gradients at twice the forward's.  At
# these sizes the errors measured were <= 3.3e-4 (fp16) and 6.5e-3 (bf16) forward, 1.1e-3 and
# 9e-3 for the gradients; the GPU tier allows more (4e-3 / 3e-2) for its 512-channel sums.
HALF_TOL = {torch.float16: 1.5e-3, torch.bfloat16: 1.5e-2}
HALF_CASES = {  # name: (up, k, padding, fused, act, demodulate, noise)
    "fused3x3": (1, 3, 1, True, "lrelu", True, True),
    "fused1x1": (1, 1, 0, True, "linear", False, False),
    "swish": (1, 3, 1, True, "swish", True, True),
    "unfused": (1, 3, 1, False, "lrelu", True, True),
    "up2": (2, 3, 1, True, "lrelu", True, True),
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL])
@pytest.mark.parametrize("case,wgrad", [(c, False) for c in HALF_CASES] + [
    ("fused3x3", True), ("fused1x1", True)])  # the Triton dw belongs to the fused 1x layer
def test_half_types_vs_float64(monkeypatch, bf16_dot_in_interpreter, case, fmt, dtype, wgrad):
    # The kernels' fp16/bf16 paths (tensor-core dots on half operands, float32 accumulation and
    # epilogue, rounding of the stored y) in the forward and in the fused data / weight gradients.
    import importlib

    import fastgan.kernels.modulated_conv2d as k
    from tests._compare import assert_rel_norm_list, lrelu_matched

    up, ks, padding, fused, act, demod, with_noise = HALF_CASES[case]
    mc = importlib.import_module("fastgan.ops.modulated_conv2d")
    monkeypatch.setattr(mc, "_TRITON_WGRAD", wgrad)
    calls = {}
    for name in ("modulated_conv2d_triton", "modconv_dgrad_triton", "modconv_wgrad_triton"):
        orig = getattr(k, name)
        monkeypatch.setattr(k, name, lambda *a, _o=orig, _n=name, **kw:
                            calls.__setitem__(_n, calls.get(_n, 0) + 1) or _o(*a, **kw))
    g = torch.Generator().manual_seed(7)
    n, i, o, h, w_ = 2, 6, 5, 6, 7
    x = torch.randn(n, i, h, w_, generator=g).to(dtype).contiguous(memory_format=fmt)
    wt = torch.randn(o, i, ks, ks, generator=g).to(dtype)
    s = torch.randn(n, i, generator=g) + 1  # float32, as the layers pass them
    b = (0.5 * torch.randn(o, generator=g)).to(dtype)
    nz = (0.3 * torch.randn(n, 1, h * up, w_ * up, generator=g)).to(dtype) if with_noise else None
    f = setup_filter([1, 3, 3, 1]) if up > 1 else None
    leaves = [t for t in (x, wt, s, nz, b) if t is not None]

    def run(impl, ins, act_=act):
        it = iter(ins)
        xx, ww, ss = next(it), next(it), next(it)
        nn = next(it) if with_noise else None
        return modulated_conv2d(xx, ww, ss, noise=nn, up=up, padding=padding, resample_filter=f,
                                demodulate=demod, fused_modconv=fused, bias=next(it), act=act_,
                                impl=impl)

    ins = [t.clone().requires_grad_() for t in leaves]
    y = run("triton", ins)
    assert y.dtype == dtype and y.is_contiguous(memory_format=fmt)
    dy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    got = torch.autograd.grad(y, ins, dy.to(dtype))
    ins64 = [t.double().requires_grad_() for t in leaves]
    y64 = run("ref", ins64)
    ref = lrelu_matched(run("ref", ins64, "linear"), y) if act == "lrelu" else y64
    want = torch.autograd.grad(ref, ins64, dy)
    tol = HALF_TOL[dtype]
    assert_rel_norm_list([y], [y64], tol, what=f"{case} forward")
    assert_rel_norm_list(got, want, 2 * tol, what=f"{case} gradients (x, w, s, [noise], b)")
    if fused and up == 1:  # the kernels really ran: forward, fused dgrad, and dw when switched on
        assert calls.get("modulated_conv2d_triton", 0) >= 1  # the dgrad launch calls it too
        assert calls.get("modconv_dgrad_triton") == 1
        assert calls.get("modconv_wgrad_triton", 0) == int(wgrad)
