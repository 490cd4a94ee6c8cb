"""bias_act Triton kernel under TRITON_INTERPRET=1 on CPU tensors, against the reference:
forward, backward and double backward; odd sizes, several dims, layouts, both offset widths."""
import pytest
import torch

from fastgan.ops import bias_act
from tests._bias_act_oracle import ACTS, assert_close_list, assert_rel_norm_list, value_grads

pytestmark = pytest.mark.interpret

TOL = {torch.float32: 1e-5, torch.float64: 1e-12}  # ||triton - ref|| / ||ref||


def _compare(x, b, dim=1, **kw):
    got = value_grads(lambda x, b: bias_act(x, b, dim=dim, impl="triton", **kw), x, b)
    want = value_grads(lambda x, b: bias_act(x, b, dim=dim, impl="ref", **kw), x, b)
    assert_rel_norm_list(got, want, TOL[x.dtype], what=str(kw))
    # y and the first-order gradients also elementwise
    tol = {torch.float32: 2e-5, torch.float64: 1e-12}[x.dtype]
    assert_close_list(got[:3 if b is not None else 2], want[:3 if b is not None else 2],
                      rtol=tol, atol=tol, what=str(kw))
    return got


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 1.5])
def test_acts_forward_backward_double_backward(dtype, act, clamp):
    # 3*5*37*41 = 22755 elements: several programs and a ragged last block
    x = torch.randn(3, 5, 37, 41, dtype=dtype) * 2
    b = torch.randn(5, dtype=dtype)
    _compare(x, b, act=act, clamp=clamp)


@pytest.mark.parametrize("shape,dim", [((7, 9), 1), ((7, 9), 0), ((4, 3, 5, 6), 3), ((4, 3, 5, 6), -2),
                                       ((1000,), 0), ((2, 3, 4, 5, 6), 2)])
@pytest.mark.parametrize("act", ["lrelu", "swish", "sigmoid"])
def test_dims(shape, dim, act):
    x = torch.randn(shape) * 2
    b = torch.randn(shape[dim])
    _compare(x, b, dim=dim, act=act)


@pytest.mark.parametrize("layout", ["channels_last", "sliced", "transposed", "expanded"])
@pytest.mark.parametrize("act", ["lrelu", "tanh", "swish"])
def test_layouts(layout, act):
    if layout == "channels_last":
        x = torch.randn(2, 6, 7, 5).contiguous(memory_format=torch.channels_last)
    elif layout == "sliced":
        x = torch.randn(2, 6, 14, 5)[:, :, 1::2]
    elif layout == "transposed":
        x = torch.randn(2, 5, 7, 6).permute(0, 3, 2, 1)
    else:
        x = torch.randn(1, 6, 7, 5).expand(2, 6, 7, 5)
    b = torch.randn(6)
    y = bias_act(x, b, act=act, impl="triton")
    assert y.stride() == torch.empty_like(x).stride()
    _compare(x, b, act=act, clamp=2.0)


def test_bias_per_block_path():
    # inner = 64*64 = BLOCK: one channel per program, a scalar bias load
    x, b = torch.randn(2, 3, 64, 64), torch.randn(3)
    _compare(x, b, act="lrelu", clamp=1.0)


def test_no_bias_and_unusual_params():
    x = torch.randn(3, 4, 9, 11, dtype=torch.float64)
    _compare(x, None, act="swish")
    _compare(x, torch.randn(4, dtype=torch.float64), act="lrelu", alpha=-0.4, gain=0.7)
    _compare(x, torch.randn(4, dtype=torch.float64), act="tanh", gain=0.0)


def test_int64_offsets(monkeypatch):
    # force the 64-bit offset variant on a small tensor: same results as the 32-bit one
    import sys
    mod = sys.modules["fastgan.ops.bias_act"]
    x, b = torch.randn(3, 5, 37, 41), torch.randn(5)
    want = value_grads(lambda x, b: bias_act(x, b, act="softplus", impl="triton"), x, b)
    monkeypatch.setattr(mod, "_INT64_THRESHOLD", 0)
    got = value_grads(lambda x, b: bias_act(x, b, act="softplus", impl="triton"), x, b)
    assert_close_list(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types(dtype):
    x, b = (torch.randn(2, 8, 9, 7) * 2).to(dtype), torch.randn(8).to(dtype)
    got = bias_act(x, b, act="swish", clamp=256.0, impl="triton")
    want = bias_act(x, b, act="swish", clamp=256.0, impl="ref")
    assert got.dtype == dtype
    torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("act", ACTS)
def test_nan_and_inf(act):
    x = torch.randn(2, 3, 50)
    x[0, 1, 3] = float("nan")
    x[1, 2, 4] = float("inf")
    x[1, 0, 5] = float("-inf")
    b = torch.randn(3)
    got = bias_act(x, b, act=act, impl="triton")
    want = bias_act(x, b, act=act, impl="ref")
    assert got[0, 1, 3].isnan()
    torch.testing.assert_close(got, want, equal_nan=True)


def test_empty():
    x = torch.empty(0, 3, 4)
    assert bias_act(x, torch.randn(3), act="lrelu", impl="triton").shape == (0, 3, 4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_clamp_mask_matches_reference(dtype):
    # a saturated element stores clamp rounded to the dtype (bf16(0.7) < 0.7): both backends must
    # treat it as saturated
    x = (torch.randn(4, 8, 33) * 2).to(dtype).requires_grad_()
    b = torch.randn(8).to(dtype)
    grads = []
    for impl in ("triton", "ref"):
        (g,) = torch.autograd.grad(bias_act(x, b, act="linear", clamp=0.7, impl=impl).float().sum(), x)
        grads.append(g)
    assert (grads[1] == 0).any() and (grads[1] != 0).any()
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


@pytest.mark.parametrize("shape,layout,reduce", [
    ((2, 3, 64, 64), "nchw", 1),          # inner = 4096 = BLOCK: one channel per program
    ((2, 3, 64, 128), "nchw", 1),         # two programs per channel plane
    ((2, 16, 20, 20), "channels_last", 2),  # C divides BLOCK: [rows, C] partials, ragged tail
    ((1, 8, 5, 7), "channels_last", 2),   # a single, mostly masked program
    ((2, 3, 7, 5), "channels_last", 0),   # C = 3 does not divide BLOCK: separate reduction
    ((2, 3, 7, 5), "nchw", 0),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("act,clamp", [("lrelu", None), ("swish", 1.5), ("linear", 0.7)])
def test_fused_bias_gradient(shape, layout, reduce, dtype, act, clamp):
    """db from the kernel's fused per-program partial sums equals the reference reduction."""
    from fastgan.ops.bias_act import _db_plan

    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = (torch.randn(shape, dtype=dtype) * 2).contiguous(memory_format=fmt)
    b = torch.randn(shape[1], dtype=dtype)
    assert _db_plan(x, 1, 4096)[0] == reduce
    _compare(x, b, act=act, clamp=clamp)


@pytest.mark.parametrize("shape,strides,dim", [((4, 1, 8, 8), (64, 0, 8, 1), 1),
                                               ((1, 3, 8, 8), (0, 64, 8, 1), 0)])
def test_size_one_bias_dim_with_stride_zero(shape, strides, dim):
    # a dense tensor may carry any stride (even 0) on a size-1 dim: the bias-gradient plan must
    # not take it for the channel period
    x = torch.randn(shape[0] * shape[1] * 64).as_strided(shape, strides)
    b = torch.randn(1)
    _compare(x, b, dim=dim, act="lrelu")
