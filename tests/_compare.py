"""Comparison helpers shared by the op test tiers."""
import torch


def assert_rel_norm_list(got, want, tol, what="", zero_scale=None):
    """||got - want|| / ||want|| <= tol per tensor: robust to the elementwise cancellation noise of
    float32 second-order terms (e.g. 1 - tanh^2 near saturation); NaN never passes.

    ``zero_scale``: the norm to measure against where a reference is exactly zero (a gradient that
    is zero by cancellation, e.g. AdaIN's dx on 1x1 planes): the size of the terms that cancel, so
    that a kernel's rounding residue passes and a missing term does not."""
    assert len(got) == len(want)
    for i, (a, e) in enumerate(zip(got, want)):
        assert a.shape == e.shape, f"{what}[{i}] shape {tuple(a.shape)} != {tuple(e.shape)}"
        a, e = a.double().cpu(), e.double().cpu()
        assert not a.isnan().any() and not e.isnan().any(), f"{what}[{i}]: NaN"
        denom = e.norm().item()
        if denom == 0 and zero_scale is not None:
            denom = zero_scale
        err = (a - e).norm().item() / max(denom, 1e-30)
        assert err <= tol, f"{what}[{i}]: relative error {err:.3g} > {tol:g}"


def lrelu_matched(u64, y, alpha=0.2, gain=2 ** 0.5):
    """float64 ``lrelu(u64) * gain`` with each element's branch taken from the tested output ``y``
    (detached): a reference whose gradients carry the tested computation's derivative mask.

    In fp16/bf16 the tested pre-activation differs from the float64 one by ~1e-3 relative, so some
    values near zero land on the other side of the kink; each such element changes its gradient
    by (1 - alpha) * gain * dy.  Against a plain float64 reference this gives every gradient a
    relative error of about sqrt(forward error) (~1e-2 in fp16, ~3e-2 in bf16, at any size),
    which would hide real errors of that size.  With the branch matched, the gradients compare at
    the precision of the arithmetic.  Compare forward values with the plain reference."""
    slope = torch.where(y.detach().to(u64.device) > 0, gain, alpha * gain).to(u64.dtype)
    return u64 * slope
