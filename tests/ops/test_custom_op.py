"""The eager fast path of fastgan's custom ops (fastgan/ops/_custom_op.py).

Eager calls skip the torch.library dispatcher; everything else (compile, FakeTensor, make_fx,
functorch, dispatch modes, tensor subclasses) must still see the registered op.  The fast path must
give bitwise the same values and gradients, to second order, as the dispatcher."""
import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils.flop_counter import FlopCounterMode

import fastgan.ops as ops
from fastgan.ops import _custom_op
from fastgan.ops._custom_op import FastOp, custom_op, eager_fast_path, input_grad_used
from fastgan.ops.bias_act import _bias_act_op

pytestmark = pytest.mark.skipif(not _custom_op.fast_path_enabled(),
                                reason="FASTGAN_EAGER_FAST_PATH=0 or a torch without the internals")

DT = torch.float64
F = ops.setup_filter([1, 3, 3, 1]).to(DT)


def _case(name, impl="ref", device="cpu", dtype=DT):
    """(fn, inputs): a public fastgan call with backend ``impl`` on fresh random inputs."""
    torch.manual_seed(sum(map(ord, name)))

    def leaf(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, device=device, dtype=dtype) * scale + shift).requires_grad_()

    f = F.to(device=device, dtype=torch.float32)
    if name == "bias_act_lrelu":
        return (lambda x, b: ops.bias_act(x, b, act="lrelu", impl=impl)), (leaf(2, 5, 3, 4), leaf(5))
    if name == "bias_act_swish_clamp":
        return (lambda x, b: ops.bias_act(x, b, act="swish", clamp=0.8, impl=impl)), \
            (leaf(3, 6, 5), leaf(6))
    if name == "bias_act_tanh_dim2":
        return (lambda x, b: ops.bias_act(x, b, dim=2, act="tanh", gain=1.5, impl=impl)), \
            (leaf(2, 3, 7), leaf(7))
    if name == "upsample2d":
        return (lambda x: ops.upsample2d(x, f, impl=impl)), (leaf(2, 3, 5, 6),)
    if name == "downsample2d":
        return (lambda x: ops.downsample2d(x, f, impl=impl)), (leaf(2, 3, 8, 6),)
    if name == "conv2d":
        return (lambda x, w, b: ops.conv2d(x, w, b, padding=1)), \
            (leaf(2, 3, 6, 5), leaf(4, 3, 3, 3), leaf(4))
    if name == "conv_transpose2d":
        return (lambda x, w: ops.conv_transpose2d(x, w, stride=2)), (leaf(2, 3, 4, 5), leaf(3, 4, 3, 3))
    if name == "modulated_conv2d":
        return (lambda x, w, s, b: ops.modulated_conv2d(x, w, s, padding=1, bias=b, act="lrelu",
                                                        impl=impl)), \
            (leaf(2, 3, 6, 6), leaf(4, 3, 3, 3), leaf(2, 3, scale=0.3, shift=1.0), leaf(4))
    if name == "modulated_conv2d_unfused_up":
        return (lambda x, w, s: ops.modulated_conv2d(x, w, s, up=2, padding=1, resample_filter=f,
                                                     fused_modconv=False, impl=impl)), \
            (leaf(2, 3, 4, 4), leaf(4, 3, 3, 3), leaf(2, 3, scale=0.3, shift=1.0))
    if name == "adain":
        return (lambda x, g, b: ops.adain(x, g, b, impl=impl)), (leaf(2, 3, 4, 5), leaf(2, 3), leaf(2, 3))
    raise KeyError(name)


CASES = ["bias_act_lrelu", "bias_act_swish_clamp", "bias_act_tanh_dim2", "upsample2d",
         "downsample2d", "conv2d", "conv_transpose2d", "modulated_conv2d",
         "modulated_conv2d_unfused_up", "adain"]


def _run(fn, inputs, fast: bool):
    """Output, first gradients (with create_graph) and the gradients of a function of them."""
    with eager_fast_path(fast):
        y = fn(*inputs)
        dy = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(1)).to(y.device)
        dy.requires_grad_()  # so the second pass also runs through the ops linear in x
        gs = torch.autograd.grad(y, inputs, dy, create_graph=True)
        # an R1-like second pass: the squared norm of the first gradients, w.r.t. every input
        gg = torch.autograd.grad(sum((g * g).sum() for g in gs), (*inputs, dy), allow_unused=True)
    return y, gs, gg, type(y.grad_fn).__name__


