"""fastgan.nn.MappingNetwork against a float64 definition in plain torch.nn.functional:
z normalisation, conditioning, truncation (with cutoff), the w_avg EMA, float32 under autocast,
state dict and bad input."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastgan.nn import MappingNetwork

D = torch.float64


def _randomize(m):
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
        m.w_avg.normal_()
    return m


def _norm(x):
    return x / (x.square().mean(1, keepdim=True) + 1e-8).sqrt()


def _fc(layer, x, lr, act):
    y = F.linear(x, layer.weight * (lr / math.sqrt(layer.weight.shape[1])), layer.bias * lr)
    return F.leaky_relu(y, 0.2) * math.sqrt(2) if act else y


def _mapping_def(m, z, c=None, normalize_z=True, lr=0.01):
    """The untruncated, unbroadcast w."""
    x = None
    if m.z_dim:
        x = _norm(z) if normalize_z else z
    if m.c_dim:
        y = _norm(_fc(m.embed, c, 1.0, act=False))
        x = y if x is None else torch.cat([x, y], 1)
    for layer in m.layers:
        x = _fc(layer, x, lr, act=True)
    return x


@pytest.mark.parametrize("z_dim,c_dim,num_layers,normalize_z,lr", [
    (6, 0, 8, True, 0.01), (6, 3, 2, True, 0.01), (5, 0, 3, False, 1.0), (0, 4, 2, True, 0.1),
])
def test_mapping_vs_definition(z_dim, c_dim, num_layers, normalize_z, lr):
    m = _randomize(MappingNetwork(z_dim, c_dim, 7, num_layers=num_layers, lr_multiplier=lr,
                                  normalize_z=normalize_z, layer_features=9)).double()
    z = torch.randn(3, z_dim, dtype=D) * 3
    c = torch.randn(3, c_dim, dtype=D) if c_dim else None
    y = m(z if z_dim else None, c)
    assert y.shape == (3, 7) and y.dtype == D
    torch.testing.assert_close(y, _mapping_def(m, z, c, normalize_z, lr), rtol=1e-11, atol=1e-11)


def test_num_ws_and_truncation():
    m = _randomize(MappingNetwork(6, 3, 7, num_ws=5, num_layers=3)).double()
    z, c = torch.randn(4, 6, dtype=D), torch.randn(4, 3, dtype=D)
    x = _mapping_def(m, z, c)
    ws = m(z, c)
    assert ws.shape == (4, 5, 7)
    torch.testing.assert_close(ws, x[:, None].expand(4, 5, 7), rtol=1e-11, atol=1e-11)
    w_avg = m.w_avg
    # psi = 0: every z maps to w_avg
    w0 = m(torch.randn(4, 6, dtype=D), c, truncation_psi=0.0)
    torch.testing.assert_close(w0, w_avg.expand(4, 5, 7), rtol=0, atol=0)
    # general psi
    torch.testing.assert_close(m(z, c, truncation_psi=0.7), (w_avg + 0.7 * (x - w_avg))[:, None]
                               .expand(4, 5, 7), rtol=1e-11, atol=1e-11)
    # cutoff: only the first ws are truncated
    wc = m(z, c, truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(wc[:, :2], w_avg.expand(4, 2, 7), rtol=0, atol=0)
    torch.testing.assert_close(wc[:, 2:], x[:, None].expand(4, 3, 7), rtol=1e-11, atol=1e-11)
    # without num_ws the cutoff is ignored (NVlabs)
    m1 = MappingNetwork(6, 3, 7, num_layers=3).double()
    m1.load_state_dict(m.state_dict())
    torch.testing.assert_close(m1(z, c, truncation_psi=0.0, truncation_cutoff=2),
                               w_avg.expand(4, 7), rtol=0, atol=0)
    # truncation is differentiable w.r.t. z
    zg = z.clone().requires_grad_()
    m(zg, c, truncation_psi=0.5, truncation_cutoff=3).sum().backward()
    assert zg.grad is not None and torch.isfinite(zg.grad).all()


def test_w_avg_ema_update():
    m = _randomize(MappingNetwork(6, 0, 7, num_layers=2, w_avg_beta=0.9))
    z = torch.randn(5, 6)
    old = m.w_avg.clone()
    x = m(z)  # no update by default
    assert torch.equal(m.w_avg, old)
    y = m(z, update_emas=True)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(m.w_avg, old + (x.mean(0) - old) * 0.1)  # mean.lerp(old, beta)
    assert not m.w_avg.requires_grad and m.w_avg.dtype == torch.float32
    # the update uses the untruncated w, and with grad enabled leaves no graph behind
    old = m.w_avg.clone()
    zg = z.clone().requires_grad_()
    m(zg, update_emas=True, truncation_psi=0.5).sum().backward()
    torch.testing.assert_close(m.w_avg, old + (x.mean(0) - old) * 0.1)
    assert m.w_avg.grad_fn is None
    # w_avg_beta=None: no tracking
    m2 = MappingNetwork(6, 0, 7, num_layers=2, w_avg_beta=None)
    m2(z, update_emas=True)
    assert torch.equal(m2.w_avg, torch.zeros(7))


def test_w_avg_survives_an_empty_batch():
    # the mean of no w is nan, and used to stay in w_avg for good (every truncated image nan)
    m = _randomize(MappingNetwork(6, 0, 7, num_ws=3, num_layers=2))
    old = m.w_avg.clone()
    out = m(torch.randn(0, 6), update_emas=True)
    assert out.shape == (0, 3, 7)
    assert torch.equal(m.w_avg, old)
    m(torch.randn(4, 6), update_emas=True)  # a real batch still updates it
    assert m.w_avg.isfinite().all() and not torch.equal(m.w_avg, old)


@pytest.mark.parametrize("psi", [float("nan"), float("inf"), -float("inf"), np.float32("nan"),
                                 "0.5", None])
def test_truncation_psi_must_be_a_finite_number(psi):
    m = MappingNetwork(6, 0, 7, num_ws=3, num_layers=2)
    with pytest.raises(ValueError, match="truncation_psi must be a finite number"):
        m(torch.randn(2, 6), truncation_psi=psi)


def test_truncation_psi_numpy_and_cutoff():
    m = _randomize(MappingNetwork(6, 0, 7, num_ws=3, num_layers=2)).double()
    z = torch.randn(2, 6, dtype=D)
    torch.testing.assert_close(m(z, truncation_psi=np.float64(0.5), truncation_cutoff=np.int64(2)),
                               m(z, truncation_psi=0.5, truncation_cutoff=2), rtol=0, atol=0)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="truncation_cutoff must be an int >= 0"):
            m(z, truncation_psi=0.5, truncation_cutoff=bad)


def test_numpy_integer_sizes():
    m = MappingNetwork(np.int64(6), np.int64(2), np.int64(7), num_ws=np.int64(3),
                       num_layers=np.int64(2))
    assert all(type(v) is int for v in (m.z_dim, m.c_dim, m.w_dim, m.num_ws, m.num_layers))
    assert m(torch.randn(2, 6), torch.randn(2, 2)).shape == (2, 3, 7)


def test_float32_under_autocast():
    m = _randomize(MappingNetwork(6, 3, 7, num_ws=2, num_layers=3))
    z, c = torch.randn(3, 6), torch.randn(3, 3)
    want = m(z, c)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = m(z, c)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)


def test_state_dict_and_init():
    m = MappingNetwork(8, 2, 16, num_layers=3, layer_features=12, lr_multiplier=0.01)
    sd = m.state_dict()
    assert sorted(sd) == sorted(["w_avg", "embed.weight", "embed.bias"]
                                + [f"layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")])
    assert sd["embed.weight"].shape == (16, 2)  # embed_features defaults to w_dim
    assert [sd[f"layers.{i}.weight"].shape for i in range(3)] == [(12, 24), (12, 12), (16, 12)]
    assert torch.equal(sd["w_avg"], torch.zeros(16)) and torch.equal(sd["layers.0.bias"],
                                                                     torch.zeros(12))
    assert m.embed.lr_multiplier == 1.0 and m.embed.activation == "linear"
    assert all(layer.activation == "lrelu" and layer.lr_multiplier == 0.01 for layer in m.layers)
    assert abs(m.layers[1].weight.std().item() - 100) < 25  # randn / lr_multiplier
    m0 = MappingNetwork(8, 0, 16, num_layers=2)
    assert m0.embed is None and "embed.weight" not in m0.state_dict()
    assert m0.layers[0].weight.shape == (16, 8)


def test_bad_input():
    m = MappingNetwork(6, 3, 7, num_layers=2)
    z, c = torch.randn(2, 6), torch.randn(2, 3)
    with pytest.raises(ValueError, match=r"z must be \[N, z_dim=6\]"):
        m(torch.randn(2, 5), c)
    with pytest.raises(ValueError, match=r"c \[N, 3\] is required"):
        m(z)
    with pytest.raises(ValueError, match=r"c must be \[N=2, c_dim=3\]"):
        m(z, torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"c must be \[N=2, c_dim=3\]"):
        m(z, torch.randn(3, 3))
    m0 = MappingNetwork(6, 0, 7, num_layers=2)
    with pytest.raises(ValueError, match="c_dim is 0"):
        m0(z, c)
    assert m0(z, torch.zeros(2, 0)).shape == (2, 7)  # NVlabs passes an empty c
    with pytest.raises(ValueError, match="both 0"):
        MappingNetwork(0, 0, 7)
