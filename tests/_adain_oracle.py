"""An independent float64 oracle for adain: instance norm + affine written directly (two-pass
mean / biased variance), differentiated by autograd (no hand-written derivatives)."""
import torch

from tests._compare import assert_rel_norm_list  # noqa: F401  (re-exported to the op tests)


def definition(x, gamma, beta, eps=1e-5):
    x = x.double()
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)
    xhat = (x - mu) / torch.sqrt(var + eps)
    return gamma.double()[:, :, None, None] * xhat + beta.double()[:, :, None, None]


def value_grads(fn, x, gamma, beta, *, second_order=True, seed=0, rounding=None):
    """y, dL/dx, dL/dgamma, dL/dbeta for a fixed random non-linear loss L (so dy depends on y), and
    with ``second_order`` the gradients of ||dL/dx||^2 + ||dL/dgamma||^2 + ||dL/dbeta||^2 (a
    gradient penalty through the op) w.r.t. x, gamma, beta.  ``rounding``: round the loss weights
    to that dtype first (so a float64 reference sees exactly the weights a half-type run does)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, gamma, beta)]
    y = fn(*leaves)
    g = torch.Generator(device="cpu").manual_seed(seed)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64).to(rounding or y.dtype)
    w = w.to(y.device, y.dtype)
    loss = (y * w + 0.25 * y * y).float().sum() if y.dtype != torch.float64 else \
        (y * w + 0.25 * y * y).sum()
    grads = torch.autograd.grad(loss, leaves, create_graph=second_order)
    out = [y.detach()] + [t.detach() for t in grads]
    if second_order:
        pen = sum(t.double().square().sum() for t in grads)
        out += [t.detach() for t in torch.autograd.grad(pen, leaves, allow_unused=True,
                                                         materialize_grads=True)]
    return out


def layouts(shape, dtype=torch.float64, scale=2.0, shift=0.5):
    """The same kind of input in every layout the op must accept."""
    n, c, h, w = shape

    def r(*s):
        return torch.randn(*s, dtype=dtype) * scale + shift

    return {
        "contiguous": r(n, c, h, w),
        "channels_last": r(n, c, h, w).contiguous(memory_format=torch.channels_last),
        "sliced": r(n, c, h, 2 * w)[:, :, :, ::2],
        "permuted": r(w, c, h, n).permute(3, 1, 2, 0),  # dense, but neither NCHW nor NHWC
    }
