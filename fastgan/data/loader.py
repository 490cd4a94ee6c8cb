"""An endless, resumable, rank-sharded stream of training batches.

The *global stream* of a run is the concatenation of permutations ``perm_0, perm_1, ...`` of
``range(n)``, epoch ``e`` using ``torch.randperm(n)`` drawn from a CPU generator seeded with
``seed + e`` (or ``range(n)`` itself when not shuffling).  Rank ``r`` of ``world_size`` takes
global positions ``r, r + world_size, r + 2 * world_size, ...``, so the ranks' streams are
disjoint and together are the global stream.

Resuming is exact: the stream of ``start = k`` is the global stream with its first ``k`` items
dropped, computed in O(1) (``epoch = k // n``).  A run that has taken ``step`` optimiser steps
of ``batch_size`` images per rank on ``world_size`` ranks has consumed
``k = step * batch_size * world_size`` global samples; restarting with ``start=k`` gives every
rank exactly the batches it would have seen next without the interruption.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .builtin import _check_int

__all__ = ["InfiniteSampler", "make_loader"]


class InfiniteSampler(Sampler[int]):
    """Endless dataset indices for one rank; see the module docstring for the stream.

    Args:
        dataset_len: number of items n (> 0).
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of ranks sharing the stream.
        shuffle: permute each epoch (else epochs are ``0, 1, ..., n-1``).
        seed: non-negative int; epoch ``e`` uses ``seed + e``.
        start: global samples already consumed (over all ranks), for exact resume.
    """

    def __init__(self, dataset_len: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, seed: int = 0, start: int = 0) -> None:
        where = "InfiniteSampler"
        super().__init__()
        self.dataset_len = _check_int(dataset_len, "dataset_len", where, minimum=1)
        self.world_size = _check_int(world_size, "world_size", where, minimum=1)
        self.rank = _check_int(rank, "rank", where, minimum=0)
        if self.rank >= self.world_size:
            raise ValueError(f"{where}: rank must be < world_size ({self.world_size}), got "
                             f"{self.rank}")
        if not isinstance(shuffle, bool):
            raise TypeError(f"{where}: shuffle must be a bool, got {type(shuffle).__name__}")
        self.shuffle = shuffle
        self.seed = _check_int(seed, "seed", where, minimum=0)
        self.start = _check_int(start, "start", where, minimum=0)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The global order of epoch ``epoch``: a permutation of ``range(dataset_len)``."""
        if not self.shuffle:
            return np.arange(self.dataset_len, dtype=np.int64)
        gen = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.dataset_len, generator=gen).numpy()

    def __iter__(self) -> Iterator[int]:
        n, w = self.dataset_len, self.world_size
        # first global position >= start that belongs to this rank
        pos = self.start + (self.rank - self.start) % w
        while True:
            epoch, offset = divmod(pos, n)
            order = self.epoch_order(epoch)
            yield from order[offset::w].tolist()
            taken = len(range(offset, n, w))
            pos += taken * w

    def __repr__(self) -> str:
        return (f"InfiniteSampler(dataset_len={self.dataset_len}, rank={self.rank}, "
                f"world_size={self.world_size}, shuffle={self.shuffle}, seed={self.seed}, "
                f"start={self.start})")


def make_loader(dataset: Dataset, batch_size: int, *, rank: int = 0, world_size: int = 1,
                seed: int = 0, start: int = 0, num_workers: int = 0, pin_memory: bool = False,
                shuffle: bool = True,
                multiprocessing_context: Optional[str] = None) -> Iterator[tuple[Tensor, Tensor]]:
    """An endless iterator of ``(images uint8 [B, C, R, R], labels int64 [B])`` batches.

    ``batch_size`` is per rank; ``start`` counts *global* samples already consumed, so resuming
    at ``start = step * batch_size * world_size`` reproduces the batches an uninterrupted run
    would have drawn next (see :class:`InfiniteSampler`).  ``num_workers > 0`` keeps persistent
    worker processes with a prefetch factor of 2; ``multiprocessing_context`` (e.g. ``"spawn"``)
    is passed to the DataLoader.
    """
    where = "make_loader"
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(f"{where}: dataset must be a map-style dataset (with __len__ and "
                        f"__getitem__), got {type(dataset).__name__}")
    batch_size = _check_int(batch_size, "batch_size", where, minimum=1)
    num_workers = _check_int(num_workers, "num_workers", where, minimum=0)
    sampler = InfiniteSampler(len(dataset), rank=rank, world_size=world_size, shuffle=shuffle,
                              seed=seed, start=start)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        pin_memory=pin_memory, persistent_workers=num_workers > 0,
                        prefetch_factor=2 if num_workers > 0 else None, drop_last=True,
                        multiprocessing_context=multiprocessing_context if num_workers > 0
                        else None)
    return iter(loader)
