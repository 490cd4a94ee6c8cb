"""adain Triton kernels under TRITON_INTERPRET=1 on CPU tensors, against the reference: forward,
backward and double backward, NCHW and channels_last, fp32/fp64, odd sizes; every launch plan
(a whole plane in one tile, planes looped over tiles, planes split across programs + combine) by
shrinking the plan's tile sizes; 16384-element whole-plane tiles; the order of the elementwise
second pass (last tile first; mode 2's programs reversed), recorded from the interpreter's stores,
with values against the float64 oracle; Welford / Chan accuracy on large means; 64-bit offsets."""
import sys

import numpy as np
import pytest
import torch

from fastgan.ops import adain
from tests._adain_oracle import assert_rel_norm_list, definition, value_grads

pytestmark = pytest.mark.interpret

TOL = {torch.float32: 2e-6, torch.float64: 1e-12}  # ||triton - ref|| / ||ref||


def _ops():
    import fastgan.ops.adain  # noqa: F401
    return sys.modules["fastgan.ops.adain"]


def _kern():
    import fastgan.kernels.adain as k
    return k


def _args(shape, dtype, fmt=torch.contiguous_format, shift=0.5):
    n, c = shape[:2]
    x = (torch.randn(shape, dtype=dtype) * 2 + shift).contiguous(memory_format=fmt)
    return x, torch.randn(n, c, dtype=dtype) + 1, torch.randn(n, c, dtype=dtype)


def _compare(x, g, b, eps=1e-5, second_order=True, tol=None):
    got = value_grads(lambda x, g, b: adain(x, g, b, eps=eps, impl="triton"), x, g, b,
                      second_order=second_order)
    want = value_grads(lambda x, g, b: adain(x, g, b, eps=eps, impl="ref"), x, g, b,
                       second_order=second_order)
    assert got[0].stride() == x.stride() or not (
        x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
    assert_rel_norm_list(got, want, tol or TOL[x.dtype], what=f"{tuple(x.shape)} {x.dtype}")


@pytest.fixture
def plan_mode(request, monkeypatch):
    """Force a launch plan on small tensors: 'one_tile' (defaults), 'loop' (planes looped over
    16-pixel tiles in one program) or 'split' (planes split across programs, then combined)."""
    k = _kern()
    mode = request.param
    if mode != "one_tile":
        monkeypatch.setattr(k, "MAX_ONE_TILE", 8)
        monkeypatch.setattr(k, "TILE", 16)
        monkeypatch.setattr(k, "PROGRAMS_PER_SM", 0 if mode == "loop" else 1000)
    return mode


def _check_plan(x, mode):
    k = _kern()
    n, c, h, w = x.shape
    p = k.plan(n, c, h * w, not x.is_contiguous(), x.element_size(), k.num_sms(x.device))
    if mode == "one_tile":
        assert p["one_tile"]
    elif mode == "loop":
        assert not p["one_tile"] and p["splits"] == 1 and p["ntiles"] > 1
    else:
        assert p["splits"] > 1


@pytest.mark.parametrize("plan_mode", ["one_tile", "loop", "split"], indirect=True)
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 5, 9, 4)])
def test_forward_backward_double_backward(plan_mode, fmt, dtype, shape):
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x, g, b = _args(shape, dtype, mf)
    _check_plan(x, plan_mode)
    _compare(x, g, b)


@pytest.mark.parametrize("shape,fmt", [
    ((3, 3, 91, 97), "nchw"),          # 8827 pixels, M % 16 != 0: > 8192, looped planes (9 blocks)
    ((1, 2, 91, 97), "nchw"),          # 2 plane blocks: split into 3 segments + combine
    ((3, 3, 129, 128), "nchw"),        # 16512 pixels > MAX_ONE_TILE: looped, ragged last tile
    ((1, 2, 129, 128), "nchw"),        # split into 3 segments + combine, ragged last tile
    ((1, 3, 70, 70), "channels_last"), # C = 3 (not a power of 2), split
    ((2, 37, 6, 5), "channels_last"),  # many channels, several channel blocks, one tile
    ((5, 64, 3, 3), "nchw"),           # many planes per program
])
def test_default_plans(shape, fmt):
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x, g, b = _args(shape, torch.float32, mf)
    _compare(x, g, b, second_order=False)


