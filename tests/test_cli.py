"""The ``fastgan`` command line: help, train -> generate round trip, prepare, config files,
clear errors for bad input, and a 2-process gloo DDP run (torchrun) whose ranks stay in sync."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fastgan.cli import build_parser, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--resolution", "16", "--batch", "4", "--z-dim", "32", "--w-dim", "32",
        "--channel-base", "256", "--channel-max", "32", "--mapping-layers", "2",
        "--r1-interval", "2", "--pl-interval", "2", "--workers", "0", "--device", "cpu",
        "--tick-kimg", "0.008", "--snap-kimg", "0.008", "--image-kimg", "0.008",
        "--metric-images", "0", "--grid-size", "4", "--tensorboard", "no", "--progress", "no",
        "--max-size", "32"]


def test_help_lists_every_command_and_the_key_options(capsys):
    for cmd, needles in {"train": ["--data", "--resolution", "--batch", "--kimg", "--out",
                                   "--cond", "--gpus", "--resume", "--config", "torchrun"],
                         "generate": ["--ckpt", "--n", "--truncation", "--seeds", "--out",
                                      "mixing", "interpolate"],
                         "prepare": ["--resolution", "dest"],
                         "bench": ["stylegan2", "penalties"]}.items():
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        for n in needles:
            assert n in out, (cmd, n)
    assert main([]) == 2


def test_train_then_generate_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "--data", "shapes", "--kimg", "1", "--out", str(run), "--max-steps", "2",
               *TINY])
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "done" and result["step"] == 2
    assert (run / "config.json").exists() and list(run.glob("ckpt-*.pt"))

    grid = tmp_path / "grid.png"
    assert main(["generate", "--ckpt", str(run), "--seeds", "0-5", "--truncation", "0.7",
                 "--out", str(grid), "--device", "cpu"]) == 0
    im = np.asarray(Image.open(grid))
    assert im.shape == (2 * 16, 3 * 16, 3) and im.std() > 0          # 6 images, 3 per row
    # same seeds -> same images (seeded z, constant noise)
    grid2 = tmp_path / "grid2.png"
    assert main(["generate", "--ckpt", str(run), "--seeds", "0-5", "--truncation", "0.7",
                 "--out", str(grid2), "--device", "cpu"]) == 0
    assert np.array_equal(im, np.asarray(Image.open(grid2)))
    # --n with --seeds takes the first n seeds: the first row of the 6-image grid
    grid3 = tmp_path / "grid3.png"
    assert main(["generate", "--ckpt", str(run), "--n", "3", "--seeds", "0-5", "--truncation",
                 "0.7", "--nrow", "3", "--out", str(grid3), "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(grid3)), im[:16])
    assert main(["generate", "--ckpt", str(run), "--n", "9", "--seeds", "0-5",
                 "--out", str(grid3), "--device", "cpu"]) == 2

    mix = tmp_path / "mix.png"
    assert main(["generate", "--ckpt", str(run), "--mode", "mixing", "--seeds", "0-2",
                 "--col-seeds", "5-8", "--out", str(mix), "--device", "cpu"]) == 0
    assert np.asarray(Image.open(mix)).shape == (4 * 16, 5 * 16, 3)

    frames = tmp_path / "frames"
    assert main(["generate", "--ckpt", str(run), "--mode", "interpolate", "--seeds", "0,1,2",
                 "--frames", "3", "--out", str(frames), "--device", "cpu"]) == 0
    assert len(list(frames.glob("*.png"))) == 2 * 3 + 1

    # resume auto continues from step 2
    rc = main(["train", "--data", "shapes", "--kimg", "1", "--out", str(run), "--max-steps", "1",
               "--resume", "auto", *TINY])
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3


def test_config_file_and_command_line_precedence(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data: shapes\nkimg: 1\nbatch: 4\nseed: 7\nstyle-mixing: 0.5\n")
    from fastgan.cli import _train_config
    ns = build_parser().parse_args(["train", "--config", str(cfg), "--seed", "9"])
    c = _train_config(ns)
    assert (c.data, c.kimg, c.batch, c.seed, c.style_mixing) == ("shapes", 1, 4, 9, 0.5)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not_an_option": 1}))
    assert main(["train", "--config", str(bad)]) == 2
    assert "unknown option" in capsys.readouterr().err


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"),
                 *TINY]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"),
                 *TINY]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(tmp_path / "none.pt"), "--out", "x.png"]) == 2
    assert "none.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--precision", "fp8"])


def test_prepare_writes_a_dataset_zip(tmp_path, capsys):
    dest = tmp_path / "shapes.zip"
    assert main(["prepare", "shapes", str(dest), "--resolution", "16", "--cond",
                 "--max-images", "12"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["images"] == 12 and dest.exists()
    from fastgan.data import open_dataset
    ds = open_dataset(str(dest), use_labels=True)
    src = open_dataset("shapes", resolution=16)
    assert len(ds) == 12 and ds.resolution == 16 and ds.num_classes == src.num_classes
    img, label = ds[5]
    ref_img, ref_label = src[5]
    assert torch.equal(img, ref_img) and label == ref_label


def test_python_dash_m_fastgan_runs():
    r = subprocess.run([sys.executable, "-m", "fastgan", "--help"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "train" in r.stdout and "generate" in r.stdout


def test_ddp_two_gloo_processes_stay_in_sync(tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "fastgan", "train", "--gpus", "2", "--data", "shapes",
           "--kimg", "1", "--out", str(run), "--max-steps", "3", *TINY]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (run / "log.txt").read_text()
    assert "batch 4 (2 x 2)" in log
    assert "DistributedDataParallel" in log and "ranks in sync: 2 processes" in log
    state = torch.load(sorted(run.glob("ckpt-*.pt"))[-1], map_location="cpu", weights_only=False)
    assert state["world_size"] == 2 and state["step"] == 3 and state["cur_nimg"] == 12


def test_bench_command_runs_a_suite(tmp_path):
    assert main(["bench", "stylegan2", "--device", "cpu", "--res", "16", "--parts", "d_fwd",
                 "--impls", "ref", "--out", str(tmp_path)]) == 0
    (js,) = tmp_path.glob("*-stylegan2.json")
    rows = json.loads(js.read_text())["rows"]
    assert rows and all(r["part"] == "d_fwd" and r["status"] == "ok" for r in rows)
