"""fastgan.data: datasets, the training loader and ``prepare`` (dataset -> zip).

Every dataset is a ``torch.utils.data.Dataset`` whose ``ds[i]`` is ``(image, label)``: ``image``
a contiguous ``torch.uint8 [C, R, R]`` tensor, ``label`` an int (0 when unlabelled); each has
``resolution``, ``num_channels``, ``num_classes`` (0: no labels) and ``name``.  The trainer maps
images to ``x = img.float() / 127.5 - 1`` and one-hot encodes labels itself.

    open_dataset("shapes" | "digits" | folder | zip, resolution=None, use_labels=False, ...)
    ShapesDataset, DigitsDataset                 built-ins, no download
    ImageFolderDataset(path, resolution=None, use_labels=False, num_channels=3)
    make_loader(dataset, batch_size, rank=, world_size=, seed=, start=, num_workers=, ...)
    InfiniteSampler(dataset_len, rank, world_size, shuffle, seed, start)
    prepare_dataset(source, dest.zip, resolution, ...)
"""
from __future__ import annotations

from .builtin import SHAPE_KINDS, DigitsDataset, ShapesDataset
from .images import (BUILTIN_DATASETS, IMAGE_EXTENSIONS, LABEL_FILE, DatasetView,
                     ImageFolderDataset, UnreadableImageError, open_dataset, read_label_file)
from .loader import InfiniteSampler, make_loader
from .prepare import prepare_dataset

__all__ = ["open_dataset", "ShapesDataset", "DigitsDataset", "ImageFolderDataset",
           "DatasetView", "UnreadableImageError", "read_label_file", "InfiniteSampler",
           "make_loader", "prepare_dataset", "BUILTIN_DATASETS", "IMAGE_EXTENSIONS",
           "LABEL_FILE", "SHAPE_KINDS"]
