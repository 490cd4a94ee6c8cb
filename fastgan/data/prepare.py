"""Convert any dataset source into a training-ready zip (``fastgan prepare``).

The zip follows NVlabs' ``dataset_tool.py`` layout: ``00000/img00000000.png``,
``00000/img00000001.png``, ... (1000 images per folder), every PNG exactly ``R x R`` in the
requested mode, and ``dataset.json`` at the root with ``{"labels": [["00000/img00000000.png",
3], ...]}`` (``"labels": null`` without labels; ``"class_names"`` is added when known).  Reading
it back with :class:`~fastgan.data.ImageFolderDataset` skips all resizing, and NVlabs' own
loaders read it too.
"""
from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from typing import Any, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm

from .builtin import _check_channels, _check_int, _check_resolution
from .images import (BUILTIN_DATASETS, LABEL_FILE, ImageFolderDataset, PathLike,
                     UnreadableImageError, open_dataset, read_label_file)

__all__ = ["prepare_dataset"]

_PNG_COMPRESS_LEVEL = 1  # fast to write and to decode; PNGs are stored uncompressed in the zip


def _archive_name(index: int) -> str:
    return f"{index // 1000:05d}/img{index:08d}.png"


def _png_bytes(img: np.ndarray) -> bytes:
    """PNG of a uint8 ``[C, R, R]`` array (C = 1 or 3)."""
    arr = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr), "L" if arr.ndim == 2 else "RGB").save(
        buf, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _source_has_labels(source: PathLike) -> bool:
    """Built-ins always have labels; a folder or zip has them when its dataset.json does."""
    if isinstance(source, str) and source in BUILTIN_DATASETS:
        return True
    return os.path.exists(os.fspath(source)) and read_label_file(source) is not None


def prepare_dataset(source: PathLike, dest: PathLike, resolution: Optional[int],
                    use_labels: bool = False, num_channels: int = 3,
                    max_images: Optional[int] = None, progress: bool = True) -> dict[str, Any]:
    """Write ``source`` (anything :func:`~fastgan.data.open_dataset` accepts) to the zip ``dest``.

    Args:
        source: ``"shapes"``, ``"digits"``, an image folder or a zip.
        dest: output path, must end in ``.zip``; parent folders are created.  The zip is written
            to ``dest + ".tmp"`` and moved into place only when complete.
        resolution: output side, a power of two >= 4 (None: the source's own, 32 for built-ins).
        use_labels: write class labels (sub-folders or dataset.json of a folder).  Labels are
            always written when the source has them regardless: built-ins and sources with a
            labelled dataset.json.
        num_channels: 3 (RGB PNGs) or 1 (greyscale PNGs).
        max_images: stop after writing this many images (None: all).
        progress: show a tqdm progress bar.

    Returns:
        ``{"images": written, "skipped": unreadable source images, "resolution": R,
        "num_classes": K (0 when no labels were written), "path": dest}``.

    Raises:
        ValueError: ``dest`` does not end in ``.zip``, bad arguments, or no source image could
            be read (nothing is written then).
    """
    where = "prepare_dataset"
    if not isinstance(dest, (str, os.PathLike)):
        raise TypeError(f"{where}: dest must be a path ending in .zip, got {type(dest).__name__}")
    dest = os.fspath(dest)
    if not dest.lower().endswith(".zip"):
        raise ValueError(f"{where}: dest must be a path ending in .zip, got {dest!r}")
    if resolution is not None:
        resolution = _check_resolution(resolution, where)
    num_channels = _check_channels(num_channels, where)
    if max_images is not None:
        max_images = _check_int(max_images, "max_images", where, minimum=1)
    if not isinstance(use_labels, bool):
        raise TypeError(f"{where}: use_labels must be a bool, got {type(use_labels).__name__}")

    with_labels = use_labels or _source_has_labels(source)
    ds = open_dataset(source, resolution=resolution, use_labels=with_labels,
                      num_channels=num_channels)
    strict = isinstance(ds, ImageFolderDataset)
    total = len(ds) if max_images is None else min(len(ds), max_images)

    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    tmp = dest + ".tmp"
    written, skipped = 0, 0
    labels: list[list[Any]] = []
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z, \
                tqdm(total=total, disable=not progress, unit="img",
                     desc=f"prepare {os.path.basename(dest)}") as bar:
            for i in range(len(ds)):
                if written == total:
                    break
                try:
                    img, label = ds.load(i) if strict else ds[i]
                except UnreadableImageError as err:
                    warnings.warn(f"fastgan.data: skipping unreadable image "
                                  f"{getattr(ds, 'path', source)}/{err}", RuntimeWarning,
                                  stacklevel=2)
                    skipped += 1
                    continue
                name = _archive_name(written)
                z.writestr(name, _png_bytes(img.numpy()))
                labels.append([name, int(label)])
                written += 1
                bar.update(1)
            if written == 0:
                raise ValueError(f"{where}: none of the images of {os.fspath(source)!r} could "
                                 "be read; nothing written")
            num_classes = ds.num_classes if with_labels else 0
            meta: dict[str, Any] = {"labels": labels if with_labels else None}
            names = getattr(ds, "class_names", None)
            if with_labels and names is not None and len(names) == num_classes:
                meta["class_names"] = list(names)
            z.writestr(LABEL_FILE, json.dumps(meta))
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        if strict:
            ds.close()
    return {"images": written, "skipped": skipped, "resolution": ds.resolution,
            "num_classes": num_classes, "path": dest}
