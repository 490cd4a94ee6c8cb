"""Comparison helper shared by the op test tiers."""


def assert_rel_norm_list(got, want, tol, what=""):
    """||got - want|| / ||want|| <= tol per tensor: robust to the elementwise cancellation noise of
    float32 second-order terms (e.g. 1 - tanh^2 near saturation); NaN never passes."""
    assert len(got) == len(want)
    for i, (a, e) in enumerate(zip(got, want)):
        assert a.shape == e.shape, f"{what}[{i}] shape {tuple(a.shape)} != {tuple(e.shape)}"
        a, e = a.double().cpu(), e.double().cpu()
        assert not a.isnan().any() and not e.isnan().any(), f"{what}[{i}]: NaN"
        err = ((a - e).norm() / e.norm().clamp_min(1e-30)).item()
        assert err <= tol, f"{what}[{i}]: relative error {err:.3g} > {tol:g}"
