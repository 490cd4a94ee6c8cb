"""Image folders and zips: discovery, labels (sub-folders, dataset.json), resize + centre crop,
modes, corrupt files, errors, zip == folder, pickling / spawn workers; open_dataset's built-ins,
label dropping, xflip and max_size."""
from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from fastgan.data import (DatasetView, ImageFolderDataset, ShapesDataset, UnreadableImageError,
                          open_dataset)


def write_image(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> np.ndarray:
    """Random image of ``size`` = (width, height) saved at ``path``; returns its pixels."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((len(mode),) if mode != "L" else ())
    arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)
    return arr


def as_chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(2, 0, 1) if arr.ndim == 3 else torch.from_numpy(arr)[None]


def zip_folder(root: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(root).as_posix())
    return dest


@pytest.fixture
def classes(tmp_path):
    """cat/ (2 images, one nested deeper) and dog/ (1 image), 8x8 PNG, plus non-images."""
    root = tmp_path / "pets"
    pix = {
        "cat/a.png": write_image(root / "cat/a.png", (8, 8), 1),
        "cat/deep/b.PNG": write_image(root / "cat/deep/b.PNG", (8, 8), 2),
        "dog/c.png": write_image(root / "dog/c.png", (8, 8), 3),
    }
    (root / "cat/notes.txt").write_text("not an image")
    (root / "dog/._c.png").write_bytes(b"macOS resource fork")
    return root, pix


# ------------------------------------------------------------------------------------------------
# folders
# ------------------------------------------------------------------------------------------------

def test_folder_recursive_discovery_and_pixels(classes):
    root, pix = classes
    ds = ImageFolderDataset(root)
    assert ds.image_paths == sorted(pix)                 # sorted, recursive, non-images ignored
    assert (len(ds), ds.resolution, ds.num_channels, ds.num_classes, ds.name) == \
        (3, 8, 3, 0, "pets")
    for i, rel in enumerate(ds.image_paths):
        img, label = ds[i]
        assert img.dtype == torch.uint8 and img.is_contiguous() and label == 0
        assert torch.equal(img, as_chw(pix[rel]))        # exact at the native resolution


def test_folder_labels_from_subfolders(classes):
    root, _ = classes
    ds = ImageFolderDataset(root, use_labels=True)
    assert ds.class_names == ["cat", "dog"] and ds.num_classes == 2
    assert [ds[i][1] for i in range(len(ds))] == [0, 0, 1]


def test_folder_dataset_json_takes_precedence(classes):
    root, _ = classes
    labels = [["cat/a.png", 4], ["cat/deep/b.PNG", 0], ["dog/c.png", 2]]
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    ds = ImageFolderDataset(root, use_labels=True)
    assert ds.num_classes == 5 and [ds[i][1] for i in range(3)] == [4, 0, 2]
    # ignored without use_labels
    assert ImageFolderDataset(root).num_classes == 0
    # an image without a label entry, and an explicitly unlabelled dataset.json
    (root / "dataset.json").write_text(json.dumps({"labels": labels[:2]}))
    with pytest.raises(ValueError, match="no label for 1 of the 3"):
        ImageFolderDataset(root, use_labels=True)
    (root / "dataset.json").write_text(json.dumps({"labels": None}))
    with pytest.raises(ValueError, match="use_labels=False"):
        ImageFolderDataset(root, use_labels=True)


def test_folder_labels_need_subfolders(tmp_path):
    write_image(tmp_path / "a.png", (8, 8), 0)
    with pytest.raises(ValueError, match="no class sub-folders"):
        ImageFolderDataset(tmp_path, use_labels=True)
    write_image(tmp_path / "cls/b.png", (8, 8), 1)
    with pytest.raises(ValueError, match="not in one"):          # a.png is loose at the root
        ImageFolderDataset(tmp_path, use_labels=True)


def test_resize_and_centre_crop_non_square(tmp_path):
    # left and right thirds are distinct, so a wrong crop offset shows
    arr = write_image(tmp_path / "wide.png", (48, 32), 5)
    ds = ImageFolderDataset(tmp_path, resolution=16)
    by_hand = Image.fromarray(arr).resize((24, 16), Image.Resampling.LANCZOS, reducing_gap=3.0)
    expected = as_chw(np.array(by_hand.crop((4, 0, 20, 16))))
    img, _ = ds[0]
    assert img.shape == (3, 16, 16)
    assert torch.equal(img, expected)
    assert not torch.equal(img, as_chw(np.array(by_hand.crop((0, 0, 16, 16)))))


def test_resolution_from_first_image_must_be_square_power_of_two(tmp_path):
    write_image(tmp_path / "a.png", (32, 32), 0)
    write_image(tmp_path / "b.png", (64, 48), 1)                # later images are resized
    ds = ImageFolderDataset(tmp_path)
    assert ds.resolution == 32 and ds[1][0].shape == (3, 32, 32)
    (tmp_path / "a.png").unlink()
    with pytest.raises(ValueError, match="--resolution"):
        ImageFolderDataset(tmp_path)
    (tmp_path / "b.png").unlink()
    write_image(tmp_path / "c.png", (24, 24), 2)
    with pytest.raises(ValueError, match="power of two"):
        ImageFolderDataset(tmp_path)


def test_greyscale_and_alpha(tmp_path):
    rgba = write_image(tmp_path / "a.png", (8, 8), 0, mode="RGBA")
    rgba_copy = rgba.copy()
    rgba_copy[..., 3] = 0
    Image.fromarray(rgba_copy, "RGBA").save(tmp_path / "b.png")   # fully transparent
    rgb = ImageFolderDataset(tmp_path)
    assert torch.all(rgb[1][0] == 255)                             # composited onto white
    a = rgba[..., 3:].astype(np.float64) / 255
    expected = np.rint(rgba[..., :3] * a + 255 * (1 - a))
    assert (rgb[0][0].double() - as_chw(expected)).abs().max() <= 1
    grey = ImageFolderDataset(tmp_path, num_channels=1)
    assert grey[0][0].shape == (1, 8, 8) and torch.all(grey[1][0] == 255)


def test_corrupt_file_is_skipped_with_one_warning(tmp_path):
    write_image(tmp_path / "a.png", (8, 8), 0)
    (tmp_path / "b.png").write_bytes(np.random.default_rng(0).bytes(300))
    write_image(tmp_path / "c.png", (8, 8), 1)
    ds = ImageFolderDataset(tmp_path, resolution=8)
    with pytest.warns(RuntimeWarning, match=r"skipping unreadable image .*b\.png"):
        img, _ = ds[1]
    assert torch.equal(img, ds[2][0])                             # the next readable item
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # no second warning
        assert torch.equal(ds[1][0], img)
    with pytest.raises(UnreadableImageError, match="b.png"):
        ds.load(1)


def test_all_files_corrupt(tmp_path):
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"garbage" * 10)
    ds = ImageFolderDataset(tmp_path, resolution=8)
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="none of the 2"):
        ds[0]
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="could be read"):
        ImageFolderDataset(tmp_path)                  # no image to take the resolution from


def test_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images found .*\.png"):
        ImageFolderDataset(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="neither a directory nor a .zip"):
        ImageFolderDataset(tmp_path / "file.txt")
    with pytest.raises(TypeError, match="path"):
        ImageFolderDataset(3)


# ------------------------------------------------------------------------------------------------
# zips
# ------------------------------------------------------------------------------------------------

def test_zip_equals_folder(classes, tmp_path):
    root, _ = classes
    archive = zip_folder(root, tmp_path / "pets.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("__MACOSX/cat/._a.png", b"junk")                # ignored
    folder = ImageFolderDataset(root, resolution=4, use_labels=True)
    zipped = ImageFolderDataset(archive, resolution=4, use_labels=True)
    assert zipped.image_paths == folder.image_paths and zipped.name == "pets"
    assert zipped.class_names == folder.class_names
    for i in range(len(folder)):
        (a, la), (b, lb) = folder[i], zipped[i]
        assert torch.equal(a, b) and la == lb


def test_zip_is_reopened_per_process_and_never_pickled(classes, tmp_path):
    root, _ = classes
    ds = ImageFolderDataset(zip_folder(root, tmp_path / "p.zip"))
    first = ds[0][0]
    state = ds.__getstate__()
    assert state["_zip"] is None
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[0][0], first)
    ds._zip_pid = -1                                 # as if inherited through fork
    assert torch.equal(ds[0][0], first) and ds._zip_pid == os.getpid()
    ds.close()
    assert torch.equal(ds[2][0], clone[2][0])        # reopens after close


def test_zip_with_spawned_dataloader_workers(classes, tmp_path):
    root, _ = classes
    ds = ImageFolderDataset(zip_folder(root, tmp_path / "p.zip"), use_labels=True)
    loader = DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context="spawn")
    images, labels = next(iter(loader))
    assert torch.equal(images, torch.stack([ds[i][0] for i in range(3)]))
    assert labels.tolist() == [0, 0, 1]


# ------------------------------------------------------------------------------------------------
# open_dataset
# ------------------------------------------------------------------------------------------------

def test_open_builtins_defaults_and_labels():
    ds = open_dataset("shapes")
    assert (ds.resolution, ds.num_channels, ds.num_classes, len(ds)) == (32, 3, 4, 10000)
    assert isinstance(ds, ShapesDataset)                 # nothing to wrap
    # built-ins always carry their labels; use_labels only concerns folders and zips
    small = open_dataset("shapes", resolution=8, use_labels=False, seed=2)
    assert small.num_classes == 4 and small[3][1] == 3
    assert torch.equal(small[5][0], ShapesDataset(8, seed=2)[5][0])


def test_dataset_view_can_drop_labels():
    view = DatasetView(ShapesDataset(8, length=6), use_labels=False)
    assert view.num_classes == 0 and view.class_names is None
    assert [view[i][1] for i in range(6)] == [0] * 6 and len(view) == 6


def test_open_digits_default_channels():
    pytest.importorskip("sklearn")
    ds = open_dataset("digits", resolution=8, use_labels=True)
    assert (ds.resolution, ds.num_channels, ds.num_classes, len(ds)) == (8, 1, 10, 1797)


def test_open_xflip_and_max_size():
    base = ShapesDataset(16, seed=1)
    ds = open_dataset("shapes", resolution=16, use_labels=True, xflip=True, max_size=5, seed=1)
    assert isinstance(ds, DatasetView) and len(ds) == 10
    assert (ds.resolution, ds.num_channels, ds.num_classes, ds.name) == (16, 3, 4, "shapes")
    for i in range(5):
        img, label = ds[i]
        flipped, flabel = ds[i + 5]
        assert torch.equal(img, base[i][0]) and label == flabel == base[i][1]
        assert flipped.is_contiguous()
        assert torch.equal(flipped, img.flip(-1)) and not torch.equal(flipped, img)
        assert torch.equal(flipped[:, :, 0], img[:, :, -1])
    with pytest.raises(IndexError):
        ds[10]
    assert len(open_dataset("shapes", max_size=7)) == 7
    assert len(open_dataset("shapes", max_size=10**6)) == 10000    # no-op when larger


def test_open_folder_path(classes):
    root, pix = classes
    ds = open_dataset(str(root), resolution=8, use_labels=True, xflip=True)
    assert len(ds) == 6 and ds.num_classes == 2 and ds.class_names == ["cat", "dog"]
    assert torch.equal(ds[3][0], as_chw(pix["cat/a.png"]).flip(-1))
    assert isinstance(open_dataset(root), ImageFolderDataset)


def test_open_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="shapes, digits"):
        open_dataset("shapez")
    with pytest.raises(ValueError, match="max_size"):
        open_dataset("shapes", max_size=0)
    with pytest.raises(ValueError, match="num_channels"):
        open_dataset("shapes", num_channels=2)
    with pytest.raises(TypeError, match="spec"):
        open_dataset(None)
