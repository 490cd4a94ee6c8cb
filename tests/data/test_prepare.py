"""prepare_dataset: built-ins and folders round-trip through the zip (pixels and labels),
labels and class names in dataset.json, unreadable images skipped and counted, max_images,
atomic writes, bad arguments."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from fastgan.data import ImageFolderDataset, ShapesDataset, open_dataset, prepare_dataset


def write_image(path, size, seed):
    arr = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_shapes_roundtrip(tmp_path, capsys):
    dest = tmp_path / "out" / "shapes16.zip"                  # parent folder is created
    summary = prepare_dataset("shapes", dest, 16, max_images=9, progress=False)
    assert summary == {"images": 9, "skipped": 0, "resolution": 16, "num_classes": 4,
                       "path": str(dest)}
    assert capsys.readouterr().err == ""                      # progress=False: no bar
    assert sorted(p.name for p in dest.parent.iterdir()) == ["shapes16.zip"]   # no .tmp left
    with zipfile.ZipFile(dest) as z:
        names = sorted(z.namelist())
        meta = json.loads(z.read("dataset.json"))
    assert names[0] == "00000/img00000000.png" and len(names) == 10
    assert meta["class_names"] == ["circle", "square", "triangle", "diamond"]
    src = ShapesDataset(16)
    back = ImageFolderDataset(dest, use_labels=True)
    assert (len(back), back.resolution, back.num_classes) == (9, 16, 4)
    assert back.class_names == src.class_names
    for i in range(9):
        (a, la), (b, lb) = src[i], back[i]
        assert torch.equal(a, b) and la == lb                 # PNG is lossless
    # it trains like any dataset: open_dataset reads it, unlabelled unless asked
    assert open_dataset(str(dest)).num_classes == 0


def test_digits_greyscale(tmp_path):
    pytest.importorskip("sklearn")
    dest = tmp_path / "d.zip"
    summary = prepare_dataset("digits", dest, 8, num_channels=1, max_images=5, progress=False)
    assert summary["num_classes"] == 10
    src = open_dataset("digits", resolution=8, use_labels=True)
    back = ImageFolderDataset(dest, use_labels=True, num_channels=1)
    for i in range(5):
        assert torch.equal(back[i][0], src[i][0]) and back[i][1] == src[i][1]


def test_folder_with_labels_and_a_corrupt_file(tmp_path):
    root = tmp_path / "src"
    write_image(root / "a/1.png", (40, 24), 1)               # resized + centre-cropped
    (root / "a/2.png").write_bytes(b"\x89PNG not really")
    write_image(root / "b/3.jpg", (16, 16), 3)
    dest = tmp_path / "folder.zip"
    with pytest.warns(RuntimeWarning, match=r"unreadable image .*2\.png"):
        summary = prepare_dataset(root, dest, 8, use_labels=True, progress=False)
    assert (summary["images"], summary["skipped"], summary["num_classes"]) == (2, 1, 2)
    ref = ImageFolderDataset(root, resolution=8, use_labels=True)
    back = ImageFolderDataset(dest, use_labels=True)
    assert back.class_names == ["a", "b"]
    for j, i in enumerate((0, 2)):                           # the corrupt item 1 is gone
        assert torch.equal(back[j][0], ref.load(i)[0]) and back[j][1] == ref.labels[i]


def test_unlabelled_folder_writes_null_labels(tmp_path):
    root = tmp_path / "src"
    for k in range(3):
        write_image(root / f"{k}.png", (8, 8), k)
    dest = tmp_path / "u.zip"
    summary = prepare_dataset(root, dest, 8, max_images=2, progress=False)
    assert (summary["images"], summary["num_classes"]) == (2, 0)
    with zipfile.ZipFile(dest) as z:
        assert json.loads(z.read("dataset.json")) == {"labels": None}
    with pytest.raises(ValueError, match="unlabelled"):
        ImageFolderDataset(dest, use_labels=True)


def test_atomic_replace_and_failure_leaves_nothing(tmp_path):
    dest = tmp_path / "x.zip"
    dest.write_bytes(b"old")
    prepare_dataset("shapes", dest, 4, max_images=2, progress=False)
    assert zipfile.is_zipfile(dest)                           # replaced in one step
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="none of the images"):
        prepare_dataset(bad, tmp_path / "y.zip", 8, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "x.zip"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dest": "out.tar"}, ValueError, r"\.zip"),
    ({"resolution": 12}, ValueError, "resolution"),
    ({"num_channels": 4}, ValueError, "num_channels"),
    ({"max_images": 0}, ValueError, "max_images"),
])
def test_bad_arguments(tmp_path, kwargs, error, match):
    args = {"source": "shapes", "dest": "out.zip", "resolution": 8, **kwargs}
    args["dest"] = str(tmp_path / args["dest"])
    with pytest.raises(error, match=match):
        prepare_dataset(**args, progress=False)
    assert list(tmp_path.iterdir()) == []
