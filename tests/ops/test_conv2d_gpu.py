"""GPU tier of conv2d / conv_transpose2d / penalties: cuDNN in fp16 / bf16 / fp32 against float64,
NCHW and channels_last, the weight-gradient switch on autograd's CUDA worker threads, a tensor of
more than 2^31 elements, torch.compile (skipped without a CUDA device)."""
import importlib

import pytest
import torch
import torch.nn.functional as F

from fastgan.ops import conv2d, conv_transpose2d, r1_penalty

pytestmark = pytest.mark.gpu

C = importlib.import_module("fastgan.ops.conv2d")
# ||got - want|| / ||want|| against float64; fp32 runs with TF32 off (see test_tf32_default)
TOL = {torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 2e-2}

CASES = [  # (transposed, x shape, w shape, kwargs)
    (False, (4, 32, 33, 17), (48, 32, 3, 3), dict(padding=1)),
    (False, (4, 32, 32, 32), (64, 16, 3, 3), dict(stride=2, padding=1, groups=2)),
    (False, (2, 64, 16, 16), (64, 64, 1, 1), dict()),
    (True, (4, 32, 16, 16), (32, 24, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    (True, (2, 32, 9, 11), (32, 8, 4, 3), dict(stride=(2, 3), padding=(1, 0), groups=4, dilation=(1, 2))),
]


@pytest.fixture(autouse=True)
def _no_tf32(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _rel(a, b):
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))  # no silent broadcasting
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _value_grads(fn, x, w, b, second_order, rdtype):
    """y, the gradients of <y, r> (r rounded to the tested dtype on both sides) and, for
    second_order, the gradients of the squared norm of those gradients."""
    x, w, b = (t.detach().clone().requires_grad_() for t in (x, w, b))
    y = fn(x, w, b)
    r = torch.randn(y.shape, generator=torch.Generator(y.device).manual_seed(0), device=y.device)
    r = r.to(rdtype).to(y.dtype)
    gs = torch.autograd.grad((y * r).sum(), (x, w, b), create_graph=second_order)
    out = [y, *gs]
    if second_order:
        # (the gradients of a linear function of y do not depend on b)
        out += torch.autograd.grad(sum(g.float().square().sum() for g in gs), (x, w))
    return out


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_vs_float64(case, dtype, layout):
    transposed, xs, ws, kw = CASES[case]
    c_out = ws[1] * kw.get("groups", 1) if transposed else ws[0]
    g = torch.Generator("cuda").manual_seed(case)
    x = torch.randn(xs, device="cuda", generator=g)
    w = torch.randn(ws, device="cuda", generator=g) * 0.1
    b = torch.randn(c_out, device="cuda", generator=g)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
    ours = conv_transpose2d if transposed else conv2d
    ref = F.conv_transpose2d if transposed else F.conv2d
    second = dtype == torch.float32
    got = _value_grads(lambda x, w, b: ours(x, w, b, **kw), x, w, b, second, dtype)
    want = _value_grads(lambda x, w, b: ref(x, w, b, **kw), x.double(), w.double(), b.double(),
                        second, dtype)
    assert got[0].dtype == dtype and got[0].stride() == ref(x, w, b, **kw).stride()
    for i, (a, t) in enumerate(zip(got, want)):
        assert _rel(a, t) <= TOL[dtype] * (1 if i < 4 else 10), (i, _rel(a, t))


def test_tf32_default_is_torchs():
    """fastgan uses torch's cuDNN settings: with TF32 on (torch's default for convolutions) fp32
    results are TF32-accurate, like F.conv2d's."""
    torch.backends.cudnn.allow_tf32 = True
    x = torch.randn(4, 64, 32, 32, device="cuda")
    w = torch.randn(64, 64, 3, 3, device="cuda")
    torch.testing.assert_close(conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))


def _d_params(device):
    g = torch.Generator(device).manual_seed(0)
    shapes = [(32, 3, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3), (1, 64, 4, 4)]
    return [(torch.randn(s, device=device, generator=g, dtype=torch.float64) * 0.2)
            .requires_grad_() for s in shapes]


def _d(params, op, gain, acts=None, masks=None):
    """A small D.  ``acts``: a list that receives its hidden activations (detached).  ``masks``:
    activations of another run of D whose signs choose each element's leaky-ReLU branch here
    (see test_switch_and_pruning_on_cuda_worker_threads)."""
    s = (lambda w: w * 0.9) if gain else (lambda w: w)

    def act(u, k):
        if masks is not None:
            return torch.where(masks[k].to(u.device) > 0, u, 0.2 * u)
        h = F.leaky_relu(u, 0.2)
        if acts is not None:
            acts.append(h.detach())
        return h

    def D(x):
        h = act(op(x, s(params[0]), padding=1), 0)
        h = act(op(h, s(params[1]), stride=2, padding=1), 1)
        h = act(op(h, s(params[2]), stride=2, padding=1), 2)
        return op(h, s(params[3])).flatten(1)
    return D


