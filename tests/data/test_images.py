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
                          open_dataset, read_label_file)


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
    kept = ds.indices                                    # a seeded subset, in base order
    assert len(set(kept)) == 5 and kept == sorted(kept) and max(kept) < 10000
    for i, j in enumerate(kept):
        img, label = ds[i]
        flipped, flabel = ds[i + 5]
        assert torch.equal(img, base[j][0]) and label == flabel == base[j][1]
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


# ------------------------------------------------------------------------------------------------
# layouts found in the wild: wrapper folders, odd zip entry names, hidden files, symlinks
# ------------------------------------------------------------------------------------------------

def three_classes(root: Path, per_class: int = 2) -> None:
    for c, name in enumerate(("birds", "cats", "dogs")):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", (8, 8), 10 * c + i)


def test_zip_of_a_folder_strips_the_wrapper_folder(tmp_path):
    # `zip -r pets.zip pets/` puts every entry under pets/: the classes are still cats, dogs, ...
    three_classes(tmp_path / "src/pets")
    archive = zip_folder(tmp_path / "src", tmp_path / "pets.zip")
    ds = ImageFolderDataset(archive, resolution=8, use_labels=True)
    assert ds.class_names == ["birds", "cats", "dogs"]
    assert ds.image_paths[0] == "pets/birds/0.png" and ds.labels == [0, 0, 1, 1, 2, 2]
    # the same for a folder that only wraps the dataset, and for several wrapper levels
    assert ImageFolderDataset(tmp_path / "src", use_labels=True).class_names == \
        ["birds", "cats", "dogs"]
    three_classes(tmp_path / "deep/home/me/pets")
    assert ImageFolderDataset(tmp_path / "deep", use_labels=True).class_names == \
        ["birds", "cats", "dogs"]
    # a loose image beside the classes is still an error, named with its full path
    write_image(tmp_path / "src/pets/loose.png", (8, 8), 0)
    with pytest.raises(ValueError, match="pets/loose.png"):
        ImageFolderDataset(tmp_path / "src", use_labels=True)


def test_zip_entry_names_are_normalised(tmp_path):
    # Windows tools write backslashes; others write ./ or / prefixes
    raw = {"pets\\cats\\a.png": 1, "./pets/dogs/b.png": 2, "/pets/dogs/c.png": 3}
    archive = tmp_path / "win.zip"
    pix = {}
    with zipfile.ZipFile(archive, "w") as z:
        for name, seed in raw.items():
            pix[name] = write_image(tmp_path / f"{seed}.png", (8, 8), seed)
            z.writestr(name, (tmp_path / f"{seed}.png").read_bytes())
    assert sorted(zipfile.ZipFile(archive).namelist()) == sorted(raw)      # stored verbatim
    ds = ImageFolderDataset(archive, use_labels=True)
    assert ds.image_paths == ["pets/cats/a.png", "pets/dogs/b.png", "pets/dogs/c.png"]
    assert ds.class_names == ["cats", "dogs"] and ds.labels == [0, 1, 1]
    for i, name in enumerate(raw):                                         # read from the raw name
        assert torch.equal(ds.load(i)[0], as_chw(pix[name]))


def test_dataset_json_inside_the_wrapper_folder(tmp_path):
    # an extracted `fastgan prepare` zip, zipped again with its folder
    root = tmp_path / "src/ds"
    for i in range(3):
        write_image(root / f"00000/img{i:08d}.png", (8, 8), i)
    labels = [[f"00000/img{i:08d}.png", k] for i, k in enumerate((2, 0, 1))]
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    archive = zip_folder(tmp_path / "src", tmp_path / "ds.zip")
    for path in (archive, tmp_path / "src"):
        ds = ImageFolderDataset(path, use_labels=True)
        assert ds.labels == [2, 0, 1] and ds.num_classes == 3
        assert read_label_file(path) == dict(labels)
    # a dataset.json at the root is authoritative: paths are relative to the root, no stripping
    prepared = tmp_path / "prepared.zip"
    with zipfile.ZipFile(prepared, "w") as z:
        for i in range(3):
            z.write(root / f"00000/img{i:08d}.png", f"00000/img{i:08d}.png")
        z.writestr("dataset.json", json.dumps({"labels": labels}))
    assert ImageFolderDataset(prepared, use_labels=True).labels == [2, 0, 1]


def test_a_single_class_is_an_error_with_labels(tmp_path):
    for i in range(2):
        write_image(tmp_path / f"only/cats/{i}.png", (8, 8), i)
    only_one = r"'cats', so there is only one class.*drop --cond \(use_labels=False\)"
    with pytest.raises(ValueError, match=only_one):
        ImageFolderDataset(tmp_path / "only", use_labels=True)
    assert ImageFolderDataset(tmp_path / "only").num_classes == 0            # fine unconditionally
    # an explicit dataset.json with one class is obeyed, with a warning
    labels = [["cats/0.png", 0], ["cats/1.png", 0]]
    (tmp_path / "only/dataset.json").write_text(json.dumps({"labels": labels}))
    with pytest.warns(UserWarning, match="only one class"):
        assert ImageFolderDataset(tmp_path / "only", use_labels=True).num_classes == 1


