"""InfiniteSampler (epochs are permutations, rank sharding, O(1) exact resume, argument checks)
and make_loader (batch shapes and dtypes, determinism, resume, worker processes)."""
from __future__ import annotations

import io
import itertools
import zipfile

import pytest
import torch
from PIL import Image

from fastgan.data import ImageFolderDataset, InfiniteSampler, ShapesDataset, make_loader


def take(sampler: InfiniteSampler, k: int) -> list[int]:
    return list(itertools.islice(iter(sampler), k))


def test_each_epoch_is_a_permutation():
    n = 11
    stream = take(InfiniteSampler(n, seed=3), 4 * n)
    epochs = [stream[e * n:(e + 1) * n] for e in range(4)]
    for e in epochs:
        assert sorted(e) == list(range(n))
    assert len({tuple(e) for e in epochs}) == 4            # reshuffled every epoch
    assert epochs[0] != list(range(n))
    assert take(InfiniteSampler(n, seed=4), n) != epochs[0]  # the seed matters
    assert take(InfiniteSampler(n, shuffle=False), 2 * n + 3) == \
        list(range(n)) * 2 + [0, 1, 2]


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_partition_the_global_stream(world):
    n, per_rank = 7, 12                       # n not a multiple of world: ranks straddle epochs
    global_ = take(InfiniteSampler(n, seed=5), world * per_rank)
    shards = [take(InfiniteSampler(n, rank=r, world_size=world, seed=5), per_rank)
              for r in range(world)]
    for r in range(world):
        assert shards[r] == global_[r::world]
    # within the first epoch the ranks' indices are disjoint and cover it
    first = [set(global_[p] for p in range(r, n, world)) for r in range(world)]
    assert sum(len(s) for s in first) == n and set().union(*first) == set(range(n))


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("start", [0, 3, 7, 10, 15, 29])
def test_resume_drops_exactly_start_global_samples(world, start):
    n, k = 7, 20
    global_ = take(InfiniteSampler(n, seed=9), start + world * k + world)
    for r in range(world):
        resumed = take(InfiniteSampler(n, rank=r, world_size=world, seed=9, start=start), k)
        expected = [global_[p] for p in range(start, start + world * k + world) if p % world == r]
        assert resumed == expected[:k]


def test_resume_far_ahead_is_cheap():
    # epoch 10^9 is computed directly, not by skipping through the earlier ones
    n = 5
    s = InfiniteSampler(n, seed=1, start=10**9 * n + 2)
    assert take(s, 3) == s.epoch_order(10**9)[2:5].tolist()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dataset_len": 0}, ValueError, "dataset_len"),
    ({"dataset_len": 4, "rank": 2, "world_size": 2}, ValueError, "rank must be < world_size"),
    ({"dataset_len": 4, "world_size": 0}, ValueError, "world_size"),
    ({"dataset_len": 4, "start": -1}, ValueError, "start"),
    ({"dataset_len": 4, "seed": -2}, ValueError, "seed"),
    ({"dataset_len": 4.0}, TypeError, "dataset_len"),
    ({"dataset_len": 4, "shuffle": 1}, TypeError, "shuffle"),
])
def test_sampler_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        InfiniteSampler(**kwargs)


def test_make_loader_batches():
    ds = ShapesDataset(8, length=10, seed=2)
    loader = make_loader(ds, 4, seed=1)
    for _ in range(4):                                    # crosses epoch boundaries
        images, labels = next(loader)
        assert images.shape == (4, 3, 8, 8) and images.dtype == torch.uint8
        assert labels.shape == (4,) and labels.dtype == torch.int64
        assert labels.min() >= 0 and labels.max() < ds.num_classes
    # the batch is the sampler's indices, in order
    idx = take(InfiniteSampler(10, seed=1), 4)
    images, labels = next(make_loader(ds, 4, seed=1))
    assert torch.equal(images, torch.stack([ds[i][0] for i in idx]))
    assert labels.tolist() == [ds[i][1] for i in idx]


def test_make_loader_deterministic_and_resumable():
    ds = ShapesDataset(4, length=9)
    a, b = make_loader(ds, 3, seed=7), make_loader(ds, 3, seed=7)
    batches = [next(a) for _ in range(5)]
    for x, y in batches:
        x2, y2 = next(b)
        assert torch.equal(x, x2) and torch.equal(y, y2)
    other = next(make_loader(ds, 3, seed=8))[0]
    assert not torch.equal(other, batches[0][0])
    # two ranks of batch 3 after 1 step: start = 1 * 3 * 2; rank r's next batch is the global
    # stream's positions 6 + r, 8 + r, 10 + r
    stream = take(InfiniteSampler(9, seed=7), 12)
    for r in range(2):
        x, _ = next(make_loader(ds, 3, rank=r, world_size=2, seed=7, start=6))
        assert torch.equal(x, torch.stack([ds[stream[p]][0] for p in (6 + r, 8 + r, 10 + r)]))


def test_make_loader_with_workers_over_a_zip(tmp_path):
    # worker processes must give the same batches as the main process; the zip handle is
    # opened per worker
    src = ShapesDataset(8, length=6, seed=4)
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(len(src)):
            buf = io.BytesIO()
            Image.fromarray(src[i][0].permute(1, 2, 0).numpy()).save(buf, format="PNG")
            z.writestr(f"img{i}.png", buf.getvalue())
    ds = ImageFolderDataset(path)
    ds[0]                                                # the parent holds an open handle
    plain = make_loader(ds, 2, seed=3)
    workers = make_loader(ds, 2, seed=3, num_workers=2)
    for _ in range(4):
        x0, y0 = next(plain)
        x1, y1 = next(workers)
        assert torch.equal(x0, x1) and torch.equal(y0, y1)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2, "num_workers": -1}, ValueError, "num_workers"),
    ({"batch_size": 2, "rank": 1}, ValueError, "rank"),
])
def test_make_loader_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_loader(ShapesDataset(4, length=3), **kwargs)
    with pytest.raises(TypeError, match="map-style"):
        make_loader(iter([]), 2)
