"""Image datasets read from a folder or a ``.zip``, and :func:`open_dataset`, the one entry point.

:class:`ImageFolderDataset` reads ``.png .jpg .jpeg .webp .bmp`` files (any case) found
recursively under a directory (symlinked folders followed, each real folder read once), or
anywhere inside a zip archive, in sorted order of their relative paths.  Hidden files and folders
(any path component starting with ``.``: ``.ipynb_checkpoints``, ``._x.png``) and ``__MACOSX``
folders are skipped at any depth.  Zip entry names are normalised: backslashes (zips made on
Windows) are separators and a leading ``./`` or ``/`` is dropped.

It follows the common fastgan dataset interface: ``ds[i] -> (image, label)`` with ``image`` a
contiguous ``torch.uint8 [C, R, R]`` tensor and ``label`` an int, plus ``resolution``,
``num_channels``, ``num_classes`` and ``name``.

Decoding, per image:

1. EXIF orientation is applied (photos come out upright);
2. images with transparency are composited onto white, 16-bit greyscale is scaled to 8 bits;
3. the image is converted to RGB (``num_channels=3``) or L (``num_channels=1``);
4. unless it is already ``R x R``, it is resized so that its shorter side is ``R`` (Lanczos,
   ``reducing_gap=3``) and centre-cropped to ``R x R``.

A zip written by :func:`fastgan.data.prepare_dataset` holds PNGs that are already ``R x R`` in
the right mode, so step 4 is skipped and reading costs one PNG decode.

An unreadable file never stops a run: ``ds[i]`` warns once per file (per process) and returns
the next readable item instead (cycling); only when no file at all can be read does it raise.
:meth:`ImageFolderDataset.load` is the strict version, which raises
:class:`UnreadableImageError`.

Zip archives are opened lazily, once per process (keyed by pid), and the handle is never
pickled, so datasets are safe to send to ``DataLoader`` workers under fork, spawn or forkserver.
"""
from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from typing import Any, BinaryIO, Optional, Union

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps
from torch import Tensor
from torch.utils.data import Dataset

from .builtin import DigitsDataset, ShapesDataset, _check_channels, _check_index, _check_int
from .builtin import _check_resolution

__all__ = ["ImageFolderDataset", "DatasetView", "UnreadableImageError", "open_dataset",
           "read_label_file", "IMAGE_EXTENSIONS", "LABEL_FILE", "BUILTIN_DATASETS"]

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: NVlabs' label file at the root of a folder or zip: ``{"labels": [["rel/path.png", 3], ...]}``.
LABEL_FILE = "dataset.json"
#: Names :func:`open_dataset` resolves to a built-in dataset.
BUILTIN_DATASETS = ("shapes", "digits")

PathLike = Union[str, "os.PathLike[str]"]


class UnreadableImageError(OSError):
    """An image file that exists in the dataset but could not be decoded."""


# ------------------------------------------------------------------------------------------------
# listing and labels
# ------------------------------------------------------------------------------------------------

def _is_hidden(rel: str) -> bool:
    """True when a component of ``rel`` is hidden (``.ipynb_checkpoints``, ``._x.png`` resource
    forks, ``.git``) or is ``__MACOSX``: such files are never part of a dataset."""
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/"))


def _is_image_name(rel: str) -> bool:
    """True for an image file name (``rel`` normalised, '/'-separated) that is not hidden."""
    return not _is_hidden(rel) and os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS


def _normalise_member(name: str) -> str:
    """A zip entry name or dataset.json path as '/'-separated and relative: Windows tools write
    backslashes, others a leading ``./`` or ``/`` (the empty string for the root itself)."""
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _zip_members(namelist: list[str]) -> dict[str, str]:
    """{normalised name: name as stored} of the files (not folders) of a zip."""
    members: dict[str, str] = {}
    for raw in namelist:
        rel = _normalise_member(raw)
        if rel and not raw.endswith(("/", "\\")):
            members.setdefault(rel, raw)
    return members