@pytest.mark.parametrize("name", CASES)
def test_fast_path_matches_dispatcher_bitwise(name):
    fn, inputs = _case(name)
    y0, g0, gg0, node0 = _run(fn, inputs, fast=False)
    y1, g1, gg1, node1 = _run(fn, inputs, fast=True)
    assert "FastGrad" not in node0 and "FastGrad" in node1, (node0, node1)  # both paths were taken
    assert torch.equal(y0, y1)
    for a, b in zip(g0, g1):
        assert torch.equal(a, b)
    assert any(a is not None for a in gg0)  # the second-order pass reaches at least one input
    for a, b in zip(gg0, gg1):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b)


def test_fast_path_no_grad_skips_autograd():
    fn, (x, b) = _case("bias_act_lrelu")
    with torch.no_grad():
        y = fn(x, b)
    assert y.grad_fn is None and not y.requires_grad
    y = fn(x.detach(), b.detach())  # grad mode on, but nothing requires grad
    assert y.grad_fn is None
    assert torch.equal(y, fn(x, b).detach())


def test_fast_path_gradcheck():
    fn, inputs = _case("bias_act_swish_clamp")
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


def _graph_targets(gm):
    return {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}


@pytest.mark.parametrize("tracing_mode", ["real", "fake"])
def test_make_fx_sees_the_registered_op(tracing_mode):
    x, b = torch.randn(2, 4, 3, 3), torch.randn(4)
    gm = make_fx(lambda x, b: ops.bias_act(x, b, act="lrelu", impl="ref"), tracing_mode=tracing_mode)(x, b)
    assert "fastgan.bias_act.default" in _graph_targets(gm)