@pytest.mark.parametrize("gain", [False, True])
def test_switch_and_pruning_on_cuda_worker_threads(monkeypatch, gain):
    """Autograd runs CUDA backward nodes on its device threads: the switch (leaf weights) and the
    engine query (computed weights) must both act there, and the penalty must stay right."""
    calls = []
    real = C._weight_grad
    monkeypatch.setattr(C, "_weight_grad", lambda *a: (calls.append(1), real(*a))[1])
    ps = [p.detach().float().requires_grad_() for p in _d_params("cuda")]
    x = torch.randn(4, 3, 16, 16, device="cuda")
    acts = []
    pen, logits = r1_penalty(_d(ps, conv2d, gain, acts=acts), x, return_logits=True)
    assert calls == [] and len(acts) == 3
    pen.backward()
    assert len(calls) > 0
    ref = [p.detach().double().cpu().requires_grad_() for p in ps]
    x64 = x.double().cpu()
    with torch.no_grad():  # (4 logits, some small: float32 reached 2.7e-6 in 300 random runs)
        assert _rel(logits.cpu(), _d(ref, F.conv2d, gain)(x64)) < 3e-5
    # The penalty and its gradients depend on which side of the leaky-ReLU kink each
    # pre-activation lies.  float32 puts a pre-activation within its rounding error of zero on the
    # other side now and then: measured on CPU (float32 vs float64, 300 random x), 1 run in 300
    # had gradient errors of 1e-2 (100x the tolerance) and a penalty error of 1.6e-4.  So the
    # float64 reference takes each element's branch from the tested activations (the forward
    # values are compared with the plain reference just above); then float32 reaches <= 7e-7.
    want = r1_penalty(_d(ref, F.conv2d, gain, masks=[a.cpu() for a in acts]), x64)
    assert _rel(pen.cpu(), want) < 1e-5
    for p, q in zip(ps, torch.autograd.grad(want, ref)):
        assert _rel(p.grad.cpu(), q) < 1e-4


@pytest.mark.bigmem
def test_more_than_2_31_elements():
    n, c, h, w = 33, 64, 1024, 1024  # 2.2e9 elements, 4.4 GB in fp16
    need = 6 * n * c * h * w * 2
    free, _ = torch.cuda.mem_get_info()
    if free < need:
        pytest.skip(f"needs ~{need / 2**30:.0f} GiB of free GPU memory, {free / 2**30:.0f} free")
    assert n * c * h * w > 2 ** 31
    g = torch.Generator("cuda").manual_seed(0)
    x = torch.randn((n, c, h, w), device="cuda", dtype=torch.float16, generator=g).requires_grad_()
    wt = (torch.randn((c, c, 3, 3), device="cuda", generator=g) * 0.05).half().requires_grad_()
    y = conv2d(x, wt, padding=1)
    dy = torch.ones_like(y)
    (dx,) = torch.autograd.grad(y, x, dy)
    # every sample is independent: check the last one (whose offsets exceed 2^31) in float32
    xl = x[-1:].detach().float().requires_grad_()
    yl = F.conv2d(xl, wt.detach().float(), padding=1)
    (dxl,) = torch.autograd.grad(yl, xl, torch.ones_like(yl))
    assert _rel(y[-1:], yl) < 2e-3
    assert _rel(dx[-1:], dxl) < 2e-3


def test_compile_fullgraph_cuda():
    torch._dynamo.reset()

    def layer(x, w1, w2):
        h = F.leaky_relu(conv2d(x, w1, stride=2, padding=1), 0.2)
        return conv_transpose2d(h, w2, stride=2, padding=1, output_padding=1)

    x = torch.randn(4, 16, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    args = [x, torch.randn(32, 16, 3, 3, device="cuda"), torch.randn(32, 16, 3, 3, device="cuda")]
    a1 = [t.clone().requires_grad_() for t in args]
    a2 = [t.clone().requires_grad_() for t in args]
    y1 = layer(*a1)
    y2 = torch.compile(layer, fullgraph=True)(*a2)
    # Norm-wise, not elementwise: compiled and eager code may run cuDNN with other algorithms
    # (e.g. a non-deterministic weight-gradient one), i.e. float32 sums in another order.  These
    # gradients are ~1e5..1e6 in size; fp32 against fp64 (on CPU) moves their near-zero elements by
    # 0.05..1.4, failing rtol = atol = 1e-3 by up to 13x (y, ~400 in size: 0.5x of rtol = atol =
    # 1e-4), while the norm-wise error stays <= 5e-7 (y: 2.6e-7).  A wrong graph is off by O(1).
    assert _rel(y2, y1) <= 1e-5, _rel(y2, y1)
    y1.square().sum().backward()
    y2.square().sum().backward()
    for i, (p, q) in enumerate(zip(a1, a2)):
        assert _rel(q.grad, p.grad) <= 1e-5, (i, _rel(q.grad, p.grad))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_opcheck_cuda(dtype):
    """The fake (meta) layouts must match cuDNN's choices, channels_last included."""
    x = torch.randn(2, 16, 9, 9, device="cuda", dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(32, 8, 3, 3, device="cuda", dtype=dtype, requires_grad=True)
    b = torch.randn(32, device="cuda", dtype=dtype, requires_grad=True)
    torch.library.opcheck(torch.ops.fastgan.conv2d.default, (x, w, b, [2, 2], [1, 1], [1, 1], 2))
    wt = torch.randn(16, 16, 3, 3, device="cuda", dtype=dtype, requires_grad=True)
    torch.library.opcheck(torch.ops.fastgan.conv_transpose2d.default,
                          (x, wt, b, [2, 2], [1, 1], [1, 1], [1, 1], 2))
    dy = torch.randn(2, 32, 5, 5, device="cuda", dtype=dtype, requires_grad=True)
    torch.library.opcheck(torch.ops.fastgan.conv2d_weight.default,
                          (dy, x, [32, 8, 3, 3], [2, 2], [1, 1], [0, 0], [1, 1], 2, False))