def _list_directory(root: str) -> list[str]:
    """Image files under ``root``, relative and sorted.  Symlinked folders are followed (datasets
    are often assembled from links), but a folder already read is not read again, so a link
    loop cannot recurse forever; hidden folders are not entered at all."""
    names = []
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        # real folders first, so a link to a sibling folder is the one left out, not the folder
        for d in sorted(dirnames, key=lambda d: (os.path.islink(os.path.join(dirpath, d)), d)):
            if _is_hidden(d):
                continue
            full = os.path.join(dirpath, d)
            real = os.path.realpath(full)
            if real in seen:
                warnings.warn(f"fastgan.data: not reading {full} again: it is {real}, already "
                              "read through another path (a symlink loop, or two symlinks to one "
                              "folder)", RuntimeWarning, stacklevel=3)
                continue
            seen.add(real)
            keep.append(d)
        dirnames[:] = sorted(keep)
        rel_dir = os.path.relpath(dirpath, root)
        for f in filenames:
            rel = f if rel_dir == "." else os.path.join(rel_dir, f)
            rel = rel.replace(os.sep, "/")
            if _is_image_name(rel):
                names.append(rel)
    return sorted(names)


def _wrapper_dirs(names: list[str]) -> list[str]:
    """``["", "a/", "a/b/", ...]``: the root, then each folder that alone holds every image.

    ``zip -r pets.zip pets/`` stores ``pets/cats/x.png``, so the dataset's real root is ``pets/``;
    this finds it (and deeper ones, e.g. ``home/me/pets/`` from a zip of an absolute path).
    """
    chain = [""]
    rest = names
    while rest and all("/" in n for n in rest):
        tops = {n.split("/", 1)[0] for n in rest}
        if len(tops) != 1:
            break
        chain.append(chain[-1] + tops.pop() + "/")
        rest = [n.split("/", 1)[1] for n in rest]
    return chain


def _class_root(names: list[str]) -> str:
    """The folder whose sub-folders are the classes: the innermost wrapper folder, unless every
    image lies directly in it (then it is the one class itself, and its parent is the root)."""
    chain = _wrapper_dirs(names)
    if len(chain) > 1 and all("/" not in n[len(chain[-1]):] for n in names):
        return chain[-2]
    return chain[-1]


def _find_label_file(names: list[str], exists: Any) -> Optional[str]:
    """Where dataset.json is: at the root (NVlabs) or, failing that, in the outermost wrapper
    folder that has one (a prepared dataset zipped with its folder); None when there is none.
    ``exists(rel)`` says whether a file is there; label paths are relative to its folder."""
    for prefix in _wrapper_dirs(names):
        if exists(prefix + LABEL_FILE):
            return prefix + LABEL_FILE
    return None


