"""Multi-process data parallelism for the trainer (``torchrun``).

``torchrun --nproc_per_node=K -m fastgan train ...`` starts K processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`init` joins them into one process group (NCCL on
GPUs, gloo on CPU).  Each rank trains on its own slice of every batch; the modules whose
gradients a phase needs run through :func:`data_parallel` (``DistributedDataParallel``), whose
reducer averages the gradients over the ranks during the backward, overlapped with it.

DDP and gradient penalties: the R1 and path-length passes take ``torch.autograd.grad`` with
respect to the *inputs* (the images, the ws) with ``create_graph=True``; those out-of-place
gradients do not reach DDP's hooks, and the penalty's ordinary ``backward()`` that follows does,
so the parameter gradients are averaged as usual.  A penalty does not reach every parameter
(a last bias does not change d D / d x), and a backward that leaves one out never completes DDP's
reduction (without the per-step graph walk of ``find_unused_parameters``): the gradients stay
this rank's own, silently (pytorch/pytorch#47562; tests/train/test_distributed.py shows it).
The trainer adds ``0 * output.sum()`` to those losses under DDP so every parameter takes part,
as NVlabs does.  Buffers that each rank
updates from its own data (the generator's ``w_avg``, the path-length mean) are averaged with
:func:`average_buffers` (DDP's buffer broadcast is off: it would copy rank 0's instead).
"""
from __future__ import annotations

import datetime
import gc
import inspect
import os
import warnings
from typing import Iterable, Optional

import torch
import torch.distributed as dist

__all__ = ["init", "shutdown", "rank", "world_size", "is_main", "data_parallel",
           "average_buffers", "broadcast_module", "all_reduce_mean", "any_flag", "barrier"]


def init(device: Optional[str] = None) -> tuple[int, int, torch.device]:
    """Join the torchrun process group if ``WORLD_SIZE > 1``; returns ``(rank, world, device)``.

    ``device``: None picks ``cuda:LOCAL_RANK`` when CUDA is available, else cpu."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank_ = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kw = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30), **kw)
    return rank_, world, dev


def shutdown() -> None:
    """Leave the process group.  Drop every DDP wrapper first (gc here collects the ones held
    in reference cycles): one destroyed after its gloo group can hang the process at exit."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank's parameters and buffers equal to rank ``src``'s."""
    if world_size() == 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=src)


def data_parallel(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` wrapped in ``DistributedDataParallel`` when more than one process runs, else
    ``module`` itself.  Every parameter that requires grad must receive a gradient in each
    backward through the wrapper (see the module docstring); buffers are not broadcast."""
    if world_size() == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    # a [1, k] weight's gradient arrives with strides (1, 1): the same layout as the bucket's
    # (8, 1) for a size-1 dimension, yet the reducer warns about it
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    # buffers: synced from rank 0 at construction only (torch >= 2.13 names the forward-time
    # sync forward_sync_buffers and deprecates broadcast_buffers)
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_forward_sync = {"forward_sync_buffers" if "forward_sync_buffers" in params
                       else "broadcast_buffers": False}
    return DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=False, **no_forward_sync)


def average_buffers(modules: Iterable[torch.nn.Module], names: tuple[str, ...]) -> None:
    """Average the floating-point buffers whose attribute name is in ``names`` over the ranks."""
    if world_size() == 1:
        return
    bufs = [b for m in modules for n, b in m.named_buffers()
            if n.rsplit(".", 1)[-1] in names and b.is_floating_point()]
    if not bufs:
        return
    flat = torch.cat([b.flatten().float() for b in bufs])
    dist.all_reduce(flat)
    flat /= world_size()
    for b, v in zip(bufs, flat.split([b.numel() for b in bufs])):
        b.copy_(v.view_as(b))


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    if world_size() == 1:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / world_size()


def any_flag(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (single process: ``flag``)."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], device=device, dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def max_rank_difference(modules: dict[str, torch.nn.Module]) -> tuple[float, str]:
    """The largest absolute difference of any parameter or buffer between this rank and rank 0,
    and the name of that tensor (``(0.0, "")`` when every rank holds the same models; the same
    answer on every rank).  ``modules``: name -> module."""
    if world_size() == 1:
        return 0.0, ""
    names, tensors = [], []
    for mname, m in modules.items():
        for n, t in list(m.named_parameters()) + list(m.named_buffers()):
            if t.is_floating_point():
                names.append(f"{mname}.{n}")
                tensors.append(t.detach().float().flatten())
    mine = torch.cat(tensors)
    ref = mine.clone()
    dist.broadcast(ref, src=0)
    per = torch.stack([d.abs().max() if d.numel() else d.new_zeros(())
                       for d in (mine - ref).split([t.numel() for t in tensors])])
    per = per.nan_to_num(nan=float("inf"))
    dist.all_reduce(per, op=dist.ReduceOp.MAX)
    i = int(per.argmax())
    worst = float(per[i])
    return worst, (names[i] if worst > 0 else "")