@pytest.mark.parametrize("plan_mode", ["one_tile", "loop", "split"], indirect=True)
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_large_mean_statistics(plan_mode, fmt):
    """x = 1000 + randn: two-pass (one tile), per-lane Welford (loop) and Chan's merge (split) all
    keep float32 accuracy; E[x^2] - E[x]^2 would be off by ~6% here."""
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x = (1000 + torch.randn(2, 3, 16, 20)).contiguous(memory_format=mf)
    g, b = torch.randn(2, 3), torch.randn(2, 3)
    _check_plan(x, plan_mode)
    y, mean, rstd = _ops().adain_with_stats(x, g, b, impl="triton")
    xd = x.double()
    var = ((xd - xd.mean((2, 3), keepdim=True)) ** 2).mean((2, 3))
    torch.testing.assert_close(mean.double(), xd.mean((2, 3)), rtol=1.5e-7, atol=0)  # ~2 ulp
    torch.testing.assert_close(rstd.double(), 1 / torch.sqrt(var + 1e-5), rtol=1e-5, atol=0)
    yd = (xd - xd.mean((2, 3), keepdim=True)) * (g.double() / torch.sqrt(var + 1e-5))[..., None, None] \
        + b.double()[..., None, None]
    torch.testing.assert_close(y.double(), yd, rtol=0, atol=1e-4)


@pytest.mark.parametrize("plan_mode", ["one_tile", "loop", "split"], indirect=True)
def test_constant_planes_map_to_beta(plan_mode):
    # var = 0 exactly on every plan: y = beta and rstd = 1/sqrt(eps), as in ref
    x = torch.full((2, 3, 16, 20), 1234.567)
    x[1] = -77.7
    g, b = torch.randn(2, 3), torch.randn(2, 3)
    _check_plan(x, plan_mode)
    y, mean, rstd = _ops().adain_with_stats(x, g, b, impl="triton")
    torch.testing.assert_close(y, b[:, :, None, None].expand_as(y), rtol=0, atol=0)
    torch.testing.assert_close(rstd, torch.full_like(rstd, 1e-5 ** -0.5), rtol=1e-6, atol=0)


@pytest.mark.parametrize("layout", ["sliced", "permuted"])
def test_non_dense_layouts(layout):
    if layout == "sliced":
        x = torch.randn(2, 3, 6, 14)[:, :, :, 1::2]
    else:
        x = torch.randn(7, 3, 6, 2).permute(3, 1, 2, 0)
    g, b = torch.randn(2, 3), torch.randn(2, 3)
    y = adain(x, g, b, impl="triton")
    assert y.is_contiguous()
    _compare(x, g, b)


def test_expanded_upstream_gradient():
    x, g, b = _args((2, 3, 5, 5), torch.float32, torch.channels_last)
    grads = []
    for impl in ("triton", "ref"):
        leaves = [t.clone().requires_grad_() for t in (x, g, b)]
        adain(*leaves, impl=impl).sum().backward()  # dy is an expanded (stride-0) tensor
        grads.append([t.grad for t in leaves])
    for a, e in zip(*grads):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("param_dtype", ["x", "float32"])
def test_half_types(dtype, param_dtype):
    x, g, b = _args((2, 4, 9, 7), torch.float32)
    x = x.to(dtype)
    if param_dtype == "x":
        g, b = g.to(dtype), b.to(dtype)
    got = value_grads(lambda x, g, b: adain(x, g, b, impl="triton"), x, g, b, second_order=False)
    want = value_grads(lambda x, g, b: adain(x, g, b, impl="ref"), x, g, b, second_order=False)
    for a, e in zip(got, want):
        assert a.dtype == e.dtype
    assert_rel_norm_list(got, want, 4e-3 if dtype == torch.float16 else 2e-2, what=str(dtype))


def test_single_pixel_planes_and_empty():
    x, g, b = _args((3, 4, 1, 1), torch.float64)
    _compare(x, g, b)
    e = torch.empty(0, 3, 4, 4)
    assert adain(e, torch.empty(0, 3), torch.empty(0, 3), impl="triton").shape == (0, 3, 4, 4)


@pytest.mark.parametrize("plan_mode", ["one_tile", "split"], indirect=True)
def test_nan_propagates(plan_mode):
    x, g, b = _args((2, 3, 6, 5), torch.float32)
    x[1, 2, 3, 1] = float("nan")
    y = adain(x, g, b, impl="triton")
    assert y[1, 2].isnan().all()
    y[1, 2] = 0
    assert not y.isnan().any()


