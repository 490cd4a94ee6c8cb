"""The trainer's iteration against an independent one written from StyleGAN2-ADA's published
training loop: losses, penalty weights, lazy-regularisation corrections of Adam, phase order,
w_avg / pl_mean / G_ema updates and the ADA step.

The oracle shares only the model-level pieces with the trainer (G's mapping with style mixing, G's
synthesis, D, the augmentation module, the data loader and the per-step seed, so both draw the same
random numbers); the loop, both penalties, Adam and the EMA are its own.  It runs on copies of
the same initial networks in float32, as the trainer does: the models draw noise and mixing
latents in their own dtype, so float64 copies would draw other numbers."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from fastgan.train.augment import AdaptiveAugment
from fastgan.train.trainer import Trainer, _step_seed

from .test_trainer import tiny


class _Adam:
    """Adam as in Kingma & Ba, with StyleGAN2's lazy-regularisation correction applied to the
    hyper-parameters; a parameter without a gradient is not stepped (torch.optim's rule)."""

    def __init__(self, params, lr, betas, interval):
        r = interval / (interval + 1) if interval > 0 else 1.0
        self.params = list(params)
        self.lr, self.b1, self.b2, self.eps = lr * r, betas[0] ** r, betas[1] ** r, 1e-8
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = [0] * len(self.params)

    @torch.no_grad()
    def step(self, grads):
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            g = torch.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5)
            self.t[i] += 1
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            mh = self.m[i] / (1 - self.b1 ** self.t[i])
            vh = self.v[i] / (1 - self.b2 ** self.t[i])
            p -= self.lr * mh / (vh.sqrt() + self.eps)


class _Oracle:
    def __init__(self, tr: Trainer):
        cfg = self.cfg = tr.cfg
        self.G = copy.deepcopy(tr.G)
        self.D = copy.deepcopy(tr.D)
        self.G_ema = copy.deepcopy(tr.G_ema)
        self.augment = copy.deepcopy(tr.augment)
        self.c_dim = tr.c_dim
        self.pl_mean = torch.zeros(())
        reg_g = cfg.pl_interval if cfg.pl_weight > 0 else 0
        reg_d = cfg.r1_interval if cfg.gamma > 0 else 0
        self.opt_G = _Adam(self.G.parameters(), cfg.lr, cfg.betas, reg_g)
        self.opt_D = _Adam(self.D.parameters(), cfg.lr, cfg.betas, reg_d)
        self.step_idx, self.nimg = 0, 0
        self.signs: list[torch.Tensor] = []

    def aug(self, x):
        if self.augment is None:
            return x
        return self.augment(x.float())  # the same random draws as the trainer's

    def sample_c(self, n):
        if self.c_dim == 0:
            return None
        return F.one_hot(torch.randint(self.c_dim, (n,)), self.c_dim)

    def grads(self, loss, module):
        ps = list(module.parameters())
        return torch.autograd.grad(loss, ps, allow_unused=True)

    def step(self, images, labels):
        cfg, G, D, B = self.cfg, self.G, self.D, self.cfg.batch
        reals = images / 127.5 - 1
        c_real = None if self.c_dim == 0 else F.one_hot(labels.long(), self.c_dim)

        # G_main: non-saturating loss through a frozen D
        z, c = torch.randn(B, cfg.z_dim), self.sample_c(B)
        img = G.synthesis(G.mapping_with_mixing(z, c, cfg.style_mixing))
        self.opt_G.step(self.grads(F.softplus(-D(self.aug(img), c)).mean(), G))

        # G_reg: path length (Karras et al. 2020, eq. 4; noise scaled by 1/sqrt(H*W))
        if cfg.pl_weight > 0 and self.step_idx % cfg.pl_interval == 0:
            n = max(B // cfg.pl_batch_shrink, 1)
            z, c = torch.randn(n, cfg.z_dim), self.sample_c(n)
            ws = G.mapping_with_mixing(z, c, cfg.style_mixing)
            img = G.synthesis(ws)
            noise = torch.randn(img.shape) / math.sqrt(img.shape[2] * img.shape[3])
            g_ws, = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
            lengths = g_ws.square().sum(2).mean(1).sqrt()
            # NVlabs lerps the stored mean towards lengths.mean() and uses the result, its
            # gradient through lengths.mean() included, in the penalty; then stores it detached
            mean = self.pl_mean + cfg.pl_decay * (lengths.mean() - self.pl_mean)
            penalty = (lengths - mean).square().mean()
            self.pl_mean = mean.detach()
            loss = penalty * cfg.pl_weight * cfg.pl_interval + img.sum() * 0
            self.opt_G.step(self.grads(loss, G))

        # D_main: fakes first, then reals (the augmentation draws in this order)
        z, c = torch.randn(B, cfg.z_dim), self.sample_c(B)
        with torch.no_grad():
            fake = G.synthesis(G.mapping_with_mixing(z, c, cfg.style_mixing, update_emas=True))
        lf = D(self.aug(fake), c)
        lr_ = D(self.aug(reals), c_real)
        self.opt_D.step(self.grads(F.softplus(lf).mean() + F.softplus(-lr_).mean(), D))
        self.signs.append(lr_.detach().sign())

        # D_reg: R1 on the reals, through the augmentation
        if cfg.gamma > 0 and self.step_idx % cfg.r1_interval == 0:
            x = reals.detach().requires_grad_(True)
            logits = D(self.aug(x), c_real)
            g, = torch.autograd.grad(logits.sum(), x, create_graph=True)
            r1 = g.square().sum([1, 2, 3]).mean()
            self.signs.append(logits.detach().sign())
            self.opt_D.step(self.grads(r1 * (cfg.gamma / 2) * cfg.r1_interval + logits.sum() * 0, D))

        # G_ema with the images seen before this step, then the counters, then ADA
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.nimg * cfg.ema_rampup)
        beta = 0.5 ** (B / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), G.parameters()):
                pe.copy_(p + beta * (pe - p))
            for be, b in zip(self.G_ema.buffers(), G.buffers()):
                be.copy_(b)
        self.step_idx += 1
        self.nimg += B
        if isinstance(self.augment, AdaptiveAugment) and self.step_idx % cfg.ada_interval == 0:
            rt = self.last_rt = torch.cat(self.signs).mean().item()
            self.signs.clear()
            adjust = math.copysign(1.0, rt - cfg.ada_target) if rt != cfg.ada_target else 0.0
            adjust *= B * cfg.ada_interval / (cfg.ada_kimg * 1000)
            self.augment.set_p(min(max(float(self.augment.p) + adjust, 0.0), 1.0))