def test_fake_tensors_go_through_the_dispatcher():
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
    with FakeTensorMode() as mode:
        x = torch.empty(2, 4, 3, 3).to(memory_format=torch.channels_last)
        y = ops.bias_act(x, torch.empty(4), act="lrelu", impl="ref")
    assert isinstance(y, FakeTensor) and y.fake_mode is mode
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_dispatch_mode_sees_the_registered_op():
    seen = []

    class Spy(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    x, b = torch.randn(2, 3), torch.randn(3)
    with Spy():
        ops.bias_act(x, b, act="relu", impl="ref")
    assert seen[0] == "fastgan.bias_act.default", seen


def test_flop_counter_and_functorch_fall_back():
    x, b = torch.randn(2, 4, 3, 3), torch.randn(4)
    with FlopCounterMode(display=False):  # a dispatch mode: the dispatcher path, same values
        y = ops.bias_act(x, b, act="lrelu", impl="ref")
    assert torch.equal(y, ops.bias_act(x, b, act="lrelu", impl="ref"))
    seen = []

    def f(t):
        seen.append(_custom_op._plain_eager((t, b, 1.0)))
        return (t * 2).sum()

    torch.func.grad(f)(x)
    torch.func.vmap(lambda t: seen.append(_custom_op._plain_eager((t,))) or t)(x)
    assert seen == [False, False]
    assert _custom_op._plain_eager((x, b, 1.0, [1, 2], None, "lrelu"))


def test_tensor_subclass_goes_through_the_dispatcher():
    class Tagged(torch.Tensor):
        pass

    x = torch.randn(2, 3).as_subclass(Tagged)
    calls = []
    orig = _bias_act_op.op

    class Recorder:
        def __call__(self, *args):
            calls.append(type(args[0]).__name__)
            return orig(*args)

    _bias_act_op.op = Recorder()
    try:
        ops.bias_act(x, None, act="relu", impl="ref")
        ops.bias_act(torch.randn(2, 3), None, act="relu", impl="ref")
    finally:
        _bias_act_op.op = orig
    assert calls == ["Tagged"]  # the subclass went to the dispatcher, the plain tensor did not


def test_profiler_records_the_op_name():
    x, b = torch.randn(2, 4, 3, 3, requires_grad=True), torch.randn(4)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        ops.bias_act(x, b, act="lrelu", impl="ref").sum().backward()
    names = {e.name for e in prof.events()}
    assert "fastgan::bias_act" in names and "fastgan::bias_act_grad" in names, sorted(names)[:50]


def test_compile_traces_the_registered_op():
    from torch._dynamo.testing import CompileCounterWithBackend
    cnt = CompileCounterWithBackend("aot_eager")
    x, b = torch.randn(2, 4, 3, 3), torch.randn(4)
    f = torch.compile(lambda x, b: ops.bias_act(x, b, act="lrelu", impl="ref") * 2, backend=cnt,
                      fullgraph=True)
    torch.testing.assert_close(f(x, b), ops.bias_act(x, b, act="lrelu", impl="ref") * 2)
    assert cnt.frame_count == 1
    assert "fastgan.bias_act.default" in _graph_targets(cnt.graphs[0]) or any(
        "fastgan.bias_act" in str(n.target) for g in cnt.graphs for n in g.graph.nodes)


# ---------------------------------------------------------------- the FastOp mechanism itself

_seen = []


@custom_op("fastgan_test::probe")
def _probe(x: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    _seen.append((type(scale), type(shift)))
    return x * scale + shift


@_probe.register_fake
def _(x, scale, shift):
    return torch.empty_like(x)


def _probe_setup(ctx, inputs, output):
    ctx.scale = inputs[1]
    ctx.needs = ctx.needs_input_grad


def _probe_backward(ctx, g):
    _seen.append(("needs", ctx.needs))
    return g * ctx.scale, None, None


_probe.register_autograd(_probe_backward, setup_context=_probe_setup)


def test_int_for_float_argument_becomes_float_like_the_dispatcher():
    _seen.clear()
    x = torch.randn(3)
    with eager_fast_path(False):
        y0 = _probe(x, 2, 1)
    y1 = _probe(x, 2, 1)
    assert _seen == [(float, float), (float, float)]
    assert torch.equal(y0, y1)


def test_needs_input_grad_and_gradient():
    _seen.clear()
    x = torch.randn(3, requires_grad=True)
    (g,) = torch.autograd.grad(_probe(x, 3.0, 0.5).sum(), x)
    assert torch.equal(g, torch.full((3,), 3.0))
    assert ("needs", (True, False, False)) in _seen


@custom_op("fastgan_test::used_probe")
def _used_probe(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return x * w + b


@_used_probe.register_fake
def _(x, w, b):
    return torch.empty_like(x)


_used = []


def _used_probe_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], inputs[1])


def _used_probe_backward(ctx, g):
    x, w = ctx.saved_tensors
    used = tuple(input_grad_used(ctx, i) for i in range(3))
    _used.append(used)
    return (g * w if used[0] else None, g * x if used[1] else None, g if used[2] else None)


_used_probe.register_autograd(_used_probe_backward, setup_context=_used_probe_setup)


@pytest.mark.parametrize("fast", [True, False])
def test_input_grad_used_asks_the_engine(fast):
    """input_grad_used(ctx, i): needs_input_grad[i] refined by what the running pass executes;
    x a leaf input, w a leaf parameter, b a computed parameter (b0 * 2), through the fast path
    and the dispatcher.  The gradients that are computed stay exact."""
    x, w, b0 = (torch.randn(4, dtype=DT, requires_grad=True) for _ in range(3))

    def run(how):
        _used.clear()
        with eager_fast_path(fast):
            y = _used_probe(x, w, b0 * 2).square().sum()
            out = how(y)
        (used,) = _used
        return used, out

    want_x, want_w = 2 * (x * w + 2 * b0) * w, 2 * (x * w + 2 * b0) * x
    used, (gx,) = run(lambda y: torch.autograd.grad(y, x))
    assert used == (True, False, False)     # what a penalty's inner pass wants
    torch.testing.assert_close(gx, want_x.detach())
    used, (gx, gw) = run(lambda y: torch.autograd.grad(y, [x, w]))
    assert used == (True, True, False)      # a requested leaf: the engine raises -> used
    torch.testing.assert_close(gw, want_w.detach())
    used, (gb0,) = run(lambda y: torch.autograd.grad(y, b0))
    assert used == (False, False, True)
    used, _ = run(lambda y: y.backward(inputs=[w]))
    assert used == (False, True, False)
    torch.testing.assert_close(w.grad, want_w.detach())
    assert x.grad is None and b0.grad is None
    used, _ = run(lambda y: y.backward())
    assert used == (True, True, True)
    with _custom_op.engine_pruning(False):  # the benchmark's "unpruned" variant
        used, _ = run(lambda y: torch.autograd.grad(y, x))
    assert used == (True, True, True)
    with torch.no_grad():
        xd = x.detach()
    _used.clear()
    with eager_fast_path(fast):
        torch.autograd.grad(_used_probe(xd, w, b0 * 2).sum(), w)
    assert _used == [(False, True, False)]  # x does not require grad


def test_input_grad_used_outside_an_engine_pass():
    """Called with no backward pass running (a backward formula called directly, or traced by
    torch.compile's AOT autograd): every input that needs a gradient counts as used."""
    class Ctx:
        needs_input_grad = (True, False, True)
        next_functions = ((None, 0), (None, 0), (None, 0))

    assert [input_grad_used(Ctx, i) for i in range(3)] == [True, False, True]
    x = torch.randn(3, requires_grad=True)
    y = (x * 2).sum()

    class Ctx2:
        needs_input_grad = (True,)
        next_functions = ((y.grad_fn, 0),)

    assert input_grad_used(Ctx2, 0)  # the engine raises outside a pass: used


def test_input_grad_used_under_compile():
    """A compiled forward + backward traces the backward once: nothing is pruned there, and the
    gradients equal eager's."""
    x, w, b0 = (torch.randn(4, dtype=DT, requires_grad=True) for _ in range(3))
    f = torch.compile(lambda x, w, b0: _used_probe(x, w, b0 * 2).square().sum(), fullgraph=True,
                      backend="aot_eager")
    got = torch.autograd.grad(f(x, w, b0), [x, w, b0])
    want = torch.autograd.grad(_used_probe(x, w, b0 * 2).square().sum(), [x, w, b0])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_fastop_api():
    assert isinstance(_bias_act_op, FastOp) and "fastgan::bias_act" in repr(_bias_act_op)
    with pytest.raises(ValueError, match="functional"):
        custom_op("fastgan_test::bad", mutates_args=("x",))
    with eager_fast_path(False):
        assert not _custom_op.fast_path_enabled()
    assert _custom_op.fast_path_enabled()


def test_op_without_a_schema_uses_the_dispatcher(monkeypatch):
    monkeypatch.setattr(_bias_act_op, "_usable", False)  # as when CustomOpDef lacks _opoverload
    x = torch.randn(2, 3, requires_grad=True)
    y = ops.bias_act(x, None, act="relu", impl="ref")
    assert "FastGrad" not in type(y.grad_fn).__name__


@pytest.mark.parametrize("name", ["modulated_conv2d", "conv2d", "bias_act_lrelu", "adain"])
def test_fast_path_matches_dispatcher_under_autocast(name):
    fn, inputs = _case(name, dtype=torch.float32)
    got = []
    for fast in (False, True):
        with eager_fast_path(fast), torch.autocast("cpu", dtype=torch.bfloat16):
            y = fn(*inputs)
            got.append((y, *torch.autograd.grad(y.float().square().sum(), inputs)))
    for a, b in zip(*got):
        assert a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.gpu
@pytest.mark.parametrize("impl", ["triton", "cuda"])
@pytest.mark.parametrize("name", ["bias_act_lrelu", "bias_act_swish_clamp", "upsample2d",
                                  "downsample2d", "modulated_conv2d", "adain"])
def test_fast_path_matches_dispatcher_on_gpu(name, impl, monkeypatch):
    """The fused backends through both paths: the same kernels, so the same numbers (up to
    cuDNN's run-to-run freedom in the convolution gradients)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from tests._gpu import need_impl
    need_impl(impl)
    # modulated_conv2d's gradients (create_graph: torch / cuDNN convolutions, also for the fused
    # Triton layer) would otherwise be free to use cuDNN's atomic-add weight-gradient algorithms,
    # whose run-to-run differences are not bounded by the tolerance below; and an earlier test
    # (the trainer sets cudnn.benchmark = True globally) must not change the algorithm choice.
    # The Triton and CUDA kernels themselves use no atomics.
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    fn, inputs = _case(name, impl=impl, device="cuda", dtype=torch.float32)
    y0, g0, gg0, node0 = _run(fn, inputs, fast=False)
    y1, g1, gg1, node1 = _run(fn, inputs, fast=True)
    assert "FastGrad" not in node0 and "FastGrad" in node1, (node0, node1)
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    for a, b in zip((*g0, *gg0), (*g1, *gg1)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reentrant", [False, True])
def test_activation_checkpointing_through_the_fast_path(reentrant):
    """torch.utils.checkpoint recomputes the forward in the backward (saved-tensor hooks or a
    reentrant backward): the gradients equal the plain run's."""
    from torch.utils.checkpoint import checkpoint
    fn, inputs = _case("modulated_conv2d")

    def block(*a):
        return ops.bias_act(fn(*a), None, act="lrelu", impl="ref")

    def grads(f):  # .backward(): a reentrant checkpoint does not support autograd.grad
        for t in inputs:
            t.grad = None
        f(*inputs).square().sum().backward()
        return [t.grad.clone() for t in inputs]

    want = grads(block)
    got = grads(lambda *a: checkpoint(block, *a, use_reentrant=reentrant))
    for a, b in zip(want, got):
        assert torch.equal(a, b)


@pytest.mark.parametrize("strict", [False, True])
def test_export_sees_the_registered_ops(strict):
    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
            self.b = torch.nn.Parameter(torch.randn(4))

        def forward(self, x, s):
            y = ops.modulated_conv2d(x, self.w, s, padding=1, impl="ref")
            return ops.bias_act(y, self.b, act="lrelu", impl="ref")

    m = Layer()
    x, s = torch.randn(2, 3, 5, 5), torch.randn(2, 3) + 1
    ep = torch.export.export(m, (x, s), strict=strict)
    targets = _graph_targets(ep.graph_module)
    assert "fastgan.bias_act.default" in targets, targets
    assert any(t.startswith("fastgan.modulated_conv2d_fused") for t in targets), targets
    torch.testing.assert_close(ep.module()(x, s), m(x, s))