@pytest.mark.parametrize("plan_mode", ["one_tile", "loop", "split"], indirect=True)
def test_int64_offsets(plan_mode, monkeypatch):
    # force the 64-bit offset variant on a small tensor: same results as the 32-bit one
    x, g, b = _args((2, 3, 7, 6), torch.float32, torch.channels_last)
    want = value_grads(lambda x, g, b: adain(x, g, b, impl="triton"), x, g, b, second_order=False)
    monkeypatch.setattr(_kern(), "_INT64_THRESHOLD", 0)
    got = value_grads(lambda x, g, b: adain(x, g, b, impl="triton"), x, g, b, second_order=False)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_opcheck_triton_backend(fmt):
    # the fake implementations agree with what the Triton path returns (strides, dtypes)
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x, g, b = _args((2, 3, 5, 4), torch.float32, mf)
    torch.library.opcheck(torch.ops.fastgan.adain.default,
                          (x.requires_grad_(), g.requires_grad_(), b.requires_grad_(), 1e-5, "triton"))
    _, mean, rstd = _ops().adain_with_stats(x.detach(), g.detach(), b.detach(), impl="ref")
    dy = torch.randn(2, 3, 5, 4)
    torch.library.opcheck(torch.ops.fastgan.adain_backward.default,
                          (dy, x.detach(), g.detach(), mean, rstd, torch.float32, "triton"))


def _compare_oracle(x, g, b, tol):
    """value and first-order gradients of the Triton op against the float64 oracle."""
    got = value_grads(lambda x, g, b: adain(x, g, b, impl="triton"), x, g, b, second_order=False)
    want = value_grads(definition, x.double(), g.double(), b.double(), second_order=False,
                       rounding=x.dtype)
    assert_rel_norm_list(got, want, tol, what=f"{tuple(x.shape)} {x.dtype}")


ORACLE_TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.parametrize("shape,fmt", [
    ((1, 2, 128, 128), "nchw"),           # a 128^2 plane per tile
    ((1, 16, 32, 64), "channels_last"),   # 8 channels x 2048 pixels
])
def test_16384_element_one_tile(shape, fmt):
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    x, g, b = _args(shape, torch.float32, mf)
    k = _kern()
    n, c, h, w = shape
    p = k.plan(n, c, h * w, fmt == "channels_last", 4, k.num_sms(x.device))
    assert p["one_tile"] and p["BP"] * p["BS"] == 16384 and p["num_warps"] == 16, p
    _compare_oracle(x, g, b, ORACLE_TOL[torch.float32])


@pytest.fixture
def store_log(monkeypatch):
    """The interpreter's stores, per launch: grid, then (program index, rank of the stored block,
    int64 addresses written) in execution order.  Rank 2 blocks are the [BP, BS] tiles of the
    elementwise pass (y / dx), rank 1 the per-plane values."""
    interp = pytest.importorskip("triton.runtime.interpreter")
    b = getattr(interp, "interpreter_builder", None)
    if b is None or not all(hasattr(b, a) for a in ("set_grid_dim", "set_grid_idx",
                                                     "create_masked_store")):
        pytest.skip("this Triton's interpreter has no store hooks to record")
    launches = []
    set_dim, store = b.set_grid_dim, b.create_masked_store

    def set_grid_dim(*dims):
        launches.append(dict(grid=tuple(dims), stores=[]))
        return set_dim(*dims)

    def create_masked_store(ptrs, value, mask, *a, **kw):
        addrs = np.broadcast_to(ptrs.data, np.shape(mask.data))[np.asarray(mask.data, dtype=bool)]
        if addrs.size:
            launches[-1]["stores"].append((tuple(b.grid_idx), np.ndim(ptrs.data),
                                           addrs.astype(np.int64)))
        return store(ptrs, value, mask, *a, **kw)

    monkeypatch.setattr(b, "set_grid_dim", set_grid_dim)
    monkeypatch.setattr(b, "create_masked_store", create_masked_store)
    return launches


def _elementwise_launch(launches):
    """The one launch of a pass that stores tiles, and the index of that launch."""
    idx = [i for i, l in enumerate(launches) if any(st[1] == 2 for st in l["stores"])]
    assert len(idx) == 1, [l["grid"] for l in launches]
    return launches[idx[0]]


