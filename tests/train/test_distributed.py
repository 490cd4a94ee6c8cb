"""DistributedDataParallel with the trainer's phases, on two gloo processes on CPU.

Each rank holds the same tiny StyleGAN2 G and D and its own data.  The trainer's sequence of
phases (G_main with D frozen, path length through G's DDP pass, D_main with two forwards and one
backward, R1 through D's DDP pass), twice over, must give every parameter the average over the
ranks of the gradients that an unwrapped copy computes on each rank's data: the reduction really
happens, for every phase, and no phase leaves DDP waiting for a parameter."""
from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from fastgan.ops.penalties import path_length_penalty, r1_penalty
from fastgan.train import distributed as dist_
from fastgan.train.trainer import _GeneratorPass
from tests.models.test_stylegan2 import small_d, small_g

WORLD = 2
CPU = torch.device("cpu")


def _grads(module) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in module.parameters()]


def _rank_average(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    out = []
    for g in grads:
        g = g.clone()
        dist.all_reduce(g)
        out.append(g / WORLD)
    return out


def _assert_close(got, want, what):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=lambda m: f"{what} #{i}: {m}")


def _phases(G_pass, D_train, G, D, rank: int, it: int) -> dict:
    """One trainer iteration's four backwards, with the trainer's ``0 * output.sum()`` terms in
    the regularisation phases; returns each phase's parameter gradients."""
    out = {}
    x_real = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(10 * it + rank))

    def seed(phase):  # the same draws for the DDP pass and its unwrapped twin, other ones per rank
        torch.manual_seed(1000 * it + 100 * phase + rank)

    # G_main: D frozen and called through its DDP wrapper, as the trainer does
    G.requires_grad_(True)
    D.requires_grad_(False)
    G.zero_grad(set_to_none=True)
    seed(0)
    fake, _ = G_pass(torch.randn(2, 16), None, 0.9)
    F.softplus(-D_train(fake, None)).mean().backward()
    out["G_main"] = _grads(G)

    # G_reg: path length through the eager synthesis
    G.zero_grad(set_to_none=True)
    seed(1)
    img, ws = G_pass(torch.randn(2, 16), None, 0.9, fast=False)
    penalty, _, _ = path_length_penalty(img, ws, torch.tensor(0.5),
                                        generator=torch.Generator().manual_seed(rank))
    (penalty + img.sum() * 0).backward()
    out["G_reg"] = _grads(G)

    # D_main: two forwards, one backward
    G.requires_grad_(False)
    D.requires_grad_(True)
    D.zero_grad(set_to_none=True)
    seed(2)
    with torch.no_grad():
        fake, _ = G_pass(torch.randn(2, 16), None, 0.9)
    loss = F.softplus(D_train(fake, None)).mean() + F.softplus(-D_train(x_real, None)).mean()
    loss.backward()
    out["D_main"] = _grads(D)

    # D_reg: R1, the logits' zero term makes the last bias take part
    D.zero_grad(set_to_none=True)
    penalty, logits = r1_penalty(D_train, x_real, None, return_logits=True)
    (penalty + logits.sum() * 0).backward()
    out["D_reg"] = _grads(D)
    return out


def _worker(rank: int, init_file: str):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    torch.set_num_threads(1)
    try:
        G, D = small_g(seed=0).train(), small_d(seed=1).train()
        G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
        G_pass = dist_.data_parallel(_GeneratorPass(G, G.synthesis), CPU)
        D_train = dist_.data_parallel(D, CPU)
        assert isinstance(D_train, torch.nn.parallel.DistributedDataParallel)
        for it in range(2):  # the second iteration fails if the first left a reduction unfinished
            got = _phases(G_pass, D_train, G, D, rank, it)
            local = _phases(_GeneratorPass(G_ref, G_ref.synthesis), D_ref, G_ref, D_ref, rank, it)
            for phase in got:
                want = _rank_average(local[phase])
                _assert_close(got[phase], want, f"rank {rank} iteration {it} {phase}")
                # the ranks saw different data: averaging changed something
                assert any(not torch.allclose(a, b) for a, b in zip(local[phase], want)), phase
        del G_pass, D_train  # before the group goes: a DDP that outlives gloo can hang the exit
    finally:
        dist_.shutdown()


def test_ddp_averages_every_phase_of_the_trainer(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"),), nprocs=WORLD, join=True)


def test_r1_alone_leaves_a_parameter_without_gradient():
    # why the trainer adds 0 * logits.sum() (NVlabs does too): without it a parameter gets no
    # gradient, Adam skips it in this phase, and under DDP its reduction never finishes
    D = small_d(seed=1)
    penalty = r1_penalty(D, torch.randn(2, 3, 16, 16), None)
    penalty.backward()
    missing = [n for n, p in D.named_parameters() if p.grad is None]
    assert missing, "every parameter got a gradient from R1 alone"


def test_single_process_runs_the_modules_unwrapped():
    D = small_d()
    assert dist_.data_parallel(D, CPU) is D
