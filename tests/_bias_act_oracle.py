"""An independent float64 oracle for bias_act: the definition written with torch.nn.functional,
differentiated by autograd (no hand-written derivatives)."""
import math

import torch
import torch.nn.functional as F

from tests._compare import assert_rel_norm_list  # noqa: F401  (re-exported to the op tests)

ACTS = ["linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"]
SECOND_ORDER_ACTS = ["tanh", "sigmoid", "elu", "selu", "softplus", "swish"]
DEF_GAIN = {"relu": math.sqrt(2), "lrelu": math.sqrt(2), "swish": math.sqrt(2)}


def definition(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None):
    if b is not None:
        shape = [1] * x.dim()
        shape[dim] = -1
        x = x + b.reshape(shape)
    alpha = 0.2 if alpha is None else alpha
    f = {
        "linear": lambda s: s,
        "relu": F.relu,
        "lrelu": lambda s: F.leaky_relu(s, alpha),
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "elu": F.elu,
        "selu": F.selu,
        "softplus": lambda s: F.softplus(s, threshold=50),
        "swish": F.silu,
    }[act]
    y = f(x) * (DEF_GAIN.get(act, 1.0) if gain is None else gain)
    if clamp is not None and clamp >= 0:
        y = y.clamp(-clamp, clamp)
    return y


def value_grads(fn, x, b, *, second_order=True, seed=0):
    """y, dL/dx, dL/db and the second-order gradients of ||dL/dx||^2 + ||dL/db||^2 for a fixed,
    random, non-linear loss L (so dy depends on y and every term of the Hessian is exercised)."""
    x = x.detach().clone().requires_grad_(True)
    b = None if b is None else b.detach().clone().requires_grad_(True)
    leaves = [x] if b is None else [x, b]
    y = fn(x, b)
    g = torch.Generator(device="cpu").manual_seed(seed)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.device, y.dtype)
    loss = (y * w + 0.25 * y * y).sum()
    grads = torch.autograd.grad(loss, leaves, create_graph=second_order)
    out = [y.detach()] + [t.detach() for t in grads]
    if second_order:
        pen = sum(t.float().square().sum() if t.dtype != torch.float64 else t.square().sum() for t in grads)
        out += [t.detach() for t in torch.autograd.grad(pen, leaves, allow_unused=True,
                                                         materialize_grads=True)]
    return out


def assert_close_list(got, want, rtol, atol, what=""):
    assert len(got) == len(want)
    for i, (a, e) in enumerate(zip(got, want)):
        assert a.shape == e.shape, f"{what}[{i}] shape {a.shape} != {e.shape}"
        torch.testing.assert_close(a.double().cpu(), e.double().cpu(), rtol=rtol, atol=atol,
                                   msg=lambda m: f"{what}[{i}]: {m}")