def _close(a, b, what, rtol=2e-4, atol=2e-5):
    assert a.shape == b.shape, what
    err = (a - b).abs() - rtol * b.abs()
    assert float(err.max()) <= atol, (what, float((a - b).abs().max()))


def _rel_close(a, b, what, tol=1e-4):
    """||a - b|| <= tol ||b||: float32 noise is ~1e-6 here; a wrong weight, sign or phase is
    >= 1e-2."""
    assert a.shape == b.shape, what
    err = float((a.double() - b.double()).norm())
    assert err <= tol * float(b.double().norm()) + 1e-30, (what, err, float(b.double().norm()))


def _run_both(tmp_path, steps, ada_p=None, **kw):
    tr = Trainer(tiny(tmp_path / "t", **kw))
    twin = Trainer(tiny(tmp_path / "o", **kw))  # same seed: same networks and data stream
    if ada_p is not None:
        tr.augment.set_p(ada_p)
        twin.augment.set_p(ada_p)
    orc = _Oracle(twin)
    for s in range(steps):
        tr.train_step()
        torch.manual_seed(_step_seed(twin.cfg.seed, s, 0))
        images, labels = next(twin.loader)
        orc.step(images, labels)
    return tr, orc


def _compare(tr, orc):
    # parameters to 4% of one Adam step (lr 0.0025): a gradient element as small as Adam's eps
    # turns float32 rounding into a visible change of its update; a wrong learning-rate or beta
    # correction moves parameters by a third of a step
    for name in ("G", "D", "G_ema"):
        a, b = getattr(tr, name), getattr(orc, name)
        for (k, pa), pb in zip(a.named_parameters(), b.parameters()):
            _close(pa.detach(), pb.detach(), f"{name}.{k}", rtol=1e-4, atol=1e-4)
    _close(tr.G.mapping.w_avg, orc.G.mapping.w_avg, "w_avg")
    _close(tr.G_ema.mapping.w_avg, orc.G_ema.mapping.w_avg, "G_ema.w_avg")
    _close(tr.pl.pl_mean, orc.pl_mean, "pl_mean")
    # Adam's moments hold the gradients themselves (Adam's update alone is nearly sign(g))
    for opt, mine, mod in ((tr.opt_G, orc.opt_G, tr.G), (tr.opt_D, orc.opt_D, tr.D)):
        st = opt.state_dict()["state"]
        for i, (k, _) in enumerate(mod.named_parameters()):
            if mine.t[i] == 0:
                assert i not in st, k
                continue
            assert int(st[i]["step"]) == mine.t[i], k
            _rel_close(st[i]["exp_avg_sq"], mine.v[i], f"v {k}")
            _rel_close(st[i]["exp_avg"], mine.m[i], f"m {k}")


@pytest.mark.parametrize("kw", [
    dict(augment="none"),
    dict(augment="diffaug", cond=True, style_mixing=0.5),
], ids=["plain", "diffaug-cond"])
def test_trainer_steps_match_an_independent_stylegan2_loop(tmp_path, kw):
    # beta1 > 0 so that the momentum of a zero-gradient step shows; steps 0..2 cover both
    # regularisation phases (interval 2), their lazy skips and one EMA ramp-up step
    tr, orc = _run_both(tmp_path, 3, betas=(0.5, 0.99), ema_kimg=0.01, **kw)
    assert tr.step == 3 and tr.cur_nimg == 12
    _compare(tr, orc)
    # G_ema = G after the first step (beta 0 at zero images seen) and trails it later
    assert not all(torch.equal(a, b) for a, b in zip(tr.G.parameters(), tr.G_ema.parameters()))


def test_ada_p_follows_the_sign_heuristic(tmp_path):
    # p starts inside (0, 1) so that it moves whichever side of the target r_t falls; 5 steps:
    # two updates (interval 2), the first with two R1 passes' logits counted, and one step after
    tr, orc = _run_both(tmp_path, 5, ada_p=0.5, augment="ada", ada_kimg=0.1)
    assert tr.step == 5
    assert float(tr.augment.p) == pytest.approx(float(orc.augment.p), abs=1e-7)
    assert float(tr.augment.p) != 0.5  # the heuristic moved p
    assert tr.last_rt == pytest.approx(orc.last_rt, abs=1e-6)  # over D_main's and D_reg's reals
    _compare(tr, orc)


def test_first_step_sets_g_ema_to_g(tmp_path):
    tr = Trainer(tiny(tmp_path, augment="none"))
    tr.train_step()
    assert all(torch.equal(a, b) for a, b in zip(tr.G.parameters(), tr.G_ema.parameters()))
