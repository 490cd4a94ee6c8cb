"""conv2d / conv_transpose2d / no_weight_gradients: against torch's convolutions in float64 (values,
first, second and third order), the weight-gradient skipping (which backward computes what),
dtypes, layouts, bad input, torch.library registration (opcheck, torch.compile)."""
import importlib
import threading

import pytest
import torch
import torch.nn.functional as F

from fastgan.ops import conv2d, conv_transpose2d, no_weight_gradients

C = importlib.import_module("fastgan.ops.conv2d")  # the module (fastgan.ops.conv2d is the function)
D64 = torch.float64


def _rand(*shape, dtype=D64):
    return torch.randn(*shape, dtype=dtype)


@pytest.fixture
def wgrad_calls(monkeypatch):
    """Counts the weight-gradient computations (the conv2d_weight op's ATen call)."""
    calls = []
    real = C._weight_grad
    monkeypatch.setattr(C, "_weight_grad", lambda *a: (calls.append(a[-1]), real(*a))[1])
    return calls


@pytest.fixture
def bias_calls(monkeypatch):
    """Counts the bias-gradient sums of the convolutions' backward."""
    calls = []
    real = C._bias_grad
    monkeypatch.setattr(C, "_bias_grad", lambda *a: (calls.append(1), real(*a))[1])
    return calls