def _parse_label_file(text: Union[str, bytes], where: str) -> tuple[Optional[dict[str, int]],
                                                                    Optional[list[str]]]:
    """({relative path: class}, class names or None) from dataset.json; (None, None) when its
    ``labels`` are null."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object with a 'labels' key")
    entries = data.get("labels")
    if entries is None:
        return None, None
    if not isinstance(entries, list):
        raise ValueError(f"{where}: 'labels' must be a list of [relative_path, class] pairs or "
                         f"null, got {type(entries).__name__}")
    labels: dict[str, int] = {}
    for entry in entries:
        ok = (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)
              and isinstance(entry[1], int) and not isinstance(entry[1], bool) and entry[1] >= 0)
        if not ok:
            raise ValueError(f"{where}: each label must be [relative_path, class] with a "
                             f"non-negative int class (vector labels are not supported), got "
                             f"{entry!r}")
        labels[_normalise_member(entry[0])] = entry[1]
    names = data.get("class_names")
    num_classes = max(labels.values(), default=-1) + 1
    if not (isinstance(names, list) and len(names) == num_classes
            and all(isinstance(n, str) for n in names)):
        names = None
    return labels, names


def read_label_file(path: PathLike) -> Optional[dict[str, int]]:
    """The ``{relative path: class}`` labels of the ``dataset.json`` of a folder or zip (at its
    root, or in the folder that alone holds every image; paths relative to that folder), or
    None when there is no such file or its labels are null."""
    path = os.fspath(path)
    if os.path.isdir(path):
        def exists(rel: str) -> bool:
            return os.path.isfile(os.path.join(path, rel))
        names = [] if exists(LABEL_FILE) else _list_directory(path)
        rel = _find_label_file(names, exists)
        if rel is None:
            return None
        with open(os.path.join(path, rel), "rb") as f:
            return _parse_label_file(f.read(), os.path.join(path, rel))[0]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = _zip_members(z.namelist())
            rel = _find_label_file(sorted(n for n in members if _is_image_name(n)),
                                   members.__contains__)
            if rel is None:
                return None
            return _parse_label_file(z.read(members[rel]), f"{path}:{rel}")[0]
    return None


# ------------------------------------------------------------------------------------------------
# decoding
# ------------------------------------------------------------------------------------------------

_ORIENTATION = ExifTags.Base.Orientation
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _to_mode(im: Image.Image, num_channels: int) -> Image.Image:
    """``im`` as RGB or L; transparency composited onto white, 16-bit grey scaled to 8 bits."""
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im, dtype=np.float64)
        if im.mode != "I" or arr.max(initial=0) > 255:
            arr = arr / 257.0
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in _ALPHA_MODES:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    target = "RGB" if num_channels == 3 else "L"
    return im if im.mode == target else im.convert(target)


def _resize_crop(im: Image.Image, resolution: int) -> Image.Image:
    """Shorter side to ``resolution`` (Lanczos), then the centred ``resolution^2`` crop."""
    w, h = im.size
    if (w, h) == (resolution, resolution):
        return im
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    im = im.resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=3.0)
    left, top = (nw - resolution) // 2, (nh - resolution) // 2
    return im.crop((left, top, left + resolution, top + resolution))


def _decode(fp: BinaryIO, num_channels: int, resolution: int) -> Tensor:
    """Decode one image file to a contiguous uint8 ``[C, R, R]`` tensor."""
    with Image.open(fp) as im:
        if im.getexif().get(_ORIENTATION, 1) != 1:
            im = ImageOps.exif_transpose(im)
        im = _resize_crop(_to_mode(im, num_channels), resolution)
        arr = np.array(im, dtype=np.uint8)            # a writable copy
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


# ------------------------------------------------------------------------------------------------
# the dataset
# ------------------------------------------------------------------------------------------------

class ImageFolderDataset(Dataset):
    """Images from a directory (searched recursively) or a ``.zip`` archive.

    Args:
        path: a directory or a zip file.
        resolution: output side R, a power of two >= 4; every image is resized (shorter side
            to R) and centre-cropped.  None takes R from the first image, which must then be
            square with a power-of-two side.
        use_labels: read class labels.  A ``dataset.json`` (NVlabs' format) at the root, or in
            the one folder that holds every image, is authoritative: its labels are used, and
            ``"labels": null`` there is an error.  Without one, the first-level sub-folder names
            are the classes (sorted names are 0..K-1); a single folder wrapping the whole
            dataset (``zip -r pets.zip pets/`` stores ``pets/cats/x.png``) is looked through, so
            the classes are ``cats``, ... not ``pets``.  Sub-folders giving only one class are an
            error (a conditional model cannot learn from it); a dataset.json with one class is
            obeyed with a warning.  False: ``num_classes = 0`` and every label is 0.
        num_channels: 3 (RGB) or 1 (greyscale).

    Attributes (besides the interface ones): ``image_paths`` (relative, '/'-separated, sorted),
    ``class_names`` (None without labels), ``labels`` (one int per image), ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is neither a directory nor a zip; it holds no images; labels were
            asked for but there are none, or sub-folders give only one class;
            ``resolution=None`` with a non-square or non-power-of-two first image, or with no
            readable image at all.
    """

    def __init__(self, path: PathLike, resolution: Optional[int] = None,
                 use_labels: bool = False, num_channels: int = 3) -> None:
        where = "ImageFolderDataset"
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"{where}: path must be a str or os.PathLike, got "
                            f"{type(path).__name__}")
        self.path = os.path.abspath(os.fspath(path))
        self.num_channels = _check_channels(num_channels, where)
        if not isinstance(use_labels, bool):
            raise TypeError(f"{where}: use_labels must be a bool, got {type(use_labels).__name__}")
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{where}: path {os.fspath(path)!r} does not exist")

        self._zip: Optional[zipfile.ZipFile] = None
        self._zip_pid: Optional[int] = None
        self._bad: set[int] = set()
        # zip entries whose stored name differs from the normalised one in image_paths
        self._stored_names: dict[str, str] = {}
        if os.path.isdir(self.path):
            self._is_zip = False
            names = _list_directory(self.path)
            members: Optional[dict[str, str]] = None
        elif zipfile.is_zipfile(self.path):
            self._is_zip = True
            members = _zip_members(self._zipfile().namelist())
            names = sorted(n for n in members if _is_image_name(n))
            self._stored_names = {n: members[n] for n in names if members[n] != n}
        else:
            raise ValueError(f"{where}: path {self.path!r} is neither a directory nor a .zip "
                             "archive")
        if not names:
            raise ValueError(f"{where}: no images found in {self.path!r} (looked for files "
                             f"ending in {', '.join(IMAGE_EXTENSIONS)}, any case)")
        self.image_paths: list[str] = names
        base = os.path.basename(self.path.rstrip("/"))
        self.name = base[:-4] if base.lower().endswith(".zip") else base

        self.class_names: Optional[list[str]] = None
        self._labels = [0] * len(names)
        self.num_classes = 0
        if use_labels:
            self._read_labels(members)

        if resolution is None:
            self.resolution = self._probe_resolution()
        else:
            self.resolution = _check_resolution(resolution, where)

    # -------------------------------------------------------------- construction helpers
    def _read_labels(self, members: Optional[dict[str, str]]) -> None:
        """Labels from dataset.json if there is one, else from the class sub-folders."""
        if members is None:
            def exists(rel: str) -> bool:
                return os.path.isfile(os.path.join(self.path, rel))
        else:
            exists = members.__contains__
        label_rel = _find_label_file(self.image_paths, exists)
        if label_rel is not None:
            where = f"{self.path}:{label_rel}" if self._is_zip else os.path.join(self.path,
                                                                                 label_rel)
            if members is None:
                with open(where, "rb") as f:
                    text = f.read()
            else:
                text = self._zipfile().read(members[label_rel])
            self._read_label_file(text, where, label_rel[:-len(LABEL_FILE)])
        else:
            self._read_class_folders()
        if self.num_classes == 1:
            # the trainer's --cond check only catches 0 classes; 1 conditions on nothing
            if label_rel is None:
                raise ValueError(
                    f"ImageFolderDataset: use_labels=True takes the classes from the sub-folders, "
                    f"but all {len(self)} images in {self.path!r} are in the one folder "
                    f"{self.class_names[0]!r}, so there is only one class; put each class's "
                    f"images in its own sub-folder, or drop --cond (use_labels=False)")
            warnings.warn(f"fastgan.data: {where} gives only one class to all {len(self)} "
                          "images; a conditional model learns nothing from it", UserWarning,
                          stacklevel=3)

    def _read_label_file(self, text: bytes, where: str, prefix: str) -> None:
        table, names = _parse_label_file(text, where)
        if table is None:
            raise ValueError(f"ImageFolderDataset: use_labels=True but {where} declares the "
                             "dataset unlabelled (\"labels\": null); drop --cond "
                             "(use_labels=False)")
        # its paths are relative to its own folder (the root, or a wrapper folder)
        missing = [n for n in self.image_paths
                   if not n.startswith(prefix) or n[len(prefix):] not in table]
        if missing:
            raise ValueError(f"ImageFolderDataset: {where} has no label for {len(missing)} "
                             f"of the {len(self.image_paths)} images (e.g. {missing[0]!r})")
        self._labels = [table[n[len(prefix):]] for n in self.image_paths]
        self.num_classes = max(self._labels) + 1
        self.class_names = names or [str(k) for k in range(self.num_classes)]

    def _read_class_folders(self) -> None:
        root = _class_root(self.image_paths)     # "pets/" for a zip of the folder pets/
        rels = [n[len(root):] for n in self.image_paths]
        folders = [r.split("/", 1)[0] if "/" in r else None for r in rels]
        if all(f is None for f in folders):
            raise ValueError(f"ImageFolderDataset: use_labels=True but {self.path!r} has no class "
                             f"sub-folders and no {LABEL_FILE} with labels; put each class's "
                             "images in its own sub-folder, or drop --cond (use_labels=False)")
        loose = [n for n, f in zip(self.image_paths, folders) if f is None]
        if loose:
            raise ValueError(f"ImageFolderDataset: use_labels=True takes the class from the "
                             f"sub-folder, but {len(loose)} images in {self.path!r} are not in "
                             f"one (e.g. {loose[0]!r}); move them into a class folder")
        self.class_names = sorted(set(folders))
        index = {c: k for k, c in enumerate(self.class_names)}
        self._labels = [index[f] for f in folders]
        self.num_classes = len(self.class_names)

    def _probe_resolution(self) -> int:
        """The side of the first readable image; it must be a square power of two >= 4."""
        for i, rel in enumerate(self.image_paths):
            try:
                with self._open(i) as fp, Image.open(fp) as im:
                    w, h = im.size
                    if im.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):
                        w, h = h, w
            except Exception as err:  # noqa: BLE001 - any decoding failure means "unreadable"
                self._warn_bad(i, err)
                continue
            if w != h or w < 4 or w & (w - 1):
                raise ValueError(
                    f"ImageFolderDataset: resolution=None takes the resolution from the first "
                    f"image, but {rel!r} in {self.path!r} is {w}x{h}, not a square power of two "
                    f">= 4; pass a resolution (--resolution R) to resize and centre-crop every "
                    f"image, or convert the dataset once with `fastgan prepare`")
            return w
        raise ValueError(f"ImageFolderDataset: none of the {len(self.image_paths)} images in "
                         f"{self.path!r} could be read")

    # -------------------------------------------------------------- file access
    def _zipfile(self) -> zipfile.ZipFile:
        """This process's handle on the archive (opened on first use after a fork/unpickle)."""
        pid = os.getpid()
        if self._zip is None or self._zip_pid != pid:
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = pid
        return self._zip

    def _open(self, index: int) -> BinaryIO:
        rel = self.image_paths[index]
        if self._is_zip:
            return io.BytesIO(self._zipfile().read(self._stored_names.get(rel, rel)))
        return open(os.path.join(self.path, rel), "rb")

    def _warn_bad(self, index: int, err: BaseException) -> None:
        if index not in self._bad:
            self._bad.add(index)
            where = (f"{self.path}:{self.image_paths[index]}" if self._is_zip
                     else os.path.join(self.path, self.image_paths[index]))
            warnings.warn(f"fastgan.data: skipping unreadable image {where}: {err}",
                          RuntimeWarning, stacklevel=3)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"] = None          # never pickle an open archive into a worker
        state["_zip_pid"] = None
        return state

    def close(self) -> None:
        """Close this process's zip handle (it reopens on the next read)."""
        if self._zip is not None and self._zip_pid == os.getpid():
            self._zip.close()
        self._zip = None
        self._zip_pid = None

    # -------------------------------------------------------------- the interface
    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def labels(self) -> list[int]:
        """The label of every image, in order (all 0 without labels)."""
        return list(self._labels)

    def load(self, index: int) -> tuple[Tensor, int]:
        """Item ``index``, strictly: raises :class:`UnreadableImageError` if it cannot be
        decoded (``ds[index]`` substitutes another item instead)."""
        i = _check_index(index, len(self), "ImageFolderDataset")
        try:
            with self._open(i) as fp:
                img = _decode(fp, self.num_channels, self.resolution)
        except Exception as err:  # noqa: BLE001 - corrupt, truncated, vanished: all unreadable
            raise UnreadableImageError(f"{self.image_paths[i]}: {err}") from err
        return img, self._labels[i]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        i = _check_index(index, len(self), "ImageFolderDataset")
        n = len(self)
        for k in range(n):
            j = (i + k) % n
            if j in self._bad:
                continue
            try:
                return self.load(j)
            except UnreadableImageError as err:
                self._warn_bad(j, err.__cause__ or err)
        raise RuntimeError(f"ImageFolderDataset: none of the {n} images in {self.path!r} could "
                           "be read")

    def __repr__(self) -> str:
        return (f"ImageFolderDataset({self.path!r}, resolution={self.resolution}, "
                f"num_channels={self.num_channels}, num_classes={self.num_classes}, "
                f"images={len(self)})")


# ------------------------------------------------------------------------------------------------
# views and the factory
# ------------------------------------------------------------------------------------------------

class DatasetView(Dataset):
    """A dataset seen through a ``max_size`` subset, x-flip mirroring and/or label dropping.

    Items ``0 .. m-1`` are ``m = min(len(base), max_size)`` base items chosen at random by
    ``seed``, kept in their base order (``indices``); NVlabs' choice, so the same seed keeps the
    same images as their loader, and every class is represented, not just the first in path
    order.  With ``xflip`` items ``m .. 2m-1`` are the same images flipped left-right (NVlabs'
    ``--mirror``).  With ``use_labels=False`` every label is 0 and ``num_classes`` is 0.
    """

    def __init__(self, base: Dataset, *, use_labels: bool = True, xflip: bool = False,
                 max_size: Optional[int] = None, seed: int = 0) -> None:
        self.base = base
        self.resolution = base.resolution
        self.num_channels = base.num_channels
        self.name = base.name
        self.use_labels = use_labels
        self.num_classes = base.num_classes if use_labels else 0
        self.class_names = getattr(base, "class_names", None) if use_labels else None
        self.xflip = xflip
        n = len(base)
        self._indices: Optional[np.ndarray] = None
        if max_size is not None and max_size < n:
            order = np.arange(n)
            np.random.RandomState(seed % (1 << 31)).shuffle(order)
            self._indices = np.sort(order[:max_size])
        self._size = n if self._indices is None else len(self._indices)

    @property
    def indices(self) -> list[int]:
        """The base index of each (unflipped) item."""
        return list(range(self._size)) if self._indices is None else self._indices.tolist()

    def __len__(self) -> int:
        return self._size * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        i = _check_index(index, len(self), "DatasetView")
        flip = i >= self._size
        j = i - self._size if flip else i
        img, label = self.base[j if self._indices is None else int(self._indices[j])]
        if flip:
            img = img.flip(-1)                       # a new contiguous tensor
        return img, (label if self.use_labels else 0)

    def __repr__(self) -> str:
        return (f"DatasetView({self.base!r}, size={len(self)}, xflip={self.xflip}, "
                f"use_labels={self.use_labels})")


def open_dataset(spec: PathLike, resolution: Optional[int] = None, use_labels: bool = False,
                 num_channels: Optional[int] = None, xflip: bool = False,
                 max_size: Optional[int] = None, seed: int = 0) -> Dataset:
    """Open a dataset by name or path.

    Args:
        spec: ``"shapes"`` or ``"digits"`` (built-ins, checked first; write ``./shapes`` for a
            folder of that name) or the path of an image folder or ``.zip``.
        resolution: image side; None: 32 for the built-ins, the first image's for folders.
        use_labels: read the class labels of a folder or zip (else its ``num_classes`` is 0
            and every label is 0).  The built-ins always carry their labels (shape kind, digit);
            a trainer ignores them unless it trains class-conditionally.
        num_channels: None: 3 for shapes and folders, 1 for digits.
        xflip: append a left-right mirrored copy of every image (length doubles).
        max_size: keep a random subset of ``max_size`` images, in their original order, chosen
            by ``seed`` as NVlabs does (so a class-folder dataset keeps every class); applied
            before ``xflip``.
        seed: an int: the images of ``shapes`` and the ``max_size`` subset (a trainer passes
            its run seed).

    Returns:
        A dataset with ``resolution``, ``num_channels``, ``num_classes`` and ``name``.

    Raises:
        FileNotFoundError: ``spec`` is neither a built-in nor an existing path.
    """
    where = "open_dataset"
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"{where}: spec must be a built-in name {BUILTIN_DATASETS} or a path, got "
                        f"{type(spec).__name__}")
    for flag, value in (("use_labels", use_labels), ("xflip", xflip)):
        if not isinstance(value, bool):
            raise TypeError(f"{where}: {flag} must be a bool, got {type(value).__name__}")
    if max_size is not None:
        max_size = _check_int(max_size, "max_size", where, minimum=1)
    seed = _check_int(seed, "seed", where)
    if num_channels is not None:
        num_channels = _check_channels(num_channels, where)

    if isinstance(spec, str) and spec in BUILTIN_DATASETS:
        res = 32 if resolution is None else resolution
        if spec == "shapes":
            base: Dataset = ShapesDataset(res, seed=seed, num_channels=num_channels or 3)
        else:
            base = DigitsDataset(res, num_channels=num_channels or 1)
    elif os.path.exists(os.fspath(spec)):
        base = ImageFolderDataset(spec, resolution=resolution, use_labels=use_labels,
                                  num_channels=num_channels or 3)
    else:
        raise FileNotFoundError(f"{where}: {os.fspath(spec)!r} is not a built-in dataset "
                                f"({', '.join(BUILTIN_DATASETS)}) nor an existing folder or .zip")

    if xflip or (max_size is not None and max_size < len(base)):
        return DatasetView(base, xflip=xflip, max_size=max_size, seed=seed)
    return base