def test_hidden_files_and_folders_are_skipped(tmp_path):
    root = tmp_path / "ds"
    three_classes(root, per_class=1)
    for junk in (".ipynb_checkpoints/0-checkpoint.png", "cats/.hidden_thumb.png",
                 "cats/.thumbs/x.png", "cats/__MACOSX/y.png", "__MACOSX/cats/._0.png",
                 ".git/z.png"):
        write_image(root / junk, (8, 8), 99)
    expected = ["birds/0.png", "cats/0.png", "dogs/0.png"]
    folder = ImageFolderDataset(root, use_labels=True)
    zipped = ImageFolderDataset(zip_folder(root, tmp_path / "ds.zip"), use_labels=True)
    for ds in (folder, zipped):
        assert ds.image_paths == expected and ds.class_names == ["birds", "cats", "dogs"]
    # a hidden folder *holding* the dataset is fine: only paths inside it are looked at
    three_classes(tmp_path / ".cache/ds", per_class=1)
    assert ImageFolderDataset(tmp_path / ".cache/ds").image_paths == expected


def test_symlinked_folders_are_followed(tmp_path):
    three_classes(tmp_path / "store", per_class=2)
    root = tmp_path / "ds"
    write_image(root / "ants/0.png", (8, 8), 50)
    (root / "dogs").symlink_to(tmp_path / "store/dogs", target_is_directory=True)
    ds = ImageFolderDataset(root, use_labels=True)
    assert ds.image_paths == ["ants/0.png", "dogs/0.png", "dogs/1.png"]
    assert ds.class_names == ["ants", "dogs"]
    assert torch.equal(ds[1][0], ImageFolderDataset(tmp_path / "store/dogs")[0][0])
    only_links = tmp_path / "links"
    only_links.mkdir()
    (only_links / "cats").symlink_to(tmp_path / "store/cats", target_is_directory=True)
    assert len(ImageFolderDataset(only_links)) == 2


def test_symlink_loops_are_not_followed(tmp_path):
    root = tmp_path / "ds"
    write_image(root / "cats/0.png", (8, 8), 0)
    write_image(root / "dogs/0.png", (8, 8), 1)
    (root / "cats/loop").symlink_to(root, target_is_directory=True)         # back to the root
    (root / "dogs/again").symlink_to(root / "dogs", target_is_directory=True)   # to itself
    with pytest.warns(RuntimeWarning, match="symlink loop") as record:
        ds = ImageFolderDataset(root, use_labels=True)
    assert ds.image_paths == ["cats/0.png", "dogs/0.png"]
    messages = " ".join(str(w.message) for w in record)
    assert "cats/loop" in messages and "dogs/again" in messages


def test_error_messages_name_the_cli_flag(tmp_path):
    write_image(tmp_path / "a.png", (8, 8), 0)
    with pytest.raises(ValueError, match=r"drop --cond \(use_labels=False\)"):
        ImageFolderDataset(tmp_path, use_labels=True)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": None}))
    with pytest.raises(ValueError, match=r"drop --cond \(use_labels=False\)"):
        ImageFolderDataset(tmp_path, use_labels=True)


def test_max_size_takes_a_seeded_random_subset(tmp_path):
    three_classes(tmp_path, per_class=10)                         # birds 0-9, cats 10-19, ...
    ds = open_dataset(tmp_path, resolution=8, use_labels=True, max_size=10, seed=3)
    full = ImageFolderDataset(tmp_path, resolution=8, use_labels=True)
    # NVlabs' choice, so the same seed keeps the same images as their loader
    order = np.arange(30)
    np.random.RandomState(3).shuffle(order)
    expected = np.sort(order[:10]).tolist()
    assert ds.indices == expected and len(ds) == 10
    assert len({ds[i][1] for i in range(10)}) > 1                 # not just the first class
    for i, j in enumerate(expected):
        assert torch.equal(ds[i][0], full[j][0]) and ds[i][1] == full[j][1]
    again = open_dataset(tmp_path, resolution=8, use_labels=True, max_size=10, seed=3)
    assert again.indices == expected                              # deterministic per seed
    assert open_dataset(tmp_path, max_size=10, seed=4).indices != expected
    big_seed = open_dataset(tmp_path, max_size=10, seed=3 + (1 << 31))
    assert big_seed.indices == expected                           # seed % 2**31, as NVlabs
    with pytest.raises(TypeError, match="seed"):
        open_dataset(tmp_path, max_size=10, seed=1.5)