# (x shape, w shape, kwargs) -- conv2d
CONV_CASES = [
    ((2, 4, 7, 9), (6, 4, 3, 3), dict()),
    ((2, 4, 7, 9), (6, 4, 3, 3), dict(stride=2, padding=1)),
    ((1, 4, 8, 7), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)),
    ((2, 3, 9, 9), (3, 1, 3, 3), dict(stride=3, padding=2, groups=3)),     # depthwise
    ((2, 4, 5, 6), (5, 4, 1, 1), dict()),                                   # 1x1
    ((2, 2, 8, 8), (3, 2, 4, 4), dict(stride=2, padding=[1, 1], dilation=2)),
    ((1, 2, 7, 8), (3, 2, 4, 3), dict(padding="same")),
    ((1, 2, 7, 8), (3, 2, 3, 3), dict(padding="valid", stride=2)),
]
# conv_transpose2d: w is [C_in, C_out / groups, kh, kw]
CONVT_CASES = [
    ((2, 4, 5, 6), (4, 3, 3, 3), dict()),
    ((2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((1, 4, 4, 5), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                                      groups=2, dilation=(1, 2))),
    ((2, 3, 4, 4), (3, 1, 4, 4), dict(stride=2, padding=1, groups=3)),
    ((1, 2, 5, 5), (2, 3, 3, 3), dict(output_padding=1, dilation=2)),   # output_padding >= stride
]


def _case(transposed, i):
    xs, ws, kw = (CONVT_CASES if transposed else CONV_CASES)[i]
    c_out = ws[1] * kw.get("groups", 1) if transposed else ws[0]
    return _rand(*xs), _rand(*ws), _rand(c_out), kw


def _ours(transposed):
    return conv_transpose2d if transposed else conv2d


def _torch(transposed):
    return F.conv_transpose2d if transposed else F.conv2d


def _value_grads(fn, x, w, b):
    """y, and the first- and second-order gradients of sum(y^2 * r) w.r.t. (x, w, b)."""
    x, w, b = (t.detach().clone().requires_grad_() for t in (x, w, b))
    y = fn(x, w, b)
    r = torch.linspace(-1, 2, y.numel(), dtype=y.dtype).view(y.shape)
    gs = torch.autograd.grad((y.square() * r).sum(), (x, w, b), create_graph=True)
    g2 = torch.autograd.grad(sum((g.square() * (k + 1)).sum() for k, g in enumerate(gs)), (x, w, b))
    return [y, *gs, *g2]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("transposed,i", [(False, i) for i in range(len(CONV_CASES))]
                         + [(True, i) for i in range(len(CONVT_CASES))])
def test_matches_torch_float64(transposed, i):
    x, w, b, kw = _case(transposed, i)
    got = _value_grads(lambda x, w, b: _ours(transposed)(x, w, b, **kw), x, w, b)
    want = _value_grads(lambda x, w, b: _torch(transposed)(x, w, b, **kw), x, w, b)
    for g, t in zip(got, want):
        assert g.shape == t.shape
        torch.testing.assert_close(g, t, rtol=1e-10, atol=1e-10)


GRADCHECK_CASES = [  # small Jacobians: gradgradcheck's cost grows with inputs x outputs
    (False, (1, 4, 4, 5), (4, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    (False, (1, 2, 5, 5), (2, 2, 2, 2), dict(stride=2, padding=1, dilation=2)),
    (True, (1, 4, 3, 3), (4, 1, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                                          groups=2, dilation=(1, 2))),
    (True, (1, 2, 3, 3), (2, 2, 2, 2), dict(output_padding=1, dilation=2)),
]


@pytest.mark.parametrize("transposed,xs,ws,kw", GRADCHECK_CASES)
def test_gradcheck_gradgradcheck(transposed, xs, ws, kw):
    c_out = ws[1] * kw.get("groups", 1) if transposed else ws[0]
    inputs = tuple(_rand(*s).requires_grad_() for s in (xs, ws, (c_out,)))

    def fn(x, w, b):
        return _ours(transposed)(x, w, b, **kw)

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("transposed", [False, True])
def test_third_order(transposed):
    """gradgradgradcheck: gradcheck + gradgradcheck of a function that itself takes a gradient with
    create_graph (so the weight-gradient op's own backward is differentiated again)."""
    x = _rand(1, 2, 4, 4).requires_grad_()
    w = _rand(2, 2, 3, 3).requires_grad_()
    kw = dict(stride=2, padding=1) if not transposed else dict(stride=2, padding=1, output_padding=1)
    op = _ours(transposed)

    def first(x, w):  # d/d(x, w) of sum(tanh(conv(x, w))): both gradients stay differentiable
        y = torch.tanh(op(x, w, **kw))
        gx, gw = torch.autograd.grad(y.sum(), (x, w), create_graph=True)
        return gx.square().sum() + (gw * gw.flip([2, 3])).sum()

    assert torch.autograd.gradcheck(first, (x, w))
    assert torch.autograd.gradgradcheck(first, (x, w))


# ---------------------------------------------------------------------------------------------
# weight-gradient skipping
# ---------------------------------------------------------------------------------------------

def _net(params, op=conv2d, gain=None):
    """Two convolutions and a transposed one with lrelu in between; gain != None uses computed
    (non-leaf) weights w * gain, as equalized-learning-rate layers do."""
    w1, w2, w3, b1 = params
    if gain is not None:
        w1, w2, w3 = w1 * gain, w2 * gain, w3 * gain
    opt = conv_transpose2d if op is conv2d else F.conv_transpose2d

    def D(x):
        h = F.leaky_relu(op(x, w1, b1, padding=1), 0.2)
        h = F.leaky_relu(op(h, w2, stride=2, padding=1), 0.2)
        return opt(h, w3, stride=2, padding=1, output_padding=1).square().mean((1, 2, 3))
    return D


def _params(dtype=D64):
    torch.manual_seed(3)
    return [(torch.randn(s, dtype=dtype) * 0.5).requires_grad_()
            for s in ((4, 3, 3, 3), (5, 4, 3, 3), (5, 2, 3, 3), (4,))]


def _r1(D, x):
    x = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return g.square().sum((1, 2, 3)).mean()


def test_leaf_weights_are_pruned_by_the_engine(wgrad_calls, bias_calls):
    """autograd.grad(out, x) runs no weight gradient and no bias sum for leaf parameters, with or
    without the switch (as PyTorch's own convolution): the engine says their AccumulateGrad nodes
    will not run.  ctx.needs_input_grad alone would say True for every one of them."""
    D = _net(_params())
    x = _rand(2, 3, 8, 8).requires_grad_()
    for flag in (False, True):
        (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        assert wgrad_calls == [] and bias_calls == []
        assert g.abs().max() > 0
    D(x).sum().backward(inputs=[x])  # backward restricted to x: the same
    assert wgrad_calls == [] and bias_calls == []
    D(x).sum().backward()            # a full backward computes all three, and the bias sum
    assert len(wgrad_calls) == 3 and len(bias_calls) == 1


@pytest.mark.parametrize("fast_path", [True, False])
def test_requested_leaf_weights_keep_their_gradients(wgrad_calls, bias_calls, fast_path):
    """autograd.grad w.r.t. some of the weights computes exactly those (the engine raises for a
    captured leaf, which counts as "used"), with the fast path and through the dispatcher."""
    from fastgan.ops._custom_op import eager_fast_path

    ours, ref = _params(), _params()
    x = _rand(2, 3, 8, 8)
    with eager_fast_path(fast_path):
        got = torch.autograd.grad(_net(ours)(x).sum(), [ours[1], ours[3]])
        assert len(wgrad_calls) == 1 and len(bias_calls) == 1
        wgrad_calls.clear()
        bias_calls.clear()
        (gx,) = torch.autograd.grad(_net(ours)(x.requires_grad_()).sum(), x)
        assert wgrad_calls == [] and bias_calls == []
    want = torch.autograd.grad(_net(ref, F.conv2d)(x).sum(), [ref[1], ref[3]])
    for g, t in zip(got, want):
        torch.testing.assert_close(g, t, rtol=1e-12, atol=1e-12)


def test_checkpoint_gradients(wgrad_calls):
    """Activation checkpointing hands the backward recomputed (detached) saved tensors, not the
    graph's own: with leaf and computed weights, in both checkpoint modes, every gradient must
    still arrive (a wrongly skipped one would be a silent None here).  (torch.func transforms do
    not run torch.library custom ops with an autograd formula on this torch: not tested.)"""
    from torch.utils.checkpoint import checkpoint

    x = _rand(2, 3, 8, 8)
    # (reentrant, use autograd.grad): the reentrant mode supports .backward() only
    for reentrant, by_grad in ((False, False), (False, True), (True, False)):
        for gain in (None, 0.7):
            def run(params, op):
                xi = x.clone().requires_grad_()
                out = checkpoint(lambda v: _net(params, op, gain)(v).square().sum(), xi,
                                 use_reentrant=reentrant)
                if by_grad:
                    return torch.autograd.grad(out, [*params, xi])
                out.backward()
                return [p.grad for p in params] + [xi.grad]

            ours, ref = _params(), _params()
            for g, t in zip(run(ours, conv2d), run(ref, F.conv2d)):
                assert g is not None and t.abs().max() > 0
                torch.testing.assert_close(g, t, rtol=1e-12, atol=1e-12)
    assert wgrad_calls


def test_computed_weights_are_pruned_automatically(wgrad_calls):
    D = _net(_params(), gain=0.7)  # w * gain: the engine says w's grad_fn will not run
    x = _rand(2, 3, 8, 8).requires_grad_()
    torch.autograd.grad(D(x).sum(), x, create_graph=True)
    assert wgrad_calls == []
    D(x).sum().backward()          # a normal backward computes them
    assert len(wgrad_calls) == 3


def test_weight_reached_by_the_input_keeps_its_gradient(wgrad_calls):
    """A modulated weight (a function of the differentiated input, as in a path-length pass) is
    not skipped, even inside no_weight_gradients: the input's gradient flows through it."""
    p = _rand(4, 3, 3, 3)
    x = _rand(2, 3, 6, 6)
    s = _rand(3).requires_grad_()

    def f(conv, s):
        return conv(x, p * s.view(1, 3, 1, 1), padding=1).square().sum()

    with no_weight_gradients():
        (g,) = torch.autograd.grad(f(conv2d, s), s)
    assert len(wgrad_calls) == 1
    torch.testing.assert_close(g, torch.autograd.grad(f(F.conv2d, s), s)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gain", [None, 0.7])
@pytest.mark.parametrize("flag", [False, True])
def test_penalty_second_order_matches_torch(gain, flag):
    """R1 through our convs (inner pass with / without the switch) against plain torch convs:
    the penalty and its gradients w.r.t. every parameter, float64."""
    x = _rand(2, 3, 8, 8)
    ours, ref = _params(), _params()
    with no_weight_gradients(flag):
        pen = _r1(_net(ours, gain=gain), x)
    pen_ref = _r1(_net(ref, F.conv2d, gain=gain), x)
    torch.testing.assert_close(pen, pen_ref, rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(pen, ours)
    want = torch.autograd.grad(pen_ref, ref)
    for g, t in zip(got, want):
        assert t.abs().max() > 0
        torch.testing.assert_close(g, t, rtol=1e-10, atol=1e-12)


def test_backward_inside_switch_skips_leaf_weights_only(wgrad_calls):
    w1, w2, w3, b1 = params = _params()
    x = _rand(2, 3, 8, 8).requires_grad_()
    with no_weight_gradients():
        _net(params)(x).sum().backward()
    assert wgrad_calls == []
    assert w1.grad is None and w2.grad is None and w3.grad is None
    assert b1.grad is not None and x.grad is not None  # bias and input gradients still flow
    with no_weight_gradients():
        gx, gw = torch.autograd.grad(_net(params)(x).sum(), (x, w1), allow_unused=True)
    assert gw is None and gx is not None


def test_weight_without_grad_is_skipped(wgrad_calls):
    x = _rand(2, 3, 6, 6).requires_grad_()
    w = _rand(4, 3, 3, 3)
    conv2d(x, w, padding=1).sum().backward()
    conv_transpose2d(x, _rand(3, 2, 3, 3)).sum().backward()
    assert wgrad_calls == [] and x.grad is not None


def test_switch_nesting_decorator_and_exceptions():
    assert not C.weight_gradients_disabled()
    with no_weight_gradients():
        with no_weight_gradients():
            assert C.weight_gradients_disabled()
        assert C.weight_gradients_disabled()
        with no_weight_gradients(False):
            assert C.weight_gradients_disabled()
    assert not C.weight_gradients_disabled()
    with no_weight_gradients(False):
        assert not C.weight_gradients_disabled()

    @no_weight_gradients()
    def inner():
        return C.weight_gradients_disabled()

    assert inner() and inner() and not C.weight_gradients_disabled()
    with pytest.raises(KeyError):
        with no_weight_gradients():
            raise KeyError("boom")
    assert not C.weight_gradients_disabled()
    with pytest.raises(TypeError, match="disable must be a bool"):
        no_weight_gradients(1)


def test_switch_reaches_backward_on_another_thread(wgrad_calls):
    """Process-wide on purpose: autograd runs CUDA backward nodes on its own device threads."""
    params = _params()
    x = _rand(2, 3, 8, 8).requires_grad_()
    y = _net(params)(x).sum()
    errors = []

    def run():
        try:
            torch.autograd.grad(y, x)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with no_weight_gradients():
        t = threading.Thread(target=run)
        t.start()
        t.join()
    assert not errors and wgrad_calls == []


# ---------------------------------------------------------------------------------------------
# dtypes, layouts, edge cases
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("transposed", [False, True])
def test_half_and_float_vs_float64(dtype, transposed):
    x, w, b, kw = _case(transposed, 2)
    got = _value_grads(lambda x, w, b: _ours(transposed)(x, w, b, **kw),
                       x.to(dtype), w.to(dtype), b.to(dtype))
    want = _value_grads(lambda x, w, b: _torch(transposed)(x, w, b, **kw),
                        x.to(dtype).double(), w.to(dtype).double(), b.to(dtype).double())
    tol = {torch.float16: 4e-3, torch.bfloat16: 3e-2, torch.float32: 1e-5}[dtype]
    for g, t in zip(got[:4], want[:4]):  # value and first order (half second order is noise)
        assert g.dtype == dtype
        assert (g.double() - t).norm() <= tol * t.norm()


@pytest.mark.parametrize("transposed", [False, True])
def test_channels_last(transposed):
    x, w, b, kw = _case(transposed, 1)
    xc = x.contiguous(memory_format=torch.channels_last)
    y = _ours(transposed)(xc, w, b, **kw)
    ref = _torch(transposed)(xc, w, b, **kw)
    assert y.is_contiguous(memory_format=torch.channels_last) and y.stride() == ref.stride()
    got = _value_grads(lambda x, w, b: _ours(transposed)(x, w, b, **kw), xc, w, b)
    want = _value_grads(lambda x, w, b: _torch(transposed)(x, w, b, **kw), x, w, b)
    for g, t in zip(got, want):
        torch.testing.assert_close(g, t, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("transposed", [False, True])
def test_one_channel_channels_last_input(transposed):
    # [3, 1, 5, 7] with strides (35, 1, 7, 1) (channels_last, one channel): PyTorch's float32
    # CPU convolution returns garbage for it with a 1 x 4 kernel at stride 4 (torch 2.13);
    # ours hands it NCHW strides
    x = torch.randn(3, 1, 5, 7)
    xcl = torch.empty(x.shape, memory_format=torch.channels_last).copy_(x)
    assert xcl.stride(1) == 1
    if transposed:
        w, kw = torch.randn(1, 2, 1, 4), dict(stride=(1, 4))
        y, want = conv_transpose2d(xcl, w, **kw), F.conv_transpose2d(x.double(), w.double(), **kw)
    else:
        w, kw = torch.randn(2, 1, 1, 4), dict(stride=(1, 4))
        y, want = conv2d(xcl, w, **kw), F.conv2d(x.double(), w.double(), **kw)
    torch.testing.assert_close(y.double(), want, rtol=1e-5, atol=1e-5)
    xg = xcl.clone().requires_grad_()
    (_ours(transposed)(xg, w, None, **kw).square().sum()).backward()
    xr = x.double().requires_grad_()
    (_torch(transposed)(xr, w.double(), None, **kw).square().sum()).backward()
    torch.testing.assert_close(xg.grad.double(), xr.grad, rtol=1e-5, atol=1e-5)


def test_nan_in_nan_out():
    x = _rand(1, 2, 6, 6)
    x[0, 1, 2, 3] = float("nan")
    y = conv2d(x, _rand(3, 2, 3, 3), padding=1)
    assert y[0, :, 1:4, 2:5].isnan().all()
    assert not y[0, :, 5].isnan().any()  # rows out of the NaN's reach stay finite


def test_empty_batch():
    x = torch.randn(0, 3, 5, 5, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    y = conv2d(x, w, padding=1)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()
    assert x.grad.shape == x.shape and torch.equal(w.grad, torch.zeros_like(w))


@pytest.mark.parametrize("call,exc,match", [
    (lambda x, w: conv2d(x[0], w), ValueError, "x must be 4-D"),
    (lambda x, w: conv2d(x, w[0]), ValueError, "w must be 4-D"),
    (lambda x, w: conv2d(x[:, :3], w), ValueError, "x has 3 channels"),
    (lambda x, w: conv2d(x, w, groups=4), ValueError, "divisible by groups"),
    (lambda x, w: conv2d(x, w, groups=0), ValueError, "groups must be an int >= 1"),
    (lambda x, w: conv2d(x, w, stride=0), ValueError, "stride must be"),
    (lambda x, w: conv2d(x, w, padding=-1), ValueError, "padding must be"),
    (lambda x, w: conv2d(x, w, padding=(1, 2, 3)), ValueError, "padding must be"),
    (lambda x, w: conv2d(x, w, padding="full"), ValueError, "padding must be"),
    (lambda x, w: conv2d(x, w, padding="same", stride=2), ValueError, "'same' needs stride 1"),
    (lambda x, w: conv2d(x, w, dilation=(1, 0)), ValueError, "dilation must be"),
    (lambda x, w: conv2d(x, w, stride=1.5), ValueError, "stride must be"),
    (lambda x, w: conv2d(x, w, torch.randn(5)), ValueError, "b must be 1-D of length C_out = 6"),
    (lambda x, w: conv2d(x, w, torch.randn(6, dtype=D64)), TypeError, "b must have x's dtype"),
    (lambda x, w: conv2d(x, w.double()), TypeError, "w must have x's dtype"),
    (lambda x, w: conv2d(x.int(), w.int()), TypeError, "x must be float16"),
    (lambda x, w: conv2d([1.0], w), TypeError, "x must be a torch.Tensor"),
    (lambda x, w: conv2d(x, w, b=[1.0]), TypeError, "b must be a torch.Tensor"),
    (lambda x, w: conv2d(x, w.to("meta")), ValueError, "w must be on x's device"),
    (lambda x, w: conv2d(x[:, :, :2, :2], w), ValueError, "output would be empty"),
    (lambda x, w: conv_transpose2d(x, w), ValueError, "x has 4 channels but w expects w.shape"),
    (lambda x, w: conv_transpose2d(x, w.transpose(0, 1), groups=3), ValueError, "divisible by groups"),
    (lambda x, w: conv_transpose2d(x, w.transpose(0, 1), stride=2, output_padding=2), ValueError,
     "output_padding must be smaller"),
    (lambda x, w: conv_transpose2d(x, w.transpose(0, 1), torch.randn(4)), ValueError,
     "b must be 1-D of length C_out = 6"),
])
def test_bad_input(call, exc, match):
    x, w = torch.randn(2, 4, 6, 6), torch.randn(6, 4, 3, 3)
    with pytest.raises(exc, match=match):
        call(x, w)


# ---------------------------------------------------------------------------------------------
# torch.library registration
# ---------------------------------------------------------------------------------------------

def _opcheck_samples():
    out = []
    for transposed, i in [(False, 1), (False, 2), (True, 1), (True, 2)]:
        x, w, b, kw = _case(transposed, i)
        x, w, b = x.float(), w.float(), b.float()
        for layout, bias in [(torch.contiguous_format, b), (torch.channels_last, None)]:
            xl = x.contiguous(memory_format=layout).requires_grad_()
            out.append((transposed, xl, w.clone().requires_grad_(),
                        None if bias is None else bias.clone().requires_grad_(), kw))
    return out


def _norm_kw(kw, transposed):
    pair = lambda v: list(v) if isinstance(v, (list, tuple)) else [v, v]  # noqa: E731
    args = [pair(kw.get("stride", 1)), pair(kw.get("padding", 0))]
    if transposed:
        args.append(pair(kw.get("output_padding", 0)))
    return args + [pair(kw.get("dilation", 1)), kw.get("groups", 1)]


@pytest.mark.parametrize("k", range(8))
def test_opcheck_forward_and_weight_ops(k):
    transposed, x, w, b, kw = _opcheck_samples()[k]
    args = _norm_kw(kw, transposed)
    op = torch.ops.fastgan.conv_transpose2d if transposed else torch.ops.fastgan.conv2d
    torch.library.opcheck(op.default, (x, w, b, *args))
    y = _torch(transposed)(x.detach(), w.detach(), None, **kw)
    dy = torch.randn_like(y).requires_grad_()
    stride, padding = args[:2]
    output_padding = args[2] if transposed else [0, 0]
    dilation, groups = args[-2:]
    torch.library.opcheck(torch.ops.fastgan.conv2d_weight.default,
                          (dy, x, list(w.shape), stride, padding, output_padding, dilation, groups,
                           transposed))


@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_compile_fullgraph_forward_backward(channels_last):
    torch._dynamo.reset()

    def layer(x, w1, b1, w2):
        h = F.leaky_relu(conv2d(x, w1, b1, stride=2, padding=1), 0.2)
        return conv_transpose2d(h, w2, stride=2, padding=1, output_padding=1, groups=2)

    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    x = torch.randn(2, 4, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    args = [x, torch.randn(6, 4, 3, 3), torch.randn(6), torch.randn(6, 2, 3, 3)]
    a1 = [t.clone().requires_grad_() for t in args]
    a2 = [t.clone().requires_grad_() for t in args]
    y1, y2 = layer(*a1), compiled(*a2)
    assert y2.shape == (2, 4, 8, 8)
    torch.testing.assert_close(y2, y1, rtol=1e-4, atol=1e-4)
    y1.square().sum().backward()
    with no_weight_gradients():  # ignored for compiled backwards: never baked into the graph
        y2.square().sum().backward()
    for p, q in zip(a1, a2):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-4)
    explanation = torch._dynamo.explain(layer)(*args)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