def _tiles_in_launch_order(launch, x):
    """Per program, in CUDA's launch order (blockIdx.x fastest), its tile stores as (plane index
    array, pixel index array); also checks every element of the output is written once."""
    n, c, h, w = x.shape
    m, cl = h * w, not x.is_contiguous()
    tiles = [st for st in launch["stores"] if st[1] == 2]
    base = min(int(a.min()) for _, _, a in tiles)
    es = x.element_size()
    nx, ny, _ = launch["grid"]
    progs = {}
    for idx, _, a in tiles:
        e = (a - base) // es
        if cl:
            plane, pix = (e // (m * c)) * c + e % c, (e % (m * c)) // c
        else:
            plane, pix = e // m, e % m
        progs.setdefault(idx, []).append((plane, pix))
    every = np.sort(np.concatenate([(a - base) // es for _, _, a in tiles]))
    assert np.array_equal(every, np.arange(x.numel())), "elements not written exactly once"
    order = sorted(progs, key=lambda i: (i[2] * ny + i[1]) * nx + i[0])
    return [(i, progs[i]) for i in order]


def _oracle_direct(x, g, b, dy):
    xd, gd, bd = (t.detach().double().requires_grad_() for t in (x, g, b))
    y = definition(xd, gd, bd)
    y.backward(dy.double())
    return [y.detach(), xd.grad, gd.grad, bd.grad]


@pytest.mark.parametrize("split", ["loop", "split", "split-multi"])
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_second_pass_runs_last_tile_first(split, fmt, dtype, store_log, monkeypatch):
    """The elementwise pass re-reads x (and dy) from the end of what the statistics / gradient-sum
    pass streamed: mode 0 walks each program's tiles backwards from the ragged last one; mode 2's
    programs are reversed in both grid dimensions (CUDA launch order: last segment of the last
    plane block first), each walking its own tiles backwards ('split-multi': several tiles per
    program), and dgamma / dbeta come from the programs of the real segment 0.  Values and
    gradients against the float64 oracle."""
    k = _kern()
    monkeypatch.setattr(k, "TILE", 64)
    monkeypatch.setattr(k, "MAX_ONE_TILE", 8)
    monkeypatch.setattr(k, "PROGRAMS_PER_SM", 0 if split == "loop" else 4)
    if split == "split-multi":
        monkeypatch.setattr(k, "_MAX_GRID1", 3)
    sms = 3
    cl = fmt == "channels_last"
    # NCHW: 6 one-plane blocks x 5 tiles of 64 pixels (33 in the last); channels_last: 40 channels
    # (2 or 3 channel blocks per sample) x 15 pixels, 2 or 4 pixels per tile (ragged last tile)
    shape = (2, 40, 3, 5) if cl else (2, 3, 17, 17)
    x, g, b = _args(shape, dtype, torch.channels_last if cl else torch.contiguous_format)
    dy = torch.randn_like(x)
    assert dy.stride() == x.stride()
    n, c, h, w = shape
    m = h * w
    p = k.plan(n, c, m, cl, x.element_size(), sms)
    assert not p["one_tile"] and p["n_pblocks"] > 1 and p["ntiles"] > 2 and m % p["BS"], p
    g1, tps = k._apply_split(p)
    if split == "loop":
        assert p["splits"] == 1
    else:
        assert p["splits"] > 1 and g1 > 1 and (tps > 1) == (split == "split-multi"), (p, g1, tps)

    cdt = torch.float64 if dtype == torch.float64 else torch.float32
    y, dx = torch.empty_like(x), torch.empty_like(x)
    mean, rstd = torch.empty(n, c, dtype=cdt), torch.empty(n, c, dtype=cdt)
    dg, db = torch.empty_like(g), torch.empty_like(b)
    k.adain_forward_triton(y, mean, rstd, x, g, b, 1e-5, sms=sms)
    fwd = list(store_log)
    store_log.clear()
    k.adain_backward_triton(dx, dg, db, dy, x, g, mean, rstd, sms=sms)
    bwd = list(store_log)
    assert_rel_norm_list([y, dx, dg, db], _oracle_direct(x, g, b, dy), ORACLE_TOL[dtype],
                         what=f"{split} {fmt}")
    assert y.stride() == x.stride() and dx.stride() == x.stride()

    for launches in (fwd, bwd):
        assert len(launches) == (1 if split == "loop" else 3)
        launch = _elementwise_launch(launches)
        progs = _tiles_in_launch_order(launch, x)
        if split == "loop":
            assert launch["grid"][:2] == (p["n_pblocks"], 1)
            for _, tiles in progs:
                last = [int(pix.max()) for _, pix in tiles]
                assert len(last) == p["ntiles"] and last[0] == m - 1, last
                assert all(a > b for a, b in zip(last, last[1:])), f"not last tile first: {last}"
        else:
            assert launch["grid"][:2] == (p["n_pblocks"], g1)
            seg = tps * p["BS"]
            keys = [(int(pix.max()) // seg, int(plane.max()), int(pix.max()))
                    for _, tiles in progs for plane, pix in tiles]
            assert keys[0] == ((m - 1) // seg, n * c - 1, m - 1), keys[:3]
            assert all(a > b for a, b in zip(keys, keys[1:])), f"not in reverse order: {keys}"
    if split != "loop":  # dgamma / dbeta: stored (once per plane) by the programs of segment 0
        launch = _elementwise_launch(bwd)
        owns_pixel0 = {i for i, tiles in _tiles_in_launch_order(launch, x)
                       if any((pix == 0).any() for _, pix in tiles)}
        writers = [i for i, rank, _ in launch["stores"] if rank == 1]
        assert len(writers) == 2 * p["n_pblocks"] and set(writers) == owns_pixel0, (writers,
                                                                                   owns_pixel0)
